/**
 * Training step time, nnserve vs PyTorch, same threads, same machine, one run: a full step as
 * the training loop runs it (src/training/train-graph.ts: forward + loss + backward in one
 * ONNX Runtime run, weights fed from and gradients written into the optimizer's WebAssembly
 * memory, then its Adam kernel, src/training/optimizers/kernels.ts) against PyTorch's
 * zero_grad + forward + loss + backward + Adam step (bench/train_steps.py, Debian's torch at
 * /usr/bin/python3). Models: the seed's SimpleCNN on Fashion-MNIST, a 784-512-512-10 MLP, an
 * LSTM(28, 64) over Fashion-MNIST rows + Linear; batch 64 of real images; CrossEntropyLoss.
 *
 *   npx tsc -p . && node dist/bench/train-steps.js [--threads 1,2] [--rounds 5] [--steps 40]
 *                                                  [--models cnn,mlp,lstm] [--write-results [FILE]]
 *
 * Rounds alternate between nnserve and PyTorch (order flipped every round); each round's
 * median step time is taken, and the table gives the median over rounds and the speed ratio
 * (PyTorch ms / nnserve ms: above 1 means nnserve is faster), for the whole step and for its
 * forward + loss + backward part alone (the optimizer step is the rest).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { initStateDict } from '../src/compiler/index.js';
import { IdxDataset } from '../src/training/datasets/index.js';
import { createOptimizer } from '../src/training/optimizers/index.js';
import { TrainGraph } from '../src/training/train-graph.js';
import { argValue, log, median, r, ROOT, sleep, table } from './lib.js';

const argv = process.argv.slice(2);
const val = (f: string) => argValue(f, argv);
const THREADS = (val('--threads') ?? '1,2').split(',').map(Number);
const ROUNDS = Number(val('--rounds') ?? 5);
const STEPS = Number(val('--steps') ?? 40);
const WARMUP = 10;
/** Idle time before each half of a round. */
const SETTLE_MS = 300;
const BATCH = 64;
const MODELS = (val('--models') ?? 'cnn,mlp,lstm').split(',');
const RESULTS = argv.includes('--write-results') ? (val('--write-results') ?? join(ROOT, 'bench/results/train-steps.json')) : undefined;
const ARCH: Record<string, string> = {
  cnn: 'test/fixtures/training/architectures/fashion_cnn.json',
  mlp: 'test/fixtures/training/architectures/fashion_mlp.json',
  lstm: 'test/fixtures/training/architectures/fashion_lstm.json',
};
const TARGET: Record<string, number> = { cnn: 1, mlp: 2, lstm: 2 };

/** Medians of one round: the whole step, and forward + loss + backward alone. */
interface Timing {
  step: number;
  fb: number;
}

