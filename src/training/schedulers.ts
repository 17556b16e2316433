/**
 * Learning-rate schedulers, ported from torch.optim.lr_scheduler (1.13) line by line: the same
 * chainable (recursive) `get_lr` forms that `scheduler.step()` uses in torch, the same initial
 * step at construction, and the same SequentialLR quirks, so the LR values agree with
 * PyTorch's to the last bits over hundreds of steps (test/training/schedulers.test.ts).
 *
 * A scheduler changes `optimizer.param_groups[i].lr` (OneCycleLR also `momentum` or `betas[0]`).
 * Call `step()` after `optimizer.step()`, once per epoch or once per batch: `interval` records
 * which the job asked for; the training loop reads it.
 */
import { nnsError } from '../errors.js';

/** What a scheduler needs of an optimizer (every optimizer in ./optimizers fits). */
export interface SchedulableOptimizer {
  readonly param_groups: { lr: number; [key: string]: unknown }[];
  readonly defaults: object;
}

/** Whether the loop calls `step()` after each epoch or after each optimizer step (batch). */
export type SchedulerInterval = 'epoch' | 'step';

export interface SchedulerStateDict {
  last_epoch: number;
  step_count: number;
  base_lrs: number[];
  last_lr: number[];
  /** SequentialLR: the wrapped schedulers' states. */
  schedulers?: SchedulerStateDict[];
}

const invalid = (message: string) => nnsError('TRAIN_OPTIONS_INVALID', message);

