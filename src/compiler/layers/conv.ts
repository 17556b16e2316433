/**
 * Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d. ONNX Conv and ConvTranspose share
 * PyTorch's weight layouts ([out, in/groups, *k] and [in, out/groups, *k]).
 */
import { type Dim, isStatic, showShape } from '../dims.js';
import { type ModuleCtx, defineLayer, fanInBound, weight, THROUGH_OPS } from '../layer.js';
import { bool, convPadding, ints, oneOf, positiveInt } from '../signature.js';
import type { Tensor } from '../graph-builder.js';

interface ConvArgs {
  in_channels: number;
  out_channels: number;
  kernel_size: number[];
  stride: number[];
  padding: number[] | 'same' | 'valid';
  dilation: number[];
  groups: number;
  bias: boolean;
  padding_mode: 'zeros' | 'reflect' | 'replicate' | 'circular';
}

/** floor((L + pads - dilation*(k-1) - 1) / stride) + 1, the formula on PyTorch's Conv2d page. */
export function slidingOutput(m: ModuleCtx<unknown>, len: Dim, padTotal: number, k: number, stride: number, dilation: number, ceil = false): Dim {
  if (!isStatic(len)) return `${m.name}_${len}`;
  const span = len + padTotal - dilation * (k - 1) - 1;
  if (span < 0) {
    m.fail('ARCH_SHAPE_MISMATCH', `its input is too small: spatial size ${len} with padding ${padTotal} is smaller than the kernel's extent ${dilation * (k - 1) + 1}`);
  }
  return Math.floor(span / stride) + 1 + (ceil && span % stride !== 0 ? 1 : 0);
}

/** Begin and end pads per spatial axis (PyTorch's 'same' puts the odd pixel at the end). */
function explicitPads(a: ConvArgs): { begin: number[]; end: number[] } {
  if (a.padding === 'valid') return { begin: a.kernel_size.map(() => 0), end: a.kernel_size.map(() => 0) };
  if (a.padding === 'same') {
    const total = a.kernel_size.map((k, i) => a.dilation[i]! * (k - 1));
    return { begin: total.map((t) => Math.floor(t / 2)), end: total.map((t) => t - Math.floor(t / 2)) };
  }
  return { begin: a.padding, end: a.padding };
}

function conv(n: number) {
  return defineLayer<ConvArgs>({
    type: `Conv${n}d`,
    args: {
      in_channels: positiveInt(), out_channels: positiveInt(), kernel_size: ints(n), stride: ints(n, 1),
      padding: convPadding(n), dilation: ints(n, 1), groups: positiveInt(1), bias: bool(true),
      padding_mode: oneOf(['zeros', 'reflect', 'replicate', 'circular'] as const, 'zeros'),
    },
    inputs: ['input'],
    validate(a, fail) {
      if (a.in_channels % a.groups !== 0) fail(`in_channels=${a.in_channels} must be divisible by groups=${a.groups}`);
      if (a.out_channels % a.groups !== 0) fail(`out_channels=${a.out_channels} must be divisible by groups=${a.groups}`);
      if (a.padding === 'same' && a.stride.some((s) => s !== 1)) fail("padding='same' is not supported for strided convolutions");
      if (a.padding_mode === 'circular') fail("padding_mode='circular' is not supported (ONNX Pad has no wrap mode before opset 19)");
      if ([...a.kernel_size, ...a.stride, ...a.dilation].some((v) => v <= 0)) fail('kernel_size, stride and dilation must be positive');
    },
    params(a) {
      const fanIn = (a.in_channels / a.groups) * a.kernel_size.reduce((p, k) => p * k, 1);
      return [
        weight('weight', [a.out_channels, a.in_channels / a.groups, ...a.kernel_size], fanInBound(fanIn)),
        ...(a.bias ? [weight('bias', [a.out_channels], fanInBound(fanIn))] : []),
      ];
    },
    forward(m, [input]) {
      const { g, args: a } = m;
      let x: Tensor = m.tensor(input, 'input', [n + 2]);
      if (x.shape[1] !== a.in_channels) {
        m.fail('ARCH_SHAPE_MISMATCH', `in_channels=${a.in_channels} but its input has ${x.shape[1]} channels (shape ${showShape(x.shape)})`);
      }
      let { begin, end } = explicitPads(a);
      if (a.padding_mode !== 'zeros' && [...begin, ...end].some((p) => p > 0)) {
        // PyTorch pads first (F.pad with mode reflect/replicate), then convolves with padding 0.
        const pads = [0, 0, ...begin, 0, 0, ...end];
        const shape = x.shape.map((d, i) => (i < 2 || !isStatic(d) ? d : d + begin[i - 2]! + end[i - 2]!));
        x = g.op('Pad', [x, g.constInt64(pads)], { mode: a.padding_mode === 'reflect' ? 'reflect' : 'edge' }, { shape });
        begin = begin.map(() => 0);
        end = end.map(() => 0);
      }
      const spatial = x.shape.slice(2).map((len, i) => slidingOutput(m, len, begin[i]! + end[i]!, a.kernel_size[i]!, a.stride[i]!, a.dilation[i]!));
      const inputs = [x, m.param('weight'), a.bias ? m.param('bias') : null];
      return g.op('Conv', inputs, {
        kernel_shape: a.kernel_size, strides: a.stride, pads: [...begin, ...end], dilations: a.dilation, group: a.groups,
      }, { shape: [x.shape[0]!, a.out_channels, ...spatial] });
    },
    backward: THROUGH_OPS,
  });
}

