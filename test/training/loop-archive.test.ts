/** The archive a training run writes serves through nnserve's app and predicts as the trained weights do. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildApp } from '../../src/app.js';
import { compileArchitecture } from '../../src/compiler/index.js';
import { createSession } from '../../src/runtime/ort.js';
import { train } from '../../src/training/trainer.js';
import { readStateDict } from '../../src/weights/index.js';
import { testConfig } from '../helpers.js';
import { FIXTURES } from './fixtures.js';

test('NAME.mar from a run serves over HTTP and answers as the final weights do', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'nnserve-train-mar-')), 'out');
  const r = await train({
    architecture: join(FIXTURES, 'architectures', 'neural_net.json'),
    dataset: { x: { dtype: 'float32', dims: [4, 1], data: Float32Array.from([1, 2, 3, 4]) }, y: { dtype: 'float32', dims: [4, 1], data: Float32Array.from([3, 5, 7, 9]) } },
    loss: 'MSELoss', optimizer: { name: 'Adam', lr: 0.01 }, batchSize: 4, epochs: 500, outDir: dir, name: 'linear', threads: 1,
  });
  assert.equal(r.files.archive, join(dir, 'linear.mar'));

  // What the weights answer, computed without the server.
  const arch = JSON.parse(readFileSync(r.files.architecture, 'utf8'));
  const compiled = compileArchitecture(arch, await readStateDict(r.files.weights));
  const session = await createSession(compiled.onnx, { engine: 'native', intraOpThreads: 1 });
  const xs = [[1.0], [2.5], [4.0]];
  const expected = (await session.run({ x: { dtype: 'float32', dims: [3, 1], data: Float32Array.from(xs.flat()) } })).output!.data as Float32Array;
  await session.release();

  const store = mkdtempSync(join(tmpdir(), 'nnserve-train-store-'));
  copyFileSync(r.files.archive, join(store, 'linear.mar'));
  const app = await buildApp(testConfig({ model_store: store, default_workers_per_model: 1 }));
  try {
    assert.deepEqual(app.loadFailures, []);
    const res = await app.inference.inject({ method: 'POST', url: '/predictions/linear', payload: { data: xs }, headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 200, res.body);
    const got = (res.json() as number[][]).flat();
    got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `served ${v}, weights give ${expected[i]}`));
    // The model learned the seed's y = 2x + 1.
    xs.forEach(([x], i) => assert.ok(Math.abs(got[i]! - (2 * x! + 1)) < 0.05, `f(${x}) = ${got[i]}`));
  } finally {
    await app.close();
  }
});
