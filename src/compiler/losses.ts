/**
 * Loss functions for training graphs, one entry per torch.nn loss: each emits the loss value
 * and its gradient with respect to the model output side by side (the fused rule: CrossEntropy's
 * gradient is (softmax - target distribution) / N, never a LogSoftmax backward). Reductions,
 * class weights, ignore_index, label_smoothing and pos_weight follow PyTorch 1.13's formulas
 * (aten/src/ATen/native/Loss.cpp, LossNLL.cpp).
 */
import { nnsError } from '../errors.js';
import { type Shape, isStatic, showShape } from './dims.js';
import { type GraphBuilder, type Tensor } from './graph-builder.js';
import { binary, reduce } from './ops.js';
import { castFloat, scalarF } from './op-grads/util.js';

export type LossSpec =
  | { type: 'MSELoss' | 'L1Loss'; reduction?: 'mean' | 'sum' }
  | { type: 'BCELoss' | 'BCEWithLogitsLoss'; reduction?: 'mean' | 'sum'; pos_weight?: number[] }
  | { type: 'CrossEntropyLoss'; reduction?: 'mean' | 'sum'; ignore_index?: number; label_smoothing?: number; weight?: number[] }
  | { type: 'NLLLoss'; reduction?: 'mean' | 'sum'; ignore_index?: number; weight?: number[] }
  | { type: 'KLDivLoss'; reduction?: 'batchmean' | 'mean' | 'sum'; log_target?: boolean };

interface LossDef {
  /** Options besides type, with the reductions PyTorch allows (none is not: the loss must be a scalar). */
  readonly options: string[];
  readonly reductions: string[];
  /** The target holds class indices (int64, the output's shape without the class axis 1). */
  readonly classTarget: boolean;
  /** The loss and dL/d(output), for the output `x` and the target input `t`. */
  emit(g: GraphBuilder, spec: Record<string, unknown>, x: Tensor, t: Tensor): { loss: Tensor; grad: Tensor };
}

const f = (g: GraphBuilder, op: 'Add' | 'Sub' | 'Mul' | 'Div', a: Tensor, b: Tensor) => binary(g, op, a, b);
const sumAll = (g: GraphBuilder, x: Tensor) => reduce(g, 'ReduceSum', x, null, false);

/** The element count of x as a float scalar: a constant, or Size(x) when the batch is symbolic. */
function count(g: GraphBuilder, x: Tensor, axes: number[] = x.shape.map((_, i) => i)): Tensor {
  const dims = axes.map((a) => x.shape[a]!);
  if (dims.every(isStatic)) return scalarF(g, (dims as number[]).reduce((p, d) => p * d, 1));
  if (axes.length === x.shape.length) return castFloat(g, g.op('Size', [x], {}, { shape: [], dtype: 'int64' }));
  const shape = g.op('Shape', [x], {}, { shape: [x.shape.length], dtype: 'int64' });
  const picked = g.op('Gather', [shape, g.constInt64(axes)], { axis: 0 }, { shape: [axes.length], dtype: 'int64' });
  return castFloat(g, g.op('ReduceProd', [picked], { keepdims: 0 }, { shape: [], dtype: 'int64' }));
}

/** Pointwise loss `l` reduced by mean (over every element) or sum, and its gradient `dl` scaled to match. */
function reducePointwise(g: GraphBuilder, reduction: string, x: Tensor, l: Tensor, dl: Tensor): { loss: Tensor; grad: Tensor } {
  const total = sumAll(g, l);
  if (reduction === 'sum') return { loss: total, grad: dl };
  const n = count(g, x);
  return { loss: f(g, 'Div', total, n), grad: f(g, 'Div', dl, n) };
}

/** Per-class vector [C] shaped to broadcast over [N, C, *]. */
function perClass(g: GraphBuilder, v: number[], rank: number): Tensor {
  return g.constFloat(v, [v.length, ...Array(rank - 2).fill(1)]);
}

