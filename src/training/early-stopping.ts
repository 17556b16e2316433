/**
 * Early stopping on a validation metric, as the seed tutorial (6.8) writes it:
 *
 *     if val_loss > best_val_loss: patience_counter += 1; stop once patience_counter > patience
 *     else: best_val_loss = val_loss; patience_counter = 0
 *
 * so training stops after patience + 1 evaluations in a row without improvement (Keras and
 * Lightning stop after patience). min_delta is the least change that counts as improvement;
 * mode "max" is for metrics such as accuracy. A NaN or infinite metric never improves.
 */
import { nnsError } from '../errors.js';

export interface EarlyStoppingOptions {
  /** Evaluations without improvement tolerated before stopping (stops on the next one). @defaultValue 3 */
  patience?: number;
  /** Least improvement over the best value that resets the counter. @defaultValue 0 */
  min_delta?: number;
  /** "min" for losses, "max" for accuracies. @defaultValue 'min' */
  mode?: 'min' | 'max';
}

export interface EarlyStoppingState {
  best: number | null;
  best_epoch: number;
  counter: number;
  epoch: number;
}

export class EarlyStopping {
  readonly patience: number;
  readonly min_delta: number;
  readonly mode: 'min' | 'max';
  /** Best metric so far; null before the first finite one. */
  best: number | null = null;
  /** Index (0-based) of the evaluation that gave `best`; -1 before one did. */
  best_epoch = -1;
  /** Evaluations since the last improvement. */
  counter = 0;
  private epoch = 0;

  constructor(options: EarlyStoppingOptions = {}) {
    const { patience = 3, min_delta = 0, mode = 'min' } = options;
    const bad = (m: string) => nnsError('TRAIN_OPTIONS_INVALID', `early_stopping ${m}`);
    if (!Number.isInteger(patience) || patience < 0) throw bad(`patience: expected an integer >= 0, got ${JSON.stringify(patience)}`);
    if (typeof min_delta !== 'number' || !Number.isFinite(min_delta) || min_delta < 0) throw bad(`min_delta: expected a finite number >= 0, got ${JSON.stringify(min_delta)}`);
    if (mode !== 'min' && mode !== 'max') throw bad(`mode: expected "min" or "max", got ${JSON.stringify(mode)}`);
    this.patience = patience;
    this.min_delta = min_delta;
    this.mode = mode;
  }

  /** Records one evaluation. `improved`: a new best (save a checkpoint); `stop`: end training. */
  step(metric: number): { improved: boolean; stop: boolean } {
    const epoch = this.epoch++;
    const sign = this.mode === 'min' ? 1 : -1;
    const improved = Number.isFinite(metric) && (this.best === null || !(sign * metric > sign * this.best - this.min_delta));
    if (improved) {
      this.best = metric;
      this.best_epoch = epoch;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
    return { improved, stop: this.counter > this.patience };
  }

  stateDict(): EarlyStoppingState {
    return { best: this.best, best_epoch: this.best_epoch, counter: this.counter, epoch: this.epoch };
  }

  loadStateDict(s: EarlyStoppingState): void {
    if (!s || !Number.isInteger(s.counter) || !Number.isInteger(s.epoch) || !(s.best === null || typeof s.best === 'number')) {
      throw nnsError('TRAIN_STATE_INVALID', 'EarlyStopping.loadStateDict: expected {best, best_epoch, counter, epoch}');
    }
    this.best = s.best;
    this.best_epoch = s.best_epoch;
    this.counter = s.counter;
    this.epoch = s.epoch;
  }
}
