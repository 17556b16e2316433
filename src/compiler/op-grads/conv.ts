/**
 * Gradients of Conv and ConvTranspose, in the formulations measured fastest on ONNX Runtime's
 * CPU kernels (docs/training-graphs.md): the weight gradient by im2col and one batched MatMul,
 * the input gradient by a Conv with the flipped kernel (stride 1) or a ConvTranspose.
 */
import { nnsError } from '../../errors.js';
import { type Dim, isStatic } from '../dims.js';
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import type { OpGradCtx, OpGradRule } from './index.js';
import { attrs, sum } from './util.js';

interface ConvAttrs {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

function convAttrs(c: OpGradCtx, w: Tensor): ConvAttrs {
  const a = attrs(c.node);
  const n = w.shape.length - 2;
  const kernel = a.ints('kernel_shape', w.shape.slice(2) as number[]);
  if (a.string('auto_pad', 'NOTSET') !== 'NOTSET') throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${c.g.scope}: auto_pad convolutions have no gradient rule`);
  return {
    kernel,
    strides: a.ints('strides', Array(n).fill(1)),
    pads: a.ints('pads', Array(2 * n).fill(0)),
    dilations: a.ints('dilations', Array(n).fill(1)),
    group: a.int('group', 1),
  };
}

export function staticSpatial(g: GraphBuilder, t: Tensor, what: string): number[] {
  const sp = t.shape.slice(2);
  if (!sp.every(isStatic)) throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${g.scope}: the gradient of a convolution or pool needs static spatial sizes, ${what} has shape [${t.shape.join(', ')}]`);
  return sp as number[];
}

/**
 * dL/dx of y = Conv(x, w). Stride 1 with a small kernel: a Conv of dy with the flipped,
 * in/out-swapped kernel (faster and better threaded on ONNX Runtime than ConvTranspose, whose
 * col2im is serial); otherwise, and whenever rearranging the weight would cost more than a
 * sample's activations (deep layers), ConvTranspose(dy, w) with the forward's attributes and
 * output_padding for the rows a strided forward never reached.
 */
export function convInputGrad(g: GraphBuilder, dy: Tensor, w: Tensor, x: Tensor, a: ConvAttrs): Tensor {
  const n = a.kernel.length;
  const xs = staticSpatial(g, x, 'its input');
  const ys = staticSpatial(g, dy, 'its output');
  const extent = a.kernel.map((k, i) => a.dilations[i]! * (k - 1));
  const flipPads = [...extent.map((e, i) => e - a.pads[i]!), ...extent.map((e, i) => e - a.pads[i + n]!)];
  const weightSize = (w.shape as number[]).reduce((p, d) => p * d, 1);
  const sampleSize = (dy.shape[1] as number) * ys.reduce((p, d) => p * d, 1);
  if (a.strides.every((s) => s === 1) && flipPads.every((p) => p >= 0) && weightSize <= sampleSize) {
    return g.op('Conv', [dy, flippedKernel(g, w, a.group)], {
      kernel_shape: a.kernel, pads: flipPads, dilations: a.dilations, group: a.group,
    }, { shape: x.shape });
  }
  const outputPadding = xs.map((len, i) => len + a.pads[i]! + a.pads[i + n]! - extent[i]! - 1 - (ys[i]! - 1) * a.strides[i]!);
  return g.op('ConvTranspose', [dy, w], {
    kernel_shape: a.kernel, strides: a.strides, pads: a.pads, dilations: a.dilations, group: a.group,
    ...(outputPadding.some((p) => p !== 0) ? { output_padding: outputPadding } : {}),
  }, { shape: x.shape });
}

/**
 * w [G*Co/G, Ci/G, *k] -> [G*Ci/G, Co/G, *k] reversed along every spatial axis (reversing the
 * flattened kernel window reverses each axis; a Gather, as Slice with step -1 is slow).
 */
function flippedKernel(g: GraphBuilder, w: Tensor, groups: number): Tensor {
  const [co, cig, ...k] = w.shape as number[];
  const spatial = k.map((_, i) => i + 2);
  let swapped: Tensor;
  if (groups === 1) {
    swapped = g.transpose(w, [1, 0, ...spatial]);
  } else {
    const grouped = g.reshape(w, [groups, co! / groups, cig!, ...k]);
    swapped = g.reshape(g.transpose(grouped, [0, 2, 1, ...spatial.map((s) => s + 1)]), [groups * cig!, co! / groups, ...k]);
  }
  const window = k.reduce((p, d) => p * d, 1);
  if (window === 1) return swapped;
  const rows = g.reshape(swapped, [swapped.shape[0]!, swapped.shape[1]!, window]);
  const reversed = g.op('Gather', [rows, g.constInt64(Array.from({ length: window }, (_, i) => window - 1 - i))], { axis: 2 }, { shape: rows.shape });
  return g.reshape(reversed, swapped.shape);
}

