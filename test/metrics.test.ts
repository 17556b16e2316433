import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.js';
import { NEURALNET, SLOW, appWith, slowRows } from './helpers.js';
import { familyOf, parseExposition, seriesIds, value, type Exposition } from './deploy/exposition.js';

const MV = ['model_name', 'model_version'];
const TS = ['model_name', 'model_version', 'hostname'];
const HOST = ['Level', 'Hostname'];

/** Every family nnserve exports: name, TYPE, label names (le of histogram buckets aside). */
const FAMILIES: [string, string, string[]][] = [
  ['Requests2XX', 'counter', HOST],
  ['Requests4XX', 'counter', HOST],
  ['Requests5XX', 'counter', HOST],
  ['ts_inference_requests_total', 'counter', TS],
  ['ts_inference_latency_microseconds', 'counter', TS],
  ['ts_queue_latency_microseconds', 'counter', TS],
  ['nnserve_request_duration_seconds', 'histogram', MV],
  ['nnserve_queue_wait_seconds', 'histogram', MV],
  ['nnserve_inference_compute_seconds', 'histogram', MV],
  ['nnserve_preprocess_seconds', 'histogram', MV],
  ['nnserve_batch_size', 'histogram', MV],
  ['nnserve_requests_rejected_total', 'counter', MV],
  ['nnserve_requests_timed_out_total', 'counter', MV],
  ['nnserve_requests_failed_total', 'counter', [...MV, 'reason']],
  ['nnserve_queue_depth', 'gauge', MV],
  ['nnserve_workers', 'gauge', [...MV, 'state']],
  ['nnserve_models_loaded', 'gauge', []],
  ['nnserve_models_loading', 'gauge', []],
  ['nnserve_ready', 'gauge', []],
  // Process and Node metrics (prom-client's defaults); the dashboard uses these.
  ['process_cpu_seconds_total', 'counter', []],
  ['process_resident_memory_bytes', 'gauge', []],
  ['nodejs_heap_size_used_bytes', 'gauge', []],
  ['nodejs_eventloop_lag_p99_seconds', 'gauge', []],
];

const json = { 'content-type': 'application/json' };

async function scrape(app: App, query = ''): Promise<{ text: string; e: Exposition }> {
  const res = await app.metricsApp.inject({ url: `/metrics${query}` });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
  return { text: res.body, e: parseExposition(res.body) };
}

