/** Pooling: MaxPool, AvgPool and the adaptive pools, 1-3 spatial dims. */
import { type Dim, isStatic, showShape } from '../dims.js';
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import { type ModuleCtx, defineLayer, THROUGH_OPS } from '../layer.js';
import { matmul } from '../ops.js';
import { bool, ints, nullable, optionalInts, positiveInt } from '../signature.js';

/**
 * PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h), including its ceil_mode rule
 * that the last window must start inside the input or its left padding.
 */
export function poolOutput(m: ModuleCtx<unknown>, len: Dim, pad: number, k: number, stride: number, dilation: number, ceil: boolean): Dim {
  if (!isStatic(len)) return `${m.name}_${len}`;
  const span = len + 2 * pad - dilation * (k - 1) - 1;
  if (span < 0) m.fail('ARCH_SHAPE_MISMATCH', `its input is too small: spatial size ${len} with padding ${pad} is smaller than the kernel's extent ${dilation * (k - 1) + 1}`);
  let out = Math.floor((span + (ceil ? stride - 1 : 0)) / stride) + 1;
  if (ceil && (out - 1) * stride >= len + pad) out -= 1;
  return out;
}

interface MaxPoolArgs {
  kernel_size: number[];
  stride: number[] | null;
  padding: number[];
  dilation: number[];
  return_indices: boolean;
  ceil_mode: boolean;
}

function checkPadding(k: number[], pad: number[], dilation: number[], fail: (msg: string) => never): void {
  pad.forEach((p, i) => {
    if (p * 2 > dilation[i]! * (k[i]! - 1) + 1) fail(`pad should be at most half of effective kernel size, but got padding=${p} and kernel_size=${k[i]}`);
  });
}

/** Emits the ONNX pool for PyTorch's arguments; ceil_mode is turned into explicit end padding. */
function pool(m: ModuleCtx<unknown>, op: 'MaxPool' | 'AveragePool', x: Tensor, k: number[], stride: number[], pad: number[], dilation: number[], ceil: boolean, attrs: Record<string, number>): Tensor {
  const spatial = x.shape.slice(2).map((len, i) => poolOutput(m, len, pad[i]!, k[i]!, stride[i]!, dilation[i]!, ceil));
  const endPad = pad.map((p, i) => {
    const len = x.shape[2 + i]!;
    const out = spatial[i]!;
    if (!ceil || !isStatic(len) || !isStatic(out)) return p;
    // Enough end padding for floor mode to produce PyTorch's ceil-mode count.
    return Math.max(p, (out - 1) * stride[i]! + dilation[i]! * (k[i]! - 1) + 1 - len - p);
  });
  const dynamicCeil = ceil && !x.shape.slice(2).every(isStatic);
  const a: Record<string, number | number[]> = { ...attrs, kernel_shape: k, strides: stride, pads: [...pad, ...endPad] };
  if (dynamicCeil) a.ceil_mode = 1;
  if (op === 'MaxPool') a.dilations = dilation;
  return m.g.op(op, [x], a, { shape: [x.shape[0]!, x.shape[1]!, ...spatial] });
}

function maxPool(n: number) {
  return defineLayer<MaxPoolArgs>({
    type: `MaxPool${n}d`,
    args: { kernel_size: ints(n), stride: nullable(ints(n)), padding: ints(n, 0), dilation: ints(n, 1), return_indices: bool(false), ceil_mode: bool(false) },
    inputs: ['input'],
    validate(a, fail) {
      if (a.return_indices) fail('return_indices=True is not supported');
      checkPadding(a.kernel_size, a.padding, a.dilation, fail);
    },
    params: () => [],
    forward(m, [input]) {
      const a = m.args;
      const x = m.tensor(input, 'input', [n + 2]);
      return pool(m, 'MaxPool', x, a.kernel_size, a.stride ?? a.kernel_size, a.padding, a.dilation, a.ceil_mode, {});
    },
    backward: THROUGH_OPS,
  });
}

export const MaxPool1d = maxPool(1);
export const MaxPool2d = maxPool(2);
export const MaxPool3d = maxPool(3);

interface AvgPoolArgs {
  kernel_size: number[];
  stride: number[] | null;
  padding: number[];
  ceil_mode: boolean;
  count_include_pad: boolean;
  divisor_override: number | null;
}

