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
import { BodyPool } from './routes/body-pool.js';
import { readRawBody } from './routes/raw-body.js';
import { Registry, type LoadFailure } from './registry/registry.js';
import type { ReplicaSync } from './registry/replica-sync.js';
import { startRegistry } from './registry/startup.js';
import { requireKey, resolveKeys, writeKeyFile, type Keys } from './security/auth.js';
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
  /** The bearer keys (management, inference). */
  keys: Keys;
  /** Archives that failed to load at start-up, with the reason (filled once loading ends). */
  loadFailures: LoadFailure[];
  /** Load the start-up models (buildApp does it unless loadModels is false). */
  loadModels(): Promise<LoadFailure[]>;
  close(): Promise<void>;
}

export interface BuildOptions {
  /** Fastify logger setting; false in tests. */
  logger?: boolean | object;
  /** Load the model store's archives per load_models. @defaultValue true */
  loadModels?: boolean;
}

/** `bodies`: where KServe v2 binary request bodies are borrowed from (the inference app's). */
function base(config: Config, logger: boolean | object, metrics: Metrics | undefined, bodies?: BodyPool): FastifyInstance {
  const app = Fastify({
    logger,
    bodyLimit: config.max_request_size,
    genReqId: () => randomUUID(),
    // Per-request log lines cost more than a tiny model's inference.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger either (pino builds one per request, ~1 µs): the few lines
    // logged about a request carry its id themselves (see the error handler).
    childLoggerFactory: (logger) => logger,
  });
  // TorchServe hands any body to the handler: raw bytes for unknown types (read into one buffer
  // sized from Content-Length, v2 binary tensors 8-byte aligned: raw-body.ts).
  const limit = config.max_request_size;
  if (bodies) {
    app.addHook('onResponse', (req, _reply, done) => {
      bodies.release(req);
      done();
    });
  }
  app.addContentTypeParser('*', (req, payload, done) => readRawBody(req, payload, limit, done, bodies));
  const json = app.getDefaultJsonParser('error', 'error');
  // KServe v2 binary requests may say application/json while carrying binary tensors after
  // the JSON header; those bodies stay raw for the v2 codec.
  app.addContentTypeParser('application/json', (req, payload, done) => readRawBody(req, payload, limit, (err, body) => {
    if (err || req.headers['inference-header-content-length'] !== undefined) return done(err, body);
    json(req, body!.toString('utf8'), done);
  }, bodies));
  // A callback hook, not an async one: one promise less per request.
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', req.id);
    metrics?.response(reply.statusCode);
    done(null, payload);
  });
  app.setErrorHandler((err, req: FastifyRequest, reply: FastifyReply) => {
    const { status, type, message } = toHttp(err);
    const params = req.params as { model?: string; version?: string } | undefined;
    metrics?.requestFailed(err, params?.model, params?.version);
    if (status >= 500) req.log.error({ err, reqId: req.id }, message);
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
  const inference = base(config, logger, metrics, new BodyPool(32 << 20));
  const management = base(config, logger, undefined);
  const metricsApp = base(config, logger, undefined);
  const registry = new Registry(config, inference.log);
  metrics.attachRegistry(registry);
  const keys = resolveKeys(config);
  if (!config.disable_token_authorization) {
    writeKeyFile(config.key_file, keys);
    requireKey(management, keys.management, 'management');
    // Probes stay open: a kubelet has no key.
    if (config.enable_inference_auth) requireKey(inference, keys.inference, 'inference', ['/ping', '/v2/health/live', '/v2/health/ready']);
  }

  await inference.register(inferenceRoutes, { registry, metrics, config });
  await inference.register(v2Routes, { registry, metrics, serverVersion: SERVER_VERSION });
  await management.register(managementRoutes, { registry, config });
  await metricsApp.register(metricsRoutes, { metrics });

  await Promise.all([inference.ready(), management.ready(), metricsApp.ready()]);
  let sync: ReplicaSync | undefined;
  const app: App = {
    config, registry, metrics, inference, management, metricsApp, keys, loadFailures: [],
    async loadModels() {
      const started = await startRegistry(registry, config, inference.log);
      sync = started.sync;
      app.loadFailures = started.failures;
      return app.loadFailures;
    },
    async close() {
      await Promise.all([inference.close(), management.close(), metricsApp.close()]);
      await sync?.close();
      await registry.close();
    },
  };
  if (opts.loadModels !== false) await app.loadModels();
  return app;
}
