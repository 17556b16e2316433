/**
 * Real tasks on real data, short enough for CI (the 5-epoch Fashion-MNIST CNN against PyTorch
 * is bench/train-fashion-cnn.ts). PyTorch's figures for the same settings are in
 * test/fixtures/training/reference/ (tools/train_reference.py).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildApp } from '../../src/app.js';
import { compileArchitecture } from '../../src/compiler/index.js';
import { createSession } from '../../src/runtime/ort.js';
import { IdxDataset } from '../../src/training/datasets/index.js';
import { runTraining } from '../../src/training/loop.js';
import { train } from '../../src/training/trainer.js';
import { readStateDict } from '../../src/weights/index.js';
import { ROOT, testConfig } from '../helpers.js';
import { splitPngs } from '../preprocess/http.js';
import { FIXTURES } from './fixtures.js';

const ARCH = join(FIXTURES, 'architectures');
const FASHION = '/usr/share/datasets/fashion-mnist';
const out = (name: string) => join(mkdtempSync(join(tmpdir(), 'nnserve-real-')), name);
/** ToTensor + Normalize((0.5,), (0.5,)), as the seed's 7.4. */
const fashion = (split: 'train' | 'test', limit: number) => ({ dataset: `idx:${FASHION}`, options: { split, mean: 0.5, std: 0.5 }, limit });

test("the seed's SimpleCNN learns Fashion-MNIST (one epoch on 10000 images: >= 78% on 2000 test images) and its archive classifies PNGs as the weights do", async () => {
  const r = await train({
    architecture: join(ARCH, 'fashion_cnn.json'), dataset: fashion('train', 10_000), test: fashion('test', 2000),
    loss: 'CrossEntropyLoss', optimizer: { name: 'Adam', lr: 1e-3 }, batchSize: 64, epochs: 1, outDir: out('cnn'), threads: 2,
    name: 'fashion', handler: 'image_classifier',
  });
  assert.equal(r.epochs[0]!.steps, 157); // 156 x 64 + 16
  assert.ok(r.test!.accuracy! >= 0.78, `test accuracy ${r.test!.accuracy}`);

  // The first test images as PNG files (test/fixtures/images/fashion-1000.pngs) through the
  // image_classifier and the model-config the run wrote must get the classes the weights give
  // the IDX tensors.
  const n = 40;
  const weights = compileArchitecture(JSON.parse(readFileSync(r.files.architecture, 'utf8')), await readStateDict(r.files.weights));
  const session = await createSession(weights.onnx, { engine: 'native', intraOpThreads: 2 });
  const { x } = (await IdxDataset.open(FASHION, { split: 'test', mean: 0.5, std: 0.5 })).getBatch(Uint32Array.from({ length: n }, (_, i) => i));
  const logits = (await session.run({ x })).output!.data as Float32Array;
  await session.release();
  const expected = Array.from({ length: n }, (_, i) => {
    const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
    return row.indexOf(Math.max(...row));
  });
  const store = mkdtempSync(join(tmpdir(), 'nnserve-real-store-'));
  copyFileSync(r.files.archive, join(store, 'fashion.mar'));
  const app = await buildApp(testConfig({ model_store: store, default_workers_per_model: 1 }));
  try {
    assert.deepEqual(app.loadFailures, []);
    const pngs = splitPngs(readFileSync(join(ROOT, 'test/fixtures/images/fashion-1000.pngs')));
    for (let i = 0; i < n; i++) {
      const res = await app.inference.inject({ method: 'POST', url: '/predictions/fashion?topk=1', payload: pngs[i]!, headers: { 'content-type': 'image/png' } });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(Object.keys(res.json()), [String(expected[i])], `image ${i}`);
    }
  } finally {
    await app.close();
  }
});

test('an LSTM reading Fashion-MNIST rows as a 28-step sequence learns in one epoch (chance is 10%)', async () => {
  const torch = JSON.parse(readFileSync(join(FIXTURES, 'reference', 'fashion-lstm.json'), 'utf8')) as { runs: { test_accuracy: number }[] };
  const torchMin = Math.min(...torch.runs.map((x) => x.test_accuracy)) / 100;
  const r = await runTraining({
    architecture: join(ARCH, 'fashion_lstm.json'), dataset: fashion('train', 6000), test: fashion('test', 2000),
    loss: 'CrossEntropyLoss', optimizer: { name: 'Adam', lr: 1e-3 }, batchSize: 64, epochs: 1, outDir: out('lstm'), threads: 2,
  });
  const acc = r.test!.accuracy!;
  assert.ok(acc >= 0.45, `test accuracy ${acc}`);
  // PyTorch with the same settings and three seeds: 57.4-61.9%.
  assert.ok(acc >= torchMin - 0.08, `test accuracy ${acc}, PyTorch's lowest ${torchMin}`);
});

test("the seed's NeuralNet(1, 8, 1) fits y = 2x + 1 with SGD lr 0.01 in 1000 full-batch epochs (loss < 1e-3) from any seed", async () => {
  const f32 = (v: number[]) => ({ dtype: 'float32' as const, dims: [4, 1], data: Float32Array.from(v) });
  for (const seed of [0, 1, 2]) {
    const r = await runTraining({
      architecture: join(ARCH, 'neural_net.json'), dataset: { x: f32([1, 2, 3, 4]), y: f32([3, 5, 7, 9]) },
      loss: 'MSELoss', optimizer: { name: 'SGD', lr: 0.01 }, batchSize: 4, epochs: 1000, seed, outDir: out(`reg-${seed}`), threads: 1,
    });
    assert.ok(r.epochs[999]!.train_loss < 1e-3, `seed ${seed}: loss ${r.epochs[999]!.train_loss}`);
  }
});
