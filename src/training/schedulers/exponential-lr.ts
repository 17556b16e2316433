/** torch.optim.lr_scheduler.ExponentialLR (1.13). */
import { LRScheduler, positive, type SchedulableOptimizer } from './lr-scheduler.js';

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