/**
 * NLLLoss and CrossEntropyLoss share one formula. With the target distribution
 * A[i, c] = m_i ((1 - eps) w_c [c = t_i] + eps w_c / C) (m_i = 0 for ignored targets) and
 * D = sum_i m_i w_{t_i} (mean) or 1 (sum): loss = -sum(A logp) / D; CrossEntropy's gradient with
 * respect to the logits is (sum_c A[i, c] softmax - A) / D, NLLLoss's is -A / D.
 */
function classLoss(crossEntropy: boolean): LossDef['emit'] {
  return (g, spec, x, t) => {
    const rank = x.shape.length;
    const classes = x.shape[1] as number;
    const eps = crossEntropy ? ((spec.label_smoothing as number | undefined) ?? 0) : 0;
    const ignore = (spec.ignore_index as number | undefined) ?? -100;
    const weight = spec.weight as number[] | undefined;
    const onehot = g.op('OneHot', [t, g.constInt64([classes], []), g.constFloat([0, 1])], { axis: 1 }, { shape: x.shape });
    // OneHot gives an all-zero row for an index outside [-C, C); an ignore_index inside needs a mask.
    const ignoredInRange = ignore >= -classes && ignore < classes;
    let hot = onehot;
    let valid: Tensor | null = null;
    if (ignoredInRange || eps > 0) {
      valid = ignoredInRange
        ? g.unsqueeze(castFloat(g, g.op('Not', [g.op('Equal', [t, g.constInt64([ignore], [])], {}, { shape: t.shape, dtype: 'bool' })], {}, { shape: t.shape, dtype: 'bool' })), [1])
        : reduce(g, 'ReduceSum', onehot, [1], true);
      if (ignoredInRange) hot = f(g, 'Mul', onehot, valid);
    }
    const w = weight ? perClass(g, weight, rank) : null;
    const hotW = w ? f(g, 'Mul', hot, w) : hot;
    let target = eps > 0 ? f(g, 'Mul', hotW, scalarF(g, 1 - eps)) : hotW;
    if (eps > 0) target = f(g, 'Add', target, f(g, 'Mul', valid!, w ? perClass(g, weight!.map((v) => (v * eps) / classes), rank) : scalarF(g, eps / classes)));
    const logp = crossEntropy ? g.unary('LogSoftmax', x, { axis: 1 }) : x;
    let loss = g.unary('Neg', sumAll(g, f(g, 'Mul', target, logp)));
    let grad = crossEntropy
      ? f(g, 'Sub', f(g, 'Mul', g.unary('Exp', logp), reduce(g, 'ReduceSum', target, [1], true)), target)
      : g.unary('Neg', target);
    if (spec.reduction !== 'sum') {
      const denominator = sumAll(g, hotW);
      loss = f(g, 'Div', loss, denominator);
      grad = f(g, 'Div', grad, denominator);
    }
    return { loss, grad };
  };
}

