/**
 * Gradients of elementwise ONNX ops: arithmetic with broadcasting and the activations.
 * Comparisons follow PyTorch's backward kernels at the kinks (ReLU's gradient at 0 is 0,
 * Hardtanh's is 0 on the bounds, LeakyReLU's at 0 is the negative slope).
 */
import { type GraphBuilder, type Tensor, float } from '../graph-builder.js';
import type { OpGradCtx, OpGradRule } from './index.js';
import { add, attrs, bool, div, mul, neg, scalarF, sub, unbroadcast, where } from './util.js';

const x0 = (c: OpGradCtx) => c.inputs[0]!;

/** 1 where y > 0, 0 where y = 0, for a ReLU output y (see the Relu rule). */
export function reluMask(g: GraphBuilder, y: Tensor): Tensor {
  return g.unary('HardSigmoid', y, { alpha: float(3.4028234663852886e38), beta: float(0) });
}
const y0 = (c: OpGradCtx) => c.outputs[0]!;

/** A rule for a one-input op: dx from dy. */
function unary(rule: (c: OpGradCtx, dy: Tensor) => Tensor): OpGradRule {
  return (c, [dy]) => [dy ? rule(c, dy) : null];
}

/** dy where the condition holds, else 0 (a masked pass-through). */
function gate(c: OpGradCtx, cond: Tensor, dy: Tensor): Tensor {
  return where(c.g, cond, dy, scalarF(c.g, 0));
}

