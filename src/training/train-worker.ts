/** Training thread entry: runs one training loop and reports through the protocol. */
import { parentPort } from 'node:worker_threads';
import { runTraining } from './loop.js';
import { FromTrainer, ToTrainer, type FromTrainerMessage, type ToTrainerMessage } from './train-protocol.js';

const port = parentPort!;
const send = (m: FromTrainerMessage) => port.postMessage(m);

port.once('message', async (msg: ToTrainerMessage) => {
  if (msg.cmd !== ToTrainer.Start) return;
  const stop = new Int32Array(msg.stop);
  try {
    const result = await runTraining(msg.options, {
      progress: (progress) => send({ cmd: FromTrainer.Progress, progress }),
      epoch: (metrics) => send({ cmd: FromTrainer.Epoch, metrics }),
      shouldStop: () => Atomics.load(stop, 0) === 1,
    });
    send({ cmd: FromTrainer.Done, result });
  } catch (e) {
    const err = e as { code?: string; message?: string };
    send({ cmd: FromTrainer.Failed, code: err.code ?? 'NNS_ERR_INTERNAL', message: err.message ?? String(e) });
  }
});
