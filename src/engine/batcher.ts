/**
 * Dynamic batching for one model version, read top to bottom as TorchServe's Model.pollBatch and
 * Triton's dynamic batcher:
 * - a bounded FIFO of jobs (a job = one request's tensors, `rows` samples along axis 0);
 * - when a worker is idle, a batch leaves as soon as it holds `batchSize` rows, or when the OLDEST
 *   waiting job has waited `maxBatchDelayMs` (counted from its arrival, not from when a worker
 *   became free: TorchServe issue #2478);
 * - inputs are concatenated along axis 0 (into buffers the workers hand back, so a batch
 *   neither allocates nor page-faults) and outputs split back by each job's rows;
 * - a job past its `responseTimeoutMs` is answered with REQUEST_TIMEOUT and its slot freed; a
 *   batch that overruns it has its worker stopped and replaced;
 * - when a batch of several jobs fails, each job is retried alone so one bad item fails only
 *   its own request.
 */
import { nnsError, type NnsError } from '../errors.js';
import { performance } from 'node:perf_hooks';
import { typedArrayView, type TensorData, type TypedArray } from '../runtime/ort.js';
import type { PoolWorker, WorkerPool } from './pool.js';

export interface BatcherOptions {
  label: string;
  /** Most rows (samples) in one inference call. */
  batchSize: number;
  /** How long the oldest waiting request may wait for a batch to fill, in ms. */
  maxBatchDelayMs: number;
  /** Jobs that may wait; one more is refused with QUEUE_FULL. */
  jobQueueSize: number;
  /** Time from arrival to answer, in ms. */
  responseTimeoutMs: number;
  /** False when a model's batch axis is fixed: then every job runs alone. */
  batchable: boolean;
}

export interface BatchStats {
  /** Rows in the batch this job ran in. */
  batchRows: number;
  queueMs: number;
  computeMs: number;
}

export interface JobResult {
  outputs: Record<string, TensorData>;
  stats: BatchStats;
}

interface Job {
  feeds: Record<string, TensorData>;
  rows: number;
  arrivedAt: number;
  deadline: number;
  settled: boolean;
  /** Set when the job's batch failed: it is retried in a batch of its own. */
  solo?: boolean;
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
}

export class Batcher {
  /** Waiting jobs from `head` on; slots before `head` are cleared so their tensors can be freed. */
  private queue: (Job | undefined)[] = [];
  private head = 0; // index of the oldest job; the array is compacted lazily
  private delayTimer: NodeJS.Timeout | undefined;
  private delayAt = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Batch input buffers back from the workers, ready to be filled again (newest last). */
  private free: ArrayBuffer[] = [];
  /** Jobs waiting (not yet handed to a worker). */
  get pending(): number {
    return this.queue.length - this.head;
  }

  constructor(private readonly pool: WorkerPool, private opts: BatcherOptions) {}

  update(opts: Partial<BatcherOptions>): void {
    this.opts = { ...this.opts, ...opts };
    this.pump();
  }

  get options(): Readonly<BatcherOptions> {
    return this.opts;
  }

  submit(feeds: Record<string, TensorData>, rows: number): Promise<JobResult> {
    if (this.closed) return Promise.reject(nnsError('SHUTTING_DOWN', `model ${this.opts.label} is being unloaded`));
    if (this.pending >= this.opts.jobQueueSize) {
      return Promise.reject(nnsError('QUEUE_FULL', `Model "${this.opts.label}" has ${this.pending} requests waiting (job_queue_size ${this.opts.jobQueueSize}); retry later`));
    }
    if (this.pool.targetWorkers === 0 || (this.pool.readyCount === 0 && this.pool.loadError)) {
      return Promise.reject(nnsError('NO_WORKER', `Model "${this.opts.label}" has no worker to serve inference request. Please use scale workers API to add workers.`));
    }
    const now = performance.now();
    return new Promise<JobResult>((resolve, reject) => {
      this.queue.push({ feeds, rows, arrivedAt: now, deadline: now + this.opts.responseTimeoutMs, settled: false, resolve, reject });
      this.armExpiry();
      this.pump();
    });
  }

