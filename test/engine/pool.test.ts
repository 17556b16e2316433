import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { nnsError } from '../../src/errors.js';
import { FASHION_MLP, NEURALNET, ROOT, SLOW, appWith, golden, makeStore, maxAbsDiff, nest, slowRows } from '../helpers.js';

const post = (app: Awaited<ReturnType<typeof appWith>>, url: string, payload: unknown) =>
  app.inference.inject({ method: 'POST', url, payload: payload as object, headers: { 'content-type': 'application/json' } });

describe('worker pool', () => {
  test('a worker killed mid-request: its request fails with a clear 5xx, it is replaced, the next request succeeds', async () => {
    const app = await appWith([{ ...SLOW, modelConfig: 'minWorkers: 1\nbatchSize: 1\nmaxBatchDelay: 0\n' }]);
    try {
      const v = app.registry.get('slow');
      const victim = v.pool.workers[0]!;
      const inflight = post(app, '/predictions/slow', slowRows(150));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(victim.status, 'BUSY');
      v.pool.kill(victim, nnsError('WORKER_DIED', `Worker died: worker ${victim.id} was killed`));
      const res = await inflight;
      assert.equal(res.statusCode, 500);
      assert.match(res.json().message, /Worker died/);
      assert.ok(!v.pool.workers.includes(victim), 'the dead worker left the pool');
      await v.pool.whenReady();
      assert.notEqual(v.pool.workers[0]!.id, victim.id);
      const next = await post(app, '/predictions/slow', slowRows(1));
      assert.equal(next.statusCode, 200);
      await victim.exited; // the killed thread really stops once its Run returns
    } finally {
      await app.close();
    }
  });

  test('a worker thread that exits is replaced and never handed work', async () => {
    const app = await appWith([{ ...NEURALNET, modelConfig: 'minWorkers: 2\nbatchSize: 1\nmaxBatchDelay: 0\n' }]);
    try {
      const v = app.registry.get('neuralnet');
      const [a, b] = v.pool.workers;
      await a!.thread.terminate(); // idle, so terminating is safe
      assert.equal(a!.status, 'DEAD');
      for (let i = 0; i < 20; i++) assert.equal((await post(app, '/predictions/neuralnet', [[i]])).statusCode, 200);
      assert.ok(!v.pool.workers.includes(a!));
      assert.ok(v.pool.workers.includes(b!));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(v.pool.readyCount, 2, 'a replacement joined');
    } finally {
      await app.close();
    }
  });

  test('a model that fails to load is reported by name with the reason; the others still serve', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnserve-bad-'));
    const bad = join(dir, 'model.onnx');
    writeFileSync(bad, 'this is not an onnx protobuf');
    const app = await appWith([NEURALNET, { name: 'broken', onnx: bad }]);
    try {
      assert.equal(app.loadFailures.length, 1);
      assert.equal(app.loadFailures[0]!.archive, 'broken.mar');
      assert.match(app.loadFailures[0]!.reason, /broken\/1\.0.*(protobuf|parse|load)/i);
      assert.equal(app.registry.has('broken'), false, 'nothing half-registered');
      assert.equal((await post(app, '/predictions/neuralnet', [[1]])).statusCode, 200);
      assert.equal((await post(app, '/predictions/broken', [[1]])).statusCode, 404);
    } finally {
      await app.close();
    }
  });

  test('the WASM engine gives the same outputs as native', async () => {
    const native = await appWith([FASHION_MLP], { engine: 'native' });
    const wasm = await appWith([FASHION_MLP], { engine: 'wasm' });
    try {
      assert.equal(wasm.registry.get('fashion_mlp').pool.engine, 'wasm');
      assert.equal(native.registry.get('fashion_mlp').pool.engine, 'native');
      const c = golden('fashion_mlp')[0]!;
      const body = nest(c.inputs.input!.data, c.inputs.input!.shape);
      const a = (await post(native, '/predictions/fashion_mlp', body)).json();
      const b = (await post(wasm, '/predictions/fashion_mlp', body)).json();
      const scale = Math.max(...c.outputs.output!.data.map(Math.abs));
      assert.ok(maxAbsDiff(b, c.outputs.output!.data) <= 1e-5 * scale, 'wasm matches PyTorch');
      assert.ok(maxAbsDiff(a, (b as number[][]).flat()) <= 1e-5 * scale, 'wasm matches native');
    } finally {
      await native.close();
      await wasm.close();
    }
  });

  test('when the native addon cannot load, the server falls back to WASM by itself', async () => {
    const store = await makeStore([NEURALNET]);
    // A module hook that makes `import "onnxruntime-node"` fail, as a missing or broken binary would.
    const hook = `data:text/javascript,${encodeURIComponent(`
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent('export async function resolve(s, c, n) { if (s === "onnxruntime-node") throw new Error("simulated: native binding missing"); return n(s, c); }'));
    `)}`;
    const port = 18000 + Math.floor(Math.random() * 1000);
    const child = spawn(process.execPath, ['--import', hook, join(ROOT, 'dist/src/cli.js'), 'start', '--model-store', store], {
      env: { ...process.env, NNSERVE_DISABLE_TOKEN_AUTHORIZATION: 'true', NNSERVE_INFERENCE_ADDRESS: `http://127.0.0.1:${port}`, NNSERVE_MANAGEMENT_ADDRESS: `http://127.0.0.1:${port + 1}`, NNSERVE_METRICS_ADDRESS: `http://127.0.0.1:${port + 2}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    try {
      await waitFor(() => log.includes('nnserve started'), 20_000, () => log);
      assert.match(log, /running on WASM/);
      const res = await fetch(`http://127.0.0.1:${port}/predictions/neuralnet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[[4]]' });
      assert.equal(res.status, 200);
      assert.ok(Math.abs(((await res.json()) as number[][])[0]![0]! - 9) < 0.05);
      const describe = await (await fetch(`http://127.0.0.1:${port + 1}/models/neuralnet`)).json() as { engine: string }[];
      assert.equal(describe[0]!.engine, 'onnxruntime-web');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});

async function waitFor(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out; output so far:\n${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