describe('metrics', () => {
  let app: App;
  before(async () => {
    app = await appWith([
      { ...NEURALNET, modelConfig: 'minWorkers: 1\n' },
      { ...SLOW, name: 'slow_queue', modelConfig: 'minWorkers: 1\nbatchSize: 1\njobQueueSize: 2\n' },
      { ...SLOW, name: 'slow_timeout', modelConfig: 'minWorkers: 1\nbatchSize: 1\nresponseTimeout: 1\n' },
    ]);
  });
  after(() => app.close());

  const predict = (url: string, payload: unknown) => app.inference.inject({ method: 'POST', url, headers: json, payload: JSON.stringify(payload) });

  test('names, types and labels are the documented ones; nothing else but Node runtime metrics', async () => {
    assert.equal((await predict('/predictions/neuralnet', { data: [[1.0]] })).statusCode, 200);
    assert.equal((await predict('/predictions/neuralnet', { data: [[1.0, 2.0]] })).statusCode, 400);
    const { e } = await scrape(app);
    const labelsSeen = new Map<string, Set<string>>();
    for (const s of e.samples) {
      const family = familyOf(e, s.name);
      const set = labelsSeen.get(family) ?? new Set<string>();
      for (const k of Object.keys(s.labels)) if (!(k === 'le' && e.types.get(family) === 'histogram')) set.add(k);
      labelsSeen.set(family, set);
    }
    for (const [name, type, labels] of FAMILIES) {
      assert.equal(e.types.get(name), type, `${name} should be a ${type}`);
      assert.deepEqual([...(labelsSeen.get(name) ?? [])].sort(), [...labels].sort(), `labels of ${name}`);
    }
    const listed = new Set(FAMILIES.map(([n]) => n));
    const extra = [...e.types.keys()].filter((n) => !listed.has(n) && !/^(process|nodejs)_/.test(n));
    assert.deepEqual(extra, [], 'families not in the documented list');
  });

  test("TorchServe's families print as TorchServe prints them (its Postman regex matches)", async () => {
    const { text } = await scrape(app);
    assert.match(text, /Requests2XX\{Level="Host",Hostname=".*",\} \d+\.\d+/);
    assert.match(text, /^ts_inference_requests_total\{model_name="neuralnet",model_version="1\.0",hostname="[^"]+",\} \d+\.0$/m);
    assert.match(text, /^ts_inference_latency_microseconds\{model_name="neuralnet",model_version="1\.0",hostname="[^"]+",\} \d/m);
  });

  test('?name[]= returns only the families named, as TorchServe', async () => {
    const { e } = await scrape(app, '?name[]=ts_inference_requests_total&name[]=nnserve_queue_depth&name[]=no_such_metric');
    assert.deepEqual([...e.types.keys()].sort(), ['nnserve_queue_depth', 'ts_inference_requests_total']);
    const one = await scrape(app, '?name[]=nnserve_request_duration_seconds');
    assert.deepEqual([...one.e.types.keys()], ['nnserve_request_duration_seconds']);
    assert.ok(one.e.samples.some((s) => s.name === 'nnserve_request_duration_seconds_bucket' && s.labels.le === '+Inf'));
  });

  test('a model version has zero series from registration (so rate() works) and none after unregistering', async () => {
    const { e } = await scrape(app);
    const slow = { model_name: 'slow_queue', model_version: '1.0' };
    assert.equal(value(e, 'ts_inference_requests_total', slow), 0);
    assert.equal(value(e, 'nnserve_request_duration_seconds_count', slow), 0);
    assert.equal(value(e, 'nnserve_requests_rejected_total', slow), 0);
    assert.equal(value(e, 'nnserve_workers', { ...slow, state: 'idle' }), 1);

    const extra = await appWith([{ ...NEURALNET, name: 'gone_soon' }]);
    try {
      await extra.inference.inject({ method: 'POST', url: '/predictions/gone_soon', headers: json, payload: '{"data": [[1.0]]}' });
      const before = await scrape(extra);
      assert.equal(value(before.e, 'ts_inference_requests_total', { model_name: 'gone_soon' }), 1);
      await extra.registry.unregister('gone_soon');
      const afterText = (await scrape(extra)).text;
      assert.doesNotMatch(afterText, /gone_soon/);
    } finally {
      await extra.close();
    }
  });

  test('queue depth and busy workers are read at scrape time', async () => {
    const url = '/predictions/slow_timeout';
    const running = Array.from({ length: 4 }, () => predict(url, slowRows(1)));
    try {
      let e: Exposition | undefined;
      const labels = { model_name: 'slow_timeout', model_version: '1.0' };
      for (let i = 0; i < 200; i++) {
        e = (await scrape(app)).e;
        if ((value(e, 'nnserve_queue_depth', labels) ?? 0) >= 1) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok((value(e!, 'nnserve_queue_depth', labels) ?? 0) >= 1, 'a backlog shows as queue depth');
      assert.equal(value(e!, 'nnserve_workers', { ...labels, state: 'busy' }), 1);
      assert.equal(value(e!, 'nnserve_workers', { ...labels, state: 'idle' }), 0);
    } finally {
      await Promise.all(running);
    }
  });

  test('rejected (queue full), timed-out and failed requests are counted per model and reason', async () => {
    const [q, t] = await Promise.all([
      Promise.all(Array.from({ length: 10 }, () => predict('/predictions/slow_queue', slowRows(1)))),
      Promise.all(Array.from({ length: 40 }, () => predict('/predictions/slow_timeout', slowRows(1)))),
    ]);
    const count = (rs: { statusCode: number }[], status: number) => rs.filter((r) => r.statusCode === status).length;
    const rejected = count(q, 503);
    const timedOut = count(t, 408);
    assert.ok(rejected > 0 && timedOut > 0, `the load must overflow the queue (${rejected} x 503) and the timeout (${timedOut} x 408)`);
    const { e } = await scrape(app);
    const sq = { model_name: 'slow_queue', model_version: '1.0' };
    const st = { model_name: 'slow_timeout', model_version: '1.0' };
    assert.equal(value(e, 'nnserve_requests_rejected_total', sq), rejected);
    assert.equal(value(e, 'nnserve_requests_failed_total', { ...sq, reason: 'QUEUE_FULL' }), rejected);
    assert.equal(value(e, 'ts_inference_requests_total', sq), count(q, 200));
    assert.equal(value(e, 'nnserve_requests_timed_out_total', st), timedOut);
    assert.equal(value(e, 'nnserve_requests_failed_total', { ...st, reason: 'REQUEST_TIMEOUT' }), timedOut);
    assert.equal(value(e, 'nnserve_requests_failed_total', { model_name: 'neuralnet', model_version: '1.0', reason: 'INPUT_SHAPE_MISMATCH' }), 1);
  });

  test('10,000 requests naming unknown models or versions add no series', async () => {
    const series = (e: Exposition) => [...seriesIds(e)].filter((id) => !/^(process|nodejs)_/.test(id));
    const first = (await scrape(app)).e;
    const before = series(first);
    const urls = (i: number) => [
      `/predictions/ghost_${i}`, `/predictions/neuralnet/ghost_${i}`, `/v2/models/ghost_${i}/infer`,
      `/v2/models/neuralnet/versions/ghost_${i}/infer`, `/predictions/ghost_${i}/1.0`,
    ];
    for (let i = 0; i < 10_000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => {
        const u = urls(i + j);
        return predict(u[(i + j) % u.length]!, { data: [[1.0]] });
      }));
    }
    const { text, e } = await scrape(app);
    assert.equal(value(e, 'Requests4XX')! - value(first, 'Requests4XX')!, 10_000, 'each one is a 404');
    assert.deepEqual(series(e), before);
    assert.doesNotMatch(text, /ghost/);
  });
});

test('/metrics stays under 100 kB with 10 models loaded and used', async (t) => {
  const models = Array.from({ length: 10 }, (_, i) => ({ ...NEURALNET, name: `neuralnet_model_${i}` }));
  const app = await appWith(models);
  try {
    for (const m of models) {
      const post = (data: unknown) => app.inference.inject({ method: 'POST', url: `/predictions/${m.name}`, headers: json, payload: JSON.stringify({ data }) });
      assert.equal((await post([[1.0], [2.0]])).statusCode, 200);
      assert.equal((await post([[1.0, 2.0]])).statusCode, 400);
    }
    const res = await app.metricsApp.inject({ url: '/metrics' });
    const bytes = Buffer.byteLength(res.body);
    t.diagnostic(`/metrics with 10 models: ${bytes} bytes, ${res.body.split('\n').filter((l) => l && !l.startsWith('#')).length} series`);
    assert.equal(value(parseExposition(res.body), 'nnserve_models_loaded'), 10);
    assert.ok(bytes < 100_000, `/metrics is ${bytes} bytes`);
  } finally {
    await app.close();
  }
});
