/**
 * Gradients of the ops that move data without computing on it: reshapes, transposes, slices,
 * gathers, concatenation, reductions and padding. A slice's gradient is the slice padded back
 * with zeros; a reduction's is the gradient broadcast back over the reduced axes.
 */
import { isStatic } from '../dims.js';
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import { nnsError } from '../../errors.js';
import type { OpGradCtx, OpGradRule } from './index.js';
import { attrs, castFloat, dimOf, div, expandLike, reshapeLike, scalarF, unbroadcast, zerosLike } from './util.js';

const reshapeBack: OpGradRule = (c, [dy]) => c.inputs.map((t, i) => (i === 0 && dy ? reshapeLike(c.g, dy, t!) : null));

/** An int64 constant input's values (Slice starts, ReduceSum axes, Pad pads). */
export function constInts(g: GraphBuilder, t: Tensor | null | undefined, what: string): number[] | undefined {
  if (!t) return undefined;
  const data = g.constant(t.name);
  if (!data || !(data instanceof BigInt64Array)) throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${g.scope}: ${what} must be a constant to differentiate through it`);
  return Array.from(data, (v) => Number(v));
}

type Amount = number | Tensor;

/**
 * ONNX Pad with zeros: begin/end amounts per axis, each a number or a run-time int64 [1]
 * (amounts that depend on a symbolic dimension).
 */
export function padZeros(g: GraphBuilder, x: Tensor, begin: Amount[], end: Amount[], outShape: Tensor['shape']): Tensor {
  const all = [...begin, ...end];
  if (all.every((a) => a === 0)) return x;
  let pads: Tensor;
  if (all.every((a) => typeof a === 'number')) pads = g.constInt64(all as number[]);
  else pads = g.concat(all.map((a) => (typeof a === 'number' ? g.constInt64([a]) : a)), 0);
  return g.op('Pad', [x, pads], { mode: 'constant' }, { shape: outShape });
}

function int64Sub(g: GraphBuilder, a: Tensor, b: Tensor): Tensor {
  return g.op('Sub', [a, b], {}, { shape: [1], dtype: 'int64' });
}

/** How much to pad after a slice [begin, begin + dyLen) to get back to len: len - begin - dyLen. */
function endAmount(g: GraphBuilder, x: Tensor, dy: Tensor, axis: number, begin: Amount): Amount {
  const len = x.shape[axis]!;
  const out = dy.shape[axis]!;
  if (isStatic(len) && isStatic(out) && typeof begin === 'number') return len - begin - out;
  const rest = int64Sub(g, dimOf(g, x, axis), dimOf(g, dy, axis));
  return typeof begin === 'number' && begin === 0 ? rest : int64Sub(g, rest, typeof begin === 'number' ? g.constInt64([begin]) : begin);
}

/** Where a slice or index `start` lands on an axis of length len (negative counts from the end). */
function startAmount(g: GraphBuilder, x: Tensor, axis: number, start: number): Amount {
  const len = x.shape[axis]!;
  if (start >= 0) return isStatic(len) ? Math.min(start, len) : start;
  if (isStatic(len)) return Math.max(0, len + start);
  return g.op('Add', [dimOf(g, x, axis), g.constInt64([start])], {}, { shape: [1], dtype: 'int64' });
}

/** Slice (steps > 0): pad dy back with zeros; steps > 1 interleave zeros first. */
const slice: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const [x, startsT, , axesT, stepsT] = c.inputs;
  if (!dy || !c.needs(0)) return [null];
  const starts = constInts(g, startsT, 'Slice starts')!;
  const axes = (constInts(g, axesT, 'Slice axes') ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + x!.shape.length : a));
  const steps = constInts(g, stepsT, 'Slice steps') ?? starts.map(() => 1);
  let grad = dy;
  const rank = x!.shape.length;
  const begin: Amount[] = Array(rank).fill(0);
  const end: Amount[] = Array(rank).fill(0);
  axes.forEach((axis, i) => {
    const step = steps[i]!;
    if (step < 1) throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${g.scope}: slices with negative steps have no gradient rule`);
    const b = startAmount(g, x!, axis, starts[i]!);
    if (step > 1) {
      const len = x!.shape[axis]!;
      const m = grad.shape[axis]!;
      if (!isStatic(len) || !isStatic(m) || typeof b !== 'number') {
        throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${g.scope}: strided slices of a dynamic dimension have no gradient rule`);
      }
      // [.., m, ..] -> [.., m, 1, ..] -> pad to [.., m, step, ..] -> [.., m*step, ..], then fit to len.
      const un = g.unsqueeze(grad, [axis + 1]);
      const padB = Array(rank + 1).fill(0);
      const padE = Array(rank + 1).fill(0);
      padE[axis + 1] = step - 1;
      const spread = padZeros(g, un, padB, padE, un.shape.map((d, j) => (j === axis + 1 ? step : d)));
      let flat = g.reshape(spread, grad.shape.map((d, j) => (j === axis ? m * step : d)));
      const room = len - b;
      if (m * step > room) flat = g.slice(flat, axis, 0, room);
      grad = flat;
    }
    begin[axis] = b;
  });
  axes.forEach((axis) => {
    end[axis] = endAmount(g, x!, grad, axis, begin[axis]!);
  });
  return [padZeros(g, grad, begin, end, x!.shape), null, null, null, null];
};

/** Gather on a constant index: a scalar index pads back, a permutation gathers back, anything else scatters. */
const gather: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const [data, indices] = c.inputs as Tensor[];
  if (!dy || !c.needs(0)) return [null, null];
  const rank = data!.shape.length;
  let axis = attrs(c.node).int('axis', 0);
  if (axis < 0) axis += rank;
  const idx = g.constant(indices!.name);
  if (idx instanceof BigInt64Array && indices!.shape.length === 0) {
    const i = Number(idx[0]);
    const b = startAmount(g, data!, axis, i);
    const un = g.unsqueeze(dy, [axis]);
    const begin: Amount[] = Array(rank).fill(0);
    const end: Amount[] = Array(rank).fill(0);
    begin[axis] = b;
    end[axis] = endAmount(g, data!, un, axis, b);
    return [padZeros(g, un, begin, end, data!.shape), null];
  }
  const len = data!.shape[axis]!;
  if (idx instanceof BigInt64Array && indices!.shape.length === 1 && isStatic(len) && idx.length === len) {
    const perm = Array.from(idx, (v) => Number(v) < 0 ? Number(v) + len : Number(v));
    if (new Set(perm).size === len) {
      const inverse = new Array<number>(len);
      perm.forEach((p, j) => { inverse[p] = j; });
      return [g.op('Gather', [dy, g.constInt64(inverse)], { axis }, { shape: data!.shape }), null];
    }
  }
  return [scatterAdd(g, data!, indices!, dy, axis), null];
};

/** dL/d(data) of Gather(data, indices, axis=0): rows of dy summed into the rows they came from (ScatterND, reduction add). */
export function scatterAdd(g: GraphBuilder, data: Tensor, indices: Tensor, dy: Tensor, axis: number): Tensor {
  if (axis !== 0) throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${g.scope}: Gather on axis ${axis} with a general index has no gradient rule`);
  const idx = g.unsqueeze(indices, [indices.shape.length]);
  return g.op('ScatterND', [zerosLike(g, data), idx, dy], { reduction: 'add' }, { shape: data.shape });
}

