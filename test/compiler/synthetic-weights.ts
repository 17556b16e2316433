/**
 * The deterministic weights of tools/make_compiler_fixtures.py's synthetic_weight(), so that
 * resnet18's 45 MB of weights need not be committed: the fixture holds PyTorch's output for them.
 */
import type { StateDict } from '../../src/weights/index.js';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** Replaces every tensor of `shapes` (e.g. from initStateDict) by synthetic_weight(key, shape). */
export function syntheticStateDict(shapes: StateDict): StateDict {
  const out: StateDict = new Map();
  for (const [key, t] of shapes) {
    const n = t.shape.reduce((p, d) => p * d, 1);
    if (key.endsWith('num_batches_tracked')) {
      out.set(key, { dtype: 'int64', shape: t.shape, data: new BigInt64Array(n) });
      continue;
    }
    const phase = (fnv1a(key) / 2 ** 32) * 2 * Math.PI;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const s = Math.sin(i * 0.7 + phase);
      if (key.endsWith('running_var')) data[i] = 1 + 0.5 * s * s;
      else if (key.endsWith('weight') && t.shape.length >= 2) data[i] = s * (2 / Math.sqrt(n / t.shape[0]!));
      else if (key.endsWith('weight')) data[i] = 1 + 0.1 * s;
      else data[i] = 0.1 * s;
    }
    out.set(key, { dtype: 'float32', shape: t.shape, data });
  }
  return out;
}