function avgPool(n: number) {
  return defineLayer<AvgPoolArgs>({
    type: `AvgPool${n}d`,
    args: {
      kernel_size: ints(n), stride: nullable(ints(n)), padding: ints(n, 0), ceil_mode: bool(false), count_include_pad: bool(true),
      ...(n > 1 ? { divisor_override: nullable(positiveInt()) } : {}),
    } as never,
    inputs: ['input'],
    validate(a, fail) {
      checkPadding(a.kernel_size, a.padding, a.kernel_size.map(() => 1), fail);
      if (a.ceil_mode && a.count_include_pad && a.padding.some((p) => p > 0)) {
        fail('ceil_mode=True with count_include_pad=True and padding > 0 is not supported (its clipped windows have no ONNX equivalent)');
      }
    },
    params: () => [],
    forward(m, [input]) {
      const { g, args: a } = m;
      const x = m.tensor(input, 'input', [n + 2]);
      const ones = a.kernel_size.map(() => 1);
      // Without padding, PyTorch divides clipped ceil-mode windows by their valid size, which is
      // what ONNX does for count_include_pad=0 over the end padding that emulates ceil_mode.
      const padded = a.padding.some((p) => p > 0);
      const countPad = (a.count_include_pad && padded) || (a.divisor_override ?? null) !== null;
      const y = pool(m, 'AveragePool', x, a.kernel_size, a.stride ?? a.kernel_size, a.padding, ones, a.ceil_mode, { count_include_pad: countPad ? 1 : 0 });
      if (a.divisor_override === undefined || a.divisor_override === null) return y;
      const kProd = a.kernel_size.reduce((p, k) => p * k, 1);
      return g.op('Mul', [y, g.constFloat([kProd / a.divisor_override], [])], {}, { shape: y.shape });
    },
    backward: THROUGH_OPS,
  });
}

export const AvgPool1d = avgPool(1);
export const AvgPool2d = avgPool(2);
export const AvgPool3d = avgPool(3);

/** Averaging matrix [out, len]: row o averages input[floor(o*len/out) : ceil((o+1)*len/out)]. */
function adaptiveMatrix(len: number, out: number): Float32Array {
  const a = new Float32Array(out * len);
  for (let o = 0; o < out; o++) {
    const start = Math.floor((o * len) / out);
    const end = Math.ceil(((o + 1) * len) / out);
    for (let j = start; j < end; j++) a[o * len + j] = 1 / (end - start);
  }
  return a;
}

/** Adaptive average pooling along one axis as a MatMul with the transposed averaging matrix. */
function adaptiveAxis(g: GraphBuilder, x: Tensor, axis: number, out: number): Tensor {
  const len = x.shape[axis] as number;
  const rank = x.shape.length;
  const last = rank - 1;
  const perm = x.shape.map((_, i) => (i === axis ? last : i === last ? axis : i));
  const moved = axis === last ? x : g.transpose(x, perm);
  const at = new Float32Array(len * out);
  const a = adaptiveMatrix(len, out);
  for (let o = 0; o < out; o++) for (let j = 0; j < len; j++) at[j * out + o] = a[o * len + j]!;
  const y = matmul(g, moved, g.constFloat(at, [len, out]));
  return axis === last ? y : g.transpose(y, perm);
}

function adaptivePool(n: number, kind: 'Avg' | 'Max') {
  return defineLayer<{ output_size: (number | null)[] }>({
    type: `Adaptive${kind}Pool${n}d`,
    args: { output_size: optionalInts(n), ...(kind === 'Max' ? { return_indices: bool(false) } : {}) } as never,
    inputs: ['input'],
    validate(a, fail) {
      if ((a as { return_indices?: boolean }).return_indices) fail('return_indices=True is not supported');
    },
    params: () => [],
    forward(m, [input]) {
      const { g, args: a } = m;
      const x = m.tensor(input, 'input', [n + 2]);
      const lens = x.shape.slice(2);
      const outs = a.output_size.map((o, i) => o ?? lens[i]!);
      if (outs.every((o, i) => o === lens[i])) return x;
      const shape = [x.shape[0]!, x.shape[1]!, ...outs];
      if (outs.every((o) => o === 1)) return g.op(kind === 'Avg' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x], {}, { shape });
      if (!lens.every(isStatic)) m.fail('ARCH_SHAPE_MISMATCH', `output_size ${showShape(outs)} needs static spatial input sizes, got ${showShape(x.shape)}`);
      const divisible = lens.every((l, i) => (l as number) % (outs[i] as number) === 0);
      if (divisible) {
        const k = lens.map((l, i) => (l as number) / (outs[i] as number));
        return g.op(kind === 'Avg' ? 'AveragePool' : 'MaxPool', [x], { kernel_shape: k, strides: k }, { shape });
      }
      if (kind === 'Max') m.fail('ARCH_SHAPE_MISMATCH', `output_size ${showShape(outs)} must divide the input size ${showShape(lens)}`);
      let y = x;
      outs.forEach((o, i) => { if (o !== lens[i]) y = adaptiveAxis(g, y, 2 + i, o as number); });
      return y;
    },
    backward: THROUGH_OPS,
  });
}

export const AdaptiveAvgPool1d = adaptivePool(1, 'Avg');
export const AdaptiveAvgPool2d = adaptivePool(2, 'Avg');
export const AdaptiveAvgPool3d = adaptivePool(3, 'Avg');
export const AdaptiveMaxPool1d = adaptivePool(1, 'Max');
export const AdaptiveMaxPool2d = adaptivePool(2, 'Max');
