/** Random initialisation: PyTorch's default rules, reproducible from a seed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileArchitecture, initStateDict } from '../../src/compiler/index.js';
import { run } from './helpers.js';

const arch = {
  inputs: [{ name: 'x', shape: ['batch', 3, 8, 8] }],
  sequential: [
    { type: 'Conv2d', args: [3, 64, 3], padding: 1 }, { type: 'BatchNorm2d', num_features: 64 }, { type: 'ReLU' },
    { type: 'Flatten' }, { type: 'Linear', in_features: 4096, out_features: 300 },
  ],
};

function stats(a: ArrayLike<number | bigint>): { min: number; max: number; mean: number; std: number } {
  const v = Array.from(a, Number);
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
  return { min: v.reduce((m, x) => Math.min(m, x)), max: v.reduce((m, x) => Math.max(m, x)), mean, std };
}

test('Linear and Conv weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in))', () => {
  const sd = initStateDict(arch, 1);
  for (const [key, fanIn] of [['0.weight', 27], ['0.bias', 27], ['4.weight', 4096], ['4.bias', 4096]] as const) {
    const bound = 1 / Math.sqrt(fanIn);
    const s = stats(sd.get(key)!.data);
    assert.ok(s.max <= bound && s.min >= -bound, `${key} within ±${bound}`);
    if (sd.get(key)!.data.length > 1000) {
      assert.ok(s.max > 0.95 * bound && s.min < -0.95 * bound, `${key} spans the bound`);
      assert.ok(Math.abs(s.std - bound / Math.sqrt(3)) < 0.02 * bound, `${key} std ${s.std}`);
    }
  }
});

test('norms start at ones and zeros, running stats at zero mean and unit variance', () => {
  const sd = initStateDict(arch, 1);
  assert.ok([...sd.get('1.weight')!.data].every((v) => v === 1));
  assert.ok([...sd.get('1.bias')!.data].every((v) => v === 0));
  assert.ok([...sd.get('1.running_mean')!.data].every((v) => v === 0));
  assert.ok([...sd.get('1.running_var')!.data].every((v) => v === 1));
  assert.equal(sd.get('1.num_batches_tracked')!.data[0], 0n);
});

test('Embedding is N(0, 1) with a zero padding_idx row; RNN weights are U(-1/sqrt(hidden), ...)', () => {
  const sd = initStateDict({
    inputs: [{ name: 'x', dtype: 'int64', shape: ['batch', 4] }],
    modules: { emb: { type: 'Embedding', args: [1000, 16], padding_idx: 3 }, lstm: { type: 'LSTM', args: [16, 25] } },
    graph: [{ op: 'placeholder', name: 'x' }, { op: 'call_module', name: 'e', target: 'emb', args: ['x'] }, { op: 'output', args: ['e'] }],
  }, 2);
  const emb = sd.get('emb.weight')!.data as Float32Array;
  assert.ok([...emb.subarray(3 * 16, 4 * 16)].every((v) => v === 0));
  const s = stats(emb);
  assert.ok(Math.abs(s.mean) < 0.03 && Math.abs(s.std - 1) < 0.03, `N(0,1): mean ${s.mean} std ${s.std}`);
  for (const k of ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']) {
    const r = stats(sd.get(`lstm.${k}`)!.data);
    assert.ok(r.max <= 0.2 && r.min >= -0.2 && r.max > 0.15 && r.min < -0.15, k);
  }
});

test('the same seed gives the same model, another seed another one', async () => {
  const a = initStateDict(arch, 7);
  const b = initStateDict(arch, 7);
  const c = initStateDict(arch, 8);
  assert.deepEqual(a.get('4.weight')!.data, b.get('4.weight')!.data);
  assert.notDeepEqual(a.get('4.weight')!.data, c.get('4.weight')!.data);
  const x = new Map([['x', { dtype: 'float32' as const, shape: [1, 3, 8, 8], data: new Float32Array(192).fill(0.3) }]]);
  const ya = await run(compileArchitecture(arch, null, { seed: 7 }), x);
  const yb = await run(compileArchitecture(arch, null, { seed: 7 }), x);
  assert.deepEqual(ya.output!.data, yb.output!.data);
  assert.deepEqual(ya.output!.dims, [1, 300]);
});
