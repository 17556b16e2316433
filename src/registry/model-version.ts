/**
 * One loaded model version: its archive, handler, worker pool and batcher, and the inference
 * path through them (preprocess -> batch -> postprocess).
 */
import { readFile, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { OpenedArchive } from '../archive/mar.js';
import type { ModelConfig } from '../archive/model-config.js';
import type { Config } from '../config.js';
import { nnsError } from '../errors.js';
import { Batcher, type BatchStats } from '../engine/batcher.js';
import { WorkerPool } from '../engine/pool.js';
import { compileModel } from './compile.js';
import { loadHandler, type Handler, type HandlerRequest, type ModelContext } from './handler.js';

const FRONTEND_KEYS = new Set(['minWorkers', 'maxWorkers', 'batchSize', 'maxBatchDelay', 'responseTimeout', 'startupTimeout', 'jobQueueSize']);

export interface LoadOverrides {
  /** Let the archive's minWorkers > 0 win over minWorkers/maxWorkers here (TorchServe's register rule). */
  yamlWins?: boolean;
  /** Handler name instead of the manifest's. */
  handler?: string;
  /** Loaded by load_models or a snapshot at start (describe's loadedAtStartup). */
  atStartup?: boolean;
  batchSize?: number;
  maxBatchDelay?: number;
  responseTimeout?: number;
  minWorkers?: number;
  maxWorkers?: number;
}

export interface PredictResult {
  body: unknown;
  stats: BatchStats & { preprocessMs: number };
}

export class ModelVersion {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly loadedAt = new Date().toISOString();
  loadedAtStartup = false;
  minWorkers: number;
  maxWorkers: number;
  readonly responseTimeout: number;
  readonly startupTimeout: number;
  private ctx!: ModelContext;

  private constructor(
    readonly archive: OpenedArchive,
    readonly handler: Handler,
    readonly pool: WorkerPool,
    readonly batcher: Batcher,
    settings: { minWorkers: number; maxWorkers: number; responseTimeout: number; startupTimeout: number },
  ) {
    this.modelName = archive.manifest.model.modelName;
    this.modelVersion = archive.manifest.model.modelVersion;
    this.minWorkers = settings.minWorkers;
    this.maxWorkers = settings.maxWorkers;
    this.responseTimeout = settings.responseTimeout;
    this.startupTimeout = settings.startupTimeout;
  }

  /** Start workers and wait for the first; on failure everything started is stopped again. */
  static async load(archive: OpenedArchive, config: Config, overrides: LoadOverrides = {}, log?: ConstructorParameters<typeof WorkerPool>[0]['log']): Promise<ModelVersion> {
    const m = archive.manifest.model;
    const mc: ModelConfig = archive.modelConfig;
    const label = `${m.modelName}/${m.modelVersion}`;
    const handler = await loadHandler(overrides.handler ?? m.handler, archive.dir, config.allow_archive_handlers);
    const cores = config.number_of_cores;
    const defaultWorkers = config.default_workers_per_model || cores;
    const yamlWorkers = overrides.yamlWins === true && (mc.minWorkers ?? 0) > 0 && (mc.maxWorkers ?? mc.minWorkers!) >= mc.minWorkers!;
    const minWorkers = yamlWorkers ? mc.minWorkers! : overrides.minWorkers ?? mc.minWorkers ?? defaultWorkers;
    const maxWorkers = Math.max(minWorkers, (yamlWorkers ? mc.maxWorkers : overrides.maxWorkers) ?? mc.maxWorkers ?? minWorkers);
    const startupTimeout = mc.startupTimeout ?? config.default_startup_timeout;
    const responseTimeout = overrides.responseTimeout ?? mc.responseTimeout ?? config.default_response_timeout;

    const model = m.architecture ? (await compileModel(archive)).onnx : archive.resolveFile(m.serializedFile);
    const labels = m.labels ? await readLabels(archive, m.labels) : undefined;
    const modelBytes = typeof model === 'string' ? (await stat(model)).size : model.byteLength;
    const intraOpThreads = config.intra_op_threads || autoIntraOpThreads(cores, minWorkers, modelBytes);
    let version: ModelVersion | undefined;
    const pool = new WorkerPool({
      label, model, engine: config.engine, intraOpThreads, startupTimeoutMs: startupTimeout * 1000,
      onIdle: () => version?.batcher.pump(), log,
    });
    const batcher = new Batcher(pool, {
      label,
      batchSize: overrides.batchSize ?? mc.batchSize ?? config.batch_size,
      maxBatchDelayMs: overrides.maxBatchDelay ?? mc.maxBatchDelay ?? config.max_batch_delay,
      jobQueueSize: mc.jobQueueSize ?? config.job_queue_size,
      responseTimeoutMs: responseTimeout * 1000,
      batchable: true,
    });
    version = new ModelVersion(archive, handler, pool, batcher, { minWorkers, maxWorkers, responseTimeout, startupTimeout });
    try {
      await pool.start(minWorkers);
    } catch (e) {
      await pool.close();
      throw e;
    }
    version.refreshSpec(labels);
    version.loadedAtStartup = overrides.atStartup === true;
    return version;
  }

  /** Model inputs/outputs come from the manifest when given, else from the ONNX model. */
  private refreshSpec(labels: Record<string, string> | undefined): void {
    const m = this.archive.manifest.model;
    const inputs = m.inputs ?? this.pool.inputs;
    const outputs = m.outputs ?? this.pool.outputs;
    const yamlConfig: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.archive.modelConfig)) if (!FRONTEND_KEYS.has(k)) yamlConfig[k] = v;
    this.ctx = Object.freeze({
      modelName: this.modelName, modelVersion: this.modelVersion, inputs, outputs,
      labels, modelYamlConfig: yamlConfig, archiveDir: this.archive.dir,
    });
    // Dynamic batching concatenates along axis 0: only when every input and output has a
    // symbolic first axis. A model exported with a fixed batch runs one request at a time.
    const batchable = [...inputs, ...outputs].every((s) => s.shape.length > 0 && typeof s.shape[0] === 'string');
    this.batcher.update({ batchable });
  }

  /** A version registered with 0 workers learns its inputs when its first worker loads. */
  get context(): ModelContext {
    if (this.ctx.inputs.length === 0 && this.pool.inputs.length > 0) this.refreshSpec(this.ctx.labels);
    return this.ctx;
  }

  get ready(): boolean {
    return this.pool.readyCount > 0;
  }

  async predict(req: HandlerRequest): Promise<PredictResult> {
    const t0 = performance.now();
    const ctx = this.context;
    const pre = await this.handler.preprocess(req, ctx);
    const preprocessMs = performance.now() - t0;
    const { outputs, stats } = await this.batcher.submit(pre.feeds, pre.rows);
    const body = await this.handler.postprocess(outputs, pre, req, ctx);
    return { body, stats: { ...stats, preprocessMs } };
  }

  scale(minWorkers: number, maxWorkers: number): void {
    this.minWorkers = minWorkers;
    this.maxWorkers = maxWorkers;
    this.pool.scale(minWorkers);
  }

  async unload(): Promise<void> {
    this.batcher.close();
    await this.pool.close();
    await this.archive.cleanup();
  }
}