function positiveInt(where: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw invalid(`${where}: expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function finite(where: string, v: unknown, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw invalid(`${where}: expected a finite number${min > -Infinity ? ` >= ${min}` : ''}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function positive(where: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw invalid(`${where}: expected a finite number > 0, got ${JSON.stringify(v)}`);
  return v;
}

/** Python's %, which is never negative for a positive divisor. */
const pymod = (a: number, b: number) => ((a % b) + b) % b;

export abstract class LRScheduler {
  abstract readonly name: string;
  readonly optimizer: SchedulableOptimizer;
  /** The groups' initial_lr when the scheduler was made. */
  base_lrs: number[];
  /** Steps taken; -1 before the initial step the constructor does. */
  last_epoch = -1;
  /** When the training loop calls `step()`. @defaultValue 'epoch' ('step' for OneCycleLR) */
  interval: SchedulerInterval = 'epoch';
  protected step_count = 0;
  protected last_lr: number[] = [];

  protected constructor(optimizer: SchedulableOptimizer) {
    if (!optimizer || !Array.isArray(optimizer.param_groups)) throw invalid('an LR scheduler needs an optimizer');
    this.optimizer = optimizer;
    for (const g of optimizer.param_groups) if (g.initial_lr === undefined) g.initial_lr = g.lr;
    this.base_lrs = optimizer.param_groups.map((g) => g.initial_lr as number);
  }

  /** torch's `_initial_step`: each subclass calls it last in its constructor, SequentialLR again on its first scheduler. */
  initialStep(): void {
    this.step_count = 0;
    this.step();
  }

  /** The chainable form torch's `step()` uses. */
  protected abstract getLr(): number[];

  /** The closed form torch uses for `step(epoch)`, where the scheduler has one. */
  protected closedFormLr(): number[] | undefined {
    return undefined;
  }

  step(): void {
    this.step_count += 1;
    this.last_epoch += 1;
    this.apply(this.getLr());
  }

  /** torch's deprecated `step(epoch)`; SequentialLR calls it with 0 at each milestone. */
  stepTo(epoch: number): void {
    this.step_count += 1;
    this.last_epoch = epoch;
    this.apply(this.closedFormLr() ?? this.getLr());
  }

  private apply(values: number[]): void {
    this.optimizer.param_groups.forEach((g, i) => (g.lr = values[i]));
    this.last_lr = this.optimizer.param_groups.map((g) => g.lr);
  }

  /** The learning rate of each group after the last step (torch's get_last_lr()). */
  getLastLr(): number[] {
    return [...this.last_lr];
  }

  protected get lrs(): number[] {
    return this.optimizer.param_groups.map((g) => g.lr);
  }

  stateDict(): SchedulerStateDict {
    return { last_epoch: this.last_epoch, step_count: this.step_count, base_lrs: [...this.base_lrs], last_lr: [...this.last_lr] };
  }

  loadStateDict(sd: SchedulerStateDict): void {
    const n = this.optimizer.param_groups.length;
    if (!sd || !Number.isInteger(sd.last_epoch) || !Number.isInteger(sd.step_count) || sd.base_lrs?.length !== n || sd.last_lr?.length !== n) {
      throw nnsError('TRAIN_STATE_INVALID', `${this.name}.loadStateDict: expected {last_epoch, step_count, base_lrs, last_lr} for ${n} param groups`);
    }
    this.last_epoch = sd.last_epoch;
    this.step_count = sd.step_count;
    this.base_lrs = [...sd.base_lrs];
    this.last_lr = [...sd.last_lr];
  }
}

export interface StepLROptions {
  /** Epochs (or steps) between decays. */
  step_size: number;
  /** Multiplicative decay. @defaultValue 0.1 */
  gamma?: number;
}

/** lr * gamma every step_size steps. */
export class StepLR extends LRScheduler {
  readonly name = 'StepLR';
  readonly step_size: number;
  readonly gamma: number;

  constructor(optimizer: SchedulableOptimizer, options: StepLROptions) {
    super(optimizer);
    this.step_size = positiveInt('StepLR step_size', options.step_size);
    this.gamma = positive('StepLR gamma', options.gamma ?? 0.1);
    this.initialStep();
  }

  protected getLr(): number[] {
    if (this.last_epoch === 0 || this.last_epoch % this.step_size !== 0) return this.lrs;
    return this.lrs.map((lr) => lr * this.gamma);
  }

  protected override closedFormLr(): number[] {
    return this.base_lrs.map((b) => b * this.gamma ** Math.floor(this.last_epoch / this.step_size));
  }
}

export interface MultiStepLROptions {
  /** Step indices at which lr is multiplied by gamma (a repeated index multiplies again). */
  milestones: number[];
  /** Multiplicative decay. @defaultValue 0.1 */
  gamma?: number;
}

/** lr * gamma at each milestone. */
export class MultiStepLR extends LRScheduler {
  readonly name = 'MultiStepLR';
  readonly milestones: ReadonlyMap<number, number>;
  readonly gamma: number;

  constructor(optimizer: SchedulableOptimizer, options: MultiStepLROptions) {
    super(optimizer);
    if (!Array.isArray(options.milestones)) throw invalid('MultiStepLR milestones: expected an array of step indices');
    const counts = new Map<number, number>();
    options.milestones.forEach((m, i) => {
      if (!Number.isInteger(m) || m < 0) throw invalid(`MultiStepLR milestones[${i}]: expected an integer >= 0, got ${JSON.stringify(m)}`);
      counts.set(m, (counts.get(m) ?? 0) + 1);
    });
    this.milestones = counts;
    this.gamma = positive('MultiStepLR gamma', options.gamma ?? 0.1);
    this.initialStep();
  }

  protected getLr(): number[] {
    const count = this.milestones.get(this.last_epoch);
    if (count === undefined) return this.lrs;
    return this.lrs.map((lr) => lr * this.gamma ** count);
  }

  protected override closedFormLr(): number[] {
    let passed = 0;
    for (const [m, count] of this.milestones) if (m <= this.last_epoch) passed += count;
    return this.base_lrs.map((b) => b * this.gamma ** passed);
  }
}

export interface ExponentialLROptions {
  /** Multiplicative decay per step. */
  gamma: number;
}

/** lr * gamma every step. */
export class ExponentialLR extends LRScheduler {
  readonly name = 'ExponentialLR';
  readonly gamma: number;

  constructor(optimizer: SchedulableOptimizer, options: ExponentialLROptions) {
    super(optimizer);
    this.gamma = positive('ExponentialLR gamma', options.gamma);
    this.initialStep();
  }

  protected getLr(): number[] {
    if (this.last_epoch === 0) return this.lrs;
    return this.lrs.map((lr) => lr * this.gamma);
  }

  protected override closedFormLr(): number[] {
    return this.base_lrs.map((b) => b * this.gamma ** this.last_epoch);
  }
}

export interface CosineAnnealingLROptions {
  /** Steps from the initial lr down to eta_min (the schedule then rises again, as torch's). */
  T_max: number;
  /** Lowest learning rate. @defaultValue 0 */
  eta_min?: number;
}

/** SGDR's cosine annealing without restarts, in torch's recursive form. */
export class CosineAnnealingLR extends LRScheduler {
  readonly name = 'CosineAnnealingLR';
  readonly T_max: number;
  readonly eta_min: number;

  constructor(optimizer: SchedulableOptimizer, options: CosineAnnealingLROptions) {
    super(optimizer);
    this.T_max = positiveInt('CosineAnnealingLR T_max', options.T_max);
    this.eta_min = finite('CosineAnnealingLR eta_min', options.eta_min ?? 0, 0);
    this.initialStep();
  }

  protected getLr(): number[] {
    const { last_epoch: e, T_max: T, eta_min } = this;
    if (e === 0) return this.lrs;
    if (this.step_count === 1 && e > 0) {
      return this.base_lrs.map((b) => eta_min + ((b - eta_min) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    }
    if (pymod(e - 1 - T, 2 * T) === 0) {
      return this.lrs.map((lr, i) => lr + ((this.base_lrs[i] - eta_min) * (1 - Math.cos(Math.PI / T))) / 2);
    }
    return this.lrs.map((lr) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (lr - eta_min) + eta_min);
  }

  protected override closedFormLr(): number[] {
    return this.base_lrs.map((b) => this.eta_min + ((b - this.eta_min) * (1 + Math.cos((Math.PI * this.last_epoch) / this.T_max))) / 2);
  }
}

export interface LinearLROptions {
  /** Factor on the initial lr at step 0, in (0, 1]. @defaultValue 1/3 */
  start_factor?: number;
  /** Factor reached after total_iters steps, in [0, 1]. @defaultValue 1 */
  end_factor?: number;
  /** Steps of the linear change. @defaultValue 5 */
  total_iters?: number;
}

/** Linear warm-up (or decay) of a factor on the initial lr. */
export class LinearLR extends LRScheduler {
  readonly name = 'LinearLR';
  readonly start_factor: number;
  readonly end_factor: number;
  readonly total_iters: number;

  constructor(optimizer: SchedulableOptimizer, options: LinearLROptions = {}) {
    super(optimizer);
    const start = options.start_factor ?? 1 / 3;
    const end = options.end_factor ?? 1;
    // torch 1.13 accepts start_factor 0 and then divides by zero on the second step.
    if (typeof start !== 'number' || !(start > 0 && start <= 1)) throw invalid(`LinearLR start_factor: expected 0 < start_factor <= 1, got ${JSON.stringify(start)}`);
    if (typeof end !== 'number' || !(end >= 0 && end <= 1)) throw invalid(`LinearLR end_factor: expected 0 <= end_factor <= 1, got ${JSON.stringify(end)}`);
    this.start_factor = start;
    this.end_factor = end;
    this.total_iters = positiveInt('LinearLR total_iters', options.total_iters ?? 5);
    this.initialStep();
  }

  protected getLr(): number[] {
    const { last_epoch: e, start_factor: s, end_factor: f, total_iters: n } = this;
    if (e === 0) return this.lrs.map((lr) => lr * s);
    if (e > n) return this.lrs;
    return this.lrs.map((lr) => lr * (1 + (f - s) / (n * s + (e - 1) * (f - s))));
  }

  protected override closedFormLr(): number[] {
    const { last_epoch: e, start_factor: s, end_factor: f, total_iters: n } = this;
    return this.base_lrs.map((b) => b * (s + ((f - s) * Math.min(n, e)) / n));
  }
}

export interface OneCycleLROptions {
  /** Peak learning rate, or one per param group. */
  max_lr: number | number[];
  /** Steps in the cycle; or give epochs and steps_per_epoch. */
  total_steps?: number;
  epochs?: number;
  steps_per_epoch?: number;
  /** Fraction of the cycle spent increasing the lr. @defaultValue 0.3 */
  pct_start?: number;
  /** @defaultValue 'cos' */
  anneal_strategy?: 'cos' | 'linear';
  /** Cycle momentum (SGD, RMSprop) or beta1 (Adam, AdamW) inversely to the lr. @defaultValue true */
  cycle_momentum?: boolean;
  /** Momentum at the lr peak. @defaultValue 0.85 */
  base_momentum?: number | number[];
  /** Momentum at the start and end. @defaultValue 0.95 */
  max_momentum?: number | number[];
  /** initial_lr = max_lr / div_factor. @defaultValue 25 */
  div_factor?: number;
  /** min_lr = initial_lr / final_div_factor. @defaultValue 1e4 */
  final_div_factor?: number;
  /** fast.ai's three phases (up, down to initial_lr, down to min_lr) instead of two. @defaultValue false */
  three_phase?: boolean;
}

interface Phase {
  end_step: number;
  start_lr: string;
  end_lr: string;
  start_momentum: string;
  end_momentum: string;
}

/** The 1cycle policy (Smith & Topin), stepped once per batch. */
export class OneCycleLR extends LRScheduler {
  readonly name = 'OneCycleLR';
  readonly total_steps: number;
  readonly cycle_momentum: boolean;
  private readonly phases: Phase[];
  private readonly anneal: (start: number, end: number, pct: number) => number;
  private readonly use_beta1: boolean;

  constructor(optimizer: SchedulableOptimizer, options: OneCycleLROptions) {
    const groups = optimizer.param_groups;
    let total: number;
    if (options.total_steps !== undefined) total = positiveInt('OneCycleLR total_steps', options.total_steps);
    else if (options.epochs !== undefined || options.steps_per_epoch !== undefined) {
      total = positiveInt('OneCycleLR epochs', options.epochs) * positiveInt('OneCycleLR steps_per_epoch', options.steps_per_epoch);
    } else throw invalid('OneCycleLR: give total_steps, or epochs and steps_per_epoch');
    const pct = options.pct_start ?? 0.3;
    if (typeof pct !== 'number' || !(pct >= 0 && pct <= 1)) throw invalid(`OneCycleLR pct_start: expected a number between 0 and 1, got ${JSON.stringify(pct)}`);
    const phases: Phase[] = options.three_phase
      ? [
          { end_step: pct * total - 1, start_lr: 'initial_lr', end_lr: 'max_lr', start_momentum: 'max_momentum', end_momentum: 'base_momentum' },
          { end_step: 2 * pct * total - 2, start_lr: 'max_lr', end_lr: 'initial_lr', start_momentum: 'base_momentum', end_momentum: 'max_momentum' },
          { end_step: total - 1, start_lr: 'initial_lr', end_lr: 'min_lr', start_momentum: 'max_momentum', end_momentum: 'max_momentum' },
        ]
      : [
          { end_step: pct * total - 1, start_lr: 'initial_lr', end_lr: 'max_lr', start_momentum: 'max_momentum', end_momentum: 'base_momentum' },
          { end_step: total - 1, start_lr: 'max_lr', end_lr: 'min_lr', start_momentum: 'base_momentum', end_momentum: 'max_momentum' },
        ];
    // torch divides by a phase's length; a phase of length <= 0 (pct_start too small for
    // total_steps) ends in ZeroDivisionError or NaN there, so refuse it up front.
    let start = 0;
    for (const [i, p] of phases.entries()) {
      if (i < phases.length - 1 && !(p.end_step > start)) {
        throw invalid(`OneCycleLR: pct_start ${pct} with total_steps ${total} leaves phase ${i + 1} without steps`);
      }
      start = p.end_step;
    }
    const strategy = options.anneal_strategy ?? 'cos';
    if (strategy !== 'cos' && strategy !== 'linear') throw invalid(`OneCycleLR anneal_strategy: expected "cos" or "linear", got ${JSON.stringify(strategy)}`);
    const perGroup = (name: string, v: unknown, def: number): number[] => {
      const list = Array.isArray(v) ? v : Array(groups.length).fill(v ?? def);
      if (list.length !== groups.length) throw invalid(`OneCycleLR ${name}: expected ${groups.length} values (one per param group), got ${list.length}`);
      return list.map((x, i) => finite(`OneCycleLR ${name}${Array.isArray(v) ? `[${i}]` : ''}`, x, 0));
    };
    if (options.max_lr === undefined) throw invalid('OneCycleLR max_lr is required');
    const maxLrs = perGroup('max_lr', options.max_lr, NaN);
    const div = positive('OneCycleLR div_factor', options.div_factor ?? 25);
    const finalDiv = positive('OneCycleLR final_div_factor', options.final_div_factor ?? 1e4);
    groups.forEach((g, i) => {
      const initial = maxLrs[i] / div;
      g.initial_lr = initial;
      g.max_lr = maxLrs[i];
      g.min_lr = initial / finalDiv;
    });
    const cycle = options.cycle_momentum ?? true;
    let useBeta1 = false;
    if (cycle) {
      if (!('momentum' in optimizer.defaults) && !('betas' in optimizer.defaults)) {
        throw invalid('OneCycleLR: the optimizer has no momentum or betas to cycle; set cycle_momentum: false');
      }
      useBeta1 = 'betas' in optimizer.defaults;
      const maxM = perGroup('max_momentum', options.max_momentum, 0.95);
      const baseM = perGroup('base_momentum', options.base_momentum, 0.85);
      groups.forEach((g, i) => {
        if (useBeta1) g.betas = [maxM[i], ...(g.betas as number[]).slice(1)];
        else g.momentum = maxM[i];
        g.max_momentum = maxM[i];
        g.base_momentum = baseM[i];
      });
    }
    super(optimizer);
    this.interval = 'step';
    this.total_steps = total;
    this.phases = phases;
    this.cycle_momentum = cycle;
    this.use_beta1 = useBeta1;
    this.anneal =
      strategy === 'cos'
        ? (s, e, p) => e + ((s - e) / 2.0) * (Math.cos(Math.PI * p) + 1)
        : (s, e, p) => (e - s) * p + s;
    this.initialStep();
  }

  protected getLr(): number[] {
    const stepNum = this.last_epoch;
    if (stepNum > this.total_steps) {
      throw invalid(`OneCycleLR: tried to step ${stepNum + 1} times; the specified number of total steps is ${this.total_steps}`);
    }
    return this.optimizer.param_groups.map((g) => {
      let start = 0;
      let lr = NaN;
      for (const [i, phase] of this.phases.entries()) {
        const end = phase.end_step;
        if (stepNum <= end || i === this.phases.length - 1) {
          const pct = (stepNum - start) / (end - start);
          lr = this.anneal(g[phase.start_lr] as number, g[phase.end_lr] as number, pct);
          if (this.cycle_momentum) {
            const m = this.anneal(g[phase.start_momentum] as number, g[phase.end_momentum] as number, pct);
            if (this.use_beta1) g.betas = [m, ...(g.betas as number[]).slice(1)];
            else g.momentum = m;
          }
          break;
        }
        start = phase.end_step;
      }
      return lr;
    });
  }
}

/**
 * Runs schedulers one after another, switching at the milestones: torch's SequentialLR,
 * including its reset of the lr to initial_lr and its `step(0)` (closed form) at each switch.
 * The schedulers must be made, in order, on the same optimizer just before this.
 */
export class SequentialLR extends LRScheduler {
  readonly name = 'SequentialLR';
  readonly schedulers: LRScheduler[];
  readonly milestones: number[];

  constructor(optimizer: SchedulableOptimizer, schedulers: LRScheduler[], milestones: number[]) {
    if (!Array.isArray(schedulers) || schedulers.length === 0) throw invalid('SequentialLR schedulers: expected at least one scheduler');
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) throw invalid(`SequentialLR schedulers[${i}] belongs to another optimizer`);
    });
    if (!Array.isArray(milestones) || milestones.length !== schedulers.length - 1) {
      throw invalid(`SequentialLR milestones: expected ${schedulers.length - 1} milestones for ${schedulers.length} schedulers, got ${JSON.stringify(milestones)}`);
    }
    milestones.forEach((m, i) => {
      if (!Number.isInteger(m) || m <= 0 || (i > 0 && m <= milestones[i - 1])) {
        throw invalid(`SequentialLR milestones[${i}]: expected increasing positive integers, got ${JSON.stringify(milestones)}`);
      }
    });
    super(optimizer);
    this.schedulers = schedulers;
    this.milestones = milestones;
    this.last_epoch = 0;
    for (const g of optimizer.param_groups) g.lr = g.initial_lr as number;
    for (const s of schedulers) s.last_epoch -= 1;
    schedulers[0].initialStep();
    this.last_lr = schedulers[0].getLastLr();
  }

  protected getLr(): number[] {
    return this.lrs;
  }

  override step(): void {
    this.last_epoch += 1;
    let idx = 0;
    while (idx < this.milestones.length && this.milestones[idx] <= this.last_epoch) idx++;
    const scheduler = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.last_epoch) scheduler.stepTo(0);
    else scheduler.step();
    this.last_lr = scheduler.getLastLr();
  }

  override stateDict(): SchedulerStateDict {
    return { ...super.stateDict(), schedulers: this.schedulers.map((s) => s.stateDict()) };
  }

  override loadStateDict(sd: SchedulerStateDict): void {
    if (!Array.isArray(sd?.schedulers) || sd.schedulers.length !== this.schedulers.length) {
      throw nnsError('TRAIN_STATE_INVALID', `SequentialLR.loadStateDict: expected the states of ${this.schedulers.length} schedulers`);
    }
    super.loadStateDict(sd);
    sd.schedulers.forEach((s, i) => this.schedulers[i].loadStateDict(s));
  }
}

