/** Gradients of normalization and softmax: BatchNormalization (eval), LayerNormalization, Softmax, LogSoftmax. */
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import { reduce } from '../ops.js';
import type { OpGradCtx, OpGradRule } from './index.js';
import { attrs, mul, scalarF, sub, sum } from './util.js';

/** Per-channel [C] vector shaped to broadcast over [N, C, *]. */
function perChannel(g: GraphBuilder, v: Tensor, rank: number): Tensor {
  return rank === 2 ? v : g.reshape(v, [v.shape[0]!, ...Array(rank - 2).fill(1)]);
}

/** Eval-mode BatchNormalization (running statistics are constants): an affine map per channel. */
const batchNormalization: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const [x, gamma, , mean, variance] = c.inputs as Tensor[];
  if (!dy) return c.inputs.map(() => null);
  const eps = attrs(c.node).float('epsilon', 1e-5);
  const rank = x!.shape.length;
  const invstd = g.op('Reciprocal', [g.unary('Sqrt', g.op('Add', [variance!, scalarF(g, eps)], {}, { shape: variance!.shape }))], {}, { shape: variance!.shape });
  const axes = x!.shape.map((_, i) => i).filter((i) => i !== 1);
  const dx = c.needs(0) ? mul(g, dy, perChannel(g, mul(g, gamma!, invstd), rank)) : null;
  let dgamma: Tensor | null = null;
  if (c.needs(1)) {
    const xhat = mul(g, sub(g, x!, perChannel(g, mean!, rank)), perChannel(g, invstd, rank));
    dgamma = sum(g, mul(g, dy, xhat), axes, false);
  }
  const dbeta = c.needs(2) ? sum(g, dy, axes, false) : null;
  return [dx, dgamma, dbeta, null, null];
};

/**
 * LayerNormalization over axes [axis, rank): dx = invstd (dxhat - mean(dxhat) - xhat
 * mean(dxhat xhat)) with dxhat = dy scale; the forward's Mean and InvStdDev outputs are reused.
 */
const layerNormalization: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const [x, scaleT, bias] = c.inputs as Tensor[];
  if (!dy) return c.inputs.map(() => null);
  const at = attrs(c.node);
  const rank = x!.shape.length;
  let axis = at.int('axis', -1);
  if (axis < 0) axis += rank;
  const eps = at.float('epsilon', 1e-5);
  const normAxes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const leadAxes = Array.from({ length: axis }, (_, i) => i);
  let mean = c.outputs[1];
  let invstd = c.outputs[2];
  if (!mean || !invstd) {
    mean = reduce(g, 'ReduceMean', x!, normAxes, true);
    const centered = sub(g, x!, mean);
    const variance = reduce(g, 'ReduceMean', mul(g, centered, centered), normAxes, true);
    invstd = g.unary('Reciprocal', g.unary('Sqrt', g.op('Add', [variance, scalarF(g, eps)], {}, { shape: variance.shape })));
  }
  const xhat = mul(g, sub(g, x!, mean), invstd);
  let dx: Tensor | null = null;
  if (c.needs(0)) {
    const dxhat = mul(g, dy, scaleT!);
    const m1 = reduce(g, 'ReduceMean', dxhat, normAxes, true);
    const m2 = reduce(g, 'ReduceMean', mul(g, dxhat, xhat), normAxes, true);
    dx = mul(g, sub(g, sub(g, dxhat, m1), mul(g, xhat, m2)), invstd);
  }
  const dscale = c.needs(1) ? sum(g, mul(g, dy, xhat), leadAxes, false) : null;
  const dbias = bias && c.needs(2) ? sum(g, dy, leadAxes, false) : null;
  return [dx, dscale, dbias];
};

function softmaxAxis(c: OpGradCtx): number {
  const axis = attrs(c.node).int('axis', -1);
  return axis < 0 ? axis + c.inputs[0]!.shape.length : axis;
}

export const rules: Record<string, OpGradRule> = {
  BatchNormalization: batchNormalization,
  LayerNormalization: layerNormalization,
  /** dx = y (dy - sum(dy y)). */
  Softmax: (c, [dy]) => {
    const { g } = c;
    if (!dy) return [null];
    const y = c.outputs[0]!;
    const s = sum(g, mul(g, dy, y), [softmaxAxis(c)], true);
    return [mul(g, y, sub(g, dy, s))];
  },
  /** dx = dy - exp(y) sum(dy). */
  LogSoftmax: (c, [dy]) => {
    const { g } = c;
    if (!dy) return [null];
    const s = sum(g, dy, [softmaxAxis(c)], true);
    return [sub(g, dy, mul(g, g.unary('Exp', c.outputs[0]!), s))];
  },
};
