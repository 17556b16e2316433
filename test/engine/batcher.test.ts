import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { NEURALNET, SLOW, appWith, fixture, slowRows } from '../helpers.js';

const post = (app: App, url: string, payload: unknown) =>
  app.inference.inject({ method: 'POST', url, payload: payload as object, headers: { 'content-type': 'application/json' } });

/** nnserve_batch_size's _sum and _count for neuralnet, read from the Prometheus text. */
async function batchStats(app: App): Promise<{ sum: number; count: number }> {
  const text = await app.metrics.text(['nnserve_batch_size']);
  const read = (suffix: string) => Number(new RegExp(`^nnserve_batch_size_${suffix}\\{[^}]*model_name="neuralnet"[^}]*\\} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return { sum: read('sum'), count: read('count') };
}

describe('dynamic batching', () => {
  let app: App;
  before(async () => {
    app = await appWith([
      { ...NEURALNET, modelConfig: 'minWorkers: 1\nbatchSize: 16\nmaxBatchDelay: 200\n' },
      { name: 'embedding', onnx: fixture('models/embedding/model.onnx'), modelConfig: 'minWorkers: 1\nbatchSize: 8\nmaxBatchDelay: 200\n' },
    ]);
  });
  after(() => app.close());

  test('concurrent requests are grouped into one batch and split back exactly', async () => {
    const xs = Array.from({ length: 16 }, (_, i) => i - 3.5);
    const alone = await Promise.all(xs.map(async (x) => (await post(app, '/predictions/neuralnet', [[x]])).json()[0][0] as number));
    const before = await batchStats(app);
    const t0 = performance.now();
    const together = await Promise.all(xs.map((x) => post(app, '/predictions/neuralnet', [[x]])));
    const elapsed = performance.now() - t0;
    together.forEach((r, i) => assert.deepEqual(r.json(), [[alone[i]]], `request ${i} got another request's answer`));
    const after = await batchStats(app);
    // 16 requests, each observed with the rows of its batch: one batch of 16 gives 16 * 16.
    assert.equal(after.sum - before.sum, 16 * 16, 'all 16 requests ran in a single batch of 16');
    assert.equal(after.count - before.count, 16);
    // A full batch leaves at once: it does not wait for maxBatchDelay (200 ms).
    assert.ok(elapsed < 150, `a full batch waited ${elapsed} ms`);
  });

  test('a lone request waits maxBatchDelay from its arrival, then runs alone', async () => {
    const t0 = performance.now();
    const res = await post(app, '/predictions/neuralnet', [[2]]);
    const elapsed = performance.now() - t0;
    assert.equal(res.statusCode, 200);
    assert.ok(elapsed >= 195, `answered after ${elapsed} ms, before maxBatchDelay`);
    assert.ok(elapsed < 600, `answered after ${elapsed} ms`);
  });

  test('requests with several rows count by rows; a batch never exceeds batchSize rows', async () => {
    const reqs = [5, 6, 7].map((n, k) => Array.from({ length: n }, (_, i) => [i + k * 10]));
    const res = await Promise.all(reqs.map((r) => post(app, '/predictions/neuralnet', r)));
    res.forEach((r, k) => assert.equal((r.json() as unknown[]).length, reqs[k]!.length));
    const single = await post(app, '/predictions/neuralnet', reqs[2]);
    assert.deepEqual(res[2]!.json(), single.json());
  });

  test('batch input buffers come back from the worker and are refilled: no growth, no stale rows', async () => {
    const v = app.registry.get('neuralnet');
    const free = () => (v.batcher as unknown as { free: ArrayBuffer[] }).free;
    const expect = async (xs: number[]) => (await post(app, '/predictions/neuralnet', xs.map((x) => [x]))).json() as number[][];
    // Start from none kept: a batch that did not reuse a kept buffer would leave two behind.
    free().length = 0;
    const wide = await expect([1, 2, 3, 4, 5]);
    assert.equal(free().length, 1, 'the buffer of the finished batch came back');
    const capacity = free()[0]!.byteLength;
    // A smaller batch next reuses that buffer; rows 2-5 left from the wider batch must not leak in.
    const narrow = await expect([1]);
    assert.deepEqual(narrow, [wide[0]]);
    // (A transferred buffer comes back as a new ArrayBuffer object over the same memory.)
    assert.deepEqual(free().map((b) => b.byteLength), [capacity], 'the one buffer, sized for a full batch, was reused');
    assert.deepEqual(await expect([5, 4, 3, 2, 1]), [...wide].reverse());
    assert.equal(free().length, 1);
  });

  test('one bad item in a batch fails only its own request', async () => {
    // Index 42 is outside the 10-row table: ONNX Runtime's Gather fails at run time, after the
    // request passed validation and joined a batch with good ones.
    const good = [[0, 1, 2, 3]];
    const bad = [[0, 1, 2, 42]];
    const results = await Promise.all([good, good, bad, good].map((d) => post(app, '/predictions/embedding', d)));
    assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 503, 200]);
    assert.deepEqual(results[0]!.json(), [[[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]]);
    assert.match(results[2]!.json().message, /out of data bounds/);
    assert.equal(results[2]!.json().type, 'PredictionException');
  });
});

