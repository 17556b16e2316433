/**
 * TorchServe's inference API: GET /ping, POST /predictions/{model}[/{version}], OPTIONS / and
 * GET /api-description (OpenAPI).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import type { HandlerRequest } from '../../registry/handler.js';
import type { Registry } from '../../registry/registry.js';
import type { Metrics } from '../../metrics.js';
import { openApi } from './openapi.js';

export interface InferenceRouteOptions {
  registry: Registry;
  metrics: Metrics;
}

export async function inferenceRoutes(app: FastifyInstance, { registry, metrics }: InferenceRouteOptions): Promise<void> {
  app.get('/ping', async (_req, reply) => {
    const healthy = registry.ready();
    return reply.code(healthy ? 200 : 500).send({ status: healthy ? 'Healthy' : 'Unhealthy' });
  });

  app.options('/', async () => openApi());
  app.get('/api-description', async () => openApi());

  const predict = async (req: FastifyRequest, reply: FastifyReply, model: string, version?: string) => {
    const t0 = performance.now();
    const v = registry.get(model, version);
    const hreq: HandlerRequest = {
      body: req.body,
      contentType: req.headers['content-type'] ?? '',
      query: req.query as Record<string, string | undefined>,
      headers: req.headers,
    };
    const { body, stats } = await v.predict(hreq);
    metrics.inference(v.modelName, v.modelVersion, performance.now() - t0, stats.queueMs, stats.computeMs, stats.batchRows);
    if (Buffer.isBuffer(body)) return reply.type('application/octet-stream').send(body);
    return reply.send(body);
  };

  type P = { Params: { model: string; version?: string } };
  app.post<P>('/predictions/:model', (req, reply) => predict(req, reply, req.params.model));
  app.post<P>('/predictions/:model/:version', (req, reply) => predict(req, reply, req.params.model, req.params.version));
}
