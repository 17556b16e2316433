/**
 * The acceptance run of the training loop: the seed's SimpleCNN (7.4, on 1x28x28) trained on
 * all 60000 Fashion-MNIST training images with the seed's settings (CrossEntropyLoss, Adam lr
 * 1e-3, batch 64, shuffled, 5 epochs, ToTensor + Normalize(0.5, 0.5)) through `train()` (the
 * same worker-thread loop as `nnserve train`), then its accuracy on the 10000 test images,
 * against PyTorch trained with the same settings (tools/train_reference.py fashion-cnn).
 * Target: >= 90% and within 0.5 points of PyTorch (mean over seeds).
 *
 *   npx tsc -p . && node dist/bench/train-fashion-cnn.js [--seeds 0,1,2] [--epochs 5] [--threads 2]
 *                                                        [--torch] [--write-results [FILE]]
 *
 * PyTorch's accuracies come from test/fixtures/training/reference/fashion-cnn.json, or with
 * --torch from a fresh run of tools/train_reference.py (Debian's torch, /usr/bin/python3) after
 * ours, same threads. Outputs of each run go to bench/.cache/train-fashion-cnn/seed-N/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { formatEpoch, formatEval } from '../src/training/progress.js';
import { train } from '../src/training/trainer.js';
import type { TrainResult } from '../src/training/train-result.js';
import { argValue, log, r, ROOT, table } from './lib.js';

const argv = process.argv.slice(2);
const val = (f: string) => argValue(f, argv);
const SEEDS = (val('--seeds') ?? '0,1,2').split(',').map(Number);
const EPOCHS = Number(val('--epochs') ?? 5);
const THREADS = Number(val('--threads') ?? 2);
const RESULTS = argv.includes('--write-results') ? (val('--write-results') ?? join(ROOT, 'bench/results/train-fashion-cnn.json')) : undefined;
const FASHION = '/usr/share/datasets/fashion-mnist';
const REFERENCE = join(ROOT, 'test/fixtures/training/reference/fashion-cnn.json');

interface TorchReference {
  torch_version: string;
  threads: number;
  runs: { seed: number; test_accuracy: number; train_seconds: number; epoch_train_loss: number[] }[];
  mean_test_accuracy: number;
}

function pytorch(): TorchReference & { source: string } {
  if (!argv.includes('--torch')) return { ...(JSON.parse(readFileSync(REFERENCE, 'utf8')) as TorchReference), source: REFERENCE };
  const file = join(ROOT, 'bench/.cache/train-fashion-cnn/pytorch.json');
  mkdirSync(dirname(file), { recursive: true });
  log(`PyTorch: tools/train_reference.py fashion-cnn --seeds ${SEEDS.join(',')} --threads ${THREADS}`);
  const p = spawnSync('/usr/bin/python3', ['tools/train_reference.py', 'fashion-cnn', '--seeds', SEEDS.join(','), '--epochs', String(EPOCHS), '--threads', String(THREADS), '--out', file], { cwd: ROOT, stdio: 'inherit' });
  if (p.status !== 0) throw new Error(`tools/train_reference.py failed (${p.status})`);
  return { ...(JSON.parse(readFileSync(file, 'utf8')) as TorchReference), source: 'this run' };
}

async function ours(seed: number): Promise<TrainResult> {
  const data = (split: 'train' | 'test') => ({ dataset: `idx:${FASHION}`, options: { split, mean: 0.5, std: 0.5 } });
  log(`nnserve: seed ${seed}, ${EPOCHS} epochs, ${THREADS} threads`);
  return train({
    architecture: join(ROOT, 'test/fixtures/training/architectures/fashion_cnn.json'),
    dataset: data('train'), test: data('test'),
    loss: 'CrossEntropyLoss', optimizer: { name: 'Adam', lr: 1e-3 }, batchSize: 64, epochs: EPOCHS, seed,
    outDir: join(ROOT, 'bench/.cache/train-fashion-cnn', `seed-${seed}`), name: 'fashion_cnn', handler: 'image_classifier', threads: THREADS,
  }, { onEpoch: (m) => log(formatEpoch(m, EPOCHS)) });
}

async function main(): Promise<void> {
  const load = [loadavg()[0]!];
  const runs: TrainResult[] = [];
  for (const seed of SEEDS) {
    const res = await ours(seed);
    log(formatEval('test', res.test!));
    runs.push(res);
  }
  const torch = pytorch();
  load.push(loadavg()[0]!);
  const acc = (x: TrainResult) => 100 * x.test!.accuracy!;
  const trainSeconds = (x: TrainResult) => x.epochs.reduce((s, e) => s + e.seconds, 0);
  const oursMean = runs.reduce((s, x) => s + acc(x), 0) / runs.length;
  // PyTorch's runs of the same seeds (the reference file may hold more seeds than this run).
  const torchRuns = SEEDS.map((seed) => torch.runs.find((t) => t.seed === seed));
  const missing = SEEDS.filter((_, i) => !torchRuns[i]);
  if (missing.length > 0) throw new Error(`PyTorch reference ${torch.source} has no run for seed ${missing.join(', ')}: run with --torch`);
  const torchMean = torchRuns.reduce((s, t) => s + t!.test_accuracy, 0) / torchRuns.length;
  const diff = oursMean - torchMean;
  const rows: (string | number)[][] = runs.map((x, i) => {
    const t = torchRuns[i]!;
    return [x.seed, r(acc(x), 2), r(t.test_accuracy, 2), r(trainSeconds(x), 1), r(t.train_seconds, 1)];
  });
  rows.push(['mean', r(oursMean, 2), r(torchMean, 2), '', '']);
  const md = table(['seed', 'nnserve test acc %', 'PyTorch test acc %', 'nnserve train s', 'PyTorch train s'], rows);
  const verdict = `${oursMean >= 90 ? '>= 90%' : 'BELOW 90%'}; ${Math.abs(diff) <= 0.5 ? 'within' : 'NOT within'} 0.5 points of PyTorch (${diff >= 0 ? '+' : ''}${r(diff, 2)})`;
  console.log(`\nFashion-MNIST SimpleCNN, ${EPOCHS} epochs, Adam 1e-3, batch 64, ${THREADS} threads (PyTorch ${torch.torch_version}, from ${torch.source})\n\n${md}\n\n${verdict}`);
  if (RESULTS) {
    mkdirSync(dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify({
      date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, load_average: load.map((v) => r(v, 2)), threads: THREADS, epochs: EPOCHS,
      settings: 'SimpleCNN 1x28x28, CrossEntropyLoss, Adam lr 1e-3, batch 64, shuffled, Normalize(0.5, 0.5), 60000 train / 10000 test',
      nnserve: runs.map((x) => ({ seed: x.seed, test_accuracy: r(acc(x), 2), test_loss: r(x.test!.loss, 4), epoch_train_loss: x.epochs.map((e) => r(e.train_loss, 4)), train_seconds: r(trainSeconds(x), 1) })),
      nnserve_mean_test_accuracy: r(oursMean, 3),
      pytorch: { source: torch.source, torch_version: torch.torch_version, runs: torchRuns.map((t) => ({ seed: t!.seed, test_accuracy: t!.test_accuracy, train_seconds: r(t!.train_seconds, 1) })), mean_test_accuracy: r(torchMean, 3) },
      difference_points: r(diff, 3),
      verdict,
    }, null, 1)}\n`);
    log(`wrote ${RESULTS}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