export const Conv1d = conv(1);
export const Conv2d = conv(2);
export const Conv3d = conv(3);

interface ConvTransposeArgs {
  in_channels: number;
  out_channels: number;
  kernel_size: number[];
  stride: number[];
  padding: number[];
  output_padding: number[];
  groups: number;
  bias: boolean;
  dilation: number[];
  padding_mode: 'zeros';
}

function convTranspose(n: number) {
  return defineLayer<ConvTransposeArgs>({
    type: `ConvTranspose${n}d`,
    args: {
      in_channels: positiveInt(), out_channels: positiveInt(), kernel_size: ints(n), stride: ints(n, 1), padding: ints(n, 0),
      output_padding: ints(n, 0), groups: positiveInt(1), bias: bool(true), dilation: ints(n, 1),
      padding_mode: oneOf(['zeros'] as const, 'zeros'),
    },
    inputs: ['input'],
    validate(a, fail) {
      if (a.in_channels % a.groups !== 0) fail(`in_channels=${a.in_channels} must be divisible by groups=${a.groups}`);
      if (a.out_channels % a.groups !== 0) fail(`out_channels=${a.out_channels} must be divisible by groups=${a.groups}`);
      a.output_padding.forEach((op, i) => {
        if (op >= a.stride[i]! && op >= a.dilation[i]!) fail(`output_padding=${op} must be smaller than either stride or dilation`);
      });
    },
    params(a) {
      // torch's fan_in for a [in, out/groups, *k] weight is size(1) * receptive field.
      const fanIn = (a.out_channels / a.groups) * a.kernel_size.reduce((p, k) => p * k, 1);
      return [
        weight('weight', [a.in_channels, a.out_channels / a.groups, ...a.kernel_size], fanInBound(fanIn)),
        ...(a.bias ? [weight('bias', [a.out_channels], fanInBound(fanIn))] : []),
      ];
    },
    forward(m, [input]) {
      const { g, args: a } = m;
      const x = m.tensor(input, 'input', [n + 2]);
      if (x.shape[1] !== a.in_channels) {
        m.fail('ARCH_SHAPE_MISMATCH', `in_channels=${a.in_channels} but its input has ${x.shape[1]} channels (shape ${showShape(x.shape)})`);
      }
      const spatial = x.shape.slice(2).map((len, i): Dim => {
        if (!isStatic(len)) return `${m.name}_${len}`;
        const out = (len - 1) * a.stride[i]! - 2 * a.padding[i]! + a.dilation[i]! * (a.kernel_size[i]! - 1) + a.output_padding[i]! + 1;
        if (out <= 0) m.fail('ARCH_SHAPE_MISMATCH', `its output would have spatial size ${out} for input size ${len}`);
        return out;
      });
      const inputs = [x, m.param('weight'), a.bias ? m.param('bias') : null];
      return g.op('ConvTranspose', inputs, {
        kernel_shape: a.kernel_size, strides: a.stride, pads: [...a.padding, ...a.padding], dilations: a.dilation,
        group: a.groups, output_padding: a.output_padding,
      }, { shape: [x.shape[0]!, a.out_channels, ...spatial] });
    },
    backward: THROUGH_OPS,
  });
}

export const ConvTranspose1d = convTranspose(1);
export const ConvTranspose2d = convTranspose(2);
export const ConvTranspose3d = convTranspose(3);
