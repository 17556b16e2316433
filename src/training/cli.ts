/**
 * `nnserve train ...`: the training loop from a terminal, the seed's loop for people who live
 * there. A progress bar on stderr, one summary line per epoch and the final metrics on stdout
 * (-q: the final metrics only), the trained model in --out. Ctrl-C once stops after the current step and still writes the
 * outputs; twice quits.
 */
import { parseArgs } from 'node:util';
import { isNnsError } from '../errors.js';
import { formatEpoch, formatEval, ProgressBar, type ProgressStream } from './progress.js';
import { train } from './trainer.js';
import { checkTrainOptions, type DataSource, type DatasetOptions, type TrainOptions } from './train-options.js';

const USAGE = `Usage: nnserve train --architecture FILE --dataset KIND:PATH --loss NAME --optimizer NAME
                     --lr X --batch-size N --epochs N --out DIR [options]

Trains a model and writes DIR/weights.safetensors (final), DIR/best.safetensors (best epoch),
DIR/metrics.json, DIR/loss.png and DIR/NAME.mar (servable: nnserve start --model-store DIR).

Model and data
  --architecture FILE       architecture JSON (docs/architecture.md)
  --weights FILE            initial weights, .safetensors or .pth (default: PyTorch's init from --seed)
  --dataset KIND:PATH       idx, imagefolder, csv, jsonl or text (docs/training.md)
  --val-split F             hold out this share of the training set for validation (e.g. 0.1)
  --val-dataset KIND:PATH   validation set instead of a split
  --test-dataset KIND:PATH  test set (default: an idx folder's t10k files); --no-test for none
  --limit N                 use the first N training samples (and --test-limit N test samples)
  --normalize MEAN,STD      idx: (x/255 - MEAN) / STD, as transforms.Normalize
  --flatten                 idx: samples as [H*W] instead of [1, H, W]
  --target COL              csv/jsonl: the column to predict (several: a,b)
  --seq-length N            text: characters per sample

Training
  --loss NAME               MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, NLLLoss, KLDivLoss
  --loss-options JSON       e.g. '{"label_smoothing": 0.1}'
  --optimizer NAME          SGD, Adam, AdamW, RMSprop, Adagrad
  --lr X                    learning rate
  --momentum X, --weight-decay X
  --optimizer-options JSON  any other option, e.g. '{"betas": [0.9, 0.99], "nesterov": true}'
  --scheduler NAME          StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR
  --scheduler-options JSON  e.g. '{"step_size": 2, "gamma": 0.5}' (add "interval": "step" for per-batch)
  --batch-size N, --epochs N
  --seed S                  init, shuffling, split and dropout masks (default 0); same seed, same weights
  --no-shuffle, --drop-last
  --clip-grad-norm X        clip_grad_norm_(max_norm=X)
  --clip-grad-value X       clip_grad_value_(clip_value=X)
  --early-stopping N        stop after N+1 epochs without improvement (needs validation)
  --monitor M               val_loss (default) or val_accuracy, for early stopping and the best epoch
  --freeze A,B              parameters (state_dict names or globs) that are not trained
  --param-groups JSON       torch param groups by name or glob, e.g. '[{"params": ["fc.*"], "lr": 0.01}]'
  --output NAME             the model output the loss reads (models with several)
  --threads N               ONNX Runtime threads (default: all cores)

Archive
  --name NAME, --version V (1.0), --handler H (tensor; image_classifier, ...)
  --model-config FILE       model-config.yaml for the archive (image_classifier: by default the
                            dataset's image transform)
  --labels FILE             index_to_name.json (default: an imagefolder's class names)

  -q, --quiet               no progress bar and no per-epoch lines: only the final metrics
  -h, --help
`;

export interface TrainCliIo {
  out: ProgressStream;
  err: ProgressStream;
  /** Ctrl-C handling; tests leave it out. */
  onInterrupt?: (handler: () => void) => () => void;
}

const stdio: TrainCliIo = {
  out: process.stdout,
  err: process.stderr,
  onInterrupt: (handler) => {
    const h = () => {
      process.removeListener('SIGINT', h); // a second Ctrl-C quits the default way
      handler();
    };
    process.on('SIGINT', h);
    return () => process.removeListener('SIGINT', h);
  },
};

class UsageError extends Error {}

function number(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag}: expected a number, got "${v}"`);
  return n;
}

function json(flag: string, v: string | undefined): Record<string, unknown> {
  if (v === undefined) return {};
  try {
    const o = JSON.parse(v) as unknown;
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error('expected a JSON object');
    return o as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message} in ${v}`);
  }
}

