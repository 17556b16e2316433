/** Normalization layers in eval mode: BatchNorm uses its running statistics. */
import { dimDiv, dimEq, numel, showShape } from '../dims.js';
import { type GraphBuilder, type Tensor, float } from '../graph-builder.js';
import { type ModuleCtx, type ParamSpec, defineLayer, weight } from '../layer.js';
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
    out.push(weight('running_mean', [c], { fill: 0 }), weight('running_var', [c], { fill: 1 }));
    out.push({ name: 'num_batches_tracked', shape: [], dtype: 'int64', init: { fill: 0 } });
  }
  return out;
}

/** Per-channel vector reshaped to broadcast over [N, C, *]. */
function perChannel(g: GraphBuilder, v: Tensor, rank: number): Tensor {
  return g.reshape(v, [v.shape[0]!, ...Array(rank - 2).fill(1)]);
}

/**
 * Without running stats PyTorch normalizes with the batch's own statistics even in eval mode
 * (biased variance over every axis but the channel).
 */
function batchStatistics(m: ModuleCtx<BatchNormArgs>, x: Tensor): Tensor {
  const g = m.g;
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const mean = reduce(g, 'ReduceMean', x, axes, true);
  const centered = binary(g, 'Sub', x, mean);
  const variance = reduce(g, 'ReduceMean', binary(g, 'Mul', centered, centered), axes, true);
  const std = g.unary('Sqrt', binary(g, 'Add', variance, g.constFloat([m.args.eps], [])));
  let y = binary(g, 'Div', centered, std);
  if (m.args.affine) {
    y = binary(g, 'Add', binary(g, 'Mul', y, perChannel(g, m.param('weight'), x.shape.length)), perChannel(g, m.param('bias'), x.shape.length));
  }
  return y;
}

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
      if (!a.track_running_stats) return batchStatistics(m, x);
      const c = a.num_features;
      const scale = a.affine ? m.param('weight') : g.constFloat(new Float32Array(c).fill(1));
      const bias = a.affine ? m.param('bias') : g.constFloat(new Float32Array(c));
      return g.op('BatchNormalization', [x, scale, bias, m.param('running_mean'), m.param('running_var')], { epsilon: float(a.eps) }, { shape: x.shape });
    },
    backward: null,
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
    return g.op('LayerNormalization', [x, scale, bias], { axis: -k, epsilon: float(a.eps) }, { shape: x.shape });
  },
  backward: null,
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
  backward: null,
});
