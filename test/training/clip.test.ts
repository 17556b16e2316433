/** Gradient clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_ (1.13). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NnsError } from '../../src/errors.js';
import { clip_grad_norm_, clip_grad_value_ } from '../../src/training/clip.js';
import { f32, readFixture, relError } from './fixtures.js';

interface ClipFixture {
  cases: { kind: 'norm' | 'value'; max_norm?: number; norm_type?: number | 'inf'; clip_value?: number; grads: string[]; total_norm?: number; clipped: string[] }[];
}

const fx = readFixture<ClipFixture>('clip.json');

for (const c of fx.cases) {
  const label = c.kind === 'norm' ? `clip_grad_norm_(max_norm=${c.max_norm}, norm_type=${c.norm_type})` : `clip_grad_value_(${c.clip_value})`;
  test(`${label} matches PyTorch`, () => {
    const grads = new Map(c.grads.map((g, i) => [`p${i}`, f32(g)]));
    if (c.kind === 'norm') {
      const total = clip_grad_norm_(grads, c.max_norm!, c.norm_type);
      assert.ok(Math.abs(total - c.total_norm!) / c.total_norm! < 1e-6, `total norm ${total}, PyTorch ${c.total_norm}`);
    } else {
      clip_grad_value_(grads, c.clip_value!);
    }
    c.clipped.forEach((want, i) => {
      const err = relError(grads.get(`p${i}`)!, f32(want));
      assert.ok(err < 1e-6, `gradient ${i}: relative error ${err}`);
    });
  });
}

test('a norm below max_norm leaves the gradients bit for bit', () => {
  const g = Float32Array.from([0.1, -0.2, 0.3]);
  const before = g.slice();
  clip_grad_norm_([g], 10);
  assert.deepEqual(g, before);
  assert.equal(clip_grad_norm_([], 1), 0);
});

test('bad clipping options and non-finite norms are refused when asked', () => {
  const check = (fn: () => unknown, code: string, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof NnsError && e.code === code && re.test(e.message));
  check(() => clip_grad_norm_([new Float32Array(2)], -1), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /max_norm: expected a finite number >= 0, got -1/);
  check(() => clip_grad_norm_([new Float32Array(2)], 1, 0), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /norm_type: expected a number > 0 or "inf"/);
  check(() => clip_grad_value_([new Float32Array(2)], Number.NaN), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /clip_value: expected a number >= 0/);
  check(() => clip_grad_norm_([Float32Array.from([1, Number.NaN])], 1, 2, true), 'NNS_ERR_TRAIN_GRADIENTS_INVALID', /non-finite/);
});
