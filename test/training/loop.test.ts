/**
 * The training loop against PyTorch (tools/train_reference.py trajectories: same initial
 * weights, no shuffling, so every epoch can be compared), and its behaviour: determinism,
 * early stopping, stop requests, frozen parameters, the output files.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TensorData } from '../../src/runtime/ort.js';
import { runTraining } from '../../src/training/loop.js';
import { train } from '../../src/training/trainer.js';
import { readStateDict } from '../../src/weights/index.js';
import { FIXTURES, relError } from './fixtures.js';

const REF = join(FIXTURES, 'reference');
const ARCH = join(FIXTURES, 'architectures');
const FASHION = '/usr/share/datasets/fashion-mnist';
const out = (name: string) => join(mkdtempSync(join(tmpdir(), 'nnserve-train-')), name);
const f32 = (dims: number[], values: number[]): TensorData => ({ dtype: 'float32', dims, data: Float32Array.from(values) });

interface Trajectories {
  regression: { epoch_train_loss: number[] };
  cnn_minibatch: { step_loss: number[] };
  mlp_minibatch: { epochs: { train_loss: number; train_accuracy: number; val_loss: number; val_accuracy: number; lr: number }[] };
}
const trajectories = JSON.parse(readFileSync(join(REF, 'trajectories.json'), 'utf8')) as Trajectories;

/** The seed's 5.6 data: y = 2x + 1 at x = 1..4. */
const SEED_DATA = { x: f32([4, 1], [1, 2, 3, 4]), y: f32([4, 1], [3, 5, 7, 9]) };

test("the seed's y = 2x + 1 regression follows PyTorch's SGD epoch by epoch and reaches loss < 1e-3", async () => {
  const dir = out('regression');
  const r = await runTraining({
    architecture: join(ARCH, 'neural_net.json'), weights: join(REF, 'regression-init.safetensors'), dataset: SEED_DATA,
    loss: 'MSELoss', optimizer: { name: 'SGD', lr: 0.01 }, batchSize: 4, epochs: 1000, outDir: dir, threads: 1,
  });
  const torch = trajectories.regression.epoch_train_loss;
  assert.equal(r.epochs.length, 1000);
  r.epochs.forEach((e, i) => {
    assert.ok(Math.abs(e.train_loss - torch[i]!) <= 1e-4 * Math.max(torch[i]!, 1e-2), `epoch ${i + 1}: loss ${e.train_loss}, PyTorch ${torch[i]}`);
  });
  assert.ok(r.epochs[999]!.train_loss < 1e-3, `final loss ${r.epochs[999]!.train_loss}`);
  const ours = await readStateDict(r.files.weights);
  for (const [key, t] of await readStateDict(join(REF, 'regression-final.safetensors'))) {
    assert.ok(relError(ours.get(key)!.data as Float32Array, t.data as Float32Array) < 1e-5, key);
  }
});