const LOSSES: Record<LossSpec['type'], LossDef> = {
  /** mean((x - t)^2); d/dx = 2 (x - t) / n. */
  MSELoss: {
    options: ['reduction'], reductions: ['mean', 'sum'], classTarget: false,
    emit(g, spec, x, t) {
      const d = f(g, 'Sub', x, t);
      return reducePointwise(g, spec.reduction as string, x, f(g, 'Mul', d, d), f(g, 'Mul', d, scalarF(g, 2)));
    },
  },
  /** mean|x - t|; d/dx = sign(x - t) / n (0 where equal, as PyTorch's sgn). */
  L1Loss: {
    options: ['reduction'], reductions: ['mean', 'sum'], classTarget: false,
    emit(g, spec, x, t) {
      const d = f(g, 'Sub', x, t);
      return reducePointwise(g, spec.reduction as string, x, g.unary('Abs', d), g.unary('Sign', d));
    },
  },
  /**
   * -(t log x + (1 - t) log(1 - x)), each log clamped at -100; d/dx = (x - t) / max(x (1 - x), 1e-12)
   * (binary_cross_entropy_backward's EPSILON).
   */
  BCELoss: {
    options: ['reduction'], reductions: ['mean', 'sum'], classTarget: false,
    emit(g, spec, x, t) {
      const one = scalarF(g, 1);
      const clampLog = (v: Tensor) => g.op('Max', [g.unary('Log', v), scalarF(g, -100)], {}, { shape: v.shape });
      const oneMinusX = f(g, 'Sub', one, x);
      const l = g.unary('Neg', f(g, 'Add', f(g, 'Mul', t, clampLog(x)), f(g, 'Mul', f(g, 'Sub', one, t), clampLog(oneMinusX))));
      const dl = f(g, 'Div', f(g, 'Sub', x, t), g.op('Max', [f(g, 'Mul', x, oneMinusX), scalarF(g, 1e-12)], {}, { shape: x.shape }));
      return reducePointwise(g, spec.reduction as string, x, l, dl);
    },
  },
  /**
   * (1 - t) x + lw softplus(-x) with lw = 1 + (pos_weight - 1) t; d/dx = (pw t + 1 - t) sigmoid(x) - pw t
   * (binary_cross_entropy_with_logits and its backward; pos_weight broadcasts over the last dim).
   */
  BCEWithLogitsLoss: {
    options: ['reduction', 'pos_weight'], reductions: ['mean', 'sum'], classTarget: false,
    emit(g, spec, x, t) {
      const pw = spec.pos_weight as number[] | undefined;
      const one = scalarF(g, 1);
      const oneMinusT = f(g, 'Sub', one, t);
      const softplusNeg = g.unary('Softplus', g.unary('Neg', x));
      const sig = g.unary('Sigmoid', x);
      if (!pw) {
        return reducePointwise(g, spec.reduction as string, x, f(g, 'Add', f(g, 'Mul', oneMinusT, x), softplusNeg), f(g, 'Sub', sig, t));
      }
      const pwT = f(g, 'Mul', g.constFloat(pw), t);
      const lw = f(g, 'Add', f(g, 'Sub', pwT, t), one);
      const l = f(g, 'Add', f(g, 'Mul', oneMinusT, x), f(g, 'Mul', lw, softplusNeg));
      return reducePointwise(g, spec.reduction as string, x, l, f(g, 'Sub', f(g, 'Mul', lw, sig), pwT));
    },
  },
  CrossEntropyLoss: {
    options: ['reduction', 'ignore_index', 'label_smoothing', 'weight'], reductions: ['mean', 'sum'], classTarget: true,
    emit: classLoss(true),
  },
  NLLLoss: {
    options: ['reduction', 'ignore_index', 'weight'], reductions: ['mean', 'sum'], classTarget: true,
    emit: classLoss(false),
  },
  /**
   * x is log q, t is p (or log p with log_target): pointwise t (log t - x), 0 where t = 0
   * (xlogy); d/dx = -t (or -exp(t)). batchmean divides the sum by the batch size.
   */
  KLDivLoss: {
    options: ['reduction', 'log_target'], reductions: ['batchmean', 'mean', 'sum'], classTarget: false,
    emit(g, spec, x, t) {
      let l: Tensor;
      let dl: Tensor;
      if (spec.log_target === true) {
        const p = g.unary('Exp', t);
        l = f(g, 'Mul', p, f(g, 'Sub', t, x));
        dl = g.unary('Neg', p);
      } else {
        const positive = g.op('Greater', [t, scalarF(g, 0)], {}, { shape: t.shape, dtype: 'bool' });
        const tlogt = g.op('Where', [positive, f(g, 'Mul', t, g.unary('Log', t)), scalarF(g, 0)], {}, { shape: t.shape });
        l = f(g, 'Sub', tlogt, f(g, 'Mul', t, x));
        dl = g.unary('Neg', t);
      }
      if (spec.reduction !== 'batchmean') return reducePointwise(g, spec.reduction as string, x, l, dl);
      const n = count(g, x, [0]);
      return { loss: f(g, 'Div', sumAll(g, l), n), grad: f(g, 'Div', dl, n) };
    },
  },
};

