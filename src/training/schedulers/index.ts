/**
 * The LR schedulers by torch's class names, and a factory for a training job's
 * `{"name": "CosineAnnealingLR", "T_max": 50, "warmup": {"total_iters": 5}}` that validates
 * every option and builds warm-ups and SequentialLR as a torch user writes them.
 */
import { CosineAnnealingLR, type CosineAnnealingLROptions } from './cosine-annealing-lr.js';
import { ExponentialLR, type ExponentialLROptions } from './exponential-lr.js';
import { LinearLR, type LinearLROptions } from './linear-lr.js';
import { invalid, positiveInt, type LRScheduler, type SchedulableOptimizer, type SchedulerInterval } from './lr-scheduler.js';
import { MultiStepLR, type MultiStepLROptions } from './multi-step-lr.js';
import { OneCycleLR, type OneCycleLROptions } from './one-cycle-lr.js';
import { SequentialLR } from './sequential-lr.js';
import { StepLR, type StepLROptions } from './step-lr.js';

export { CosineAnnealingLR, type CosineAnnealingLROptions } from './cosine-annealing-lr.js';
export { ExponentialLR, type ExponentialLROptions } from './exponential-lr.js';
export { LinearLR, type LinearLROptions } from './linear-lr.js';
export { LRScheduler, type SchedulableOptimizer, type SchedulerInterval, type SchedulerStateDict } from './lr-scheduler.js';
export { MultiStepLR, type MultiStepLROptions } from './multi-step-lr.js';
export { OneCycleLR, type OneCycleLROptions } from './one-cycle-lr.js';
export { SequentialLR } from './sequential-lr.js';
export { StepLR, type StepLROptions } from './step-lr.js';

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
