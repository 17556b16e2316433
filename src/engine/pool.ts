/**
 * The worker lifecycle for one model version: threads that each hold an ONNX Runtime session.
 * A worker is STARTING until its session loads, then IDLE/BUSY; on any exit it is DEAD, the batch
 * it held fails with WORKER_DIED, and a fresh thread replaces it. A thread that failed to load
 * never joins the pool; replacements back off (1 s doubling to 30 s) while loads keep failing.
 *
 * A thread is never terminated while it is inside ONNX Runtime's native Run: onnxruntime-node
 * then throws a C++ Napi::Error on return and aborts the whole process. A worker killed while
 * busy leaves the pool at once (its requests fail, a replacement starts) and its thread is
 * terminated as soon as Run returns.
 */
import { Worker } from 'node:worker_threads';
import type { EngineName } from '../config.js';
import { nnsError, NnsError } from '../errors.js';
import type { IoSpec, TensorData } from '../runtime/ort.js';
import { FromWorker, ToWorker, type FromWorkerMessage, type ToWorkerMessage } from './protocol.js';

export type WorkerStatus = 'STARTING' | 'IDLE' | 'BUSY' | 'DEAD';

export interface PoolOptions {
  /** "name" or "name/version", for messages. */
  label: string;
  /** ONNX file path or bytes. */
  model: string | Uint8Array;
  engine: EngineName;
  intraOpThreads: number;
  /** How long a worker may take to load before it is discarded, in ms. */
  startupTimeoutMs: number;
  /** Called whenever a worker becomes IDLE, so the batcher can hand it work. */
  onIdle: () => void;
  log?: { warn: (o: object, m: string) => void; info: (o: object, m: string) => void };
}

export interface RunResult {
  outputs: Record<string, TensorData>;
  computeMs: number;
}

interface Pending {
  batchId: number;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
  recycle: (buffers: ArrayBuffer[]) => void;
}

let nextWorkerId = 9000; // TorchServe numbers its workers from 9000
let nextBatchId = 1;

const WORKER_URL = new URL('./worker.js', import.meta.url);
/**
 * V8's young generation of a worker: a worker's JS makes little garbage (tensors are external
 * buffers), and V8's default (up to 3 x 16 MiB) stays resident once grown: 4 MiB took ~8 MiB off
 * the RSS of a ResNet-18 server under load.
 */
export const WORKER_YOUNG_GEN_MB = 4;
/** How long a thread asked to exit may take before it is terminated, in ms. */
const EXIT_WAIT_MS = 5_000;
/** How long close() waits for threads still inside Run, in ms. */
const CLOSE_WAIT_MS = 30_000;

export class PoolWorker {
  readonly id = String(nextWorkerId++);
  readonly startTime = new Date().toISOString();
  status: WorkerStatus = 'STARTING';
  pending: Pending | undefined;
  /** True while the thread may be inside native code: loading, or from dispatch until its answer arrives. */
  inRun = true;
  startTimer: NodeJS.Timeout | undefined;
  /** Asked to exit (stopThread). */
  stopping = false;
  /** Resolves when the thread has exited. */
  readonly exited: Promise<void>;
  constructor(readonly thread: Worker) {
    this.exited = new Promise((resolve) => thread.once('exit', () => resolve()));
  }
  get threadId(): number {
    return this.thread.threadId;
  }
}

export class WorkerPool {
  readonly workers: PoolWorker[] = [];
  inputs: IoSpec[] = [];
  outputs: IoSpec[] = [];
  engine: EngineName;
  private target = 0;
  private closing = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastLoadError: NnsError | undefined;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Every thread not yet exited, including ones killed while inside Run. */
  private readonly threads = new Set<PoolWorker>();

  constructor(private readonly opts: PoolOptions) {
    this.engine = opts.engine;
  }

  get readyCount(): number {
    return this.workers.filter((w) => w.status === 'IDLE' || w.status === 'BUSY').length;
  }

  get targetWorkers(): number {
    return this.target;
  }

  /** Resolves once one worker is ready; rejects with the load error if the first load fails. */
  async start(workers: number): Promise<void> {
    this.scale(workers);
    if (workers === 0) return;
    await this.whenReady();
  }