/**
 * dL/dw of y = Conv(x, w), w [Co, Ci/G, *k]: im2col, then one batched MatMul. The columns come
 * from a depthwise Conv (group = Ci) with K one-hot kernels per channel [Ci*K, 1, *k] and the
 * forward's strides, pads and dilations, so cols[n, ci*K + j, o] = x[n, ci, o*s + k_j*d]; then
 * dw = sum over n of cols[n] dy[n]^T, per group. (Measured faster than a Conv of the transposed
 * input with the transposed dy as its kernel, and than one Gemm over transposed columns.)
 */
export function convWeightGrad(g: GraphBuilder, x: Tensor, dy: Tensor, wShape: Dim[], a: ConvAttrs): Tensor {
  staticSpatial(g, x, 'its input');
  const ys = staticSpatial(g, dy, 'its output');
  const G = a.group;
  const ci = x.shape[1] as number;
  const co = dy.shape[1] as number;
  const cig = ci / G;
  const cog = co / G;
  const K = a.kernel.reduce((p, k) => p * k, 1);
  const P = ys.reduce((p, d) => p * d, 1);
  const batch = x.shape[0]!;
  const pointwise = K === 1 && a.strides.every((s) => s === 1) && a.pads.every((p) => p === 0);
  let cols: Tensor;
  if (pointwise) {
    cols = g.op('Reshape', [x, g.constInt64([-1, ci, P])], {}, { shape: [batch, ci, P] });
  } else {
    // One one-hot kernel per offset j, repeated for every input channel (group = Ci).
    const eye = new Float32Array(ci * K * K);
    for (let c = 0; c < ci; c++) for (let j = 0; j < K; j++) eye[(c * K + j) * K + j] = 1;
    const shifted = g.op('Conv', [x, g.constFloat(eye, [ci * K, 1, ...a.kernel])], {
      kernel_shape: a.kernel, strides: a.strides, pads: a.pads, dilations: a.dilations, group: ci,
    }, { shape: [batch, ci * K, ...ys] });
    cols = g.op('Reshape', [shifted, g.constInt64([-1, ci * K, P])], {}, { shape: [batch, ci * K, P] });
  }
  if (G === 1 && P < co) {
    // Few output positions, many channels (deep layers): one Gemm over every sample and
    // position at once; summing per-sample products [N, Ci*K, Co] would cost more than the transposes.
    const colsT = g.op('Reshape', [g.transpose(cols, [0, 2, 1]), g.constInt64([-1, ci * K])], {}, { shape: [`${batch}*${P}`, ci * K] });
    const dyT = g.op('Reshape', [g.transpose(g.op('Reshape', [dy, g.constInt64([-1, co, P])], {}, { shape: [batch, co, P] }), [0, 2, 1]), g.constInt64([-1, co])], {}, { shape: [`${batch}*${P}`, co] });
    const dw = g.op('Gemm', [dyT, colsT], { transA: 1 }, { shape: [co, ci * K] });
    return g.op('Reshape', [dw, g.constInt64(wShape as number[])], {}, { shape: wShape });
  }
  const dyT = g.transpose(g.op('Reshape', [dy, g.constInt64([-1, G, cog, P])], {}, { shape: [batch, G, cog, P] }), [0, 1, 3, 2]);
  const grouped = g.op('Reshape', [cols, g.constInt64([-1, G, cig * K, P])], {}, { shape: [batch, G, cig * K, P] });
  const perSample = g.op('MatMul', [grouped, dyT], {}, { shape: [batch, G, cig * K, cog] });
  const summed = sum(g, perSample, [0], false);
  const dw = g.transpose(summed, [0, 2, 1]);
  return g.op('Reshape', [dw, g.constInt64(wShape as number[])], {}, { shape: wShape });
}

/** Bias gradient of a convolution: dy summed over batch and space. */
function biasGrad(g: GraphBuilder, dy: Tensor): Tensor {
  return sum(g, dy, dy.shape.map((_, i) => i).filter((i) => i !== 1), false);
}

const conv: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const [x, w, b] = c.inputs as Tensor[];
  if (!dy) return [null, null, null];
  const a = convAttrs(c, w!);
  return [
    c.needs(0) ? convInputGrad(g, dy, w!, x!, a) : null,
    c.needs(1) ? convWeightGrad(g, x!, dy, w!.shape, a) : null,
    b && c.needs(2) ? biasGrad(g, dy) : null,
  ];
};

/**
 * y = ConvTranspose(x, w) is the input gradient of Conv(., w): its input gradient is that Conv,
 * and its weight gradient the Conv weight gradient with the roles of x and dy exchanged.
 */
const convTranspose: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const [x, w, b] = c.inputs as Tensor[];
  if (!dy) return [null, null, null];
  const a = convAttrs(c, w!);
  const dx = c.needs(0)
    ? g.op('Conv', [dy, w!], { kernel_shape: a.kernel, strides: a.strides, pads: a.pads, dilations: a.dilations, group: a.group }, { shape: x!.shape })
    : null;
  return [dx, c.needs(1) ? convWeightGrad(g, dy, x!, w!.shape, a) : null, b && c.needs(2) ? biasGrad(g, dy) : null];
};

export const rules: Record<string, OpGradRule> = {
  Conv: conv,
  ConvTranspose: convTranspose,
};
