/** Normalization layers in eval mode: BatchNorm uses its running statistics. */
import { dimDiv, dimEq, numel, showShape } from '../dims.js';
import { type GraphBuilder, type Tensor, float } from '../graph-builder.js';
import { type BackwardRule, type ModuleCtx, type ParamSpec, defineLayer, weight, THROUGH_OPS } from '../layer.js';
import { binary, reduce } from '../ops.js';
import { bool, float as floatArg, intList, nullable, positiveInt } from '../signature.js';

interface BatchNormArgs {
  num_features: number;
  eps: number;
  momentum: number | null;
  affine: boolean;
  track_running_stats: boolean;
}

function batchNormParams(a: BatchNormArgs): ParamSpec[] {
  const c = a.num_features;
  const out: ParamSpec[] = [];
  if (a.affine) out.push(weight('weight', [c], { fill: 1 }), weight('bias', [c], { fill: 0 }));
  if (a.track_running_stats) {
    out.push({ ...weight('running_mean', [c], { fill: 0 }), buffer: true }, { ...weight('running_var', [c], { fill: 1 }), buffer: true });
    out.push({ name: 'num_batches_tracked', shape: [], dtype: 'int64', init: { fill: 0 }, buffer: true });
  }
  return out;
}

/** Per-channel vector reshaped to broadcast over [N, C, *]. */
function perChannel(g: GraphBuilder, v: Tensor, rank: number): Tensor {
  return g.reshape(v, [v.shape[0]!, ...Array(rank - 2).fill(1)]);
}

/**
 * Normalization with the batch's own statistics (biased variance over every axis but the
 * channel): train mode, and eval mode without running stats. In train mode with running stats
 * it also updates them as PyTorch does: running_var takes the unbiased variance, momentum=None
 * is a cumulative average over num_batches_tracked.
 */
function batchStatistics(m: ModuleCtx<BatchNormArgs>, x: Tensor): Tensor {
  const { g, args: a } = m;
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const mean = reduce(g, 'ReduceMean', x, axes, true);
  const centered = binary(g, 'Sub', x, mean);
  const variance = reduce(g, 'ReduceMean', binary(g, 'Mul', centered, centered), axes, true);
  const invstd = g.unary('Reciprocal', g.unary('Sqrt', binary(g, 'Add', variance, g.constFloat([a.eps], []))));
  const xhat = binary(g, 'Mul', centered, invstd);
  m.stash.xhat = xhat;
  m.stash.invstd = invstd;
  if (m.training && a.track_running_stats) updateRunningStats(m, x, mean, variance);
  if (!a.affine) return xhat;
  return binary(g, 'Add', binary(g, 'Mul', xhat, perChannel(g, m.param('weight'), x.shape.length)), perChannel(g, m.param('bias'), x.shape.length));
}

function updateRunningStats(m: ModuleCtx<BatchNormArgs>, x: Tensor, mean: Tensor, variance: Tensor): void {
  const { g, args: a } = m;
  const c = a.num_features;
  const nbt = binary(g, 'Add', m.param('num_batches_tracked'), g.constInt64([1], []));
  m.update('num_batches_tracked', nbt);
  const factor = a.momentum === null
    ? g.unary('Reciprocal', g.op('Cast', [nbt], { to: 1 }, { shape: [] }))
    : g.constFloat([a.momentum], []);
  const keep = binary(g, 'Sub', g.constFloat([1], []), factor);
  // Values per channel: n = numel / C; the running variance takes the unbiased n / (n - 1) var.
  const size = g.op('Cast', [g.op('Size', [x], {}, { shape: [], dtype: 'int64' })], { to: 1 }, { shape: [] });
  const n = binary(g, 'Div', size, g.constFloat([c], []));
  const unbiased = binary(g, 'Mul', g.reshape(variance, [c]), binary(g, 'Div', n, binary(g, 'Sub', n, g.constFloat([1], []))));
  const blend = (old: Tensor, batch: Tensor) => binary(g, 'Add', binary(g, 'Mul', old, keep), binary(g, 'Mul', batch, factor));
  m.update('running_mean', blend(m.param('running_mean'), g.reshape(mean, [c])));
  m.update('running_var', blend(m.param('running_var'), unbiased));
}

