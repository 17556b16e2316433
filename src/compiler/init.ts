/**
 * Random initialisation with PyTorch's default rules (each layer's reset_parameters, given in
 * its ParamSpec), from a seeded generator so that the same seed always gives the same model.
 * The values do not reproduce torch.manual_seed's stream; the distributions are PyTorch's.
 */
import type { StateDictTensor } from '../weights/index.js';
import type { ParamSpec } from './layer.js';

/** sfc32 seeded through splitmix32: small, fast and well distributed. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t / 4294967296;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

export function initParam(spec: ParamSpec, rng: Rng): StateDictTensor {
  const n = spec.shape.reduce((p, d) => p * d, 1);
  if (spec.dtype === 'int64') {
    const fill = 'fill' in spec.init ? BigInt(spec.init.fill) : 0n;
    return { dtype: 'int64', shape: spec.shape, data: new BigInt64Array(n).fill(fill) };
  }
  const data = new Float32Array(n);
  const rule = spec.init;
  if ('uniform' in rule) {
    for (let i = 0; i < n; i++) data[i] = (rng.next() * 2 - 1) * rule.uniform;
  } else if ('normal' in rule) {
    for (let i = 0; i < n; i++) data[i] = rng.normal() * rule.normal;
    if (rule.zeroRow !== undefined) {
      const row = n / spec.shape[0]!;
      data.fill(0, rule.zeroRow * row, (rule.zeroRow + 1) * row);
    }
  } else {
    data.fill(rule.fill);
  }
  return { dtype: 'float32', shape: spec.shape, data };
}