export const rules: Record<string, OpGradRule> = {
  Identity: unary((_c, dy) => dy),
  Cast: unary((_c, dy) => dy),
  Add: (c, [dy]) => [
    dy && c.needs(0) ? unbroadcast(c.g, dy, c.inputs[0]!) : null,
    dy && c.needs(1) ? unbroadcast(c.g, dy, c.inputs[1]!) : null,
  ],
  Sub: (c, [dy]) => [
    dy && c.needs(0) ? unbroadcast(c.g, dy, c.inputs[0]!) : null,
    dy && c.needs(1) ? unbroadcast(c.g, neg(c.g, dy), c.inputs[1]!) : null,
  ],
  Mul: (c, [dy]) => {
    const [a, b] = c.inputs as Tensor[];
    return [
      dy && c.needs(0) ? unbroadcast(c.g, mul(c.g, dy, b!), a!) : null,
      dy && c.needs(1) ? unbroadcast(c.g, mul(c.g, dy, a!), b!) : null,
    ];
  },
  /** d(a/b) = da/b - a/b^2 db = da/b - y/b db. */
  Div: (c, [dy]) => {
    const [a, b] = c.inputs as Tensor[];
    const da = dy ? div(c.g, dy, b!) : null;
    return [
      da && c.needs(0) ? unbroadcast(c.g, da, a!) : null,
      da && c.needs(1) ? unbroadcast(c.g, neg(c.g, mul(c.g, da, y0(c))), b!) : null,
    ];
  },
  /** d(a^b) = b a^(b-1) da + a^b log(a) db. */
  Pow: (c, [dy]) => {
    const { g } = c;
    const [a, b] = c.inputs as Tensor[];
    if (!dy) return [null, null];
    const da = c.needs(0) ? unbroadcast(g, mul(g, dy, mul(g, b!, g.op('Pow', [a!, sub(g, b!, scalarF(g, 1))], {}, { shape: a!.shape }))), a!) : null;
    const db = c.needs(1) ? unbroadcast(g, mul(g, dy, mul(g, y0(c), g.unary('Log', a!))), b!) : null;
    return [da, db];
  },
  Neg: unary((c, dy) => neg(c.g, dy)),
  Exp: unary((c, dy) => mul(c.g, dy, y0(c))),
  Log: unary((c, dy) => div(c.g, dy, x0(c))),
  /** d sqrt(x) = dy / (2 y). */
  Sqrt: unary((c, dy) => div(c.g, dy, mul(c.g, y0(c), scalarF(c.g, 2)))),
  Reciprocal: unary((c, dy) => neg(c.g, mul(c.g, dy, mul(c.g, y0(c), y0(c))))),
  Abs: unary((c, dy) => mul(c.g, dy, c.g.unary('Sign', x0(c)))),
  Tanh: unary((c, dy) => mul(c.g, dy, sub(c.g, scalarF(c.g, 1), mul(c.g, y0(c), y0(c))))),
  Sigmoid: unary((c, dy) => mul(c.g, dy, mul(c.g, y0(c), sub(c.g, scalarF(c.g, 1), y0(c))))),
  /** d erf(x) = 2/sqrt(pi) exp(-x^2). */
  Erf: unary((c, dy) => {
    const { g } = c;
    const x = x0(c);
    return mul(g, dy, mul(g, g.unary('Exp', neg(g, mul(g, x, x))), scalarF(g, 2 / Math.sqrt(Math.PI))));
  }),
  Softplus: unary((c, dy) => mul(c.g, dy, c.g.unary('Sigmoid', x0(c)))),
  /** d softsign(x) = 1 / (1 + |x|)^2. */
  Softsign: unary((c, dy) => {
    const { g } = c;
    const d = add(g, g.unary('Abs', x0(c)), scalarF(g, 1));
    return div(g, dy, mul(g, d, d));
  }),
  /**
   * threshold_backward: dy where y > 0. The mask is HardSigmoid(y) with the largest float slope:
   * 1 for every normal y > 0, 0 for y = 0, one multithreaded pass (Sign, Greater and Where are
   * single-threaded in ONNX Runtime); only denormal outputs (< 1.2e-38) would get a fraction.
   */
  Relu: unary((c, dy) => (c.reluMasked.get(dy.name) === y0(c).name ? dy : mul(c.g, dy, reluMask(c.g, y0(c))))),
  LeakyRelu: unary((c, dy) => {
    const { g } = c;
    const alpha = attrs(c.node).float('alpha', 0.01);
    return where(g, bool(g, 'Greater', x0(c), scalarF(g, 0)), dy, mul(g, dy, scalarF(g, alpha)));
  }),
  /** elu_backward: dy for x > 0, dy * (y + alpha) below. */
  Elu: unary((c, dy) => {
    const { g } = c;
    const alpha = attrs(c.node).float('alpha', 1);
    return where(g, bool(g, 'Greater', x0(c), scalarF(g, 0)), dy, mul(g, dy, add(g, y0(c), scalarF(g, alpha))));
  }),
  /** hardtanh_backward: 0 where x <= min or x >= max. */
  Clip: (c, [dy]) => {
    const { g } = c;
    const [x, lo, hi] = c.inputs;
    if (!dy) return [null];
    let inside: Tensor | null = null;
    if (lo) inside = bool(g, 'Greater', x!, lo);
    if (hi) {
      const below = bool(g, 'Less', x!, hi);
      inside = inside ? g.op('And', [inside, below], {}, { shape: x!.shape, dtype: 'bool' }) : below;
    }
    return [inside ? gate(c, inside, dy) : dy, null, null];
  },
  /** hardswish_backward: 0 below -3, dy (x/3 + 1/2) on [-3, 3], dy above. */
  HardSwish: unary((c, dy) => {
    const { g } = c;
    const x = x0(c);
    const mid = mul(g, dy, add(g, mul(g, x, scalarF(g, 1 / 3)), scalarF(g, 0.5)));
    const upper = where(g, bool(g, 'Greater', x, scalarF(g, 3)), dy, mid);
    return where(g, bool(g, 'Less', x, scalarF(g, -3)), scalarF(g, 0), upper);
  }),
  /** hardsigmoid_backward: dy * alpha strictly inside (-beta/alpha, (1-beta)/alpha). */
  HardSigmoid: unary((c, dy) => {
    const { g } = c;
    const a = attrs(c.node);
    const alpha = a.float('alpha', 0.2);
    const beta = a.float('beta', 0.5);
    const x = x0(c);
    const inside = g.op('And', [bool(g, 'Greater', x, scalarF(g, -beta / alpha)), bool(g, 'Less', x, scalarF(g, (1 - beta) / alpha))], {}, { shape: x.shape, dtype: 'bool' });
    return gate(c, inside, mul(g, dy, scalarF(g, alpha)));
  }),
  /** prelu backward: dx = dy (x > 0) or slope dy; dslope = sum of dy x where x <= 0. */
  PRelu: (c, [dy]) => {
    const { g } = c;
    const [x, slope] = c.inputs as Tensor[];
    if (!dy) return [null, null];
    const pos = bool(g, 'Greater', x!, scalarF(g, 0));
    const dx = c.needs(0) ? where(g, pos, dy, mul(g, dy, slope!)) : null;
    const ds = c.needs(1) ? unbroadcast(g, where(g, pos, scalarF(g, 0), mul(g, dy, x!)), slope!) : null;
    return [dx, ds];
  },
  Where: (c, [dy]) => {
    const { g } = c;
    const [cond, a, b] = c.inputs as Tensor[];
    if (!dy) return [null, null, null];
    const zero = scalarF(g, 0);
    return [
      null,
      c.needs(1) ? unbroadcast(g, where(g, cond!, dy, zero), a!) : null,
      c.needs(2) ? unbroadcast(g, where(g, cond!, zero, dy), b!) : null,
    ];
  },
  Max: minMax('Max'),
  Min: minMax('Min'),
};

/** Elementwise Max/Min of two tensors: the gradient goes to the chosen side (to both, halved, on ties, as PyTorch does). */
function minMax(op: 'Max' | 'Min'): OpGradRule {
  return (c, [dy]) => {
    const { g } = c;
    if (!dy) return c.inputs.map(() => null);
    if (c.inputs.length !== 2) throw new Error(`${op} with ${c.inputs.length} inputs has no gradient rule`);
    const [a, b] = c.inputs as Tensor[];
    const y = y0(c);
    const half = scalarF(g, 0.5);
    const tie = bool(g, 'Equal', a!, b!);
    const pick = (t: Tensor) => where(g, tie, mul(g, dy, half), where(g, bool(g, 'Equal', t, y), dy, scalarF(g, 0)));
    return [c.needs(0) ? unbroadcast(g, pick(a!), a!) : null, c.needs(1) ? unbroadcast(g, pick(b!), b!) : null];
  };
}