/**
 * BatchNorm's backward. With batch statistics, in closed form:
 * dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), dgamma = sum(dy xhat), dbeta = sum(dy)
 * (means over the n values of a channel). With running statistics (eval mode), the per-channel
 * affine map's.
 */
const batchNormBackward: BackwardRule<BatchNormArgs> = (m, saved, dy) => {
  const { g, args: a } = m;
  const x = saved.inputs[0] as Tensor;
  const rank = x.shape.length;
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const params: Record<string, Tensor> = {};
  let xhat = m.stash.xhat as Tensor | undefined;
  let invstd = m.stash.invstd as Tensor | undefined;
  const batchStats = xhat !== undefined;
  if (!xhat || !invstd) {
    invstd = perChannel(g, g.unary('Reciprocal', g.unary('Sqrt', binary(g, 'Add', m.param('running_var'), g.constFloat([a.eps], [])))), rank);
    xhat = binary(g, 'Mul', binary(g, 'Sub', x, perChannel(g, m.param('running_mean'), rank)), invstd);
  }
  const needGamma = a.affine && saved.needsParam('weight');
  const dyXhat = needGamma || (saved.needsInput(0) && batchStats) ? binary(g, 'Mul', dy, xhat) : null;
  if (a.affine && saved.needsParam('bias')) params.bias = reduce(g, 'ReduceSum', dy, axes, false);
  if (needGamma) params.weight = reduce(g, 'ReduceSum', dyXhat!, axes, false);
  if (!saved.needsInput(0)) return { inputs: [null], params };
  const k = a.affine ? binary(g, 'Mul', perChannel(g, m.param('weight'), rank), invstd) : invstd;
  if (!batchStats) return { inputs: [binary(g, 'Mul', dy, k)], params };
  const centered = binary(g, 'Sub', dy, reduce(g, 'ReduceMean', dy, axes, true));
  const dx = binary(g, 'Mul', binary(g, 'Sub', centered, binary(g, 'Mul', xhat, reduce(g, 'ReduceMean', dyXhat!, axes, true))), k);
  return { inputs: [dx], params };
};

function batchNorm(type: string, ranks: number[]) {
  return defineLayer<BatchNormArgs>({
    type,
    args: { num_features: positiveInt(), eps: floatArg(1e-5), momentum: nullable(floatArg(), 0.1), affine: bool(true), track_running_stats: bool(true) },
    inputs: ['input'],
    params: batchNormParams,
    forward(m, [input]) {
      const { g, args: a } = m;
      const x = m.tensor(input, 'input', ranks);
      if (x.shape[1] !== a.num_features) {
        m.fail('ARCH_SHAPE_MISMATCH', `num_features=${a.num_features} but its input has ${x.shape[1]} channels (shape ${showShape(x.shape)})`);
      }
      if (!a.track_running_stats || m.training) return batchStatistics(m, x);
      const c = a.num_features;
      const scale = a.affine ? m.param('weight') : g.constFloat(new Float32Array(c).fill(1));
      const bias = a.affine ? m.param('bias') : g.constFloat(new Float32Array(c));
      return g.op('BatchNormalization', [x, scale, bias, m.param('running_mean'), m.param('running_var')], { epsilon: float(a.eps) }, { shape: x.shape });
    },
    backward: batchNormBackward,
  });
}

export const BatchNorm1d = batchNorm('BatchNorm1d', [2, 3]);
export const BatchNorm2d = batchNorm('BatchNorm2d', [4]);
export const BatchNorm3d = batchNorm('BatchNorm3d', [5]);

