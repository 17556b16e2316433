/**
 * KServe Open Inference Protocol v2 on the inference port (inference_rest.md): server and model
 * metadata, health, and infer with JSON tensors or the binary tensor extension.
 * Errors are `{"error": msg}` (set by the app's error handler for /v2 paths).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import { nnsError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';
import type { Registry } from '../../registry/registry.js';
import { checkAgainstSpec } from '../../tensors.js';
import { decodeInputs, decodeRaw, encodeOutputs, splitBody, v2Datatype, validateRequest } from './codec.js';

export interface V2RouteOptions {
  registry: Registry;
  metrics: Metrics;
  serverVersion: string;
}

type ModelParams = { Params: { model: string; version?: string } };

export async function v2Routes(app: FastifyInstance, { registry, metrics, serverVersion }: V2RouteOptions): Promise<void> {
  app.get('/v2', async () => ({ name: 'nnserve', version: serverVersion, extensions: ['binary_tensor_data'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_req, reply) => {
    const ready = registry.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  const metadata = async (req: FastifyRequest<ModelParams>) => {
    const v = registry.get(req.params.model, req.params.version);
    const shape = (s: (number | string)[]) => s.map((d) => (typeof d === 'number' ? d : -1));
    const ctx = v.context;
    return {
      name: v.modelName,
      versions: registry.versions(v.modelName).map((x) => x.modelVersion),
      platform: 'onnxruntime_onnx',
      inputs: ctx.inputs.map((i) => ({ name: i.name, datatype: v2Datatype(i.dtype), shape: shape(i.shape) })),
      outputs: ctx.outputs.map((o) => ({ name: o.name, datatype: v2Datatype(o.dtype), shape: shape(o.shape) })),
    };
  };
  app.get<ModelParams>('/v2/models/:model', metadata);
  app.get<ModelParams>('/v2/models/:model/versions/:version', metadata);

  const ready = async (req: FastifyRequest<ModelParams>, reply: FastifyReply) => {
    const v = registry.get(req.params.model, req.params.version);
    return reply.code(v.ready ? 200 : 503).send({ name: v.modelName, ready: v.ready });
  };
  app.get<ModelParams>('/v2/models/:model/ready', ready);
  app.get<ModelParams>('/v2/models/:model/versions/:version/ready', ready);

  const infer = async (req: FastifyRequest<ModelParams>, reply: FastifyReply) => {
    const t0 = performance.now();
    const v = registry.get(req.params.model, req.params.version);
    const headerLen = req.headers['inference-header-content-length'];
    const { header, binary } = splitBody(req.body, headerLen === undefined ? undefined : Number(headerLen));
    const specs = v.context.inputs;
    const request = header === undefined ? { inputs: [], parameters: { binary_data_output: true } } : validateRequest(header);
    if (request.inputs.some((i) => i.datatype === 'BYTES')) {
      // BYTES tensors (images, text) go through the model's handler, which answers in v2 form.
      const { body, stats } = await v.predict({ body: request, contentType: 'application/json', query: req.query as Record<string, string | undefined>, headers: req.headers });
      metrics.inference(v.modelName, v.modelVersion, performance.now() - t0, stats.queueMs, stats.computeMs, stats.batchRows, stats.preprocessMs);
      return reply.send(body);
    }
    const feeds = header === undefined ? decodeRaw(binary, specs, v.modelName) : decodeInputs(request, binary, specs, v.modelName);
    let rows = -1;
    for (const spec of specs) {
      const t = feeds[spec.name];
      if (!t) throw nnsError('INPUT_INVALID', `model "${v.modelName}" needs input "${spec.name}" (${v2Datatype(spec.dtype)} [${spec.shape}])`);
      const r = checkAgainstSpec(t, spec, v.modelName);
      if (rows !== -1 && r !== rows) throw nnsError('INPUT_SHAPE_MISMATCH', `model "${v.modelName}": inputs disagree on the batch size (${rows} vs ${r} for "${spec.name}")`);
      rows = r;
    }
    const decodedAt = performance.now();
    const { outputs, stats } = await v.batcher.submit(feeds, rows);
    metrics.inference(v.modelName, v.modelVersion, performance.now() - t0, stats.queueMs, stats.computeMs, stats.batchRows, decodedAt - t0);
    const { json, blobs } = encodeOutputs(request, outputs, v.modelName, v.modelVersion);
    if (blobs.length === 0) return reply.send(json);
    const head = Buffer.from(JSON.stringify(json));
    return reply
      .header('inference-header-content-length', head.length)
      .type('application/octet-stream')
      .send(Buffer.concat([head, ...blobs]));
  };
  app.post<ModelParams>('/v2/models/:model/infer', infer);
  app.post<ModelParams>('/v2/models/:model/versions/:version/infer', infer);
}
