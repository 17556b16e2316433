/** Worker thread entry: holds one ONNX Runtime session and runs one batch at a time. */
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { createSession, type Session } from '../runtime/ort.js';
import { FromWorker, ToWorker, transferList, type FromWorkerMessage, type ToWorkerMessage } from './protocol.js';

const port = parentPort!;
let session: Session | undefined;
const send = (m: FromWorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

port.on('message', async (msg: ToWorkerMessage) => {
  switch (msg.cmd) {
    case ToWorker.Load:
      try {
        session = await createSession(msg.model, { engine: msg.engine, intraOpThreads: msg.intraOpThreads });
        send({ cmd: FromWorker.Ready, engine: session.engine, inputs: session.inputs, outputs: session.outputs });
      } catch (e) {
        const err = e as { code?: string; message: string };
        send({ cmd: FromWorker.LoadFailed, code: err.code ?? 'NNS_ERR_MODEL_LOAD_FAILED', message: err.message });
      }
      break;
    case ToWorker.Infer:
      // The input buffers go back to the batcher for its next batch.
      const inputs = transferList(msg.feeds, true);
      try {
        const t0 = performance.now();
        const outputs = await session!.run(msg.feeds);
        const result: FromWorkerMessage = { cmd: FromWorker.Result, batchId: msg.batchId, outputs, computeMs: performance.now() - t0, inputs };
        try {
          send(result, [...transferList(outputs), ...inputs]);
        } catch {
          send(result, inputs); // a buffer owned by the runtime cannot be moved: copy it instead
        }
      } catch (e) {
        send({ cmd: FromWorker.Failed, batchId: msg.batchId, message: (e as Error).message, inputs }, inputs);
      }
      break;
    case ToWorker.Exit:
      // The session goes first, so no native object outlives the thread's JS environment.
      await session?.release().catch(() => undefined);
      process.exit(0);
  }
});