/**
 * intra_op_threads 0 (auto): the cores shared among the workers, so workers x threads never
 * exceeds the cores; a small model (under 1 MiB of ONNX) gets one thread, since its kernels are
 * too small to split and waking a second thread for every run costs more than it saves (the
 * tiny MLP bench: main-thread CPU per request 50 -> 42 µs with one intra-op thread).
 */
export function autoIntraOpThreads(cores: number, workers: number, modelBytes: number): number {
  if (modelBytes < SMALL_MODEL_BYTES) return 1;
  return Math.max(1, Math.floor(cores / Math.max(1, workers)));
}
const SMALL_MODEL_BYTES = 1 << 20;

/** TorchServe's index_to_name.json: {"0": "tench"} or {"0": ["n01440764", "tench"]} (last element wins). */
async function readLabels(archive: OpenedArchive, file: string): Promise<Record<string, string>> {
  const where = `${archive.archiveName}: labels file ${file}`;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(archive.resolveFile(file), 'utf8'));
  } catch (e) {
    throw nnsError('ARCHIVE_INVALID', `${where} is not valid JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw nnsError('ARCHIVE_INVALID', `${where} must be an object of index -> name`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const name = Array.isArray(v) ? v[v.length - 1] : v;
    if (typeof name !== 'string') throw nnsError('ARCHIVE_INVALID', `${where}: entry "${k}" must be a name or a list ending in a name`);
    out[k] = name;
  }
  return out;
}
