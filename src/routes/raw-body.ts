/**
 * The raw request body as one Buffer, read the way Fastify's `parseAs: 'buffer'` reads it (the
 * same limits and errors), but written straight into a buffer sized from Content-Length instead
 * of concatenating the chunks at the end, and placed so that a KServe v2 binary request's tensor
 * bytes (after `Inference-Header-Content-Length` bytes of JSON) start on an 8-byte boundary.
 * Then the v2 codec can hand the tensors on as views of the body: with an arbitrary header
 * length (a Triton client's, or our bench's 181 bytes) every FP32 tensor was copied once more.
 * With a `pool`, v2 binary bodies are borrowed from it (body-pool.ts).
 *
 * Unlike Fastify's reader it knows no route-level bodyLimit and no preParsing stream's encoded
 * length: nnserve sets neither.
 */
import type { FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';
import type { BodyPool } from './body-pool.js';

export type BodyDone = (err: Error | null, body?: Buffer) => void;

/** Bodies up to this size get their whole buffer when the headers arrive. */
export const PREALLOCATE_MAX = 4 << 20;
/** Smaller v2 bodies come from Node's buffer slab, which costs less than a pooled 64 KiB buffer. */
const POOL_MIN = 64 << 10;

/** Bytes to put before the body so that byte `headerLength` of it is 8-byte aligned. */
export function alignmentPad(headerLength: unknown): number {
  const hl = Number(headerLength);
  return Number.isInteger(hl) && hl > 0 ? (8 - (hl % 8)) % 8 : 0;
}

export function readRawBody(req: FastifyRequest, payload: NodeJS.ReadableStream, limit: number, done: BodyDone, pool?: BodyPool): void {
  const declared = req.headers['content-length'] === undefined ? NaN : Number(req.headers['content-length']);
  if (declared > limit) {
    done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    return;
  }
  const pad = alignmentPad(req.headers['inference-header-content-length']);
  // Content-Length known and at most PREALLOCATE_MAX: one buffer of that size, filled as chunks
  // arrive. Larger (an archive upload) or unknown (chunked): the chunks are kept and copied once
  // at the end, so memory grows only with bytes actually received, as in Fastify. Buffer.allocUnsafe
  // starts a buffer on an 8-byte boundary (a new ArrayBuffer, or Node's pool, kept 8-aligned).
  const sized = Number.isInteger(declared) && declared >= 0 && declared <= PREALLOCATE_MAX;
  // v2 binary tensor requests (the only bodies known to be dead once answered) borrow theirs.
  const pooled = sized && pool && declared + pad >= POOL_MIN && req.headers['inference-header-content-length'] !== undefined && req.url.startsWith('/v2/')
    ? pool.take(req, declared + pad) : undefined;
  const body = pooled ? Buffer.from(pooled, pad, declared) : sized ? Buffer.allocUnsafe(declared + pad).subarray(pad) : undefined;
  const chunks: Buffer[] = [];
  let received = 0;

  const finish = (err: Error | null, value?: Buffer) => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onError);
    done(err, value);
  };
  const onData = (chunk: Buffer | string) => {
    const c = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (received + c.length > limit) {
      finish(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      return;
    }
    if (body) {
      if (received + c.length > declared) {
        finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
        return;
      }
      c.copy(body, received);
    } else chunks.push(c);
    received += c.length;
  };
  const onEnd = () => {
    if (Number.isInteger(declared) && received !== declared) {
      finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      return;
    }
    if (body) {
      finish(null, body);
      return;
    }
    const out = Buffer.allocUnsafe(received + pad).subarray(pad);
    let at = 0;
    for (const c of chunks) at += c.copy(out, at);
    finish(null, out);
  };
  const onError = (err: Error & { statusCode?: number }) => {
    if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
    finish(err);
  };
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onError);
  payload.resume();
}