const concat: OpGradRule = (c, [dy]) => {
  const { g } = c;
  if (!dy) return c.inputs.map(() => null);
  let axis = attrs(c.node).int('axis', 0);
  const xs = c.inputs as Tensor[];
  if (axis < 0) axis += xs[0]!.shape.length;
  const lens = xs.map((x) => x.shape[axis]!);
  const sizes = lens.every(isStatic) ? g.constInt64(lens as number[]) : g.concat(xs.map((x) => dimOf(g, x, axis)), 0);
  return g.opN('Split', [dy, sizes], { axis }, xs.map((x) => ({ shape: x.shape })));
};

/** axes of a ReduceSum/ReduceMean node: an input (ReduceSum, opset 18) or an attribute; empty means all. */
function reduceAxes(c: OpGradCtx): number[] {
  const rank = c.inputs[0]!.shape.length;
  const fromInput = c.inputs.length > 1 ? constInts(c.g, c.inputs[1], 'reduction axes') : undefined;
  const axes = fromInput ?? attrs(c.node).ints('axes', []);
  const all = axes.length === 0 ? c.inputs[0]!.shape.map((_, i) => i) : axes;
  return all.map((a) => (a < 0 ? a + rank : a)).sort((p, q) => p - q);
}

function reduction(mean: boolean): OpGradRule {
  return (c, [dy]) => {
    const { g } = c;
    const x = c.inputs[0]!;
    if (!dy || !c.needs(0)) return c.inputs.map(() => null);
    const axes = reduceAxes(c);
    const keep = attrs(c.node).int('keepdims', 1) === 1;
    let grad = keep ? dy : g.unsqueeze(dy, axes);
    if (mean) {
      const dims = axes.map((a) => x.shape[a]!);
      if (dims.every(isStatic)) {
        grad = g.op('Mul', [grad, scalarF(g, 1 / (dims as number[]).reduce((p, d) => p * d, 1))], {}, { shape: grad.shape });
      } else {
        const count = div(g, castFloat(g, g.op('Size', [x], {}, { shape: [], dtype: 'int64' })), castFloat(g, g.op('Size', [grad], {}, { shape: [], dtype: 'int64' })));
        grad = div(g, grad, count);
      }
    }
    return [expandLike(g, grad, x), ...c.inputs.slice(1).map(() => null)];
  };
}

/** Pad with zeros (mode constant): the gradient is the middle part. */
const pad: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const x = c.inputs[0]!;
  if (!dy || !c.needs(0)) return c.inputs.map(() => null);
  const mode = attrs(c.node).string('mode', 'constant');
  if (mode !== 'constant') throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${g.scope}: padding mode "${mode}" (padding_mode='reflect'/'replicate') has no gradient rule`);
  const pads = constInts(g, c.inputs[1], 'Pad pads')!;
  if (c.inputs[3]) throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${g.scope}: Pad with axes has no gradient rule`);
  const rank = x.shape.length;
  let grad = dy;
  for (let a = 0; a < rank; a++) {
    const b = pads[a]!;
    const e = pads[a + rank]!;
    if (b < 0 || e < 0) throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${g.scope}: negative padding has no gradient rule`);
    if (b > 0 || e > 0) grad = g.slice(grad, a, b, e > 0 ? -e : Number.MAX_SAFE_INTEGER);
  }
  return [reshapeLike(g, grad, x), ...c.inputs.slice(1).map(() => null)];
};

export const rules: Record<string, OpGradRule> = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: (c, [dy]) => {
    const perm = attrs(c.node).ints('perm', c.inputs[0]!.shape.map((_, i) => c.inputs[0]!.shape.length - 1 - i));
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [dy ? c.g.transpose(dy, inverse) : null];
  },
  Expand: (c, [dy]) => [dy && c.needs(0) ? unbroadcast(c.g, dy, c.inputs[0]!) : null, null],
  Slice: slice,
  Gather: gather,
  Concat: concat,
  ReduceSum: reduction(false),
  ReduceMean: reduction(true),
  Pad: pad,
};
