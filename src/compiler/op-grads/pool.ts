/** Gradients of the pools: MaxPool, AveragePool and the global pools. */
import { type Dim, isStatic } from '../dims.js';
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import { staticSpatial } from './conv.js';
import { reluMask } from './elementwise.js';
import type { OpGradCtx, OpGradRule } from './index.js';
import { padZeros } from './shape.js';
import { attrs, bool, castFloat, div, expandLike, mul, reshapeLike, scalarF, sub, where, zerosLike } from './util.js';

interface PoolAttrs {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  ceil: boolean;
}

function poolAttrs(c: OpGradCtx): PoolAttrs {
  const a = attrs(c.node);
  const kernel = a.ints('kernel_shape', []);
  const n = kernel.length;
  return {
    kernel,
    strides: a.ints('strides', Array(n).fill(1)),
    pads: a.ints('pads', Array(2 * n).fill(0)),
    dilations: a.ints('dilations', Array(n).fill(1)),
    ceil: a.int('ceil_mode', 0) === 1,
  };
}

/**
 * MaxPool's backward sends each window's dy to its maximum, and among tied maxima (constant
 * image backgrounds tie all the time) to the first in row-major window order, as PyTorch does.
 * Square 2-D windows that tile the input (kernel = stride, no padding): SpaceToDepth lays each
 * window's K values along a new axis, the maxima are where y - x is 0, a CumSum along the
 * window keeps the first of them, and DepthToSpace puts dy back. Other windows (overlapping,
 * padded, ceil mode, 1-D/3-D): the pool's argmax Indices (the same first maximum) and a
 * scatter-add.
 */
const maxPool: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const x = c.inputs[0]!;
  if (!dy || !c.needs(0)) return [null];
  const a = poolAttrs(c);
  const n = a.kernel.length;
  staticSpatial(g, x, 'its input');
  staticSpatial(g, dy, 'its output');
  const k = a.kernel[0]!;
  const tiles = n === 2 && !a.ceil && a.kernel.every((ki, i) => ki === k && a.strides[i] === k && a.dilations[i] === 1 && a.pads[i] === 0 && a.pads[i + n] === 0);
  if (tiles) return [tiledMaxPoolGrad(c, x, dy, k)];
  const attrsOut: Record<string, number | number[]> = { kernel_shape: a.kernel, strides: a.strides, pads: a.pads, dilations: a.dilations };
  if (a.ceil) attrsOut.ceil_mode = 1;
  const [, indices] = g.opN('MaxPool', [x], attrsOut, [{ shape: dy.shape }, { shape: dy.shape, dtype: 'int64' }]);
  const flatDy = g.op('Reshape', [dy, g.constInt64([-1])], {}, { shape: ['pooled'] });
  const flatIdx = g.op('Reshape', [indices!, g.constInt64([-1])], {}, { shape: ['pooled'], dtype: 'int64' });
  const flatX = g.op('Reshape', [zerosLike(g, x), g.constInt64([-1])], {}, { shape: ['numel'] });
  const scattered = g.op('ScatterElements', [flatX, flatIdx, flatDy], { axis: 0, reduction: 'add' }, { shape: ['numel'] });
  return [reshapeLike(g, scattered, x)];
};

/** The tiled case of maxPool: k x k windows, stride k, the input cropped to whole windows. */
function tiledMaxPoolGrad(c: OpGradCtx, x: Tensor, dy: Tensor, k: number): Tensor {
  const { g } = c;
  const [batch, channels, oh, ow] = dy.shape as [Dim, number, number, number];
  const [h, w] = x.shape.slice(2) as [number, number];
  const K = k * k;
  let xc = x;
  if (oh * k < h) xc = g.slice(xc, 2, 0, oh * k);
  if (ow * k < w) xc = g.slice(xc, 3, 0, ow * k);
  const y = c.outputs[0]!;
  // After a ReLU (x >= 0) the ReLU's mask is (y > 0) at the maxima: apply it to the pooled dy.
  const afterRelu = c.producer(x.name)?.opType === 'Relu';
  const dyMasked = afterRelu ? mul(g, dy, reluMask(g, y)) : dy;
  // [N, C, oh*k, ow*k] -> [N, K*C, oh, ow] (window offset j = i*k + jj major) -> [N, K, C, oh, ow]
  const windows = g.op('Reshape', [g.op('SpaceToDepth', [xc], { blocksize: k }, { shape: [batch, K * channels, oh, ow] }), g.constInt64([-1, K, channels, oh, ow])], {}, { shape: [batch, K, channels, oh, ow] });
  const pooled = (t: Tensor) => g.unsqueeze(t, [1]);
  // 1 where x is its window's max (y - x = 0), 0 elsewhere (y - x > 0): HardSigmoid, not the serial Equal.
  const isMax = sub(g, scalarF(g, 1), reluMask(g, sub(g, pooled(y), windows)));
  // The first maximum is the one where the running count of maxima along the window is 1.
  const seen = g.op('CumSum', [isMax, g.constInt64([1], [])], {}, { shape: isMax.shape });
  const first = mul(g, isMax, g.unary('Relu', sub(g, scalarF(g, 2), seen)));
  const spread = g.op('Reshape', [mul(g, first, pooled(dyMasked)), g.constInt64([-1, K * channels, oh, ow])], {}, { shape: [batch, K * channels, oh, ow] });
  const dxc = g.op('DepthToSpace', [spread], { blocksize: k, mode: 'DCR' }, { shape: [batch, channels, oh * k, ow * k] });
  const dx = padZeros(g, dxc, [0, 0, 0, 0], [0, 0, h - oh * k, w - ow * k], x.shape);
  if (afterRelu) c.reluMasked.set(dx.name, x.name);
  return dx;
}

