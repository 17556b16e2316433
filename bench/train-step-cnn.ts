/**
 * Training step time of the Fashion-MNIST CNN (Conv2d(1,16,3,p=1)-ReLU-MaxPool2d(2)-
 * Conv2d(16,32,3,p=1)-ReLU-MaxPool2d(2)-Flatten-Linear(1568,128)-ReLU-Linear(128,10),
 * CrossEntropyLoss): nnserve's training graph on ONNX Runtime (forward, loss and every gradient
 * in one session.run) against PyTorch's forward + backward, same thread count, same machine,
 * one run. Also the forward alone (eval graph vs torch.no_grad). No optimizer step in either.
 *
 *   npx tsc -p . && node dist/bench/train-step-cnn.js [--threads 2] [--batch 64] [--iterations 100]
 *
 * PyTorch's side is bench/train_step_cnn.py, run with /usr/bin/python3 (Debian's torch).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { compileArchitecture, compileTraining, initStateDict } from '../src/compiler/index.js';
import { type TensorData, createSession } from '../src/runtime/ort.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const threads = arg('threads', 2);
const batch = arg('batch', 64);
const iterations = arg('iterations', 100);
const warmup = 10;

export const FASHION_CNN = {
  name: 'FashionCNN',
  inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 1, 28, 28] }],
  sequential: [
    { type: 'Conv2d', in_channels: 1, out_channels: 16, kernel_size: 3, padding: 1 }, { type: 'ReLU' }, { type: 'MaxPool2d', kernel_size: 2 },
    { type: 'Conv2d', in_channels: 16, out_channels: 32, kernel_size: 3, padding: 1 }, { type: 'ReLU' }, { type: 'MaxPool2d', kernel_size: 2 },
    { type: 'Flatten' }, { type: 'Linear', in_features: 1568, out_features: 128 }, { type: 'ReLU' }, { type: 'Linear', in_features: 128, out_features: 10 },
  ],
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Times {
  wall: number[];
  /** Process CPU time per run: robust to other load on the machine, comparable at 1 thread. */
  cpu: number[];
}

async function timeRuns(run: () => Promise<unknown>): Promise<Times> {
  const t: Times = { wall: [], cpu: [] };
  for (let i = 0; i < warmup + iterations; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (i >= warmup) {
      t.wall.push(wall);
      t.cpu.push((c.user + c.system) / 1000);
    }
  }
  return t;
}

async function main(): Promise<void> {
  const sd = initStateDict(FASHION_CNN, 0);
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const x: TensorData = { dtype: 'float32', dims: [batch, 1, 28, 28], data: Float32Array.from({ length: batch * 784 }, rand) };
  const target: TensorData = { dtype: 'int64', dims: [batch], data: BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10)) };

  const t0 = performance.now();
  const tg = compileTraining(FASHION_CNN, { loss: { type: 'CrossEntropyLoss' } });
  const compileMs = performance.now() - t0;
  const train = await createSession(tg.onnx, { engine: 'native', intraOpThreads: threads });
  const feeds: Record<string, TensorData> = { x, target };
  for (const p of tg.params) {
    const w = sd.get(p.name)!;
    feeds[p.name] = { dtype: 'float32', dims: w.shape, data: w.data };
  }
  const step = await timeRuns(() => train.run(feeds));
  await train.release();

  const fwd = await createSession(compileArchitecture(FASHION_CNN, sd).onnx, { engine: 'native', intraOpThreads: threads });
  const forward = await timeRuns(() => fwd.run({ x }));
  await fwd.release();

  // OMP_NUM_THREADS as well as torch.set_num_threads, so that PyTorch runs no more threads than we do.
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const py = spawnSync('/usr/bin/python3', [join(process.cwd(), 'bench', 'train_step_cnn.py'), '--threads', String(threads), '--batch', String(batch), '--iterations', String(iterations)], { encoding: 'utf8', env });
  if (py.status !== 0) throw new Error(`bench/train_step_cnn.py failed: ${py.stderr}`);
  const torch = JSON.parse(py.stdout.trim().split('\n').pop()!) as { forward_ms: number[]; step_ms: number[]; forward_cpu_ms: number[]; step_cpu_ms: number[] };

  const row = (what: string, ours: number[], theirs: number[]) => {
    const o = median(ours);
    const t = median(theirs);
    return `${what.padEnd(30)} ${o.toFixed(2).padStart(8)} ${t.toFixed(2).padStart(10)} ${(t / o).toFixed(2).padStart(8)}x`;
  };
  console.log(`Fashion-MNIST CNN, batch ${batch}, ${threads} intra-op threads, median of ${iterations} (compile ${compileMs.toFixed(0)} ms)`);
  console.log(`${'ms'.padEnd(30)} ${'nnserve'.padStart(8)} ${'PyTorch'.padStart(10)} ${'speed'.padStart(9)}`);
  console.log(row('forward (wall)', forward.wall, torch.forward_ms));
  console.log(row('forward+backward (wall)', step.wall, torch.step_ms));
  console.log(row('forward (min wall)', [Math.min(...forward.wall)], [Math.min(...torch.forward_ms)]));
  console.log(row('forward+backward (min wall)', [Math.min(...step.wall)], [Math.min(...torch.step_ms)]));
  console.log(row('forward+backward (CPU time)', step.cpu, torch.step_cpu_ms));
}

await main();