/** PyTorch in a child process that times steps on request. */
function startTorch() {
  const proc = spawn('/usr/bin/python3', [join(ROOT, 'bench/train_steps.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! });
  const queue: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  lines.on('line', (line) => queue.shift()?.resolve(line));
  proc.on('exit', (code) => {
    for (const w of queue.splice(0)) w.reject(new Error(`bench/train_steps.py exited (${code})`));
  });
  const next = () => new Promise<string>((resolve, reject) => queue.push({ resolve, reject }));
  return {
    ready: next().then((l) => JSON.parse(l) as { torch_version: string }),
    async steps(model: string, threads: number): Promise<Timing> {
      const reply = next();
      proc.stdin!.write(`${JSON.stringify({ model, threads, batch: BATCH, warmup: WARMUP, steps: STEPS })}\n`);
      const got = JSON.parse(await reply) as { step_ms: number[]; forward_backward_ms: number[]; threads: number };
      if (got.threads !== threads) throw new Error(`PyTorch ran with ${got.threads} threads, not ${threads}`);
      return { step: median(got.step_ms), fb: median(got.forward_backward_ms) };
    },
    close: () => proc.stdin!.end(),
  };
}

/** nnserve's step as src/training/loop.ts runs it: the TrainGraph and Adam over the weights moved into its memory, nothing else. */
async function ourStepper(model: string, threads: number, data: IdxDataset) {
  const arch = JSON.parse(readFileSync(join(ROOT, ARCH[model]!), 'utf8'));
  const state = initStateDict(arch, 0);
  const graph = await TrainGraph.create(arch, state, { loss: { type: 'CrossEntropyLoss' }, frozen: [], threads, seed: 0, model });
  const parameters = new Map(graph.graph.params.map(({ name }) => [name, state.get(name)!.data as Float32Array]));
  const optimizer = createOptimizer('Adam', { parameters }, { lr: 1e-3 });
  for (const [key, data] of optimizer.adoptParameters()) state.set(key, { ...state.get(key)!, data });
  const gradients = optimizer.gradientBuffers();
  const { x, y } = data.getBatch(Uint32Array.from({ length: BATCH }, (_, i) => i));
  return {
    async steps(): Promise<Timing> {
      const times: number[] = [];
      const fb: number[] = [];
      for (let i = 0; i < WARMUP + STEPS; i++) {
        const t0 = performance.now();
        const s = await graph.step(x, y, gradients);
        const t1 = performance.now();
        optimizer.step(s.grads);
        if (i >= WARMUP) {
          times.push(performance.now() - t0);
          fb.push(t1 - t0);
        }
      }
      return { step: median(times), fb: median(fb) };
    },
    release: () => graph.release(),
  };
}

async function main(): Promise<void> {
  const torch = startTorch();
  const { torch_version } = await torch.ready;
  const loadBefore = loadavg()[0]!;
  const data = await IdxDataset.open('/usr/share/datasets/fashion-mnist', { mean: 0.5, std: 0.5 });
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const model of MODELS) {
    for (const threads of THREADS) {
      const ours = await ourStepper(model, threads, data);
      const oursT: Timing[] = [];
      const torchT: Timing[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Each half starts on quiet cores: PyTorch's OpenMP threads spin on after its steps
        // return (libgomp's default wait policy), which slowed an nnserve half that followed
        // at once by ~35% (MLP, 2 threads).
        const pair = [
          async () => { await sleep(SETTLE_MS); oursT.push(await ours.steps()); },
          async () => { await sleep(SETTLE_MS); torchT.push(await torch.steps(model, threads)); },
        ];
        if (round % 2) pair.reverse();
        for (const f of pair) await f();
        log(`${model} threads ${threads} round ${round + 1}: nnserve ${r(oursT.at(-1)!.step)} ms (fwd+bwd ${r(oursT.at(-1)!.fb)}), PyTorch ${r(torchT.at(-1)!.step)} ms (fwd+bwd ${r(torchT.at(-1)!.fb)})`);
      }
      await ours.release();
      const a = median(oursT.map((t) => t.step));
      const b = median(torchT.map((t) => t.step));
      const fa = median(oursT.map((t) => t.fb));
      const fb = median(torchT.map((t) => t.fb));
      const speed = b / a;
      rows.push([model, threads, a, b, `${r(speed, 2)}x`, fa, fb, `${r(fb / fa, 2)}x`, threads === 2 ? `${TARGET[model]}x: ${speed >= TARGET[model]! ? 'met' : 'NOT met'}` : '']);
      results.push({
        model, threads, batch: BATCH, nnserve_ms: r(a), pytorch_ms: r(b), speed: r(speed, 2),
        nnserve_forward_backward_ms: r(fa), pytorch_forward_backward_ms: r(fb), forward_backward_speed: r(fb / fa, 2), target_at_2_threads: TARGET[model],
        rounds_nnserve_ms: oursT.map((t) => r(t.step)), rounds_pytorch_ms: torchT.map((t) => r(t.step)),
      });
      console.log(JSON.stringify(results.at(-1)));
    }
  }
  torch.close();
  const md = table(['model', 'threads', 'nnserve ms/step', 'PyTorch ms/step', 'speed', 'nnserve fwd+bwd ms', 'PyTorch fwd+bwd ms', 'fwd+bwd speed', 'target (step, 2 threads)'], rows);
  // Other work on the machine slows PyTorch's OpenMP threads far more than ONNX Runtime's: say how busy it was.
  const load = [r(loadBefore, 2), r(loadavg()[0]!, 2)];
  console.log(`\nTraining step, batch ${BATCH}, Adam, medians of ${ROUNDS} rounds x ${STEPS} steps (PyTorch ${torch_version}, ${cpus().length} cores, 1-min load average ${load.join(' -> ')})\n\n${md}`);
  if (RESULTS) {
    mkdirSync(dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, torch_version, load_average: load, rounds: ROUNDS, steps: STEPS, results }, null, 1)}\n`);
    log(`wrote ${RESULTS}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
