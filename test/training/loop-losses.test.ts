/**
 * Validation and test losses are computed in JS from the eval graph's outputs
 * (src/training/loss-metrics.ts): each torch.nn loss against torch.nn.functional's value for the
 * same inputs (tools/train_reference.py eval-losses), fed in two uneven batches.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LossSpec } from '../../src/compiler/index.js';
import type { TensorData } from '../../src/runtime/ort.js';
import { LossAccumulator, resolveLossSpec } from '../../src/training/loss-metrics.js';
import { readFixture } from './fixtures.js';

interface Case {
  spec: LossSpec;
  loss: number;
  accuracy: number | null;
  pred: { dims: number[]; data: number[] };
  target: { dtype: 'int64' | 'float32'; dims: number[]; data: number[] };
}

/** Rows [from, to) of a flat tensor. */
function rows(t: { dtype?: string; dims: number[]; data: number[] }, from: number, to: number): TensorData {
  const size = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const part = t.data.slice(from * size, to * size);
  const dims = [to - from, ...t.dims.slice(1)];
  return t.dtype === 'int64' ? { dtype: 'int64', dims, data: BigInt64Array.from(part, BigInt) } : { dtype: 'float32', dims, data: Float32Array.from(part) };
}

for (const c of readFixture<{ cases: Case[] }>('reference/eval-losses.json').cases) {
  test(`${JSON.stringify(c.spec)} over a set equals PyTorch's`, () => {
    const acc = new LossAccumulator(c.spec);
    const n = c.pred.dims[0]!;
    for (const [from, to] of [[0, 5], [5, n]] as const) acc.add(rows(c.pred, from, to), rows(c.target, from, to));
    const r = acc.result();
    assert.ok(Math.abs(r.loss - c.loss) <= 1e-5 * Math.abs(c.loss), `loss ${r.loss}, PyTorch ${c.loss}`);
    if (c.accuracy === null) assert.equal(r.accuracy, undefined);
    else assert.ok(Math.abs(r.accuracy! - c.accuracy) < 1e-12, `accuracy ${r.accuracy}, PyTorch ${c.accuracy}`);
  });
}

test('loss names: torch class names in any case, or without "Loss"; others are refused', () => {
  assert.equal(resolveLossSpec('crossentropyloss').type, 'CrossEntropyLoss');
  assert.equal(resolveLossSpec('mse').type, 'MSELoss');
  assert.equal(resolveLossSpec('BCEWithLogits').type, 'BCEWithLogitsLoss');
  assert.deepEqual(resolveLossSpec({ type: 'nll_loss' as 'NLLLoss', weight: [1, 2] }), { type: 'NLLLoss', weight: [1, 2] });
  assert.throws(() => resolveLossSpec('HingeLoss'), /NNS_ERR|unknown loss "HingeLoss"; known losses are MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, NLLLoss, KLDivLoss/);
});
