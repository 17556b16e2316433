/** What a training run reports while it runs and when it ends (also the shape of metrics.json). */

/** Where the run is, sent every `progressIntervalMs` during an epoch. */
export interface StepProgress {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Steps done in this epoch (1-based after the first). */
  step: number;
  steps: number;
  /** Mean training loss of this epoch so far. */
  loss: number;
  /** Training samples a second over this epoch so far. */
  samplesPerSecond: number;
  /** Seconds to the end of the last epoch at the rate so far (evaluation included). */
  etaSeconds: number;
}

/** One epoch; every loss is per sample (see src/training/loss-metrics.ts). */
export interface EpochMetrics {
  /** 1-based. */
  epoch: number;
  train_loss: number;
  /** Accuracy on the training batches as they were trained (train mode), where the loss has one. */
  train_accuracy?: number;
  /** Loss on the validation set in eval mode after the epoch. */
  val_loss?: number;
  val_accuracy?: number;
  /** Learning rate of the first param group during the epoch. */
  lr: number;
  /** Wall time of the epoch, evaluation included. */
  seconds: number;
  samples_per_second: number;
  steps: number;
}

export interface EvalMetrics {
  loss: number;
  accuracy?: number;
  samples: number;
}

/** metrics.json. */
export interface TrainResult {
  model: string;
  seed: number;
  loss: string;
  optimizer: string;
  batch_size: number;
  /** Epochs asked for; `epochs.length` tells how many ran. */
  epochs_requested: number;
  epochs: EpochMetrics[];
  /** Mean training loss over windows of steps, for the loss curve: [epoch as a fraction, loss]. */
  step_loss: [number, number][];
  /** The epoch whose weights are best.safetensors, and by which metric. */
  best: { epoch: number; metric: 'val_accuracy' | 'val_loss' | 'train_loss'; value: number };
  /** Training ended before `epochs_requested`: early stopping, or a stop asked for (the last epoch may be partial). */
  stopped_early: boolean;
  stop_reason?: 'early_stopping' | 'requested';
  /** The final weights on the test set. */
  test?: EvalMetrics;
  train_samples: number;
  val_samples?: number;
  total_seconds: number;
  /** Paths written. */
  files: { weights: string; best: string; metrics: string; loss_curve: string; archive: string; architecture: string; model_config?: string; labels?: string };
}
