/**
 * Image preprocessing off the event loop: a few worker threads, each decoding (sharp) and
 * transforming (Pillow-exact resize, ToTensor, Normalize) one image at a time, so decoded
 * pixels in memory are bounded by the thread count and the HTTP thread only moves bytes.
 * Jobs wait in a bounded FIFO; past it a request is refused with QUEUE_FULL.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ERRORS, nnsError, type ErrorKind } from '../errors.js';
import type { ImageTransform } from './image-transform.js';
import { WORKER_YOUNG_GEN_MB } from '../engine/pool.js';

export interface ImageJob {
  id: number;
  bytes: Uint8Array;
  transform: ImageTransform;
  /** How messages name the image, e.g. 'multipart field "file" (cat.jpg)'. */
  what: string;
}

export type ImageJobResult =
  | { id: number; tensor: Float32Array; error?: undefined }
  | { id: number; error: { code: string; message: string }; tensor?: undefined };

interface Pending {
  job: ImageJob;
  resolve: (t: Float32Array) => void;
  reject: (e: Error) => void;
}

interface Thread {
  worker: Worker;
  current: Pending | undefined;
}

const WORKER_URL = new URL('./image-worker.js', import.meta.url);
const KIND_BY_CODE = new Map(Object.entries(ERRORS).map(([kind, d]) => [d.code, kind as ErrorKind]));

export interface ImagePoolOptions {
  /** Threads. @defaultValue half the cores, at least 1 */
  threads: number;
  /** Images waiting for a thread before QUEUE_FULL. @defaultValue 256 */
  maxQueued: number;
}

export class ImagePool {
  private readonly threads: Thread[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: ImagePoolOptions) {}

  run(bytes: Uint8Array, transform: ImageTransform, what: string): Promise<Float32Array> {
    if (this.closed) return Promise.reject(nnsError('SHUTTING_DOWN', 'image preprocessing is shutting down'));
    if (this.queue.length >= this.opts.maxQueued) {
      return Promise.reject(nnsError('QUEUE_FULL', `${this.queue.length} images are waiting for preprocessing; retry later`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, bytes, transform, what }, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = nnsError('SHUTTING_DOWN', 'image preprocessing is shutting down');
    for (const p of this.queue.splice(0)) p.reject(err);
    await Promise.all(this.threads.splice(0).map((t) => {
      t.current?.reject(err);
      return t.worker.terminate();
    }));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let t = this.threads.find((x) => x.current === undefined);
      if (!t && this.threads.length < this.opts.threads) t = this.spawn();
      if (!t) return;
      const p = this.queue.shift()!;
      t.current = p;
      t.worker.ref(); // a job in flight keeps the process alive; an idle thread does not
      t.worker.postMessage(p.job);
    }
  }

  private spawn(): Thread {
    const t: Thread = { worker: new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB } }), current: undefined };
    t.worker.unref();
    t.worker.on('message', (r: ImageJobResult) => {
      const p = t.current;
      if (!p || p.job.id !== r.id) return;
      t.current = undefined;
      t.worker.unref();
      if (r.tensor) p.resolve(r.tensor);
      else p.reject(nnsError(KIND_BY_CODE.get(r.error.code) ?? 'IMAGE_INVALID', r.error.message));
      this.pump();
    });
    const died = (why: string) => {
      const i = this.threads.indexOf(t);
      if (i < 0) return;
      this.threads.splice(i, 1);
      t.current?.reject(nnsError('INTERNAL', `image preprocessing thread died while processing ${t.current.job.what}: ${why}`));
      t.current = undefined;
      if (!this.closed) this.pump();
    };
    t.worker.on('error', (e) => died(e.message));
    t.worker.on('exit', (code) => died(`exit code ${code}`));
    this.threads.push(t);
    return t;
  }
}

let shared: ImagePool | undefined;

/** The process-wide pool (threads start on first use and never hold the process open when idle). */
export function imagePool(): ImagePool {
  shared ??= new ImagePool({ threads: Math.max(1, Math.floor(availableParallelism() / 2)), maxQueued: 256 });
  return shared;
}
