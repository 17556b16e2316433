/**
 * The application: three Fastify instances (inference, management, metrics — TorchServe's three
 * ports) sharing one registry and one metrics registry. Tests build this and use inject();
 * only server.ts listens.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from './config.js';
import { toHttp } from './errors.js';
import { Metrics } from './metrics.js';
import { Registry, type LoadFailure } from './registry/registry.js';
import { inferenceRoutes } from './routes/inference/index.js';
import { managementRoutes } from './routes/management/index.js';
import { metricsRoutes } from './routes/metrics/index.js';
import { v2Routes } from './routes/v2/index.js';

export const SERVER_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface App {
  config: Config;
  registry: Registry;
  metrics: Metrics;
  inference: FastifyInstance;
  management: FastifyInstance;
  metricsApp: FastifyInstance;
  /** Archives that failed to load at start-up, with the reason. */
  loadFailures: LoadFailure[];
  close(): Promise<void>;
}

export interface BuildOptions {
  /** Fastify logger setting; false in tests. */
  logger?: boolean | object;
  /** Load the model store's archives per load_models. @defaultValue true */
  loadModels?: boolean;
}

function base(config: Config, logger: boolean | object, metrics: Metrics | undefined): FastifyInstance {
  const app = Fastify({
    logger,
    bodyLimit: config.max_request_size,
    genReqId: () => randomUUID(),
    // Per-request log lines cost more than a tiny model's inference.
    logController: new LogController({ disableRequestLogging: true }),
  });
  // TorchServe hands any body to the handler: raw bytes for unknown types.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const json = app.getDefaultJsonParser('error', 'error');
  // KServe v2 binary requests may say application/json while carrying binary tensors after
  // the JSON header; those bodies stay raw for the v2 codec.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    if (req.headers['inference-header-content-length'] !== undefined) return done(null, body);
    json(req, (body as Buffer).toString('utf8'), done);
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
    metrics?.response(reply.statusCode);
  });
  app.setErrorHandler((err, req: FastifyRequest, reply: FastifyReply) => {
    const { status, type, message } = toHttp(err);
    if (status >= 500) req.log.error({ err }, message);
    if (status === 503) reply.header('retry-after', '1');
    // The v2 protocol's error body is {"error": msg}; TorchServe's is {code, type, message}.
    if (req.url.startsWith('/v2')) return reply.code(status).send({ error: message });
    return reply.code(status).send({ code: status, type, message });
  });
  app.setNotFoundHandler((req, reply) => {
    const message = `Requested resource is not found, please refer to API document: ${req.method} ${req.url}`;
    if (req.url.startsWith('/v2')) return reply.code(404).send({ error: message });
    return reply.code(404).send({ code: 404, type: 'ResourceNotFoundException', message });
  });
  return app;
}

export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<App> {
  const logger = opts.logger ?? false;
  const metrics = new Metrics();
  const inference = base(config, logger, metrics);
  const management = base(config, logger, undefined);
  const metricsApp = base(config, logger, undefined);
  const registry = new Registry(config, inference.log);

  await inference.register(inferenceRoutes, { registry, metrics });
  await inference.register(v2Routes, { registry, metrics, serverVersion: SERVER_VERSION });
  await management.register(managementRoutes, { registry });
  await metricsApp.register(metricsRoutes, { metrics });

  const loadFailures = opts.loadModels === false ? [] : await registry.loadStartupModels();
  await Promise.all([inference.ready(), management.ready(), metricsApp.ready()]);
  return {
    config, registry, metrics, inference, management, metricsApp, loadFailures,
    async close() {
      await Promise.all([inference.close(), management.close(), metricsApp.close()]);
      await registry.close();
    },
  };
}
