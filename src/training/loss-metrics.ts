/**
 * A loss and an accuracy over a whole evaluation set, computed in JS from the eval graph's
 * predictions (the eval graph has no loss; the validation set is small next to training).
 * Each loss follows torch.nn.functional (1.13) element for element; the set's value is what
 * torch would return for the whole set as one batch: reduction "mean" is the mean over every
 * element (CrossEntropy/NLL with `weight`: sum(w_y * l) / sum(w_y)), "batchmean" and "sum" are
 * divided by the number of samples, so every figure is per sample and comparable across sets.
 *
 * Accuracy, where a loss has a natural one: class-index targets (CrossEntropy, NLL) compare the
 * argmax over dim 1; probability targets compare argmaxes; BCE thresholds at 0.5 (BCEWithLogits
 * at logit 0). Regression losses have none.
 */
import type { TensorData } from '../runtime/ort.js';
import { nnsError } from '../errors.js';
import type { LossSpec } from '../compiler/index.js';

export type LossName = LossSpec['type'];

/** Every option any loss has, for reading a LossSpec without narrowing it first. */
type LossOptions = {
  type: LossName;
  reduction?: 'mean' | 'sum' | 'batchmean';
  weight?: number[];
  pos_weight?: number[];
  ignore_index?: number;
  label_smoothing?: number;
  log_target?: boolean;
};

/** torch.nn's loss class names, in the order error messages list them. */
export const LOSS_NAMES: readonly LossName[] = [
  'MSELoss', 'L1Loss', 'BCELoss', 'BCEWithLogitsLoss', 'CrossEntropyLoss', 'NLLLoss', 'KLDivLoss',
];

/** Short names people use, after lower-casing and dropping "_" and a trailing "loss". */
const SHORT: Record<string, LossName> = { mae: 'L1Loss', ce: 'CrossEntropyLoss' };

/**
 * A loss as a user names it: torch's class name in any case ("CrossEntropyLoss",
 * "crossentropyloss"), without "Loss", or as torch.nn.functional spells it ("mse_loss",
 * "cross_entropy", "nll_loss"), or a spec with options.
 */
export function resolveLossSpec(loss: string | LossSpec): LossSpec {
  const spec = (typeof loss === 'string' ? { type: loss } : { ...loss }) as LossOptions;
  if (spec === null || typeof spec !== 'object' || typeof spec.type !== 'string') {
    throw nnsError('TRAIN_LOSS_INVALID', `loss: expected a torch.nn loss name such as "CrossEntropyLoss", got ${JSON.stringify(loss)}`);
  }
  const key = spec.type.toLowerCase().replace(/_/g, '').replace(/loss$/, '');
  const name = LOSS_NAMES.find((n) => n.toLowerCase() === `${key}loss`) ?? SHORT[key];
  if (!name) throw nnsError('TRAIN_LOSS_INVALID', `unknown loss "${spec.type}"; known losses are ${LOSS_NAMES.join(', ')}`);
  return { ...spec, type: name } as LossSpec;
}

/** Whether predictions under this loss have an accuracy (classification); the best epoch is then the most accurate. */
export function hasAccuracy(spec: LossSpec): boolean {
  return spec.type === 'CrossEntropyLoss' || spec.type === 'NLLLoss' || spec.type === 'BCELoss' || spec.type === 'BCEWithLogitsLoss';
}

const num = (t: TensorData, i: number): number => Number(t.data[i]);

/** Sums over the batches of one evaluation; `result()` gives the set's loss and accuracy. */
export class LossAccumulator {
  private lossSum = 0;
  private lossCount = 0;
  private correct = 0;
  private judged = 0;
  private samples = 0;

  private readonly spec: LossOptions;

  constructor(spec: LossSpec) {
    this.spec = spec as LossOptions;
  }

  /** One batch: the model's output and the target as the dataset gives it. */
  add(pred: TensorData, target: TensorData): void {
    this.samples += pred.dims[0] ?? 1;
    const acc = countCorrect(this.spec as LossSpec, pred, target);
    if (acc) {
      this.correct += acc.correct;
      this.judged += acc.judged;
    }
    switch (this.spec.type) {
      case 'MSELoss':
      case 'L1Loss':
        return this.elementwise(pred, target, this.spec.type === 'MSELoss' ? (p, t) => (p - t) ** 2 : (p, t) => Math.abs(p - t));
      case 'BCELoss':
      case 'BCEWithLogitsLoss':
        return this.binary(pred, target);
      case 'CrossEntropyLoss':
      case 'NLLLoss':
        return this.classes(pred, target);
      case 'KLDivLoss':
        return this.kl(pred, target);
    }
  }

  result(): { loss: number; accuracy?: number } {
    const red = this.spec.reduction ?? 'mean';
    const loss = red === 'mean' ? this.lossSum / this.lossCount : this.lossSum / this.samples;
    return this.judged > 0 ? { loss, accuracy: this.correct / this.judged } : { loss };
  }

  private elementwise(pred: TensorData, target: TensorData, f: (p: number, t: number) => number): void {
    const n = pred.data.length;
    if (target.data.length !== n) throw shapeError(this.spec, pred, target);
    for (let i = 0; i < n; i++) this.lossSum += f(num(pred, i), num(target, i));
    this.lossCount += n;
  }

