/**
 * What a training run is given: model, data, loss, optimizer, schedule, epochs, output folder.
 * Every field is structured-cloneable, so the options cross into the training thread as they
 * are. `checkTrainOptions` validates what can be checked without the model or the data (names,
 * numbers, combinations) so that a typo fails at once, before a thread starts; the loop checks
 * the rest (shapes, parameter names) before its first step.
 */
import type { LossSpec } from '../compiler/index.js';
import { nnsError } from '../errors.js';
import type { TensorData } from '../runtime/ort.js';
import type { OpenDatasetOptions } from './datasets/index.js';
import { parseDatasetSpec } from './datasets/index.js';
import type { EarlyStoppingOptions } from './early-stopping.js';
import { EarlyStopping } from './early-stopping.js';
import { resolveLossSpec } from './loss-metrics.js';
import { createOptimizer } from './optimizers/index.js';
import type { ParamGroupSpec } from './param-groups.js';
import { createScheduler, type SchedulerSpec } from './schedulers/index.js';

/** Dataset options that survive structured cloning (no `decode` callback). */
export type DatasetOptions = Omit<OpenDatasetOptions, 'decode'>;

/** Where samples come from. */
export type DataSource =
  /** "KIND:PATH", e.g. "idx:/usr/share/datasets/fashion-mnist" */
  | string
  /** A dataset spec with its kind's options; `limit` keeps the first N samples. */
  | { dataset: string; options?: DatasetOptions; limit?: number }
  /** In-memory samples (torch's TensorDataset): the first dim of x and y is the sample. */
  | { x: TensorData; y: TensorData };

/** torch.optim's class name and its options: `{name: "Adam", lr: 1e-3, weight_decay: 0}`. */
export interface OptimizerSpec {
  name: string;
  [option: string]: unknown;
}

export interface TrainOptions {
  /** Architecture JSON (nnserve.architecture/1, docs/architecture.md) as an object, or the path of its file. */
  architecture: unknown;
  /** Initial weights, .safetensors or .pth. @defaultValue PyTorch's default initialisation drawn from `seed` */
  weights?: string;
  /** Training samples. */
  dataset: DataSource;
  /** Validation samples, evaluated after every epoch in eval mode: another source, or `{split: 0.1}` of `dataset`. @defaultValue none */
  validation?: DataSource | { split: number };
  /** Test samples, evaluated once after training with the final weights. @defaultValue an idx dataset's t10k files when the folder has them; null for none */
  test?: DataSource | null;
  /** torch.nn loss name ("CrossEntropyLoss", "mse", ...) or a spec with options. */
  loss: string | LossSpec;
  /** torch.optim class name or `{name, ...options}`. */
  optimizer: string | OptimizerSpec;
  /** LR scheduler (src/training/schedulers/), stepped per epoch or per batch as its `interval` says. @defaultValue none */
  scheduler?: SchedulerSpec;
  /** Samples per step; the last batch of an epoch may be smaller (unless dropLast). */
  batchSize: number;
  /** Passes over the training set. */
  epochs: number;
  /** Seeds the initialisation, the shuffling (seed + epoch), the validation split and dropout masks. @defaultValue 0 */
  seed?: number;
  /** Visit training samples in a new seeded order every epoch. @defaultValue true */
  shuffle?: boolean;
  /** Drop the last training batch when it is smaller than batchSize. @defaultValue false */
  dropLast?: boolean;
  /** torch.nn.utils.clip_grad_norm_'s max_norm (2-norm over all gradients). @defaultValue none */
  clipGradNorm?: number;
  /** torch.nn.utils.clip_grad_value_'s clip_value. @defaultValue none */
  clipGradValue?: number;
  /** Stop when the monitored validation metric stops improving (needs validation data). @defaultValue none */
  earlyStopping?: EarlyStoppingOptions & { monitor?: 'val_loss' | 'val_accuracy' };
  /** Parameter names or globs that are not trained (requires_grad = False). @defaultValue [] */
  freeze?: string[];
  /** torch param groups with per-group options, parameters named by state_dict key or glob. @defaultValue one group */
  paramGroups?: ParamGroupSpec[];
  /** Model output the loss reads, for models with several. @defaultValue the first */
  output?: string;
  /** Folder for weights.safetensors, best.safetensors, metrics.json, loss.png and NAME.mar; created if missing. */
  outDir: string;
  /** Model name of the archive. @defaultValue the architecture's name, lower-cased */
  name?: string;
  /** Archive version. @defaultValue '1.0' */
  version?: string;
  /** Handler of the archive: tensor, image_classifier, ... @defaultValue 'tensor' */
  handler?: string;
  /** model-config.yaml for the archive. @defaultValue for image_classifier, one whose image transform is the dataset's */
  modelConfig?: string;
  /** index_to_name.json for the archive. @defaultValue an imagefolder dataset's class names */
  labels?: string;
  /** ONNX Runtime intra-op threads. @defaultValue the machine's cores */
  threads?: number;
  /** Milliseconds between progress reports. @defaultValue 200 */
  progressIntervalMs?: number;
}

