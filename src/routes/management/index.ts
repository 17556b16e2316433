/**
 * TorchServe's management API (docs/management_api.md, ManagementRequestHandler.java): same
 * paths, parameters, status codes and JSON shapes. Register takes an archive name from the
 * model store, an http(s) URL allowed by allowed_urls, or an uploaded archive (multipart).
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import { nnsError } from '../../errors.js';
import type { LoadOverrides, ModelVersion } from '../../registry/model-version.js';
import type { Registry } from '../../registry/registry.js';
import { classifyUrl } from '../../security/model-url.js';
import { receiveUpload, receiveDownload, type StoredArchive } from './store-archive.js';

export interface ManagementRouteOptions {
  registry: Registry;
  config: Config;
}

type Query = Record<string, string | undefined>;
const RUNTIMES = new Set(['onnx', 'python', 'python3']);

export async function managementRoutes(app: FastifyInstance, { registry, config }: ManagementRouteOptions): Promise<void> {
  await app.register(multipart, { limits: { fileSize: config.max_model_size, files: 1, fields: 20 } });

  const modelApi = (req: FastifyRequest) => {
    if (!config.enable_model_api) {
      throw nnsError('MODEL_API_DISABLED', `Requested method is not allowed, please refer to API document. (${req.method} /models needs enable_model_api=true)`);
    }
  };

  // POST /models: register. Parameters from the query, a JSON body, or multipart fields.
  app.post('/models', async (req, reply) => {
    modelApi(req);
    let params: Query = { ...(req.query as Query) };
    let stored: StoredArchive | undefined;
    if (req.isMultipart()) {
      const upload = await receiveUpload(req, config);
      params = { ...params, ...upload.fields };
      stored = upload.archive;
    } else if (req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body)) {
      params = { ...params, ...stringify(req.body as Record<string, unknown>) };
    }
    try {
      if (!stored) {
        if (!params.url) throw nnsError('BAD_REQUEST', 'Parameter url is required.');
        const source = classifyUrl(params.url, config);
        stored = source.kind === 'store' ? { archiveName: source.archiveName, remove: async () => undefined } : await receiveDownload(source.url, config);
      }
      if (params.runtime !== undefined && !RUNTIMES.has(params.runtime)) {
        throw nnsError('RUNTIME_UNKNOWN', `Invalid runtime "${params.runtime}": nnserve runs ONNX models (runtime "onnx")`);
      }
      const overrides = registerOverrides(params, config);
      const synchronous = bool(params.synchronous, true, 'synchronous');
      const doRegister = () => registry.register(stored!.archiveName, overrides, params.model_name || undefined, params.handler || undefined);
      if (!synchronous) {
        doRegister().catch(async (e: Error) => {
          await stored!.remove();
          req.log.error({ err: e.message, url: params.url, reqId: req.id }, 'asynchronous registration failed');
        });
        return reply.code(202).send({ status: 'Processing worker updates...' });
      }
      const v = await doRegister();
      return reply.send({ status: `Model "${v.modelName}" Version: ${v.modelVersion} registered with ${v.minWorkers} initial workers` });
    } catch (e) {
      await stored?.remove();
      throw e;
    }
  });

  // GET /models?limit=&next_page_token=: names sorted, default versions only; limit 100 when
  // absent, above 100 or below 0; the token is an integer offset (ApiUtils.java).
  app.get<{ Querystring: Query }>('/models', async (req) => {
    let limit = Number(req.query.limit ?? 100);
    if (!Number.isInteger(limit) || limit > 100 || limit < 0) limit = 100;
    const offset = Math.max(0, Number.parseInt(req.query.next_page_token ?? '0', 10) || 0);
    const names = registry.names();
    const models = names.slice(offset, offset + limit).map((name) => ({ modelName: name, modelUrl: registry.get(name).archive.archiveName }));
    return offset + limit < names.length ? { nextPageToken: String(offset + limit), models } : { models };
  });

  type P = { Params: { model: string; version?: string }; Querystring: Query };
  const describe = async (req: FastifyRequest<P>) => {
    const { model, version } = req.params;
    const versions = version === 'all' ? registry.versions(model) : [registry.get(model, version)];
    return versions.map((v) => describeVersion(v, registry.defaultVersion(model) === v.modelVersion));
  };
  app.get<P>('/models/:model', describe);
  app.get<P>('/models/:model/:version', describe);

  const scale = async (req: FastifyRequest<P>, reply: FastifyReply) => {
    const { model, version } = req.params;
    const min = int(req.query.min_worker, 1, 'min_worker');
    const max = int(req.query.max_worker, min, 'max_worker');
    const synchronous = bool(req.query.synchronous, false, 'synchronous');
    const v = await registry.scale(model, version, min, max);
    if (!synchronous) return reply.code(202).send({ status: 'Processing worker updates...' });
    const deadline = Date.now() + v.startupTimeout * 1000;
    while (v.pool.readyCount !== min && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (v.pool.readyCount !== min) return reply.code(206).send({ status: 'Workers scaling in progress...' });
    return reply.send({ status: `Workers scaled to ${min} for model: ${model}${version ? `, version: ${version}` : ''}` });
  };
  app.put<P>('/models/:model', scale);
  app.put<P>('/models/:model/:version', scale);

  const unregister = async (req: FastifyRequest<P>) => {
    modelApi(req);
    const v = await registry.unregister(req.params.model, req.params.version);
    return { status: `Model "${v.modelName}" unregistered` };
  };
  app.delete<P>('/models/:model', unregister);
  app.delete<P>('/models/:model/:version', unregister);

  app.put<P>('/models/:model/:version/set-default', async (req) => {
    const { model, version } = req.params;
    await registry.setDefault(model, version!);
    return { status: `Default version successfully updated for model "${model}" to "${version}"` };
  });
}

function stringify(body: Record<string, unknown>): Query {
  return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, v === undefined || v === null ? undefined : String(v)]));
}

function int(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw nnsError('WORKERS_INVALID', `${name} must be a non-negative integer, got "${value}"`);
  return n;
}

function bool(value: string | undefined, fallback: boolean, name: string): boolean {
  if (value === undefined || value === '') return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw nnsError('BAD_REQUEST', `${name} must be true or false, got "${value}"`);
}

/** Register options; an archive's own minWorkers > 0 wins over initial_workers, as TorchServe. */
function registerOverrides(p: Query, config: Config): LoadOverrides {
  const num = (key: string, min: number) => {
    const v = p[key];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw nnsError('BAD_REQUEST', `${key} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
  const initial = num('initial_workers', 0);
  return {
    batchSize: num('batch_size', 1),
    maxBatchDelay: num('max_batch_delay', 0),
    responseTimeout: num('response_timeout', 1),
    minWorkers: initial ?? config.default_workers_per_model,
    maxWorkers: initial ?? config.default_workers_per_model,
    yamlWins: true,
  };
}

/** DescribeModelResponse's fields, as TorchServe returns them. */
export function describeVersion(v: ModelVersion, isDefault: boolean): Record<string, unknown> {
  const b = v.batcher.options;
  return {
    modelName: v.modelName,
    modelVersion: v.modelVersion,
    modelUrl: v.archive.archiveName,
    engine: v.pool.engine === 'native' ? 'onnxruntime-node' : 'onnxruntime-web',
    runtime: 'onnx',
    minWorkers: v.minWorkers,
    maxWorkers: v.maxWorkers,
    batchSize: b.batchSize,
    maxBatchDelay: b.maxBatchDelayMs,
    responseTimeout: v.responseTimeout,
    startupTimeout: v.startupTimeout,
    loadedAtStartup: v.loadedAtStartup,
    isDefault,
    inputs: v.context.inputs,
    outputs: v.context.outputs,
    // Workers are threads of this process: pid is the server's, threadId tells them apart.
    workers: v.pool.workers.map((w) => ({ id: w.id, startTime: w.startTime, status: w.status === 'STARTING' ? 'STARTING' : 'READY', pid: process.pid, threadId: w.threadId, gpu: false })),
    jobQueueStatus: { remainingCapacity: b.jobQueueSize - v.batcher.pending, pendingRequests: v.batcher.pending },
  };
}