test('mini-batches with a partial last batch, BatchNorm, Adam + weight decay, clipping, StepLR and validation follow PyTorch', async () => {
  const r = await runTraining({
    architecture: join(ARCH, 'mlp_batchnorm.json'), weights: join(REF, 'mlp-minibatch-init.safetensors'),
    dataset: { dataset: `idx:${FASHION}`, limit: 500 },
    validation: { dataset: `idx:${FASHION}`, options: { split: 'test' }, limit: 200 },
    test: null,
    loss: 'CrossEntropyLoss', optimizer: { name: 'Adam', lr: 1e-2, weight_decay: 1e-4 },
    clipGradNorm: 0.5, scheduler: { name: 'StepLR', step_size: 1, gamma: 0.5 },
    batchSize: 64, epochs: 3, shuffle: false, outDir: out('mlp'), threads: 2,
  });
  const torch = trajectories.mlp_minibatch.epochs;
  assert.deepEqual(r.epochs.map((e) => e.steps), [8, 8, 8]); // 7 x 64 + 52
  r.epochs.forEach((e, i) => {
    const t = torch[i]!;
    assert.equal(e.lr, t.lr);
    assert.ok(Math.abs(e.train_loss - t.train_loss) < 1e-4 * t.train_loss, `epoch ${i + 1} train loss ${e.train_loss} vs ${t.train_loss}`);
    assert.ok(Math.abs(e.val_loss! - t.val_loss) < 1e-4 * t.val_loss, `epoch ${i + 1} val loss ${e.val_loss} vs ${t.val_loss}`);
    assert.equal(Math.round(e.train_accuracy! * 500), Math.round(t.train_accuracy * 500));
    assert.equal(Math.round(e.val_accuracy! * 200), Math.round(t.val_accuracy * 200));
  });
  assert.deepEqual(r.best, { epoch: 3, metric: 'val_accuracy', value: r.epochs[2]!.val_accuracy });
  const ours = await readStateDict(r.files.weights);
  for (const [key, t] of await readStateDict(join(REF, 'mlp-minibatch-final.safetensors'))) {
    const a = Array.from(ours.get(key)!.data, Number);
    const b = Array.from(t.data, Number);
    // 1.bias feeds BatchNorm, which cancels it: its gradient is float rounding noise that Adam
    // scales up, so only its size is comparable.
    assert.ok(relError(a, b) < (key === '1.bias' ? 2e-2 : 1e-3), `${key}: ${relError(a, b)}`);
  }
});

test(
  'a small CNN on real Fashion-MNIST images follows PyTorch step by step',
  // Real images have constant backgrounds, so many 2x2 pooling windows hold tied maxima, and
  // PyTorch sends the gradient to the first of them only (on noise images there are no ties).
  async () => {
    const r = await runTraining({
      architecture: join(ARCH, 'small_cnn.json'), weights: join(REF, 'cnn-minibatch-init.safetensors'),
      dataset: { dataset: `idx:${FASHION}`, options: { mean: 0.5, std: 0.5 }, limit: 256 }, test: null,
      loss: 'CrossEntropyLoss', optimizer: { name: 'Adam', lr: 1e-3 }, batchSize: 32, epochs: 1, shuffle: false, outDir: out('cnn'), threads: 2,
    });
    const torch = trajectories.cnn_minibatch.step_loss;
    r.step_loss.forEach(([, loss], i) => assert.ok(Math.abs(loss - torch[i]!) < 1e-4 * torch[i]!, `step ${i + 1}: loss ${loss}, PyTorch ${torch[i]}`));
    const ours = await readStateDict(r.files.weights);
    for (const [key, t] of await readStateDict(join(REF, 'cnn-minibatch-final.safetensors'))) {
      assert.ok(relError(ours.get(key)!.data as Float32Array, t.data as Float32Array) < 1e-3, `${key}: ${relError(ours.get(key)!.data as Float32Array, t.data as Float32Array)}`);
    }
  },
);

/** A model with BatchNorm and Dropout trained on shuffled batches: everything random is seeded. */
async function seeded(seed: number): Promise<Buffer> {
  const n = 96;
  const xs = Array.from({ length: n }, (_, i) => -2 + (4 * i) / n);
  const r = await train({
    architecture: 'examples/architectures/sequential_batchnorm_dropout.json',
    dataset: { x: f32([n, 1], xs), y: f32([n, 1], xs.map((x) => 2 * x + 1)) },
    validation: { split: 0.25 },
    loss: 'MSELoss', optimizer: 'Adam', batchSize: 16, epochs: 3, seed, outDir: out(`seed-${seed}`), threads: 2,
  });
  return readFileSync(r.files.weights);
}

test('the same seed gives identical final weights (init, shuffling, split, dropout masks); another seed does not', async () => {
  const [a, b, c] = [await seeded(7), await seeded(7), await seeded(8)];
  assert.ok(a.equals(b), 'two runs with seed 7 differ');
  assert.ok(!a.equals(c), 'seeds 7 and 8 gave the same weights');
});

