/**
 * Prometheus metrics. TorchServe's names and labels (docs/metrics.md) so existing dashboards keep
 * working, plus real histograms: TorchServe's latency metrics are cumulative counters, which an
 * autoscaler cannot use (its issue #3286).
 *
 * Two kinds of series:
 * - per request (TorchServe's counters, the histograms, failures): plain numbers in a
 *   `ModelSeries` per model version, written as Prometheus text here at scrape time. The hot path
 *   is a map lookup and a few additions (~0.1 µs); prom-client's labelled metrics hash and
 *   validate the label set on every call (~0.3 µs each, ~3 µs a request for these ten).
 * - read at scrape time (queue depth, workers, models, readiness) and the process and Node
 *   metrics: prom-client, whose `collect()` reads the registry only when Prometheus asks.
 *
 * Label values only ever come from registered model versions: a request naming an unknown model
 * or version is counted in Requests4XX and nowhere else, so it can never create a series.
 */
import { hostname } from 'node:os';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { isNnsError } from './errors.js';

/**
 * Request duration, arrival to answer, in seconds. Steps of at most 1.5x between 5 ms and 300 ms,
 * where CPU models answer, keep histogram_quantile within ~20% of the true quantile; coarser
 * above. Each bucket is a series per model version: /metrics must stay small (< 100 kB with 10).
 */
export const REQUEST_BUCKETS_S = [0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2.5, 10];
/** Queue wait, compute and preprocessing: the parts of a request, in seconds. */
export const STAGE_BUCKETS_S = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];
/** Rows in the batch a request ran in. */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64];

/** What the metrics read of a served model version (the registry's ModelVersion has it all). */
export interface ServedVersion {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly batcher: { readonly pending: number };
  readonly pool: { readonly workers: readonly { readonly status: string }[]; readonly targetWorkers: number };
}

/** What the metrics read of the registry, only at scrape time. */
export interface RegistryView {
  all(): ServedVersion[];
  get(modelName: string, version?: string): ServedVersion;
  /** Start-up archives still loading. */
  readonly loadingCount: number;
  /** Every start-up model loaded and every version with workers has a ready one. */
  ready(): boolean;
}

const HOST = hostname();

/** A histogram of one series: per-bucket (not cumulative) counts, the last slot is +Inf. */
class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** Everything counted per request for one model version. */
class ModelSeries {
  /** `model_name="x",model_version="y"`, escaped once. */
  readonly labels: string;
  /** TorchServe's label set for its ts_* metrics. */
  readonly tsLabels: string;
  requests = 0;
  latencyUs = 0;
  queueUs = 0;
  rejected = 0;
  timedOut = 0;
  /** Failed requests by reason (an error catalogue kind, so a bounded set). */
  readonly failed = new Map<string, number>();
  readonly duration = new Buckets(REQUEST_BUCKETS_S);
  readonly queue = new Buckets(STAGE_BUCKETS_S);
  readonly compute = new Buckets(STAGE_BUCKETS_S);
  readonly preprocess = new Buckets(STAGE_BUCKETS_S);
  readonly batch = new Buckets(BATCH_BUCKETS);
  constructor(model: string, version: string) {
    this.labels = `model_name="${escapeLabel(model)}",model_version="${escapeLabel(version)}"`;
    this.tsLabels = `${this.labels},hostname="${escapeLabel(HOST)}"`;
  }
}

