/**
 * The worker-thread protocol: two enums (parent -> worker, worker -> parent) and their messages.
 * Tensors travel as plain `TensorData`; their buffers are transferred, not copied. The input
 * buffers of a batch come back with its answer (`inputs`), so the batcher fills them again
 * instead of allocating (and page-faulting in) fresh ones for every batch.
 */
import type { EngineName } from '../config.js';
import type { IoSpec, TensorData } from '../runtime/ort.js';

export enum ToWorker {
  Load = 0,
  Infer = 1,
  /** Release the session and end the thread (instead of terminate(): see pool.ts). */
  Exit = 2,
}

export enum FromWorker {
  Ready = 0,
  LoadFailed = 1,
  Result = 2,
  Failed = 3,
}

export type ToWorkerMessage =
  | { cmd: ToWorker.Load; model: string | Uint8Array; engine: EngineName; intraOpThreads: number }
  | { cmd: ToWorker.Infer; batchId: number; feeds: Record<string, TensorData> }
  | { cmd: ToWorker.Exit };

export type FromWorkerMessage =
  | { cmd: FromWorker.Ready; engine: EngineName; inputs: IoSpec[]; outputs: IoSpec[] }
  | { cmd: FromWorker.LoadFailed; code: string; message: string }
  | { cmd: FromWorker.Result; batchId: number; outputs: Record<string, TensorData>; computeMs: number; inputs: ArrayBuffer[] }
  | { cmd: FromWorker.Failed; batchId: number; message: string; inputs: ArrayBuffer[] };

/**
 * The buffers of a set of tensors, for postMessage's transfer list. `views`: also buffers the
 * tensors only view (the sender owns them whole, as the worker owns what it was sent).
 */
export function transferList(tensors: Record<string, TensorData>, views = false): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const t of Object.values(tensors)) {
    const buf = t.data.buffer;
    if (!(buf instanceof ArrayBuffer)) continue; // a SharedArrayBuffer is not moved
    // Otherwise only whole buffers are moved: a subarray view would detach its siblings.
    if (views || (t.data.byteOffset === 0 && t.data.byteLength === buf.byteLength)) seen.add(buf);
  }
  return [...seen];
}