  /** Hand batches to idle workers while there is work that is ready to go. */
  pump(): void {
    while (this.pending > 0) {
      const now = performance.now();
      this.expire(now);
      if (this.pending === 0) break;
      const oldest = this.queue[this.head]!;
      const full = !this.opts.batchable || oldest.solo === true || this.queuedRows() >= this.opts.batchSize;
      const waited = now - oldest.arrivedAt >= this.opts.maxBatchDelayMs;
      if (!full && !waited) {
        this.armDelay(oldest.arrivedAt + this.opts.maxBatchDelayMs);
        return;
      }
      const worker = this.pool.acquire();
      if (!worker) return; // onIdle calls pump again
      this.dispatch(worker, this.take());
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.delayTimer);
    clearTimeout(this.expiryTimer);
    const err = nnsError('SHUTTING_DOWN', `model ${this.opts.label} is being unloaded`);
    for (let i = this.head; i < this.queue.length; i++) settle(this.queue[i]!, err);
    this.queue = [];
    this.head = 0;
  }

  private queuedRows(): number {
    let rows = 0;
    for (let i = this.head; i < this.queue.length && rows < this.opts.batchSize; i++) rows += this.queue[i]!.rows;
    return rows;
  }

  /** FIFO jobs up to batchSize rows; a job larger than batchSize runs alone. */
  private take(): Job[] {
    const jobs: Job[] = [];
    let rows = 0;
    while (this.head < this.queue.length) {
      const j = this.queue[this.head]!;
      if (j.settled) {
        this.queue[this.head++] = undefined;
        continue;
      }
      if (jobs.length > 0 && (j.solo || rows + j.rows > this.opts.batchSize || !sameSampleShape(jobs[0]!, j))) break;
      jobs.push(j);
      rows += j.rows;
      this.queue[this.head++] = undefined;
      if (!this.opts.batchable || j.solo) break;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return jobs;
  }

  private dispatch(worker: PoolWorker, jobs: Job[]): void {
    const startedAt = performance.now();
    const rows = jobs.reduce((n, j) => n + j.rows, 0);
    const { feeds, buffers } = this.gather(jobs, rows);
    const deadline = Math.min(...jobs.map((j) => j.deadline));
    const overrun = setTimeout(() => {
      const err = nnsError('REQUEST_TIMEOUT', `model ${this.opts.label}: inference did not finish within responseTimeout ${this.opts.responseTimeoutMs} ms`);
      for (const j of jobs) settle(j, err);
      this.pool.kill(worker, err);
    }, Math.max(0, deadline - startedAt));
    this.pool.run(worker, feeds, buffers, this.recycle).then(
      ({ outputs, computeMs }) => {
        clearTimeout(overrun);
        let offset = 0;
        for (const j of jobs) {
          const stats = { batchRows: rows, queueMs: startedAt - j.arrivedAt, computeMs };
          try {
            settle(j, undefined, { outputs: jobs.length === 1 ? outputs : sliceRows(outputs, offset, j.rows, rows), stats });
          } catch (e) {
            settle(j, e as Error);
          }
          offset += j.rows;
        }
      },
      (err: NnsError) => {
        clearTimeout(overrun);
        if (jobs.length > 1 && err.code === 'NNS_ERR_INFERENCE_FAILED') {
          this.retryAlone(jobs);
          return;
        }
        for (const j of jobs) settle(j, err);
      },
    );
  }

  /**
   * Concatenate each input of the jobs along axis 0, into a buffer with room for a full batch
   * (so one buffer serves every batch size), reused from `free` when one of that size is there.
   */
  private gather(jobs: Job[], rows: number): { feeds: Record<string, TensorData>; buffers: ArrayBuffer[] } {
    const feeds: Record<string, TensorData> = {};
    const buffers: ArrayBuffer[] = [];
    for (const name of Object.keys(jobs[0]!.feeds)) {
      const first = jobs[0]!.feeds[name]!;
      const rowSize = first.dims.slice(1).reduce((a, b) => a * b, 1);
      const bytesPer = first.data.BYTES_PER_ELEMENT;
      const capacity = (this.opts.batchable ? Math.max(rows, this.opts.batchSize) : rows) * rowSize * bytesPer;
      const i = this.free.findIndex((b) => b.byteLength === capacity);
      const buffer = i >= 0 ? this.free.splice(i, 1)[0]! : new ArrayBuffer(capacity);
      const data = typedArrayView(first.dtype, buffer, 0, rows * rowSize);
      let offset = 0;
      for (const j of jobs) {
        const t = j.feeds[name]!.data;
        (data as Float32Array).set(t as Float32Array, offset);
        offset += t.length;
      }
      feeds[name] = { dtype: first.dtype, dims: [rows, ...first.dims.slice(1)], data };
      buffers.push(buffer);
    }
    return { feeds, buffers };
  }

  /** Keep the buffers a worker gave back: enough for every worker's next batch, the newest. */
  private readonly recycle = (buffers: ArrayBuffer[]): void => {
    for (const b of buffers) if (b.byteLength > 0) this.free.push(b);
    const keep = (this.pool.targetWorkers + 1) * Math.max(1, buffers.length);
    if (this.free.length > keep) this.free.splice(0, this.free.length - keep);
  };

  /** Put the jobs of a failed batch back at the head of the queue, each to run alone. */
  private retryAlone(jobs: Job[]): void {
    for (const j of jobs) j.solo = true;
    this.queue.splice(this.head, 0, ...jobs);
    this.pump();
  }

  private expire(now: number): void {
    while (this.head < this.queue.length && this.queue[this.head]!.deadline <= now) {
      const j = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      settle(j, nnsError('REQUEST_TIMEOUT', `model ${this.opts.label}: request waited ${Math.round(now - j.arrivedAt)} ms in the queue, past responseTimeout ${this.opts.responseTimeoutMs} ms`));
    }
    while (this.head < this.queue.length && this.queue[this.head]!.settled) this.queue[this.head++] = undefined;
  }

  private armDelay(at: number): void {
    if (this.delayTimer && this.delayAt <= at) return;
    clearTimeout(this.delayTimer);
    this.delayAt = at;
    this.delayTimer = setTimeout(() => {
      this.delayTimer = undefined;
      this.pump();
    }, Math.max(0, at - performance.now()));
  }

  /** One timer for the head's deadline: the head is always the oldest, so the earliest to expire. */
  private armExpiry(): void {
    if (this.expiryTimer || this.pending === 0) return;
    const at = this.queue[this.head]!.deadline;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      this.expire(performance.now());
      this.armExpiry();
    }, Math.max(0, at - performance.now()) + 1);
  }
}

function settle(j: Job, err?: Error, result?: JobResult): void {
  if (j.settled) return;
  j.settled = true;
  if (err) j.reject(err);
  else j.resolve(result!);
}

/** Jobs batch together only when every input has the same shape past axis 0 (e.g. sequence length). */
function sameSampleShape(a: Job, b: Job): boolean {
  for (const [name, t] of Object.entries(a.feeds)) {
    const u = b.feeds[name];
    if (!u || u.dims.length !== t.dims.length) return false;
    for (let k = 1; k < t.dims.length; k++) if (t.dims[k] !== u.dims[k]) return false;
  }
  return true;
}

/** Rows [offset, offset+rows) of every output whose axis 0 is the batch. */
export function sliceRows(outputs: Record<string, TensorData>, offset: number, rows: number, total: number): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== total) {
      throw nnsError('INFERENCE_FAILED', `output "${name}" has shape [${t.dims}] whose first axis is not the batch of ${total}; this model cannot be batched (set batchSize: 1)`);
    }
    const rowSize = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const data = t.data.subarray(offset * rowSize, (offset + rows) * rowSize) as TypedArray;
    out[name] = { dtype: t.dtype, dims: [rows, ...t.dims.slice(1)], data };
  }
  return out;
}
