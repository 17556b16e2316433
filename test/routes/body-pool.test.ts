import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { BodyPool } from '../../src/routes/body-pool.js';

const req = () => ({}) as FastifyRequest;

describe('BodyPool', () => {
  test('a released buffer is lent again to a body of the same 64 KiB size class, not before', () => {
    const pool = new BodyPool(1 << 20);
    const a = req();
    const b = req();
    const first = pool.take(a, 602_293);
    assert.equal(first.byteLength, 10 * 65536);
    assert.notEqual(pool.take(b, 602_293), first, 'still lent to a');
    pool.release(a);
    assert.equal(pool.idleBytes, first.byteLength);
    assert.equal(pool.take(req(), 600_000), first, 'same size class');
    assert.equal(pool.idleBytes, 0);
  });

  test('other size classes get their own buffers; releasing twice or an unknown request is harmless', () => {
    const pool = new BodyPool(1 << 20);
    const a = req();
    const small = pool.take(a, 10);
    assert.equal(small.byteLength, 65536);
    pool.release(a);
    pool.release(a);
    pool.release(req());
    assert.equal(pool.idleBytes, 65536);
    assert.notEqual(pool.take(req(), 200_000), small);
  });

  test('over budget, idle buffers of other sizes are dropped first, so a burst of one size cannot crowd out the next', () => {
    const pool = new BodyPool(4 * 65536);
    const big = [req(), req()];
    for (const r of big) pool.take(r, 2 * 65536);
    for (const r of big) pool.release(r);
    assert.equal(pool.idleBytes, 4 * 65536);
    const small = req();
    const b = pool.take(small, 65536);
    pool.release(small);
    assert.equal(pool.idleBytes, 3 * 65536, 'one 128 KiB buffer made room for the 64 KiB one');
    assert.equal(pool.take(req(), 60_000), b);
  });

  test('keeps at most maxBytes, and drops a buffer that was transferred away (detached)', () => {
    const pool = new BodyPool(3 * 65536);
    const reqs = [req(), req(), req()];
    const bufs = reqs.map((r) => pool.take(r, 2 * 65536));
    for (const r of reqs) pool.release(r);
    assert.equal(pool.idleBytes, 2 * 65536, 'one 128 KiB buffer fits under 192 KiB, two do not');
    const r = req();
    const b = pool.take(r, 2 * 65536);
    assert.ok(bufs.includes(b));
    structuredClone(b, { transfer: [b] });
    assert.equal(b.byteLength, 0);
    pool.release(r);
    assert.equal(pool.idleBytes, 0);
  });
});