/** A scheduler as a training job names it: `{"name": "CosineAnnealingLR", "T_max": 50, "warmup": {"total_iters": 5}}`. */
export interface SchedulerSpec {
  /** torch's class name, matched without regard to case. */
  name: string;
  /** When the loop steps it. @defaultValue 'epoch' ('step' for OneCycleLR) */
  interval?: SchedulerInterval;
  /** Linear warm-up first: SequentialLR([LinearLR(warmup), this], milestones [warmup.total_iters]). */
  warmup?: LinearLROptions & { total_iters: number };
  /** SequentialLR: the schedulers in order and the steps at which to switch. */
  schedulers?: SchedulerSpec[];
  milestones?: number[];
  /** The scheduler's own options (step_size, gamma, T_max, ...). */
  [option: string]: unknown;
}

type Maker = (o: SchedulableOptimizer, options: Record<string, unknown>) => LRScheduler;

const SCHEDULERS: Record<string, { options: string[]; make: Maker }> = {
  StepLR: { options: ['step_size', 'gamma'], make: (o, x) => new StepLR(o, x as unknown as StepLROptions) },
  MultiStepLR: { options: ['milestones', 'gamma'], make: (o, x) => new MultiStepLR(o, x as unknown as MultiStepLROptions) },
  ExponentialLR: { options: ['gamma'], make: (o, x) => new ExponentialLR(o, x as unknown as ExponentialLROptions) },
  CosineAnnealingLR: { options: ['T_max', 'eta_min'], make: (o, x) => new CosineAnnealingLR(o, x as unknown as CosineAnnealingLROptions) },
  LinearLR: { options: ['start_factor', 'end_factor', 'total_iters'], make: (o, x) => new LinearLR(o, x as LinearLROptions) },
  OneCycleLR: {
    options: ['max_lr', 'total_steps', 'epochs', 'steps_per_epoch', 'pct_start', 'anneal_strategy', 'cycle_momentum', 'base_momentum', 'max_momentum', 'div_factor', 'final_div_factor', 'three_phase'],
    make: (o, x) => new OneCycleLR(o, x as unknown as OneCycleLROptions),
  },
  SequentialLR: { options: ['schedulers', 'milestones'], make: () => { throw new Error('unreachable'); } },
};

