/**
 * TorchServe's inference API: GET /ping, POST /predictions/{model}[/{version}], OPTIONS / and
 * GET /api-description (OpenAPI); `?feature_maps=1[&layer=name]` answers a CNN's activation
 * maps as a PNG; and the seed tutorial's Flask API, POST /predict (multipart field "file"),
 * answering {"class": n} from the default model.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import type { Config } from '../../config.js';
import { nnsError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';
import { featureGridPng } from '../../preprocess/feature-grid.js';
import type { HandlerRequest } from '../../registry/handler.js';
import type { ModelVersion } from '../../registry/model-version.js';
import type { Registry } from '../../registry/registry.js';
import type { TensorData } from '../../runtime/ort.js';
import { FeatureMaps } from './feature-maps.js';
import { readParts, registerMultipart } from './multipart.js';
import { openApi } from './openapi.js';

export interface InferenceRouteOptions {
  registry: Registry;
  metrics: Metrics;
  /** For default_model (POST /predict). */
  config?: Config;
}

export async function inferenceRoutes(app: FastifyInstance, { registry, metrics, config }: InferenceRouteOptions): Promise<void> {
  await registerMultipart(app);
  // Text stays bytes until a handler decodes it: invalid UTF-8 is then a 400 (TorchServe's
  // handlers call .decode('utf-8')), not silently replaced by U+FFFD.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const featureMaps = new FeatureMaps();
  app.addHook('onClose', () => featureMaps.close());

  app.get('/ping', async (_req, reply) => {
    const healthy = registry.ready();
    return reply.code(healthy ? 200 : 500).send({ status: healthy ? 'Healthy' : 'Unhealthy' });
  });

  app.options('/', async () => openApi());
  app.get('/api-description', async () => openApi());

  const handlerRequest = async (req: FastifyRequest): Promise<HandlerRequest> => {
    const multipart = req.isMultipart();
    return {
      body: multipart ? undefined : req.body,
      ...(multipart ? { parts: await readParts(req) } : {}),
      contentType: req.headers['content-type'] ?? '',
      query: req.query as Record<string, string | undefined>,
      headers: req.headers,
    };
  };

  const predict = async (req: FastifyRequest, reply: FastifyReply, model: string, version?: string) => {
    const t0 = performance.now();
    const v = registry.get(model, version);
    const hreq = await handlerRequest(req);
    if (isOn(hreq.query.feature_maps)) return sendFeatureMaps(v, hreq, reply);
    const { body, stats } = await v.predict(hreq);
    metrics.inference(v.modelName, v.modelVersion, performance.now() - t0, stats.queueMs, stats.computeMs, stats.batchRows, stats.preprocessMs);
    if (Buffer.isBuffer(body)) return reply.type('application/octet-stream').send(body);
    return reply.send(body);
  };

  const sendFeatureMaps = async (v: ModelVersion, hreq: HandlerRequest, reply: FastifyReply) => {
    const pre = await v.handler.preprocess(hreq, v.context);
    const { tensor, maps } = await featureMaps.run(v, hreq.query.layer, pre.feeds, pre.rows);
    const { png, layout: l } = await featureGridPng(maps);
    return reply
      .type('image/png')
      .header('x-feature-maps', `layer=${encodeURIComponent(tensor)}; images=${l.images}; channels=${l.channels}; grid=${l.columns}x${l.rows}; map=${l.width}x${l.height}; scale=${l.scale}; gap=${l.gap}`)
      .send(png);
  };

  // The seed tutorial's Flask API (9.8): multipart "file" -> {"class": argmax}.
  app.post('/predict', async (req) => {
    const t0 = performance.now();
    const v = registry.get(defaultModel(registry, config));
    const hreq = await handlerRequest(req);
    const t1 = performance.now();
    const pre = await v.handler.preprocess(hreq, v.context);
    const preprocessMs = performance.now() - t1;
    const { outputs, stats } = await v.batcher.submit(pre.feeds, pre.rows);
    metrics.inference(v.modelName, v.modelVersion, performance.now() - t0, stats.queueMs, stats.computeMs, stats.batchRows, preprocessMs);
    const classes = argmaxRows(outputs[v.context.outputs[0]!.name] ?? Object.values(outputs)[0]!);
    return pre.rows === 1 ? { class: classes[0] } : classes.map((c) => ({ class: c }));
  });

  type P = { Params: { model: string; version?: string } };
  app.post<P>('/predictions/:model', (req, reply) => predict(req, reply, req.params.model));
  app.post<P>('/predictions/:model/:version', (req, reply) => predict(req, reply, req.params.model, req.params.version));
}

function isOn(v: string | undefined): boolean {
  return v !== undefined && v !== '0' && v !== 'false';
}

function defaultModel(registry: Registry, config: Config | undefined): string {
  if (config?.default_model) return config.default_model;
  const names = registry.names();
  if (names.length === 1) return names[0]!;
  throw nnsError('MODEL_NOT_FOUND', names.length === 0
    ? 'POST /predict: no model is registered'
    : `POST /predict serves the default model, and ${names.length} are registered (${names.join(', ')}): set default_model, or use POST /predictions/{model}`);
}

/** torch.argmax(preds, 1) for each row of [N, classes]. */
function argmaxRows(t: TensorData): number[] {
  const classes = t.dims[t.dims.length - 1] ?? 1;
  const out: number[] = [];
  for (let r = 0; r < t.data.length / classes; r++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (Number(t.data[r * classes + j]) > Number(t.data[r * classes + best])) best = j;
    out.push(best);
  }
  return out;
}
