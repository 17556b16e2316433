/**
 * TorchServe's management API (docs/management_api.md): list and describe models.
 * Register, scale, unregister and set-default come with the management issue.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Registry } from '../../registry/registry.js';
import type { ModelVersion } from '../../registry/model-version.js';

export async function managementRoutes(app: FastifyInstance, { registry }: { registry: Registry }): Promise<void> {
  // GET /models?limit=&next_page_token=: names sorted, default versions only; limit 100 when
  // absent, above 100 or below 0; the token is an integer offset (ApiUtils.java).
  app.get<{ Querystring: { limit?: string; next_page_token?: string } }>('/models', async (req) => {
    let limit = Number(req.query.limit ?? 100);
    if (!Number.isInteger(limit) || limit > 100 || limit < 0) limit = 100;
    const offset = Math.max(0, Number.parseInt(req.query.next_page_token ?? '0', 10) || 0);
    const names = registry.names();
    const page = names.slice(offset, offset + limit);
    const models = page.map((name) => {
      const v = registry.get(name);
      return { modelName: name, modelUrl: v.archive.archiveName };
    });
    return offset + limit < names.length ? { nextPageToken: String(offset + limit), models } : { models };
  });

  const describe = async (req: FastifyRequest<{ Params: { model: string; version?: string } }>) => {
    const { model, version } = req.params;
    const versions = version === 'all' ? registry.versions(model) : [registry.get(model, version)];
    return versions.map((v) => describeVersion(v, registry.defaultVersion(model) === v.modelVersion));
  };
  app.get('/models/:model', describe);
  app.get('/models/:model/:version', describe);
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
    loadedAtStartup: true,
    isDefault,
    inputs: v.context.inputs,
    outputs: v.context.outputs,
    // Workers are threads of this process: pid is the server's, threadId tells them apart.
    workers: v.pool.workers.map((w) => ({ id: w.id, startTime: w.startTime, status: w.status === 'STARTING' ? 'STARTING' : 'READY', pid: process.pid, threadId: w.threadId, gpu: false })),
    jobQueueStatus: { remainingCapacity: b.jobQueueSize - v.batcher.pending, pendingRequests: v.batcher.pending },
  };
}
