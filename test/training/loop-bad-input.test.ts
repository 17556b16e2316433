/**
 * Bad input to a training run: every mistake that can be seen before training is reported
 * before the first step, naming what is wrong; a loss that turns NaN names the step.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TensorData } from '../../src/runtime/ort.js';
import { train } from '../../src/training/trainer.js';
import type { TrainOptions } from '../../src/training/train-options.js';
import { FIXTURES } from './fixtures.js';

const ARCH = join(FIXTURES, 'architectures');
const FASHION = '/usr/share/datasets/fashion-mnist';
const f32 = (dims: number[], values: number[]): TensorData => ({ dtype: 'float32', dims, data: Float32Array.from(values) });
const SEED_DATA = { x: f32([4, 1], [1, 2, 3, 4]), y: f32([4, 1], [3, 5, 7, 9]) };

function options(over: Partial<TrainOptions>): TrainOptions {
  return {
    architecture: join(ARCH, 'neural_net.json'), dataset: SEED_DATA, loss: 'MSELoss', optimizer: { name: 'SGD', lr: 0.01 },
    batchSize: 4, epochs: 2, outDir: join(mkdtempSync(join(tmpdir(), 'nnserve-bad-')), 'out'), threads: 1, ...over,
  };
}

/** Runs and expects a failure before any step: no progress was reported and nothing was written. */
async function failsBeforeTraining(o: TrainOptions, code: string, message: RegExp): Promise<void> {
  let steps = 0;
  await assert.rejects(train(o, { onProgress: () => steps++ }), (e: Error & { code?: string }) => {
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
  assert.equal(steps, 0, 'a step ran');
  assert.equal(existsSync(o.outDir), false, 'the output folder was created');
}

test('unknown loss and optimizer names are refused, listing the known ones', async () => {
  await failsBeforeTraining(options({ loss: 'CrossEntropyLos' }), 'NNS_ERR_TRAIN_LOSS_INVALID', /unknown loss "CrossEntropyLos"; known losses are MSELoss, .*CrossEntropyLoss/);
  await failsBeforeTraining(options({ optimizer: 'Adamm' }), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /unknown optimizer "Adamm"; known optimizers are SGD, Adam/);
  await failsBeforeTraining(options({ optimizer: { name: 'SGD', lr: 0.01, momentun: 0.9 } }), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /SGD has no option "momentun"/);
  await failsBeforeTraining(options({ scheduler: { name: 'StepLRR' } }), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /unknown LR scheduler "StepLRR"/);
  await failsBeforeTraining(options({ loss: { type: 'CrossEntropyLoss', label_smoothing: 2 } }), 'NNS_ERR_TRAIN_LOSS_INVALID', /label_smoothing must be a number in \[0, 1\]/);
  await failsBeforeTraining(options({ batchSize: 0 }), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /batchSize: expected a positive integer/);
  await failsBeforeTraining(options({ dataset: 'mnist:/tmp' }), 'NNS_ERR_TRAIN_DATASET_INVALID', /unknown kind "mnist"/);
});

test("data whose shape does not fit the model is refused, naming both shapes", async () => {
  await failsBeforeTraining(
    options({ architecture: join(ARCH, 'fashion_cnn.json'), dataset: { dataset: `idx:${FASHION}`, options: { flatten: true }, limit: 64 }, loss: 'CrossEntropyLoss', test: null }),
    'NNS_ERR_TRAIN_DATASET_INVALID',
    /training x samples are float32 \[784\] but model "SimpleCNN" takes input "x" of float32 \[batch, 1, 28, 28\], i\.e\. float32 \[1, 28, 28\] per sample/,
  );
  // Class indices where MSELoss wants values shaped like the output.
  await failsBeforeTraining(
    options({ architecture: join(ARCH, 'fashion_cnn.json'), dataset: { dataset: `idx:${FASHION}`, limit: 64 }, loss: 'MSELoss', test: null }),
    'NNS_ERR_TRAIN_DATASET_INVALID',
    /training y samples are int64 \[\] but model "SimpleCNN" takes a target of float32 \[batch, 10\].*MSELoss takes a float32 target/,
  );
  await failsBeforeTraining(
    options({ validation: { x: f32([2, 2], [1, 2, 3, 4]), y: f32([2, 1], [3, 5]) } }),
    'NNS_ERR_TRAIN_DATASET_INVALID',
    /validation x samples are float32 \[2\] but model "NeuralNet" takes input "x" of float32 \[batch, 1\]/,
  );
});

test('weights that do not belong to the architecture are refused as load_state_dict would', async () => {
  await failsBeforeTraining(
    options({ weights: join(FIXTURES, 'reference', 'mlp-minibatch-init.safetensors') }),
    'NNS_ERR_STATE_DICT_MISMATCH',
    /Error\(s\) in loading state_dict for NeuralNet:.*Missing key\(s\) in state_dict: "fc1.weight"/s,
  );
});

test('a NaN loss stops training with an error naming the epoch and step', async () => {
  const xs = [1, 2, 3, 4, NaN, 6, 7, 8];
  await assert.rejects(
    train(options({ dataset: { x: f32([8, 1], xs), y: f32([8, 1], xs.map((x) => 2 * x + 1)) }, batchSize: 2, shuffle: false })),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'NNS_ERR_TRAIN_DIVERGED');
      assert.match(e.message, /the loss is NaN at epoch 1, step 3 of 4/);
      return true;
    },
  );
  // Diverging rather than bad data: an exploding learning rate turns the loss to Inf or NaN.
  await assert.rejects(
    train(options({ optimizer: { name: 'SGD', lr: 1e6 }, epochs: 50 })),
    /the loss is (NaN|Infinity) at epoch \d+, step 1 of 1/,
  );
});
