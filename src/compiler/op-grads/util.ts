/**
 * Building blocks of the gradient rules: broadcasting undone by summation, shapes read at run
 * time where the batch is symbolic, float constants.
 */
import { broadcast, dimEq, isStatic } from '../dims.js';
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import type { Attr, NodeProto } from '../onnx-proto.js';
import { binary, reduce } from '../ops.js';

export function scalarF(g: GraphBuilder, v: number): Tensor {
  return g.constFloat([v], []);
}

export const add = (g: GraphBuilder, a: Tensor, b: Tensor) => binary(g, 'Add', a, b);
export const sub = (g: GraphBuilder, a: Tensor, b: Tensor) => binary(g, 'Sub', a, b);
export const mul = (g: GraphBuilder, a: Tensor, b: Tensor) => binary(g, 'Mul', a, b);
export const div = (g: GraphBuilder, a: Tensor, b: Tensor) => binary(g, 'Div', a, b);
export const neg = (g: GraphBuilder, a: Tensor) => g.unary('Neg', a);

/** ReduceSum over axes, keepdims or not (opset 13+: axes are an input). */
export function sum(g: GraphBuilder, x: Tensor, axes: number[], keepdims: boolean): Tensor {
  if (axes.length === 0) return x;
  return reduce(g, 'ReduceSum', x, axes, keepdims);
}

/** The run-time shape of x (Shape node), or a constant when it is static. */
export function shapeOf(g: GraphBuilder, x: Tensor): Tensor {
  if (x.shape.every(isStatic)) return g.constInt64(x.shape as number[]);
  return g.op('Shape', [x], {}, { shape: [x.shape.length], dtype: 'int64' });
}

/** One run-time dimension of x as an int64 [1]. */
export function dimOf(g: GraphBuilder, x: Tensor, axis: number): Tensor {
  const d = x.shape[axis]!;
  if (isStatic(d)) return g.constInt64([d]);
  return g.op('Shape', [x], { start: axis, end: axis + 1 }, { shape: [1], dtype: 'int64' });
}

/** dy reshaped to x's shape (symbolic dims read from x at run time when needed). */
export function reshapeLike(g: GraphBuilder, dy: Tensor, x: Tensor): Tensor {
  if (dy.shape.length === x.shape.length && dy.shape.every((d, i) => dimEq(d, x.shape[i]!))) return dy;
  const symbolic = x.shape.filter((d) => !isStatic(d));
  const copyable = x.shape.every((d, i) => isStatic(d) || (i < dy.shape.length && dimEq(d, dy.shape[i]!)));
  if (symbolic.length <= 1 || copyable) {
    try {
      return g.reshape(dy, x.shape);
    } catch {
      // two dynamic dims that are not in place: read the shape at run time below
    }
  }
  return g.op('Reshape', [dy, shapeOf(g, x)], {}, { shape: x.shape, dtype: dy.dtype });
}

/** t broadcast up to x's shape (Expand to x's run-time shape). */
export function expandLike(g: GraphBuilder, t: Tensor, x: Tensor): Tensor {
  if (t.shape.length === x.shape.length && t.shape.every((d, i) => dimEq(d, x.shape[i]!))) return t;
  return g.op('Expand', [t, shapeOf(g, x)], {}, { shape: x.shape, dtype: t.dtype });
}

/**
 * The gradient of a value that was broadcast from `shape` to grad's shape: summed over the
 * broadcast axes (NumPy rules, as PyTorch's autograd does in sum_to_size).
 */
export function unbroadcast(g: GraphBuilder, grad: Tensor, target: Tensor): Tensor {
  const shape = target.shape;
  const lead = grad.shape.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < grad.shape.length; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && grad.shape[i] !== 1) axes.push(i);
  }
  if (axes.length === 0) return grad;
  const summed = sum(g, grad, axes, true);
  return reshapeLike(g, summed, target);
}

/** Zeros of x's shape. */
export function zerosLike(g: GraphBuilder, x: Tensor): Tensor {
  const value: Attr = { type: 'tensor', value: { name: '', dtype: 'float32', dims: [1], raw: new Uint8Array(4) } };
  return g.op('ConstantOfShape', [shapeOf(g, x)], { value }, { shape: x.shape });
}

/** A float mask (1 where cond) as float32. */
export function castFloat(g: GraphBuilder, t: Tensor): Tensor {
  return g.op('Cast', [t], { to: 1 }, { shape: t.shape });
}

export function bool(g: GraphBuilder, op: 'Greater' | 'Less' | 'Equal' | 'GreaterOrEqual' | 'LessOrEqual', a: Tensor, b: Tensor): Tensor {
  return g.op(op, [a, b], {}, { shape: broadcast(a.shape, b.shape) ?? a.shape, dtype: 'bool' });
}

export function where(g: GraphBuilder, cond: Tensor, a: Tensor, b: Tensor): Tensor {
  return g.op('Where', [cond, a, b], {}, { shape: broadcast(broadcast(cond.shape, a.shape) ?? a.shape, b.shape) ?? a.shape });
}

/** Attribute readers for a node. */
export function attrs(node: NodeProto) {
  const get = (k: string) => node.attrs[k];
  return {
    int(k: string, dflt: number): number {
      const a = get(k);
      return a && a.type === 'int' ? a.value : dflt;
    },
    ints(k: string, dflt: number[]): number[] {
      const a = get(k);
      return a && a.type === 'ints' ? a.value : dflt;
    },
    float(k: string, dflt: number): number {
      const a = get(k);
      return a && a.type === 'float' ? a.value : dflt;
    },
    string(k: string, dflt: string): string {
      const a = get(k);
      return a && a.type === 'string' ? a.value : dflt;
    },
  };
}
