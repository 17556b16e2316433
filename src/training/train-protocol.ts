/**
 * The training thread's protocol: two enums (parent -> thread, thread -> parent) and their
 * messages. Stopping is a flag in shared memory that the loop reads between steps, so a stop
 * is seen even while the thread never returns to its event loop; the thread is never
 * terminated inside ONNX Runtime's Run (which would abort the process).
 */
import type { TrainOptions } from './train-options.js';
import type { EpochMetrics, StepProgress, TrainResult } from './train-result.js';

export enum ToTrainer {
  Start = 0,
}

export enum FromTrainer {
  Progress = 0,
  Epoch = 1,
  Done = 2,
  Failed = 3,
}

export type ToTrainerMessage = {
  cmd: ToTrainer.Start;
  options: TrainOptions;
  /** Int32Array over this: [0] becomes 1 when the parent asks the loop to stop after the current step. */
  stop: SharedArrayBuffer;
};

export type FromTrainerMessage =
  | { cmd: FromTrainer.Progress; progress: StepProgress }
  | { cmd: FromTrainer.Epoch; metrics: EpochMetrics }
  | { cmd: FromTrainer.Done; result: TrainResult }
  | { cmd: FromTrainer.Failed; code: string; message: string };