function invalid(message: string): never {
  throw nnsError('TRAIN_LOSS_INVALID', message);
}

/** Checks a loss spec against PyTorch's options; returns it with the default reduction filled in. */
export function validateLoss(raw: unknown): Record<string, unknown> & { type: LossSpec['type'] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) invalid(`loss must be an object like {"type": "CrossEntropyLoss"}, got ${JSON.stringify(raw)}`);
  const spec = raw as Record<string, unknown>;
  const def = LOSSES[spec.type as LossSpec['type']];
  if (typeof spec.type !== 'string' || !def) invalid(`unknown loss type ${JSON.stringify(spec.type)}; supported losses are ${Object.keys(LOSSES).join(', ')}`);
  for (const k of Object.keys(spec)) {
    if (k !== 'type' && !def.options.includes(k)) invalid(`${spec.type} got an unexpected option "${k}"; its options are ${def.options.join(', ')}`);
  }
  const reduction = spec.reduction ?? 'mean';
  if (!def.reductions.includes(reduction as string)) {
    invalid(`${spec.type}: reduction must be ${def.reductions.map((r) => `'${r}'`).join(' or ')} (a training loss is a scalar), got ${JSON.stringify(spec.reduction)}`);
  }
  const numbers = (k: string) => {
    const v = spec[k];
    if (v !== undefined && (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))) invalid(`${spec.type}: ${k} must be a non-empty list of numbers`);
  };
  numbers('weight');
  numbers('pos_weight');
  if (spec.ignore_index !== undefined && !Number.isInteger(spec.ignore_index)) invalid(`${spec.type}: ignore_index must be an int`);
  const ls = spec.label_smoothing;
  if (ls !== undefined && (typeof ls !== 'number' || ls < 0 || ls > 1)) invalid(`${spec.type}: label_smoothing must be a number in [0, 1], got ${JSON.stringify(ls)}`);
  if (spec.log_target !== undefined && typeof spec.log_target !== 'boolean') invalid(`${spec.type}: log_target must be true or false`);
  return { ...spec, reduction, type: spec.type as LossSpec['type'] };
}

/** The target input a loss reads for a model output: class indices or a tensor like the output. */
export function targetSpec(spec: { type: LossSpec['type'] } & Record<string, unknown>, out: Tensor, outName: string): { dtype: 'int64' | 'float32'; shape: Shape } {
  const def = LOSSES[spec.type];
  if (out.dtype !== 'float32') invalid(`${spec.type}: output "${outName}" is ${out.dtype}, not float32`);
  if (!def.classTarget) {
    if (spec.pos_weight) {
      const last = out.shape[out.shape.length - 1];
      const n = (spec.pos_weight as number[]).length;
      if (n !== 1 && last !== n) invalid(`${spec.type}: pos_weight has ${n} entries but output "${outName}" has ${last} classes in its last dim (shape ${showShape(out.shape)})`);
    }
    return { dtype: 'float32', shape: out.shape };
  }
  const classes = out.shape[1];
  if (out.shape.length < 2 || !isStatic(classes!)) {
    invalid(`${spec.type} needs an output of shape [batch, classes, ...] with a static class count; output "${outName}" has shape ${showShape(out.shape)}`);
  }
  const w = spec.weight as number[] | undefined;
  if (w && w.length !== classes) invalid(`${spec.type}: weight has ${w.length} entries but output "${outName}" has ${classes} classes`);
  return { dtype: 'int64', shape: [out.shape[0]!, ...out.shape.slice(2)] };
}

export function emitLoss(g: GraphBuilder, spec: { type: LossSpec['type'] } & Record<string, unknown>, out: Tensor, target: Tensor): { loss: Tensor; grad: Tensor } {
  const saved = g.scope;
  g.scope = `loss/${spec.type}`;
  try {
    return LOSSES[spec.type].emit(g, spec, out, target);
  } finally {
    g.scope = saved;
  }
}
