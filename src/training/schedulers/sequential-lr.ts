/** torch.optim.lr_scheduler.SequentialLR (1.13). */
import { nnsError } from '../../errors.js';
import { LRScheduler, invalid, type SchedulableOptimizer, type SchedulerStateDict } from './lr-scheduler.js';

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
