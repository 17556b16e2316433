/** torch.optim.lr_scheduler.LinearLR (1.13). */
import { LRScheduler, invalid, positiveInt, type SchedulableOptimizer } from './lr-scheduler.js';

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
