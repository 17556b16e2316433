/** Gradients of the pools: MaxPool, AveragePool and the global pools. */
import { isStatic } from '../dims.js';
import type { Tensor } from '../graph-builder.js';
import { staticSpatial } from './conv.js';
import { reluMask } from './elementwise.js';
import type { OpGradCtx, OpGradRule } from './index.js';
import { attrs, castFloat, div, expandLike, mul, reshapeLike, scalarF, shapeOf, zerosLike } from './util.js';

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
 * image backgrounds tie all the time) to the first in row-major window order, as PyTorch does:
 * the pool is run again with its argmax Indices (the same first maximum), then windows that do
 * not overlap put dy back with MaxUnpool and overlapping ones add it up with ScatterElements.
 * (Measured faster than masks of where x equals the upsampled y, which cannot break ties, and
 * than SpaceToDepth layouts, which can.)
 */
const maxPool: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const x = c.inputs[0]!;
  if (!dy || !c.needs(0)) return [null];
  const a = poolAttrs(c);
  staticSpatial(g, x, 'its input');
  staticSpatial(g, dy, 'its output');
  const attrsOut: Record<string, number | number[]> = { kernel_shape: a.kernel, strides: a.strides, pads: a.pads, dilations: a.dilations };
  if (a.ceil) attrsOut.ceil_mode = 1;
  const [, indices] = g.opN('MaxPool', [x], attrsOut, [{ shape: dy.shape }, { shape: dy.shape, dtype: 'int64' }]);
  const overlapping = a.kernel.some((k, i) => a.dilations[i]! * (k - 1) + 1 > a.strides[i]!);
  if (!overlapping) {
    // After a ReLU (x >= 0) the ReLU's mask is (y > 0) at the maxima: apply it to the pooled dy.
    const afterRelu = c.producer(x.name)?.opType === 'Relu';
    const dyMasked = afterRelu ? mul(g, dy, reluMask(g, c.outputs[0]!)) : dy;
    const dx = g.op('MaxUnpool', [dyMasked, indices!, shapeOf(g, x)], { kernel_shape: a.kernel, strides: a.strides, pads: a.pads }, { shape: x.shape });
    if (afterRelu) c.reluMasked.set(dx.name, x.name);
    return [dx];
  }
  const flatDy = g.op('Reshape', [dy, g.constInt64([-1])], {}, { shape: ['pooled'] });
  const flatIdx = g.op('Reshape', [indices!, g.constInt64([-1])], {}, { shape: ['pooled'], dtype: 'int64' });
  const flatX = g.op('Reshape', [zerosLike(g, x), g.constInt64([-1])], {}, { shape: ['numel'] });
  const scattered = g.op('ScatterElements', [flatX, flatIdx, flatDy], { axis: 0, reduction: 'add' }, { shape: ['numel'] });
  return [reshapeLike(g, scattered, x)];
};

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

/** GlobalMaxPool: MaxPool's rule with one window over the whole (static) spatial extent. */
const globalMaxPool: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const x = c.inputs[0]!;
  if (!dy || !c.needs(0)) return [null];
  const kernel = staticSpatial(g, x, 'its input');
  const [, indices] = g.opN('MaxPool', [x], { kernel_shape: kernel, strides: kernel }, [{ shape: dy.shape }, { shape: dy.shape, dtype: 'int64' }]);
  return [g.op('MaxUnpool', [dy, indices!, shapeOf(g, x)], { kernel_shape: kernel, strides: kernel }, { shape: x.shape })];
};

export const rules: Record<string, OpGradRule> = {
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalAveragePool,
  GlobalMaxPool: globalMaxPool,
};
