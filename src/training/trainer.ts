/**
 * `train(options)`: a training run in its own worker thread, so the caller's event loop (an
 * HTTP server, a terminal's progress bar) keeps running while ONNX Runtime computes. Options
 * are checked here first, so a bad name or number fails before a thread starts.
 */
import { Worker } from 'node:worker_threads';
import { nnsError, NnsError, type ErrorKind, ERRORS } from '../errors.js';
import { checkTrainOptions, type TrainOptions } from './train-options.js';
import { FromTrainer, ToTrainer, type FromTrainerMessage, type ToTrainerMessage } from './train-protocol.js';
import type { EpochMetrics, StepProgress, TrainResult } from './train-result.js';

export interface TrainListeners {
  onProgress?(p: StepProgress): void;
  onEpoch?(m: EpochMetrics): void;
  /** Aborting ends training after the current step; the outputs are still written and the result says `stop_reason: 'requested'`. */
  signal?: AbortSignal;
}

/** An error sent back by the thread becomes the same catalogue error here. */
function rebuild(code: string, message: string): Error {
  const kind = (Object.keys(ERRORS) as ErrorKind[]).find((k) => ERRORS[k].code === code);
  return kind ? new NnsError(kind, message) : nnsError('INTERNAL', message);
}

export async function train(options: TrainOptions, listeners: TrainListeners = {}): Promise<TrainResult> {
  checkTrainOptions(options);
  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('./train-worker.js', import.meta.url));
  const onAbort = () => Atomics.store(new Int32Array(stop), 0, 1);
  listeners.signal?.addEventListener('abort', onAbort, { once: true });
  if (listeners.signal?.aborted) onAbort();
  try {
    return await new Promise<TrainResult>((resolve, reject) => {
      worker.on('message', (m: FromTrainerMessage) => {
        switch (m.cmd) {
          case FromTrainer.Progress: listeners.onProgress?.(m.progress); break;
          case FromTrainer.Epoch: listeners.onEpoch?.(m.metrics); break;
          case FromTrainer.Done: resolve(m.result); break;
          case FromTrainer.Failed: reject(rebuild(m.code, m.message)); break;
        }
      });
      worker.on('error', (e) => reject(nnsError('INTERNAL', `the training thread failed: ${e.message}`)));
      worker.on('exit', (code) => reject(nnsError('INTERNAL', `the training thread exited (code ${code}) before it reported a result`)));
      const start: ToTrainerMessage = { cmd: ToTrainer.Start, options, stop };
      worker.postMessage(start);
    });
  } finally {
    listeners.signal?.removeEventListener('abort', onAbort);
    // The loop has returned (or failed) and released its sessions: nothing is inside Run.
    await worker.terminate();
  }
}
