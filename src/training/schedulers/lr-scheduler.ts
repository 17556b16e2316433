/**
 * Learning-rate schedulers, ported from torch.optim.lr_scheduler (1.13) line by line: the same
 * chainable (recursive) `get_lr` forms that `scheduler.step()` uses in torch, the same initial
 * step at construction, and the same SequentialLR quirks, so the LR values agree with
 * PyTorch's to the last bits over hundreds of steps (test/training/schedulers.test.ts).
 *
 * This file: the base class every scheduler extends, and the checks their options share.
 *
 * A scheduler changes `optimizer.param_groups[i].lr` (OneCycleLR also `momentum` or `betas[0]`).
 * Call `step()` after `optimizer.step()`, once per epoch or once per batch: `interval` records
 * which the job asked for; the training loop reads it.
 */
import { nnsError } from '../../errors.js';

/** What a scheduler needs of an optimizer (every optimizer in ../optimizers fits). */
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

export const invalid = (message: string) => nnsError('TRAIN_OPTIONS_INVALID', message);

export function positiveInt(where: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw invalid(`${where}: expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export function finite(where: string, v: unknown, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw invalid(`${where}: expected a finite number${min > -Infinity ? ` >= ${min}` : ''}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function positive(where: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw invalid(`${where}: expected a finite number > 0, got ${JSON.stringify(v)}`);
  return v;
}

/** Python's %, which is never negative for a positive divisor. */
export const pymod = (a: number, b: number) => ((a % b) + b) % b;

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

