/** torch.optim.lr_scheduler.CosineAnnealingLR (1.13), in torch's recursive (chainable) form. */
import { LRScheduler, positiveInt, finite, pymod, type SchedulableOptimizer } from './lr-scheduler.js';

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
