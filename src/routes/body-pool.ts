/**
 * Buffers for KServe v2 binary request bodies, reused from one request to the next. A body is
 * taken when its request is read (raw-body.ts) and given back once its response has been sent:
 * nothing reads a v2 body after that, because the batcher copies the tensors into the batch
 * before the answer can exist, and a job answered early (timed out) is skipped, never gathered.
 *
 * Why: at c=8 a ResNet-18 stream brings 600 KB per request. A fresh buffer for each is external
 * memory to V8, which answered it with a full mark-compact every 0.3-0.7 s on the HTTP thread
 * (12-20 ms each, plus as long again in incremental steps): measured with --trace-gc.
 */
import type { FastifyRequest } from 'fastify';

/** Buffers are kept in 64 KiB size classes, so bodies of slightly different sizes share them. */
const CLASS = 65536;

export class BodyPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly lent = new WeakMap<FastifyRequest, ArrayBuffer>();
  private held = 0;

  /** `maxBytes`: the most the pool keeps while no request holds its buffers. */
  constructor(private readonly maxBytes: number) {}

  /** Bytes kept for reuse now. */
  get idleBytes(): number {
    return this.held;
  }

  /** A buffer of at least `bytes` for `req`'s body, until `release(req)`. */
  take(req: FastifyRequest, bytes: number): ArrayBuffer {
    const size = Math.max(CLASS, Math.ceil(bytes / CLASS) * CLASS);
    const b = this.free.get(size)?.pop();
    if (b) this.held -= size;
    const buffer = b ?? new ArrayBuffer(size);
    this.lent.set(req, buffer);
    return buffer;
  }

  /** Call once `req`'s response has been sent; a request without a pooled body is ignored. */
  release(req: FastifyRequest): void {
    const b = this.lent.get(req);
    if (!b) return;
    this.lent.delete(req);
    // A buffer transferred to another thread meanwhile comes back detached (length 0).
    if (b.byteLength === 0 || b.byteLength > this.maxBytes) return;
    // Over budget: idle buffers of other sizes go first (a burst of one size must not leave the
    // pool full of buffers nobody asks for again), then older ones of this size.
    if (this.held + b.byteLength > this.maxBytes) for (const [size, list] of this.free) {
      if (size === b.byteLength) continue;
      while (list.length > 0 && this.held + b.byteLength > this.maxBytes) {
        list.shift();
        this.held -= size;
      }
      if (list.length === 0) this.free.delete(size);
    }
    let list = this.free.get(b.byteLength);
    if (!list) this.free.set(b.byteLength, (list = []));
    while (list.length > 0 && this.held + b.byteLength > this.maxBytes) {
      list.shift();
      this.held -= b.byteLength;
    }
    list.push(b);
    this.held += b.byteLength;
  }
}