export class Metrics {
  /** prom-client's registry: process and Node metrics and the gauges read at scrape time. */
  readonly registry = new Registry();
  /** model name -> version -> series; two lookups and no string building per request. */
  private readonly series = new Map<string, Map<string, ModelSeries>>();
  private readonly responses = [0, 0, 0]; // 2xx, 4xx, 5xx
  private source: RegistryView | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const gauge = (name: string, help: string, labelNames: string[], read: (g: Gauge, r: RegistryView) => void) => {
      const g: Gauge = new Gauge({
        name, help, labelNames, registers: [this.registry],
        collect: () => {
          g.reset();
          if (this.source) read(g, this.source);
        },
      });
    };
    const perVersion = ['model_name', 'model_version'];
    gauge('nnserve_queue_depth', 'Requests waiting for a worker (not yet in a batch)', perVersion, (g, r) => {
      for (const v of r.all()) g.set(labelsOf(v), v.batcher.pending);
    });
    gauge('nnserve_workers', 'Worker threads by state; dead = workers that should run but do not (crashed, failed to load, waiting to restart)', [...perVersion, 'state'], (g, r) => {
      for (const v of r.all()) {
        const [starting, idle, busy] = ['STARTING', 'IDLE', 'BUSY'].map((state) => v.pool.workers.filter((w) => w.status === state).length) as [number, number, number];
        const dead = Math.max(0, v.pool.targetWorkers - starting - idle - busy);
        for (const [state, n] of Object.entries({ starting, idle, busy, dead })) g.set({ ...labelsOf(v), state }, n);
      }
    });
    gauge('nnserve_models_loaded', 'Model versions registered and serving', [], (g, r) => g.set(r.all().length));
    gauge('nnserve_models_loading', 'Start-up model archives still loading', [], (g, r) => g.set(r.loadingCount));
    gauge('nnserve_ready', '1 once every start-up model has loaded and every version with workers has a ready one (the readiness probe)', [], (g, r) => g.set(r.ready() ? 1 : 0));
  }

  /** Read queue, worker and model state from the registry at scrape time. */
  attachRegistry(registry: RegistryView): void {
    this.source = registry;
  }

  /** Every response on the inference port, by status class (TorchServe's Requests2XX/4XX/5XX). */
  response(status: number): void {
    if (status >= 500) this.responses[2]!++;
    else if (status >= 400) this.responses[1]!++;
    else if (status >= 200 && status < 300) this.responses[0]!++;
  }

  /**
   * One answered inference request of a registered model version. Times in milliseconds;
   * `preprocessMs` is the handler's preprocess (or the v2 tensor decoding).
   */
  inference(model: string, version: string, totalMs: number, queueMs: number, computeMs: number, batchRows: number, preprocessMs?: number): void {
    const s = this.series.get(model)?.get(version) ?? this.add(model, version);
    s.requests++;
    s.latencyUs += totalMs * 1000;
    s.queueUs += queueMs * 1000;
    s.duration.observe(totalMs / 1000);
    s.queue.observe(queueMs / 1000);
    s.compute.observe(computeMs / 1000);
    s.batch.observe(batchRows);
    if (preprocessMs !== undefined) s.preprocess.observe(preprocessMs / 1000);
  }

  /**
   * A failed inference request, from the error handler, with the model and version named in its
   * URL. It is counted per model only when they name a registered version: the labels of a
   * request for an unknown model would be chosen by whoever sends it.
   */
  requestFailed(error: unknown, model?: string, version?: string): void {
    if (model === undefined || !this.source) return;
    let v: ServedVersion;
    try {
      v = this.source.get(model, version);
    } catch {
      return;
    }
    const s = this.series.get(v.modelName)?.get(v.modelVersion) ?? this.add(v.modelName, v.modelVersion);
    const reason = reasonOf(error);
    if (reason === 'QUEUE_FULL') s.rejected++;
    if (reason === 'REQUEST_TIMEOUT') s.timedOut++;
    s.failed.set(reason, (s.failed.get(reason) ?? 0) + 1);
  }

  /** Prometheus text, optionally only the metric families named (TorchServe's ?name[]=). */
  async text(names?: readonly string[]): Promise<string> {
    this.sync();
    const want = names && names.length > 0 ? new Set(names) : undefined;
    const own = this.ownText(want);
    if (!want) return own + (await this.registry.metrics());
    const parts = await Promise.all([...want].filter((n) => this.registry.getSingleMetric(n)).map((n) => this.registry.getSingleMetricAsString(n)));
    return own + parts.map((p) => p + '\n').join('');
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private add(model: string, version: string): ModelSeries {
    let versions = this.series.get(model);
    if (!versions) this.series.set(model, (versions = new Map()));
    const s = new ModelSeries(model, version);
    versions.set(version, s);
    return s;
  }

  /** Series for every registered version (zero before its first request, so rate() works from the start); none for unregistered ones. */
  private sync(): void {
    if (!this.source) return;
    const live = new Set<ModelSeries>();
    for (const v of this.source.all()) live.add(this.series.get(v.modelName)?.get(v.modelVersion) ?? this.add(v.modelName, v.modelVersion));
    for (const [model, versions] of this.series) {
      for (const [version, s] of versions) if (!live.has(s)) versions.delete(version);
      if (versions.size === 0) this.series.delete(model);
    }
  }

  private ownText(want: Set<string> | undefined): string {
    const all = [...this.series.values()].flatMap((m) => [...m.values()]);
    const out: string[] = [];
    const family = (name: string, type: 'counter' | 'histogram', help: string, lines: (s: ModelSeries) => string | string[]) => {
      if (want && !want.has(name)) return;
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const s of all) out.push(...[lines(s)].flat());
    };
    // TorchServe's own text: label sets end with a comma and values are Java doubles
    // (`Requests2XX{Level="Host",Hostname="x",} 8.0`); its Postman suite's regex depends on both.
    const host = `Level="Host",Hostname="${escapeLabel(HOST)}",`;
    ['2XX', '4XX', '5XX'].forEach((status, i) => {
      const name = `Requests${status}`;
      if (want && !want.has(name)) return;
      out.push(`# HELP ${name} Responses on the inference port with a ${status.toLowerCase()} status`, `# TYPE ${name} counter`, `${name}{${host}} ${javaDouble(this.responses[i]!)}`);
    });
    family('ts_inference_requests_total', 'counter', 'Inference requests answered (TorchServe)', (s) => `ts_inference_requests_total{${s.tsLabels},} ${javaDouble(s.requests)}`);
    family('ts_inference_latency_microseconds', 'counter', 'Cumulative inference latency in microseconds (TorchServe)', (s) => `ts_inference_latency_microseconds{${s.tsLabels},} ${javaDouble(s.latencyUs)}`);
    family('ts_queue_latency_microseconds', 'counter', 'Cumulative queue latency in microseconds (TorchServe)', (s) => `ts_queue_latency_microseconds{${s.tsLabels},} ${javaDouble(s.queueUs)}`);
    const histograms: [string, string, (s: ModelSeries) => Buckets][] = [
      ['nnserve_request_duration_seconds', 'Inference request duration, arrival to answer', (s) => s.duration],
      ['nnserve_queue_wait_seconds', 'Time a request waited for its batch to start', (s) => s.queue],
      ['nnserve_inference_compute_seconds', 'ONNX Runtime time of the batch a request ran in', (s) => s.compute],
      ['nnserve_preprocess_seconds', 'Handler preprocessing (or v2 tensor decoding) of a request', (s) => s.preprocess],
      ['nnserve_batch_size', 'Rows in the batch a request ran in', (s) => s.batch],
    ];
    for (const [name, help, of] of histograms) family(name, 'histogram', help, (s) => histogram(name, s.labels, of(s)));
    family('nnserve_requests_rejected_total', 'counter', 'Requests refused because the queue was full (503)', (s) => `nnserve_requests_rejected_total{${s.labels}} ${s.rejected}`);
    family('nnserve_requests_timed_out_total', 'counter', 'Requests that were not answered within responseTimeout', (s) => `nnserve_requests_timed_out_total{${s.labels}} ${s.timedOut}`);
    family('nnserve_requests_failed_total', 'counter', 'Failed inference requests by reason (an NNS_ERR_ code without its prefix)', (s) =>
      [...s.failed].map(([reason, n]) => `nnserve_requests_failed_total{${s.labels},reason="${reason}"} ${n}`));
    return out.length ? out.join('\n') + '\n\n' : '';
  }
}

