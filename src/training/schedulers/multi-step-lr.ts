/** torch.optim.lr_scheduler.MultiStepLR (1.13). */
import { LRScheduler, invalid, positive, type SchedulableOptimizer } from './lr-scheduler.js';

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