describe('queue limits and timeouts', () => {
  let app: App;
  before(async () => {
    app = await appWith([{ ...SLOW, modelConfig: 'minWorkers: 1\nbatchSize: 1\nmaxBatchDelay: 0\nresponseTimeout: 1\njobQueueSize: 2\n' }]);
  });
  after(() => app.close());

  test('a full queue answers 503 with Retry-After; the queued requests still complete', async () => {
    const busy = post(app, '/predictions/slow', slowRows(8)); // occupies the only worker
    await new Promise((r) => setTimeout(r, 30));
    const queued = [post(app, '/predictions/slow', slowRows(1)), post(app, '/predictions/slow', slowRows(1))];
    await new Promise((r) => setTimeout(r, 5));
    const rejected = await post(app, '/predictions/slow', slowRows(1));
    assert.equal(rejected.statusCode, 503);
    assert.equal(rejected.headers['retry-after'], '1');
    assert.match(rejected.json().message, /job_queue_size 2/);
    const done = await Promise.all([busy, ...queued]);
    assert.deepEqual(done.map((r) => r.statusCode), [200, 200, 200]);
  });

  test('an inference past responseTimeout is answered 408, its worker replaced, and the next request succeeds', async () => {
    const v = app.registry.get('slow');
    const workerBefore = v.pool.workers[0]!.id;
    const t0 = performance.now();
    const res = await post(app, '/predictions/slow', slowRows(250)); // several seconds of compute
    const elapsed = performance.now() - t0;
    assert.equal(res.statusCode, 408);
    assert.equal(res.json().type, 'RequestTimeoutException');
    assert.ok(elapsed >= 990 && elapsed < 1800, `answered after ${elapsed} ms; responseTimeout is 1 s`);
    await v.pool.whenReady();
    assert.notEqual(v.pool.workers[0]!.id, workerBefore, 'the overrunning worker was replaced');
    const next = await post(app, '/predictions/slow', slowRows(1));
    assert.equal(next.statusCode, 200);
  });

  test('a request that waits in the queue past responseTimeout is answered 408 and its slot freed', async () => {
    const v = app.registry.get('slow');
    await v.pool.whenReady();
    const long = post(app, '/predictions/slow', slowRows(250));
    await new Promise((r) => setTimeout(r, 20));
    const waiting = await post(app, '/predictions/slow', slowRows(1));
    assert.equal(waiting.statusCode, 408);
    assert.match(waiting.json().message, /timeout|responseTimeout/i);
    assert.equal(v.batcher.pending, 0, 'the timed-out job left the queue');
    await long;
  });
});
