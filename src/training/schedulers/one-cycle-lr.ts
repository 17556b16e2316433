/** torch.optim.lr_scheduler.OneCycleLR (1.13). */
import { LRScheduler, invalid, positiveInt, finite, positive, type SchedulableOptimizer } from './lr-scheduler.js';

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