const bad = (message: string) => nnsError('TRAIN_OPTIONS_INVALID', message);

function positiveInt(name: string, v: unknown): void {
  if (!Number.isInteger(v) || (v as number) <= 0) throw bad(`${name}: expected a positive integer, got ${JSON.stringify(v)}`);
}

function positiveNumber(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(`${name}: expected a number > 0, got ${JSON.stringify(v)}`);
}

export function optimizerSpec(o: TrainOptions['optimizer']): OptimizerSpec {
  if (typeof o === 'string') return { name: o };
  if (o === null || typeof o !== 'object' || typeof o.name !== 'string') throw bad(`optimizer: expected a torch.optim name such as "Adam" or {name, ...options}, got ${JSON.stringify(o)}`);
  return o;
}

function checkSource(name: string, s: unknown): void {
  if (typeof s === 'string') return void parseDatasetSpec(s);
  if (s === null || typeof s !== 'object') throw bad(`${name}: expected "KIND:PATH", {dataset, options, limit} or {x, y}`);
  const o = s as Record<string, unknown>;
  if ('x' in o || 'y' in o) return; // TensorDataset checks its tensors
  if (typeof o.dataset !== 'string') throw bad(`${name}: expected "KIND:PATH", {dataset, options, limit} or {x, y}`);
  parseDatasetSpec(o.dataset);
  if (o.limit !== undefined) positiveInt(`${name}.limit`, o.limit);
}

/**
 * Throws NNS_ERR_TRAIN_OPTIONS_INVALID (or ..._DATASET_INVALID for a bad KIND:PATH) for the first
 * problem found; returns the loss and optimizer specs resolved.
 */
export function checkTrainOptions(o: TrainOptions): { loss: LossSpec; optimizer: OptimizerSpec } {
  if (o === null || typeof o !== 'object') throw bad('training options: expected an object');
  if (o.architecture === undefined || o.architecture === null) throw bad('architecture: required (the model\'s architecture JSON or its path)');
  if (typeof o.outDir !== 'string' || o.outDir === '') throw bad('outDir: required (the folder the trained model is written to)');
  positiveInt('batchSize', o.batchSize);
  positiveInt('epochs', o.epochs);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw bad(`seed: expected an integer, got ${JSON.stringify(o.seed)}`);
  if (o.threads !== undefined) positiveInt('threads', o.threads);
  if (o.clipGradNorm !== undefined) positiveNumber('clipGradNorm', o.clipGradNorm);
  if (o.clipGradValue !== undefined) positiveNumber('clipGradValue', o.clipGradValue);
  if (o.progressIntervalMs !== undefined && !(typeof o.progressIntervalMs === 'number' && o.progressIntervalMs >= 0)) {
    throw bad(`progressIntervalMs: expected a number >= 0, got ${JSON.stringify(o.progressIntervalMs)}`);
  }
  if (o.name !== undefined && !/^[A-Za-z][A-Za-z0-9_.-]*$/.test(o.name)) throw bad(`name "${o.name}": a model name starts with a letter, then letters, digits, _ - .`);
  checkSource('dataset', o.dataset);
  if (o.validation !== undefined) {
    const v = o.validation as { split?: unknown };
    if (v !== null && typeof v === 'object' && 'split' in v) {
      if (typeof v.split !== 'number' || !(v.split > 0 && v.split < 1)) throw bad(`validation.split: expected a fraction between 0 and 1, got ${JSON.stringify(v.split)}`);
    } else checkSource('validation', o.validation);
  }
  if (o.test !== undefined && o.test !== null) checkSource('test', o.test);

  const loss = resolveLossSpec(o.loss);
  const optimizer = optimizerSpec(o.optimizer);
  // Options are validated by building the optimizer over a stand-in parameter; the real one is
  // built over the model's parameters (param groups and freeze globs are checked then).
  const { name, ...options } = optimizer;
  const probe = createOptimizer(name, new Map([['p', new Float32Array(1)]]), options);
  if (o.scheduler !== undefined) createScheduler(probe, o.scheduler);
  if (o.earlyStopping !== undefined) {
    const { monitor, ...es } = o.earlyStopping;
    if (monitor !== undefined && monitor !== 'val_loss' && monitor !== 'val_accuracy') throw bad(`earlyStopping.monitor: expected "val_loss" or "val_accuracy", got ${JSON.stringify(monitor)}`);
    new EarlyStopping(es);
    if (o.validation === undefined) throw bad('earlyStopping needs validation data (validation: {split: 0.1} or a dataset)');
  }
  return { loss, optimizer: { ...optimizer, name: probe.name } };
}