export const SCHEDULER_NAMES = Object.keys(SCHEDULERS);

function build(optimizer: SchedulableOptimizer, spec: SchedulerSpec, where: string): LRScheduler {
  if (spec === null || typeof spec !== 'object' || typeof spec.name !== 'string') throw invalid(`${where}: expected {name: "StepLR", ...options}`);
  const name = SCHEDULER_NAMES.find((k) => k.toLowerCase() === spec.name.toLowerCase());
  if (!name) throw invalid(`${where}: unknown LR scheduler "${spec.name}"; known schedulers are ${SCHEDULER_NAMES.join(', ')}`);
  const { name: _n, interval: _i, warmup, ...options } = spec;
  for (const key of Object.keys(options)) {
    if (!SCHEDULERS[name].options.includes(key)) throw invalid(`${where}: ${name} has no option "${key}"; its options are ${SCHEDULERS[name].options.join(', ')}`);
  }
  if (warmup !== undefined && where !== 'scheduler') throw invalid(`${where}.warmup: only the outermost scheduler may have a warmup`);
  if (warmup !== undefined && name === 'OneCycleLR') throw invalid('scheduler.warmup: OneCycleLR warms up by itself (pct_start); drop warmup');
  if (warmup !== undefined && name === 'SequentialLR') throw invalid('scheduler.warmup: put the LinearLR warm-up into SequentialLR.schedulers instead');
  if (warmup !== undefined) {
    if (warmup === null || typeof warmup !== 'object') throw invalid('scheduler.warmup: expected {start_factor, total_iters}');
    for (const key of Object.keys(warmup)) {
      if (!SCHEDULERS.LinearLR.options.includes(key)) throw invalid(`scheduler.warmup has no option "${key}"; its options are ${SCHEDULERS.LinearLR.options.join(', ')}`);
    }
    // As a torch user writes it: LinearLR made first, then the main scheduler, then SequentialLR.
    const iters = positiveInt('scheduler.warmup.total_iters', warmup.total_iters);
    const first = new LinearLR(optimizer, warmup);
    const main = build(optimizer, { ...spec, warmup: undefined }, 'scheduler');
    return new SequentialLR(optimizer, [first, main], [iters]);
  }
  if (name === 'SequentialLR') {
    if (!Array.isArray(spec.schedulers)) throw invalid(`${where}.schedulers: expected an array of scheduler specs`);
    const inner = spec.schedulers.map((s, i) => {
      if (String(s?.name).toLowerCase() === 'sequentiallr') throw invalid(`${where}.schedulers[${i}]: SequentialLR cannot nest`);
      return build(optimizer, s, `${where}.schedulers[${i}]`);
    });
    return new SequentialLR(optimizer, inner, spec.milestones as number[]);
  }
  return SCHEDULERS[name].make(optimizer, options);
}

/**
 * Makes a scheduler from a job's spec, validating every option; `interval` says whether the
 * loop should step it per epoch or per batch.
 */
export function createScheduler(optimizer: SchedulableOptimizer, spec: SchedulerSpec): LRScheduler {
  const interval = spec?.interval;
  if (interval !== undefined && interval !== 'epoch' && interval !== 'step') {
    throw invalid(`scheduler.interval: expected "epoch" or "step", got ${JSON.stringify(interval)}`);
  }
  const scheduler = build(optimizer, spec, 'scheduler');
  if (interval !== undefined) scheduler.interval = interval;
  return scheduler;
}
