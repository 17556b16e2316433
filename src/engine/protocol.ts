/**
 * The worker-thread protocol: two enums (parent -> worker, worker -> parent) and their messages.
 * Tensors travel as plain `TensorData`; their buffers are transferred, not copied.
 */
import type { EngineName } from '../config.js';
import type { IoSpec, TensorData } from '../runtime/ort.js';

export enum ToWorker {
  Load = 0,
  Infer = 1,
}

export enum FromWorker {
  Ready = 0,
  LoadFailed = 1,
  Result = 2,
  Failed = 3,
}

export type ToWorkerMessage =
  | { cmd: ToWorker.Load; model: string | Uint8Array; engine: EngineName; intraOpThreads: number }
  | { cmd: ToWorker.Infer; batchId: number; feeds: Record<string, TensorData> };

export type FromWorkerMessage =
  | { cmd: FromWorker.Ready; engine: EngineName; inputs: IoSpec[]; outputs: IoSpec[] }
  | { cmd: FromWorker.LoadFailed; code: string; message: string }
  | { cmd: FromWorker.Result; batchId: number; outputs: Record<string, TensorData>; computeMs: number }
  | { cmd: FromWorker.Failed; batchId: number; message: string };

/** The buffers of a set of tensors, for postMessage's transfer list. */
export function transferList(tensors: Record<string, TensorData>): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const t of Object.values(tensors)) {
    const buf = t.data.buffer as ArrayBuffer;
    // Only whole, unshared buffers can be moved; a subarray view would detach its siblings.
    if (t.data.byteOffset === 0 && t.data.byteLength === buf.byteLength) seen.add(buf);
  }
  return [...seen];
}