/** Per-axis count of input (non-padding) positions in each output window. */
function windowCounts(len: number, out: number, k: number, s: number, padBegin: number): number[] {
  return Array.from({ length: out }, (_, o) => {
    const start = o * s - padBegin;
    return Math.min(start + k, len) - Math.max(start, 0);
  });
}

/**
 * AveragePool: dy divided by each window's divisor, spread back over the window by a
 * ConvTranspose with a ones kernel (per channel: the channels are folded into the batch).
 */
const averagePool: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const x = c.inputs[0]!;
  if (!dy || !c.needs(0)) return [null];
  const a = poolAttrs(c);
  const n = a.kernel.length;
  const xs = staticSpatial(g, x, 'its input');
  const ys = staticSpatial(g, dy, 'its output');
  const includePad = attrs(c.node).int('count_include_pad', 0) === 1;
  let scaled: Tensor;
  if (includePad) {
    scaled = mul(g, dy, scalarF(g, 1 / a.kernel.reduce((p, k) => p * k, 1)));
  } else {
    const counts = ys.map((o, i) => windowCounts(xs[i]!, o, a.kernel[i]!, a.strides[i]!, a.pads[i]!));
    const total = ys.reduce((p, o) => p * o, 1);
    const inv = new Float32Array(total);
    for (let j = 0; j < total; j++) {
      let rem = j;
      let cnt = 1;
      for (let i = n - 1; i >= 0; i--) {
        cnt *= counts[i]![rem % ys[i]!]!;
        rem = Math.floor(rem / ys[i]!);
      }
      inv[j] = 1 / cnt;
    }
    scaled = mul(g, dy, g.constFloat(inv, ys));
  }
  const channels = x.shape[1]!;
  const folded = g.op('Reshape', [scaled, g.constInt64([-1, 1, ...ys])], {}, { shape: [`${x.shape[0]}*${channels}`, 1, ...ys] });
  const ones = g.constFloat(new Float32Array(a.kernel.reduce((p, k) => p * k, 1)).fill(1), [1, 1, ...a.kernel]);
  const outputPadding = xs.map((len, i) => len + a.pads[i]! + a.pads[i + n]! - a.kernel[i]! - (ys[i]! - 1) * a.strides[i]!);
  const spread = g.op('ConvTranspose', [folded, ones], {
    kernel_shape: a.kernel, strides: a.strides, pads: a.pads,
    ...(outputPadding.some((p) => p !== 0) ? { output_padding: outputPadding } : {}),
  }, { shape: [folded.shape[0]!, 1, ...xs] });
  return [reshapeLike(g, spread, x)];
};

const globalAveragePool: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const x = c.inputs[0]!;
  if (!dy || !c.needs(0)) return [null];
  const sp = x.shape.slice(2);
  const scaledDy = sp.every(isStatic)
    ? mul(g, dy, scalarF(g, 1 / (sp as number[]).reduce((p, d) => p * d, 1)))
    : div(g, dy, div(g, castFloat(g, g.op('Size', [x], {}, { shape: [], dtype: 'int64' })), castFloat(g, g.op('Size', [dy], {}, { shape: [], dtype: 'int64' }))));
  return [expandLike(g, scaledDy, x)];
};

const globalMaxPool: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const x = c.inputs[0]!;
  if (!dy || !c.needs(0)) return [null];
  return [where(g, bool(g, 'Equal', x, c.outputs[0]!), expandLike(g, dy, x), scalarF(g, 0))];
};

export const rules: Record<string, OpGradRule> = {
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalAveragePool,
  GlobalMaxPool: globalMaxPool,
};
