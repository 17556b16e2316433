/**
 * ONNX lowerings shared by modules and their functional forms (nn.GELU and F.gelu lower the
 * same way). Each follows PyTorch's definition; the docs link is the formula being matched.
 */
import { nnsError } from '../errors.js';
import { type Shape, broadcast, dimMul, showShape } from './dims.js';
import { type GraphBuilder, type Tensor, float } from './graph-builder.js';

export function scalar(g: GraphBuilder, v: number, like: Tensor): Tensor {
  return like.dtype === 'int64' ? g.constInt64([v], []) : g.constFloat([v], []);
}

/** Add/Sub/Mul/Div/MatMul-free elementwise binary op with PyTorch broadcasting. */
export function binary(g: GraphBuilder, op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow', a: Tensor, b: Tensor): Tensor {
  const shape = broadcast(a.shape, b.shape);
  if (!shape) {
    throw nnsError('ARCH_SHAPE_MISMATCH', `${g.scope}: shapes ${showShape(a.shape)} and ${showShape(b.shape)} do not broadcast`);
  }
  return g.op(op, [a, b], {}, { shape, dtype: a.dtype === 'float32' || b.dtype === 'float32' ? 'float32' : 'int64' });
}

/** https://pytorch.org/docs/stable/generated/torch.matmul.html */
export function matmul(g: GraphBuilder, a: Tensor, b: Tensor): Tensor {
  const fail = (): never => {
    throw nnsError('ARCH_SHAPE_MISMATCH', `${g.scope}: cannot multiply matrices of shapes ${showShape(a.shape)} and ${showShape(b.shape)}`);
  };
  if (a.shape.length === 0 || b.shape.length === 0) fail();
  const ak = a.shape[a.shape.length - 1]!;
  const bk = b.shape.length === 1 ? b.shape[0]! : b.shape[b.shape.length - 2]!;
  if (typeof ak === 'number' && typeof bk === 'number' && ak !== bk) fail();
  let shape: Shape;
  if (a.shape.length === 1 && b.shape.length === 1) shape = [];
  else if (a.shape.length === 1) shape = [...b.shape.slice(0, -2), b.shape[b.shape.length - 1]!];
  else if (b.shape.length === 1) shape = a.shape.slice(0, -1);
  else {
    const batch = broadcast(a.shape.slice(0, -2), b.shape.slice(0, -2)) ?? fail();
    shape = [...batch, a.shape[a.shape.length - 2]!, b.shape[b.shape.length - 1]!];
  }
  return g.op('MatMul', [a, b], {}, { shape });
}

export function relu(g: GraphBuilder, x: Tensor): Tensor {
  return g.unary('Relu', x);
}

export function leakyRelu(g: GraphBuilder, x: Tensor, negativeSlope: number): Tensor {
  return g.unary('LeakyRelu', x, { alpha: float(negativeSlope) });
}

export function elu(g: GraphBuilder, x: Tensor, alpha: number): Tensor {
  return g.unary('Elu', x, { alpha: float(alpha) });
}

/** SiLU(x) = x * sigmoid(x). */
export function silu(g: GraphBuilder, x: Tensor): Tensor {
  return g.op('Mul', [x, g.unary('Sigmoid', x)], {}, { shape: x.shape });
}

/**
 * GELU: 'none' is x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); 'tanh' is
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). ONNX's Gelu op needs opset 20; ORT fuses
 * this pattern into its own Gelu kernel.
 */
export function gelu(g: GraphBuilder, x: Tensor, approximate: 'none' | 'tanh'): Tensor {
  const half = g.op('Mul', [x, g.constFloat([0.5], [])], {}, { shape: x.shape });
  let inner: Tensor;
  if (approximate === 'none') {
    inner = g.unary('Erf', g.op('Div', [x, g.constFloat([Math.SQRT2], [])], {}, { shape: x.shape }));
  } else {
    const x3 = g.op('Mul', [g.op('Mul', [x, x], {}, { shape: x.shape }), x], {}, { shape: x.shape });
    const poly = g.op('Add', [x, g.op('Mul', [x3, g.constFloat([0.044715], [])], {}, { shape: x.shape })], {}, { shape: x.shape });
    inner = g.unary('Tanh', g.op('Mul', [poly, g.constFloat([Math.sqrt(2 / Math.PI)], [])], {}, { shape: x.shape }));
  }
  const onePlus = g.op('Add', [inner, g.constFloat([1], [])], {}, { shape: x.shape });
  return g.op('Mul', [half, onePlus], {}, { shape: x.shape });
}

/** PyTorch's implicit softmax dim when dim=None (torch/nn/functional.py _get_softmax_dim). */
export function implicitSoftmaxDim(rank: number): number {
  return rank === 0 || rank === 1 || rank === 3 ? 0 : 1;
}

export function softmax(g: GraphBuilder, x: Tensor, dim: number | null, log = false): Tensor {
  const axis = g.axis(x, dim ?? implicitSoftmaxDim(x.shape.length));
  return g.unary(log ? 'LogSoftmax' : 'Softmax', x, { axis });
}

/** torch.mean / torch.sum over dims (null: all), opset-17 ReduceMean takes axes as an attribute. */
export function reduce(g: GraphBuilder, op: 'ReduceMean' | 'ReduceSum', x: Tensor, dims: number[] | null, keepdim: boolean): Tensor {
  const axes = (dims ?? x.shape.map((_, i) => i)).map((d) => g.axis(x, d));
  const shape = keepdim ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  const axesAsInput = op === 'ReduceSum' || g.opset >= 18;
  if (axesAsInput) return g.op(op, [x, g.constInt64(axes)], { keepdims: keepdim ? 1 : 0 }, { shape, dtype: x.dtype });
  return g.op(op, [x], { axes, keepdims: keepdim ? 1 : 0 }, { shape, dtype: x.dtype });
}

/** torch.flatten(x, start_dim, end_dim). */
export function flatten(g: GraphBuilder, x: Tensor, startDim: number, endDim: number): Tensor {
  if (x.shape.length === 0) return g.reshape(x, [1]);
  const s = g.axis(x, startDim, 'start_dim');
  const e = g.axis(x, endDim, 'end_dim');
  if (s > e) throw nnsError('ARCH_SHAPE_MISMATCH', `${g.scope}: flatten() has start_dim=${startDim} after end_dim=${endDim}`);
  if (s === e) return x;
  const merged = dimMul(...x.shape.slice(s, e + 1));
  const shape = [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)];
  if (s === 1 && e === x.shape.length - 1) return g.op('Flatten', [x], { axis: 1 }, { shape, dtype: x.dtype });
  return g.reshape(x, shape);
}