  private binary(pred: TensorData, target: TensorData): void {
    const n = pred.data.length;
    if (target.data.length !== n) throw shapeError(this.spec, pred, target);
    const last = pred.dims[pred.dims.length - 1] ?? 1;
    const weight = this.spec.weight;
    const posWeight = this.spec.pos_weight;
    const logits = this.spec.type === 'BCEWithLogitsLoss';
    for (let i = 0; i < n; i++) {
      const x = num(pred, i);
      const t = num(target, i);
      const w = weight ? weight[weight.length === 1 ? 0 : i % last] : 1;
      let l: number;
      if (logits) {
        // torch: (1 - t) x + (1 + (pw - 1) t) (log(1 + exp(-|x|)) + max(-x, 0))
        const pw = posWeight ? posWeight[posWeight.length === 1 ? 0 : i % last] : 1;
        l = (1 - t) * x + (1 + (pw - 1) * t) * (Math.log1p(Math.exp(-Math.abs(x))) + Math.max(-x, 0));
      } else {
        // torch clamps each log at -100.
        l = -(t * Math.max(Math.log(x), -100) + (1 - t) * Math.max(Math.log(1 - x), -100));
      }
      this.lossSum += w * l;
    }
    this.lossCount += n;
  }

  private classes(pred: TensorData, target: TensorData): void {
    const [N, C] = pred.dims as [number, number];
    const inner = pred.dims.slice(2).reduce((a, b) => a * b, 1); // K-dimensional case [N, C, d1, ...]
    const { weight, ignore_index = -100 } = this.spec;
    const eps = this.spec.type === 'CrossEntropyLoss' ? (this.spec.label_smoothing ?? 0) : 0;
    const logits = this.spec.type === 'CrossEntropyLoss';
    const probTargets = target.dtype !== 'int64';
    if (probTargets ? target.data.length !== pred.data.length : target.data.length !== N * inner) throw shapeError(this.spec, pred, target);
    const logp = new Float64Array(C);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < inner; k++) {
        const at = (c: number) => (n * C + c) * inner + k;
        let max = -Infinity;
        for (let c = 0; c < C; c++) {
          const v = num(pred, at(c));
          logp[c] = v;
          if (v > max) max = v;
        }
        if (logits) {
          let s = 0;
          for (let c = 0; c < C; c++) s += Math.exp(logp[c] - max);
          const lse = max + Math.log(s);
          for (let c = 0; c < C; c++) logp[c] -= lse;
        }
        if (probTargets) {
          let l = 0;
          for (let c = 0; c < C; c++) l -= (weight ? weight[c] : 1) * (num(target, at(c)) * (1 - eps) + eps / C) * logp[c];
          this.lossSum += l;
          this.lossCount += 1;
          continue;
        }
        const y = num(target, n * inner + k);
        if (y === ignore_index) continue;
        if (!(y >= 0 && y < C)) {
          throw nnsError('TRAIN_DATASET_INVALID', `${this.spec.type}: target class ${y} is out of range for ${C} classes (output dims [${pred.dims.join(', ')}])`);
        }
        const wy = weight ? weight[y] : 1;
        let l = -(1 - eps) * wy * logp[y];
        if (eps > 0) {
          let smooth = 0;
          for (let c = 0; c < C; c++) smooth -= (weight ? weight[c] : 1) * logp[c];
          l += (eps / C) * smooth;
        }
        this.lossSum += l;
        this.lossCount += wy;
      }
    }
  }

  private kl(pred: TensorData, target: TensorData): void {
    const n = pred.data.length;
    if (target.data.length !== n) throw shapeError(this.spec, pred, target);
    const logTarget = this.spec.log_target ?? false;
    for (let i = 0; i < n; i++) {
      const x = num(pred, i);
      const t = num(target, i);
      // torch: log_target ? exp(t) (t - x) : xlogy(t, t) - t x
      this.lossSum += logTarget ? Math.exp(t) * (t - x) : (t === 0 ? 0 : t * Math.log(t)) - t * x;
    }
    this.lossCount += n;
  }
}

/**
 * Correct predictions in one batch, for losses with a notion of accuracy (see the file's
 * comment); undefined for regression losses. Targets equal to ignore_index are not judged.
 */
export function countCorrect(lossSpec: LossSpec, pred: TensorData, target: TensorData): { correct: number; judged: number } | undefined {
  const spec = lossSpec as LossOptions;
  let correct = 0;
  let judged = 0;
  if (spec.type === 'BCELoss' || spec.type === 'BCEWithLogitsLoss') {
    const threshold = spec.type === 'BCELoss' ? 0.5 : 0;
    const n = Math.min(pred.data.length, target.data.length);
    for (let i = 0; i < n; i++) if (num(pred, i) > threshold === num(target, i) > 0.5) correct++;
    return { correct, judged: n };
  }
  if (spec.type !== 'CrossEntropyLoss' && spec.type !== 'NLLLoss') return undefined;
  const [N, C] = pred.dims as [number, number];
  const inner = pred.dims.slice(2).reduce((a, b) => a * b, 1);
  const probTargets = target.dtype !== 'int64';
  const ignore = spec.ignore_index ?? -100;
  const argmax = (t: TensorData, n: number, k: number): number => {
    let arg = 0;
    for (let c = 1; c < C; c++) if (num(t, (n * C + c) * inner + k) > num(t, (n * C + arg) * inner + k)) arg = c;
    return arg;
  };
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < inner; k++) {
      const y = probTargets ? argmax(target, n, k) : num(target, n * inner + k);
      if (!probTargets && y === ignore) continue;
      if (argmax(pred, n, k) === y) correct++;
      judged++;
    }
  }
  return { correct, judged };
}

function shapeError(spec: LossOptions, pred: TensorData, target: TensorData): Error {
  return nnsError('TRAIN_DATASET_INVALID', `${spec.type}: the model's output has dims [${pred.dims.join(', ')}] but the target has dims [${target.dims.join(', ')}]`);
}
