/**
 * Prometheus metrics. TorchServe's names and labels (docs/metrics.md) so existing dashboards keep
 * working, plus real histograms (TorchServe's latency metrics are cumulative counters, which an
 * autoscaler cannot use: issue #3286). Label values only ever come from registered models, so an
 * unknown model name in a URL cannot create a series.
 */
import { hostname } from 'node:os';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const HOST = hostname();
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  private readonly requests2xx = new Counter({ name: 'Requests2XX', help: 'Responses with a 2xx status', labelNames: ['Level', 'Hostname'], registers: [this.registry] });
  private readonly requests4xx = new Counter({ name: 'Requests4XX', help: 'Responses with a 4xx status', labelNames: ['Level', 'Hostname'], registers: [this.registry] });
  private readonly requests5xx = new Counter({ name: 'Requests5XX', help: 'Responses with a 5xx status', labelNames: ['Level', 'Hostname'], registers: [this.registry] });
  private readonly tsRequests = new Counter({ name: 'ts_inference_requests_total', help: 'Inference requests answered (TorchServe)', labelNames: ['model_name', 'model_version', 'hostname'], registers: [this.registry] });
  private readonly tsLatency = new Counter({ name: 'ts_inference_latency_microseconds', help: 'Cumulative inference latency in microseconds (TorchServe)', labelNames: ['model_name', 'model_version', 'hostname'], registers: [this.registry] });
  private readonly tsQueue = new Counter({ name: 'ts_queue_latency_microseconds', help: 'Cumulative queue latency in microseconds (TorchServe)', labelNames: ['model_name', 'model_version', 'hostname'], registers: [this.registry] });
  private readonly requestDuration = new Histogram({ name: 'nnserve_request_duration_seconds', help: 'Inference request duration, arrival to answer', labelNames: ['model_name', 'model_version'], buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  private readonly queueWait = new Histogram({ name: 'nnserve_queue_wait_seconds', help: 'Time a request waited for its batch to start', labelNames: ['model_name', 'model_version'], buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  private readonly compute = new Histogram({ name: 'nnserve_inference_compute_seconds', help: 'ONNX Runtime time of the batch a request ran in', labelNames: ['model_name', 'model_version'], buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  private readonly batchSize = new Histogram({ name: 'nnserve_batch_size', help: 'Rows in the batch a request ran in', labelNames: ['model_name', 'model_version'], buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  response(status: number): void {
    const c = status < 300 ? this.requests2xx : status < 500 ? this.requests4xx : this.requests5xx;
    c.inc({ Level: 'Host', Hostname: HOST });
  }

  inference(model: string, version: string, totalMs: number, queueMs: number, computeMs: number, batchRows: number): void {
    const l = { model_name: model, model_version: version, hostname: HOST };
    this.tsRequests.inc(l);
    this.tsLatency.inc(l, totalMs * 1000);
    this.tsQueue.inc(l, queueMs * 1000);
    const h = { model_name: model, model_version: version };
    this.requestDuration.observe(h, totalMs / 1000);
    this.queueWait.observe(h, queueMs / 1000);
    this.compute.observe(h, computeMs / 1000);
    this.batchSize.observe(h, batchRows);
  }

  /** Prometheus text, optionally only the metrics named (TorchServe's ?name[]=). */
  async text(names?: string[]): Promise<string> {
    if (!names || names.length === 0) return this.registry.metrics();
    const parts = await Promise.all(names.filter((n) => this.registry.getSingleMetric(n)).map((n) => this.registry.getSingleMetricAsString(n)));
    return parts.join('\n') + (parts.length ? '\n' : '');
  }
}