const list = (v: string | undefined) => v?.split(',').map((s) => s.trim()).filter((s) => s !== '');

/** Parses argv (after "train") into TrainOptions; throws UsageError for a bad command line. */
export function parseTrainArgs(argv: string[]): TrainOptions | 'help' {
  const parsed = parseCommandLine(argv);
  return parsed === 'help' ? parsed : parsed.options;
}

/** The training options and what only the terminal output depends on. */
function parseCommandLine(argv: string[]): { options: TrainOptions; quiet: boolean } | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        architecture: { type: 'string' }, weights: { type: 'string' }, dataset: { type: 'string' },
        'val-split': { type: 'string' }, 'val-dataset': { type: 'string' }, 'test-dataset': { type: 'string' }, 'no-test': { type: 'boolean' },
        limit: { type: 'string' }, 'test-limit': { type: 'string' }, normalize: { type: 'string' }, flatten: { type: 'boolean' },
        target: { type: 'string' }, 'seq-length': { type: 'string' },
        loss: { type: 'string' }, 'loss-options': { type: 'string' }, optimizer: { type: 'string' }, lr: { type: 'string' },
        momentum: { type: 'string' }, 'weight-decay': { type: 'string' }, 'optimizer-options': { type: 'string' },
        scheduler: { type: 'string' }, 'scheduler-options': { type: 'string' },
        'batch-size': { type: 'string' }, epochs: { type: 'string' }, seed: { type: 'string' },
        'no-shuffle': { type: 'boolean' }, 'drop-last': { type: 'boolean' },
        'clip-grad-norm': { type: 'string' }, 'clip-grad-value': { type: 'string' },
        'early-stopping': { type: 'string' }, monitor: { type: 'string' }, freeze: { type: 'string' }, 'param-groups': { type: 'string' }, output: { type: 'string' },
        threads: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' }, version: { type: 'string' }, handler: { type: 'string' },
        'model-config': { type: 'string' }, labels: { type: 'string' },
        quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return 'help';
  const missing = ['architecture', 'dataset', 'loss', 'optimizer', 'batch-size', 'epochs', 'out'].filter((k) => values[k as keyof typeof values] === undefined);
  if (missing.length > 0) throw new UsageError(`missing ${missing.map((k) => `--${k}`).join(', ')}`);
  if (values['val-split'] !== undefined && values['val-dataset'] !== undefined) throw new UsageError('give --val-split or --val-dataset, not both');
  if (values['test-dataset'] !== undefined && values['no-test']) throw new UsageError('give --test-dataset or --no-test, not both');

  const options: DatasetOptions = {};
  if (values.normalize !== undefined) {
    const [mean, std, extra] = values.normalize.split(',').map((s) => number('normalize', s));
    if (mean === undefined || std === undefined || extra !== undefined) throw new UsageError(`--normalize: expected MEAN,STD, got "${values.normalize}"`);
    Object.assign(options, { mean, std });
  }
  if (values.flatten) options.flatten = true;
  if (values.target !== undefined) options.target = values.target.includes(',') ? list(values.target) : values.target;
  if (values['seq-length'] !== undefined) options.seqLength = number('seq-length', values['seq-length']);
  const source = (spec: string, extra: DatasetOptions = {}, limit?: number): DataSource => ({ dataset: spec, options: { ...options, ...extra }, ...(limit !== undefined ? { limit } : {}) });
  const testLimit = number('test-limit', values['test-limit']);
  const ddd = values.dataset!;

  const optimizer: Record<string, unknown> = { ...json('optimizer-options', values['optimizer-options']), name: values.optimizer! };
  if (values.lr !== undefined) optimizer.lr = number('lr', values.lr);
  if (values.momentum !== undefined) optimizer.momentum = number('momentum', values.momentum);
  if (values['weight-decay'] !== undefined) optimizer.weight_decay = number('weight-decay', values['weight-decay']);
  const patience = number('early-stopping', values['early-stopping']);
  const monitor = values.monitor;
  if (monitor !== undefined && monitor !== 'val_loss' && monitor !== 'val_accuracy') throw new UsageError(`--monitor: expected val_loss or val_accuracy, got "${monitor}"`);

  const o: TrainOptions = {
    architecture: values.architecture!,
    weights: values.weights,
    dataset: source(ddd, {}, number('limit', values.limit)),
    loss: { ...json('loss-options', values['loss-options']), type: values.loss! } as TrainOptions['loss'],
    optimizer: optimizer as TrainOptions['optimizer'],
    batchSize: number('batch-size', values['batch-size'])!,
    epochs: number('epochs', values.epochs)!,
    outDir: values.out!,
  };
  if (values['val-split'] !== undefined) o.validation = { split: number('val-split', values['val-split'])! };
  if (values['val-dataset'] !== undefined) o.validation = source(values['val-dataset']);
  if (values['no-test']) o.test = null;
  else if (values['test-dataset'] !== undefined) o.test = source(values['test-dataset'], {}, testLimit);
  else if (testLimit !== undefined && ddd.toLowerCase().startsWith('idx:')) o.test = source(ddd, { split: 'test' }, testLimit);
  if (values.scheduler !== undefined) o.scheduler = { ...json('scheduler-options', values['scheduler-options']), name: values.scheduler };
  if (values.seed !== undefined) o.seed = number('seed', values.seed);
  if (values['no-shuffle']) o.shuffle = false;
  if (values['drop-last']) o.dropLast = true;
  if (values['clip-grad-norm'] !== undefined) o.clipGradNorm = number('clip-grad-norm', values['clip-grad-norm']);
  if (values['clip-grad-value'] !== undefined) o.clipGradValue = number('clip-grad-value', values['clip-grad-value']);
  if (patience !== undefined) o.earlyStopping = { patience, ...(monitor ? { monitor } : {}) };
  if (values.freeze !== undefined) o.freeze = list(values.freeze);
  if (values['param-groups'] !== undefined) {
    try {
      o.paramGroups = JSON.parse(values['param-groups']) as TrainOptions['paramGroups'];
    } catch (e) {
      throw new UsageError(`--param-groups: ${(e as Error).message}`);
    }
    if (!Array.isArray(o.paramGroups)) throw new UsageError('--param-groups: expected a JSON list of {"params": [...], ...options}');
  }
  if (values.output !== undefined) o.output = values.output;
  if (values.threads !== undefined) o.threads = number('threads', values.threads);
  if (values.name !== undefined) o.name = values.name;
  if (values.version !== undefined) o.version = values.version;
  if (values.handler !== undefined) o.handler = values.handler;
  if (values['model-config'] !== undefined) o.modelConfig = values['model-config'];
  if (values.labels !== undefined) o.labels = values.labels;
  return { options: o, quiet: values.quiet ?? false };
}

