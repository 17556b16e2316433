/** torch.optim.lr_scheduler.StepLR (1.13). */
import { LRScheduler, positiveInt, positive, type SchedulableOptimizer } from './lr-scheduler.js';

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