/** https://pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html over the last len(normalized_shape) dims. */
export const LayerNorm = defineLayer({
  type: 'LayerNorm',
  args: { normalized_shape: intList(), eps: floatArg(1e-5), elementwise_affine: bool(true), bias: bool(true) },
  inputs: ['input'],
  params: (a) => (a.elementwise_affine
    ? [weight('weight', a.normalized_shape, { fill: 1 }), ...(a.bias ? [weight('bias', a.normalized_shape, { fill: 0 })] : [])]
    : []),
  forward(m, [input]) {
    const { g, args: a } = m;
    const x = m.tensor(input, 'input');
    const k = a.normalized_shape.length;
    const tail = x.shape.slice(x.shape.length - k);
    if (x.shape.length < k || !tail.every((d, i) => dimEq(d, a.normalized_shape[i]!))) {
      m.fail('ARCH_SHAPE_MISMATCH', `normalized_shape=${showShape(a.normalized_shape)} but its input has shape ${showShape(x.shape)}`);
    }
    const n = a.normalized_shape.reduce((p, d) => p * d, 1);
    const scale = a.elementwise_affine ? m.param('weight') : g.constFloat(new Float32Array(n).fill(1), a.normalized_shape);
    const bias = a.elementwise_affine && a.bias ? m.param('bias') : g.constFloat(new Float32Array(n), a.normalized_shape);
    const attrs = { axis: -k, epsilon: float(a.eps) };
    if (!g.differentiable) return g.op('LayerNormalization', [x, scale, bias], attrs, { shape: x.shape });
    // The backward reuses the statistics ONNX Runtime computes anyway (outputs Mean and InvStdDev).
    const stats = [...x.shape.slice(0, x.shape.length - k), ...Array(k).fill(1)];
    return g.opN('LayerNormalization', [x, scale, bias], attrs, [{ shape: x.shape }, { shape: stats }, { shape: stats }])[0]!;
  },
  backward: THROUGH_OPS,
});

/** https://pytorch.org/docs/stable/generated/torch.nn.GroupNorm.html (ONNX GroupNormalization needs opset 18). */
export const GroupNorm = defineLayer({
  type: 'GroupNorm',
  args: { num_groups: positiveInt(), num_channels: positiveInt(), eps: floatArg(1e-5), affine: bool(true) },
  inputs: ['input'],
  validate(a, fail) {
    if (a.num_channels % a.num_groups !== 0) fail(`num_channels=${a.num_channels} must be divisible by num_groups=${a.num_groups}`);
  },
  params: (a) => (a.affine ? [weight('weight', [a.num_channels], { fill: 1 }), weight('bias', [a.num_channels], { fill: 0 })] : []),
  forward(m, [input]) {
    const { g, args: a } = m;
    const x = m.tensor(input, 'input');
    if (x.shape.length < 2 || x.shape[1] !== a.num_channels) {
      m.fail('ARCH_SHAPE_MISMATCH', `num_channels=${a.num_channels} but its input has shape ${showShape(x.shape)}`);
    }
    const perGroup = dimDiv(numel(x.shape.slice(1)), a.num_groups) ?? `${m.name}_group`;
    const grouped = g.reshape(x, [x.shape[0]!, a.num_groups, perGroup]);
    const mean = reduce(g, 'ReduceMean', grouped, [2], true);
    const centered = binary(g, 'Sub', grouped, mean);
    const variance = reduce(g, 'ReduceMean', binary(g, 'Mul', centered, centered), [2], true);
    const normed = binary(g, 'Div', centered, g.unary('Sqrt', binary(g, 'Add', variance, g.constFloat([a.eps], []))));
    let y = g.reshape(normed, x.shape);
    if (a.affine) y = binary(g, 'Add', binary(g, 'Mul', y, perChannel(g, m.param('weight'), x.shape.length)), perChannel(g, m.param('bias'), x.shape.length));
    return y;
  },
  backward: THROUGH_OPS,
});
