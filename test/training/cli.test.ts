/** `nnserve train`: what a person in a terminal sees, the exit codes, and the flags' meaning. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseTrainArgs, runTrainCli, type TrainCliIo } from '../../src/training/cli.js';
import { formatDuration, formatEpoch, formatProgress } from '../../src/training/progress.js';
import { FIXTURES } from './fixtures.js';

const ARCH = join(FIXTURES, 'architectures', 'neural_net.json');

function capture(tty = false): TrainCliIo & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return {
    out: { write: (s: string) => (out += s) },
    err: { write: (s: string) => (err += s), isTTY: tty, columns: 200 },
    stdout: () => out,
    stderr: () => err,
  };
}

function seedCsv(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'nnserve-cli-')), 'line.csv');
  writeFileSync(file, 'x,y\n1,3\n2,5\n3,7\n4,9\n');
  return file;
}

const base = (csv: string, outDir: string) => [
  '--architecture', ARCH, '--dataset', `csv:${csv}`, '--target', 'y', '--loss', 'MSELoss', '--optimizer', 'SGD', '--lr', '0.01',
  '--batch-size', '4', '--out', outDir, '--threads', '1',
];

test('trains the seed regression from a CSV: a line per epoch, the validation metrics, the files written', async () => {
  const csv = seedCsv();
  const dir = join(mkdtempSync(join(tmpdir(), 'nnserve-cli-')), 'out');
  const io = capture();
  const code = await runTrainCli([...base(csv, dir), '--epochs', '3', '--val-dataset', `csv:${csv}`], io);
  assert.equal(code, 0, io.stderr());
  const lines = io.stdout().trim().split('\n');
  for (let e = 1; e <= 3; e++) assert.match(lines[e - 1]!, new RegExp(`^epoch ${e}/3  train_loss \\d+\\.\\d{4}  val_loss \\d+\\.\\d{4}  lr 0\\.01  \\d+\\.\\d s$`));
  assert.match(io.stdout(), /^validation: loss \d+\.\d{4} \(4 samples\)$/m);
  assert.match(io.stdout(), /^best epoch 3 \(val_loss [\d.e-]+\); \d+\.\d s$/m);
  for (const f of ['architecture.json', 'weights.safetensors', 'best.safetensors', 'metrics.json', 'loss.png', 'neuralnet.mar']) {
    assert.ok(io.stdout().includes(`wrote ${join(dir, f)}\n`), f);
    assert.ok(existsSync(join(dir, f)), f);
  }
  const m = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
  assert.deepEqual(m.epochs.map((e: { epoch: number }) => e.epoch), [1, 2, 3]);
});

test('on a terminal the progress bar shows epoch, step, loss, samples/s and ETA, and is erased at the end', async () => {
  const csv = seedCsv();
  const io = capture(true);
  const code = await runTrainCli([...base(csv, join(mkdtempSync(join(tmpdir(), 'nnserve-cli-')), 'out')), '--epochs', '2', '--batch-size', '1'], io);
  assert.equal(code, 0, io.stderr());
  assert.match(io.stderr(), /\repoch [12]\/2 \[[#.]{24}\] [1-4]\/4 loss \d+\.\d{4} \| [\d,]+ samples\/s \| ETA \d+:\d\d\x1b\[K/);
  assert.ok(io.stderr().endsWith('\r\x1b[K'), 'the bar is erased');
});

test('-q prints neither the progress bar nor the per-epoch lines, only the final metrics and files', async () => {
  const csv = seedCsv();
  const dir = join(mkdtempSync(join(tmpdir(), 'nnserve-cli-')), 'out');
  const io = capture(true);
  const code = await runTrainCli([...base(csv, dir), '--epochs', '3', '--batch-size', '1', '--val-dataset', `csv:${csv}`, '-q'], io);
  assert.equal(code, 0, io.stderr());
  assert.equal(io.stderr(), '');
  assert.doesNotMatch(io.stdout(), /^epoch /m);
  assert.match(io.stdout(), /^validation: loss \S+ \(4 samples\)\nbest epoch \d \(val_loss [\d.e-]+\); \d+\.\d s\n/);
  assert.ok(io.stdout().includes(`wrote ${join(dir, 'neuralnet.mar')}\n`));
});

test('a bad command line or option exits 2 before anything is trained, saying what is wrong', async () => {
  const csv = seedCsv();
  const cases: [string[], RegExp][] = [
    [['--architecture', ARCH], /missing --dataset, --loss, --optimizer, --batch-size, --epochs, --out/],
    [[...base(csv, '/nonexistent/x'), '--epochs', '1', '--loss', 'MSELos'], /NNS_ERR_TRAIN_LOSS_INVALID: unknown loss "MSELos"; known losses are MSELoss, L1Loss/],
    [[...base(csv, '/nonexistent/x'), '--epochs', '1', '--optimizer', 'adamw2'], /NNS_ERR_TRAIN_OPTIONS_INVALID: unknown optimizer "adamw2"/],
    [[...base(csv, '/nonexistent/x'), '--epochs', 'ten'], /--epochs: expected a number, got "ten"/],
    [[...base(csv, '/nonexistent/x'), '--epochs', '1', '--lr=-1'], /SGD lr: invalid value -1, expected >= 0/],
    [[...base(csv, '/nonexistent/x'), '--epochs', '1', '--scheduler', 'StepLR', '--scheduler-options', '{step_size: 1}'], /--scheduler-options: .*JSON/],
    [[...base(csv, '/nonexistent/x'), '--epochs', '1', '--epoch', '2'], /Unknown option '--epoch'/],
    [[...base(csv, '/nonexistent/x'), '--epochs', '1', '--early-stopping', '2'], /earlyStopping needs validation data/],
  ];
  for (const [argv, message] of cases) {
    const io = capture();
    assert.equal(await runTrainCli(argv, io), 2, argv.join(' '));
    assert.match(io.stderr(), message);
    assert.equal(io.stdout(), '');
  }
  assert.equal(existsSync('/nonexistent/x'), false);
});

test('a run that fails exits 1 with the error', async () => {
  const io = capture();
  const code = await runTrainCli([...base(seedCsv(), join(mkdtempSync(join(tmpdir(), 'nnserve-cli-')), 'out')), '--epochs', '100', '--lr', '1e9'], io);
  assert.equal(code, 1);
  assert.match(io.stderr(), /nnserve train: NNS_ERR_TRAIN_DIVERGED: the loss is (NaN|Infinity) at epoch \d+, step 1 of 1/);
});

test('--help prints the usage and exits 0', async () => {
  const io = capture();
  assert.equal(await runTrainCli(['--help'], io), 0);
  assert.match(io.stdout(), /^Usage: nnserve train --architecture FILE --dataset KIND:PATH/);
});

test('flags map to the training options', () => {
  const o = parseTrainArgs([
    '--architecture', 'a.json', '--weights', 'w.pth', '--dataset', 'idx:/d', '--normalize', '0.5,0.25', '--limit', '1000', '--test-limit', '200',
    '--val-split', '0.1', '--loss', 'CrossEntropyLoss', '--loss-options', '{"label_smoothing":0.1}', '--optimizer', 'SGD', '--lr', '0.1',
    '--momentum', '0.9', '--weight-decay', '5e-4', '--optimizer-options', '{"nesterov":true}', '--scheduler', 'StepLR',
    '--scheduler-options', '{"step_size":2,"gamma":0.5}', '--batch-size', '32', '--epochs', '4', '--seed', '3', '--no-shuffle', '--drop-last',
    '--clip-grad-norm', '1', '--clip-grad-value', '0.5', '--early-stopping', '2', '--monitor', 'val_accuracy', '--freeze', 'conv1.*,conv2.weight',
    '--param-groups', '[{"params": ["fc2.*"], "lr": 0.5}]', '--threads', '2', '--out', 'o', '--name', 'cnn', '--handler', 'image_classifier',
  ]);
  assert.deepEqual(o, {
    architecture: 'a.json', weights: 'w.pth',
    dataset: { dataset: 'idx:/d', options: { mean: 0.5, std: 0.25 }, limit: 1000 },
    test: { dataset: 'idx:/d', options: { mean: 0.5, std: 0.25, split: 'test' }, limit: 200 },
    validation: { split: 0.1 },
    loss: { label_smoothing: 0.1, type: 'CrossEntropyLoss' },
    optimizer: { nesterov: true, name: 'SGD', lr: 0.1, momentum: 0.9, weight_decay: 5e-4 },
    scheduler: { step_size: 2, gamma: 0.5, name: 'StepLR' },
    batchSize: 32, epochs: 4, seed: 3, shuffle: false, dropLast: true, clipGradNorm: 1, clipGradValue: 0.5,
    earlyStopping: { patience: 2, monitor: 'val_accuracy' }, freeze: ['conv1.*', 'conv2.weight'], paramGroups: [{ params: ['fc2.*'], lr: 0.5 }], threads: 2,
    outDir: 'o', name: 'cnn', handler: 'image_classifier',
  });
});

test('progress and summary lines', () => {
  assert.equal(
    formatProgress({ epoch: 2, epochs: 5, step: 412, steps: 938, loss: 0.31274, samplesPerSecond: 4812.4, etaSeconds: 42.4 }),
    'epoch 2/5 [###########.............] 412/938 loss 0.3127 | 4,812 samples/s | ETA 0:42',
  );
  assert.equal(
    formatEpoch({ epoch: 2, train_loss: 0.3127, train_accuracy: 0.8861, val_loss: 0.33, val_accuracy: 0.8802, lr: 0.001, seconds: 12.34, samples_per_second: 5000, steps: 938 }, 5),
    'epoch 2/5  train_loss 0.3127  train_acc 88.61%  val_loss 0.3300  val_acc 88.02%  lr 0.001  12.3 s',
  );
  assert.deepEqual([formatDuration(75), formatDuration(3725), formatDuration(NaN)], ['1:15', '1:02:05', '--:--']);
});