test('early stopping ends after patience + 1 epochs without a better validation loss, and best.safetensors is that epoch', async () => {
  const patience = 2;
  const r = await train({
    architecture: join(ARCH, 'neural_net.json'), weights: join(REF, 'regression-init.safetensors'), dataset: SEED_DATA,
    // A validation set the model cannot fit while it learns y = 2x + 1.
    validation: { x: f32([4, 1], [1, 2, 3, 4]), y: f32([4, 1], [-50, -100, -150, -200]) },
    loss: 'MSELoss', optimizer: { name: 'SGD', lr: 0.01 }, batchSize: 4, epochs: 100,
    earlyStopping: { patience }, outDir: out('early'), threads: 1,
  });
  assert.equal(r.stopped_early, true);
  assert.equal(r.stop_reason, 'early_stopping');
  const losses = r.epochs.map((e) => e.val_loss!);
  const bestEpoch = losses.indexOf(Math.min(...losses)) + 1;
  assert.equal(r.epochs.length, bestEpoch + patience + 1);
  assert.deepEqual(r.best, { epoch: bestEpoch, metric: 'val_loss', value: losses[bestEpoch - 1] });
  assert.ok(!readFileSync(r.files.best).equals(readFileSync(r.files.weights)), 'best.safetensors should hold an earlier epoch than the final weights');
});

test('aborting stops after the current step and still writes every output', async () => {
  const abort = new AbortController();
  const r = await train({
    architecture: join(ARCH, 'neural_net.json'), dataset: SEED_DATA, loss: 'MSELoss', optimizer: { name: 'SGD', lr: 0.01 },
    batchSize: 4, epochs: 1_000_000, outDir: out('abort'), threads: 1,
  }, { onEpoch: (m) => { if (m.epoch === 3) abort.abort(); }, signal: abort.signal });
  assert.equal(r.stop_reason, 'requested');
  assert.ok(r.epochs.length >= 3 && r.epochs.length < 1000, `${r.epochs.length} epochs`);
  for (const f of Object.values(r.files)) assert.ok(existsSync(f), f);
});

test('frozen parameters keep their values; the others train', async () => {
  const init = await readStateDict(join(REF, 'regression-init.safetensors'));
  const r = await runTraining({
    architecture: join(ARCH, 'neural_net.json'), weights: join(REF, 'regression-init.safetensors'), dataset: SEED_DATA,
    loss: 'MSELoss', optimizer: { name: 'SGD', lr: 0.01 }, freeze: ['fc1.*'], batchSize: 4, epochs: 20, outDir: out('frozen'), threads: 1,
  });
  const final = await readStateDict(r.files.weights);
  assert.deepEqual(final.get('fc1.weight')!.data, init.get('fc1.weight')!.data);
  assert.deepEqual(final.get('fc1.bias')!.data, init.get('fc1.bias')!.data);
  assert.notDeepEqual(final.get('fc2.weight')!.data, init.get('fc2.weight')!.data);
  assert.ok(r.epochs[19]!.train_loss < r.epochs[0]!.train_loss);
});

test('metrics.json records every epoch; loss.png is an 800x480 PNG', async () => {
  const r = await runTraining({
    architecture: join(ARCH, 'neural_net.json'), dataset: SEED_DATA, validation: SEED_DATA,
    loss: 'MSELoss', optimizer: { name: 'Adam', lr: 0.01 }, batchSize: 2, epochs: 4, outDir: out('files'), threads: 1,
  });
  const m = JSON.parse(readFileSync(r.files.metrics, 'utf8'));
  assert.equal(m.epochs.length, 4);
  for (const e of m.epochs) {
    for (const k of ['epoch', 'train_loss', 'val_loss', 'lr', 'seconds', 'samples_per_second', 'steps']) assert.equal(typeof e[k], 'number', k);
    assert.equal(e.steps, 2);
  }
  assert.equal(m.optimizer, 'Adam');
  const png = readFileSync(r.files.loss_curve);
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [800, 480]);
});