  whenReady(): Promise<void> {
    if (this.readyCount > 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  scale(workers: number): void {
    this.target = workers;
    const alive = this.workers.filter((w) => w.status !== 'DEAD');
    for (let i = alive.length; i < workers; i++) this.spawn();
    // Shrink by idle workers first; a busy one finishes its batch and is stopped on return.
    const excess = alive.length - workers;
    if (excess > 0) {
      const victims = [...alive].sort((a, b) => rank(a) - rank(b)).slice(0, excess);
      for (const w of victims) this.retire(w);
    }
  }

  /** An idle worker, or undefined. A DEAD or STARTING worker is never handed work. */
  acquire(): PoolWorker | undefined {
    for (const w of this.workers) if (w.status === 'IDLE') return w;
    return undefined;
  }

  /**
   * Run one batch on an idle worker. `transfer`: buffers moved to the worker (the caller gives
   * them up); they come back through `recycle` when the worker answers.
   */
  run(w: PoolWorker, feeds: Record<string, TensorData>, transfer: ArrayBuffer[], recycle: (buffers: ArrayBuffer[]) => void): Promise<RunResult> {
    if (w.status !== 'IDLE') throw nnsError('INTERNAL', `worker ${w.id} is ${w.status}, not IDLE`);
    w.status = 'BUSY';
    w.inRun = true;
    const batchId = nextBatchId++;
    return new Promise<RunResult>((resolve, reject) => {
      w.pending = { batchId, resolve, reject, recycle };
      const msg: ToWorkerMessage = { cmd: ToWorker.Infer, batchId, feeds };
      w.thread.postMessage(msg, transfer);
    });
  }

  /** Stop a worker that overran its time; its batch fails and a new worker takes its place. */
  kill(w: PoolWorker, reason: NnsError): void {
    if (w.status === 'DEAD') return;
    this.markDead(w, reason);
    stopThread(w);
    this.refill();
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.retryTimer);
    const err = nnsError('SHUTTING_DOWN', `model ${this.opts.label} is being unloaded`);
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(err);
    for (const w of [...this.workers]) {
      this.markDead(w, err);
      stopThread(w);
    }
    // Wait for threads still inside Run to come back and exit: a process that exits while
    // one is in native code aborts (see the file comment).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.threads].map((w) => w.exited)),
      new Promise((r) => { timer = setTimeout(r, CLOSE_WAIT_MS); }),
    ]);
    clearTimeout(timer);
  }

  private spawn(): void {
    const thread = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB } });
    const w = new PoolWorker(thread);
    this.workers.push(w);
    this.threads.add(w);
    void w.exited.then(() => this.threads.delete(w));
    w.startTimer = setTimeout(() => {
      if (w.status === 'STARTING') this.loadFailed(w, nnsError('MODEL_LOAD_FAILED', `model ${this.opts.label}: worker ${w.id} did not load within ${this.opts.startupTimeoutMs} ms`));
    }, this.opts.startupTimeoutMs);
    thread.on('message', (m: FromWorkerMessage) => this.onMessage(w, m));
    thread.on('error', (e) => this.onExit(w, e));
    thread.on('exit', (code) => this.onExit(w, new Error(`exit code ${code}`)));
    const load: ToWorkerMessage = { cmd: ToWorker.Load, model: this.opts.model, engine: this.engine, intraOpThreads: this.opts.intraOpThreads };
    thread.postMessage(load);
  }

  private onMessage(w: PoolWorker, m: FromWorkerMessage): void {
    w.inRun = false; // every message is sent from JS, after native code returned
    if (w.status === 'DEAD') {
      stopThread(w); // killed while busy: Run has returned, so the thread can go now
      return;
    }
    switch (m.cmd) {
      case FromWorker.Ready:
        clearTimeout(w.startTimer);
        if (w.status !== 'STARTING') return;
        this.inputs = m.inputs;
        this.outputs = m.outputs;
        if (m.engine !== this.engine) this.opts.log?.warn({ model: this.opts.label, requested: this.engine, engine: m.engine }, 'native ONNX Runtime cannot load here; running on WASM');
        this.engine = m.engine;
        this.failures = 0;
        this.lastLoadError = undefined;
        w.status = 'IDLE';
        for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
        this.opts.onIdle();
        break;
      case FromWorker.LoadFailed:
        this.loadFailed(w, nnsError('MODEL_LOAD_FAILED', `model ${this.opts.label}: ${m.message}`));
        break;
      case FromWorker.Result:
      case FromWorker.Failed: {
        const p = w.pending;
        if (!p || p.batchId !== m.batchId) return; // a batch already failed by a timeout
        w.pending = undefined;
        if (w.status === 'BUSY') w.status = 'IDLE';
        p.recycle(m.inputs);
        if (m.cmd === FromWorker.Result) p.resolve({ outputs: m.outputs, computeMs: m.computeMs });
        else p.reject(nnsError('INFERENCE_FAILED', `model ${this.opts.label}: ${m.message}`));
        if (this.aliveCount() > this.target) this.retire(w);
        else if (w.status === 'IDLE') this.opts.onIdle();
        break;
      }
    }
  }

  private loadFailed(w: PoolWorker, err: NnsError): void {
    this.lastLoadError = err;
    this.markDead(w, err);
    stopThread(w);
    this.failures++;
    // Nobody is serving yet: report the load error to whoever waits for the model.
    if (this.readyCount === 0) for (const waiter of this.readyWaiters.splice(0)) waiter.reject(err);
    this.opts.log?.warn({ model: this.opts.label, worker: w.id, err: err.message }, 'worker failed to load');
    this.refill();
  }

  private onExit(w: PoolWorker, e: Error): void {
    if (w.status === 'DEAD') return;
    this.opts.log?.warn({ model: this.opts.label, worker: w.id, err: e.message }, 'worker died');
    this.markDead(w, nnsError('WORKER_DIED', `Worker died: model ${this.opts.label} worker ${w.id} (${e.message})`));
    this.refill();
  }

  private markDead(w: PoolWorker, err: Error): void {
    w.status = 'DEAD';
    clearTimeout(w.startTimer);
    const idx = this.workers.indexOf(w);
    if (idx >= 0) this.workers.splice(idx, 1);
    const p = w.pending;
    w.pending = undefined;
    p?.reject(err);
  }

  private retire(w: PoolWorker): void {
    if (w.status === 'BUSY') return; // stopped when its batch returns
    this.markDead(w, nnsError('SHUTTING_DOWN', `worker ${w.id} of ${this.opts.label} was scaled down`));
    stopThread(w);
  }

  private aliveCount(): number {
    return this.workers.filter((w) => w.status !== 'DEAD').length;
  }

  private refill(): void {
    if (this.closing || this.retryTimer) return;
    const missing = this.target - this.aliveCount();
    if (missing <= 0) return;
    // A worker that died after loading fine is replaced at once (and synchronously: an unref'd
    // timer would let a process with nothing else to do exit before the replacement starts).
    if (this.failures === 0) {
      for (let i = this.aliveCount(); i < this.target; i++) this.spawn();
      return;
    }
    const delayMs = Math.min(30_000, 1000 * 2 ** (this.failures - 1));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closing) return;
      for (let i = this.aliveCount(); i < this.target; i++) this.spawn();
    }, delayMs);
    this.retryTimer.unref();
  }

  /** The last load failure, while no worker is ready (for describe and /ping). */
  get loadError(): NnsError | undefined {
    return this.readyCount === 0 ? this.lastLoadError : undefined;
  }
}

/**
 * Stop a thread: now if it is in JS, otherwise when its Run returns (see the file comment). It
 * is asked to exit (it releases its session, then ends) rather than terminated: terminate()
 * under load occasionally aborted the process from onnxruntime-node even for an idle worker.
 * One that does not end within EXIT_WAIT_MS is terminated.
 */
function stopThread(w: PoolWorker): void {
  if (w.inRun) {
    w.thread.unref(); // an abandoned Run must not keep the process alive
    return;
  }
  if (w.stopping) return;
  w.stopping = true;
  const exit: ToWorkerMessage = { cmd: ToWorker.Exit };
  w.thread.postMessage(exit);
  const timer = setTimeout(() => void w.thread.terminate(), EXIT_WAIT_MS);
  timer.unref();
  void w.exited.then(() => clearTimeout(timer));
}

function rank(w: PoolWorker): number {
  return w.status === 'STARTING' ? 0 : w.status === 'IDLE' ? 1 : 2;
}
