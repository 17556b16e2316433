import assert from 'node:assert/strict';
import { request } from 'node:http';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { BodyPool } from '../../src/routes/body-pool.js';
import { alignmentPad, PREALLOCATE_MAX, readRawBody } from '../../src/routes/raw-body.js';

/** A Fastify app whose '*' parser is readRawBody; the route reports what it got. */
function bodyApp(limit: number, pool: BodyPool): FastifyInstance {
  const app = Fastify({ bodyLimit: limit });
  app.addHook('onResponse', (req, _reply, done) => {
    pool.release(req);
    done();
  });
  app.addContentTypeParser('*', (req, payload, done) => readRawBody(req, payload, limit, done, pool));
  // '/v2/...' bodies with an Inference-Header-Content-Length are borrowed from the pool.
  app.post('/v2/infer', async (req) => {
    const body = req.body as Buffer;
    const hl = Number(req.headers['inference-header-content-length'] ?? 0);
    return { length: body.length, sum: body.reduce((a, b) => a + b, 0), alignedAt: (body.byteOffset + hl) % 8, pooledBytes: body.buffer.byteLength };
  });
  app.post('/', async (req) => {
    const body = req.body as Buffer;
    const hl = Number(req.headers['inference-header-content-length'] ?? 0);
    return { length: body.length, sum: body.reduce((a, b) => a + b, 0), alignedAt: (body.byteOffset + hl) % 8 };
  });
  return app;
}

const bytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) % 251));
const sum = (b: Buffer) => b.reduce((a, x) => a + x, 0);

describe('raw request bodies', () => {
  let app: FastifyInstance;
  let port: number;
  const pool = new BodyPool(8 << 20);
  before(async () => {
    app = bodyApp(8 << 20, pool);
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as { port: number }).port;
  });
  after(() => app.close());

  /** POST over a real socket; `chunked` sends without Content-Length, in several writes. */
  function post(body: Buffer, headers: Record<string, string>, chunked = false, path = '/'): Promise<{ status: number; json: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', method: 'POST', path, headers: { 'content-type': 'application/octet-stream', ...headers, ...(chunked ? {} : { 'content-length': String(body.length) }) } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(parts).toString()) as Record<string, unknown> }));
      });
      req.on('error', reject);
      if (chunked) {
        for (let at = 0; at < body.length; at += 1000) req.write(body.subarray(at, at + 1000));
        req.end();
      } else req.end(body);
    });
  }

  test('a v2 binary body arrives whole, its tensor bytes 8-byte aligned whatever the header length', async () => {
    // 600 kB: one buffer from Content-Length; 5 MB: above PREALLOCATE_MAX, kept as chunks.
    for (const [hl, size] of [[0, 600_000], [1, 600_000], [181, 600_000], [183, 600_000], [4096, 600_000], [181, 5_000_000]] as const) {
      const body = bytes(hl + size);
      for (const chunked of [false, true]) {
        const res = await post(body, { 'inference-header-content-length': String(hl) }, chunked);
        assert.equal(res.status, 200, `hl ${hl} size ${size} chunked ${chunked}`);
        assert.deepEqual(res.json, { length: body.length, sum: sum(body), alignedAt: 0 }, `hl ${hl} size ${size} chunked ${chunked}`);
      }
    }
  });

  test('a /v2/ binary body is borrowed from the pool, aligned, and its buffer lent again once answered', async () => {
    for (const hl of [181, 4, 0]) {
      const body = bytes(hl + 600_000);
      const res = await post(body, { 'inference-header-content-length': String(hl) }, false, '/v2/infer');
      assert.equal(res.status, 200);
      // A pooled buffer is a whole 64 KiB size class; Node's own would be exactly the body (+ pad).
      assert.deepEqual(res.json, { length: body.length, sum: sum(body), alignedAt: 0, pooledBytes: 10 * 65536 }, `hl ${hl}`);
      assert.equal(pool.idleBytes, 10 * 65536, 'given back after the response, and reused by the next request');
    }
    // Without the header, or chunked (no Content-Length to size it from), the body is not pooled.
    const plain = await post(bytes(600_000), {}, false, '/v2/infer');
    assert.equal(plain.json.pooledBytes, 600_000);
    const chunked = await post(bytes(181 + 600_000), { 'inference-header-content-length': '181' }, true, '/v2/infer');
    assert.deepEqual(chunked.json, { length: 600_181, sum: sum(bytes(600_181)), alignedAt: 0, pooledBytes: 600_181 + alignmentPad(181) });
  });

  test('small and empty bodies', async () => {
    assert.deepEqual((await post(bytes(19), {})).json, { length: 19, sum: sum(bytes(19)), alignedAt: 0 });
    assert.deepEqual((await post(Buffer.alloc(0), {})).json, { length: 0, sum: 0, alignedAt: 0 });
  });

  test('over the limit: 413 by Content-Length, and by bytes received when chunked', async () => {
    const big = bytes((8 << 20) + 1);
    const declared = await post(big, {});
    assert.equal(declared.status, 413);
    assert.equal(declared.json.code, 'FST_ERR_CTP_BODY_TOO_LARGE');
    const streamed = await post(big, {}, true);
    assert.equal(streamed.status, 413);
  });

  test('a stream that ends short of, or runs past, its Content-Length is refused', async () => {
    const run = (declared: number, send: number) => new Promise<Error | null>((resolve) => {
      const s = new PassThrough();
      readRawBody({ headers: { 'content-length': String(declared) }, url: '/' } as unknown as FastifyRequest, s, 8 << 20, (err) => resolve(err));
      s.end(bytes(send));
    });
    assert.equal(((await run(10, 5)) as Error & { code: string }).code, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH');
    // Above PREALLOCATE_MAX the chunks are kept, and the length is checked at the end.
    const big = PREALLOCATE_MAX + 10;
    assert.equal(((await run(big, big - 1)) as Error & { code: string }).code, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH');
    assert.equal(await run(big, big), null);
    assert.equal(((await run(10, 12)) as Error & { code: string }).code, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH');
    assert.equal(await run(10, 10), null);
  });

  test('alignment padding', () => {
    assert.deepEqual([0, 1, 4, 7, 8, 181].map(alignmentPad), [0, 7, 4, 1, 0, 3]);
    assert.deepEqual(['x', -3, 2.5, undefined].map(alignmentPad), [0, 0, 0, 0]);
  });
});