function labelsOf(v: ServedVersion): { model_name: string; model_version: string } {
  return { model_name: v.modelName, model_version: v.modelVersion };
}

function histogram(name: string, labels: string, h: Buckets): string[] {
  const lines: string[] = [];
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i]!;
    lines.push(`${name}_bucket{${labels},le="${h.bounds[i]}"} ${cumulative}`);
  }
  lines.push(`${name}_bucket{${labels},le="+Inf"} ${h.count}`, `${name}_sum{${labels}} ${h.sum}`, `${name}_count{${labels}} ${h.count}`);
  return lines;
}

/** The error's catalogue kind (QUEUE_FULL for NNS_ERR_QUEUE_FULL); Fastify's own errors by status. */
function reasonOf(e: unknown): string {
  if (isNnsError(e)) return e.code.replace(/^NNS_ERR_/, '');
  const status = (e as { statusCode?: unknown } | null)?.statusCode;
  if (status === 413) return 'REQUEST_TOO_LARGE';
  if (typeof status === 'number' && status >= 400 && status < 500) return 'BAD_REQUEST';
  return 'INTERNAL';
}

/** Prometheus text format: backslash, double quote and newline are escaped in label values. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Java's Double.toString for the values TorchServe prints: 8 -> "8.0". */
function javaDouble(n: number): string {
  return Number.isInteger(n) && Math.abs(n) < 1e15 ? `${n}.0` : String(n);
}