/**
 * `nnserve train ...`: argv after "train". Exit codes: 0 trained, 1 training failed, 2 bad
 * command line or options (reported before anything is trained).
 */
export async function runTrainCli(argv: string[], io: TrainCliIo = stdio): Promise<number> {
  let options: TrainOptions;
  let quiet: boolean;
  try {
    const parsed = parseCommandLine(argv);
    if (parsed === 'help') {
      io.out.write(USAGE);
      return 0;
    }
    ({ options, quiet } = parsed);
    checkTrainOptions(options);
  } catch (e) {
    const message = e instanceof UsageError ? `${e.message}\n\n${USAGE}` : isNnsError(e) ? `${e.code}: ${e.message}\n` : `${(e as Error).message}\n`;
    io.err.write(`nnserve train: ${message}${message.endsWith('\n') ? '' : '\n'}`);
    return 2;
  }
  const bar = new ProgressBar(io.err);
  const abort = new AbortController();
  const unlisten = io.onInterrupt?.(() => {
    bar.line('stopping after this step (Ctrl-C again to quit)');
    abort.abort();
  });
  try {
    const result = await train(options, {
      ...(quiet ? {} : { onProgress: (p) => bar.update(p), onEpoch: (m) => bar.line(formatEpoch(m, options.epochs), io.out) }),
      signal: abort.signal,
    });
    bar.clear();
    const last = result.epochs[result.epochs.length - 1];
    if (result.stop_reason === 'early_stopping') io.out.write(`early stopping after epoch ${last?.epoch}: no improvement of ${options.earlyStopping?.monitor ?? 'val_loss'}\n`);
    if (result.stop_reason === 'requested') io.out.write(`stopped at epoch ${last?.epoch}, step ${last?.steps}\n`);
    if (last?.val_loss !== undefined) io.out.write(`${formatEval('validation', { loss: last.val_loss, accuracy: last.val_accuracy, samples: result.val_samples ?? 0 })}\n`);
    if (result.test) io.out.write(`${formatEval('test', result.test)}\n`);
    io.out.write(`best epoch ${result.best.epoch} (${result.best.metric} ${Number(result.best.value.toPrecision(6))}); ${result.total_seconds.toFixed(1)} s\n`);
    for (const f of Object.values(result.files)) io.out.write(`wrote ${f}\n`);
    return 0;
  } catch (e) {
    bar.clear();
    io.err.write(`nnserve train: ${isNnsError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  } finally {
    unlisten?.();
  }
}
