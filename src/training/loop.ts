/**
 * The training loop, the seed tutorial's (6.5, 7.4) written once for every model:
 *
 *     for epoch in range(epochs):
 *         model.train()
 *         for x, y in loader:              # shuffled with seed + epoch, last batch partial
 *             loss, grads = step(x, y)     # forward + loss + backward: one ONNX Runtime run
 *             clip(grads); optimizer.step(grads); scheduler.step() if per-batch
 *         model.eval(); validate           # the eval graph, same weights
 *         scheduler.step() if per-epoch; best checkpoint; early stopping
 *     test with the final weights; write weights, best, metrics, loss curve, archive
 *
 * Everything that can be checked (names, options, shapes of the data against the model) is
 * checked before the first step. It runs on the calling thread; trainer.ts runs it in a
 * worker thread. Deterministic: the same options and seed give the same weights, bit for bit.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { compileArchitecture, initStateDict, type LossSpec } from '../compiler/index.js';
import { nnsError } from '../errors.js';
import type { StateDict } from '../weights/index.js';
import { readStateDict } from '../weights/index.js';
import { ArtifactsWriter, snapshotStateDict } from './artifacts.js';
import { clip_grad_norm_, clip_grad_value_ } from './clip.js';
import { openRunData, type RunData } from './data-source.js';
import { batchCount } from './datasets/index.js';
import { EarlyStopping } from './early-stopping.js';
import { EvalGraph } from './eval-graph.js';
import { countCorrect, hasAccuracy } from './loss-metrics.js';
import { createOptimizer, type AnyOptimizer } from './optimizers/index.js';
import { createScheduler, type LRScheduler } from './schedulers/index.js';
import { servingFiles } from './serving-config.js';
import { checkSampleSpec, TrainGraph } from './train-graph.js';
import { checkTrainOptions, type TrainOptions } from './train-options.js';
import type { EpochMetrics, EvalMetrics, StepProgress, TrainResult } from './train-result.js';

export interface LoopEvents {
  progress?(p: StepProgress): void;
  epoch?(m: EpochMetrics): void;
  /** Read between steps; true ends training after the current step, and the outputs are still written. */
  shouldStop?(): boolean;
}

/** Batches of the eval graph: evaluation keeps no activations for a backward pass. */
const EVAL_BATCH = 256;
/** About this many points on the per-step loss curve. */
const CURVE_POINTS = 200;

async function loadArchitecture(a: unknown): Promise<unknown> {
  if (typeof a !== 'string') return a;
  let text: string;
  try {
    text = await readFile(a, 'utf8');
  } catch (e) {
    throw nnsError('ARCH_INVALID', `cannot read architecture file "${a}": ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw nnsError('ARCH_INVALID', `architecture file "${a}" is not valid JSON: ${(e as Error).message}`);
  }
}

/** Initial weights in PyTorch's key order: loaded (and matched strictly, as load_state_dict) or initialised from the seed. */
async function initialWeights(arch: unknown, path: string | undefined, seed: number): Promise<StateDict> {
  const init = initStateDict(arch, seed);
  if (path === undefined) return init;
  const loaded = await readStateDict(path);
  compileArchitecture(arch, loaded); // throws NNS_ERR_STATE_DICT_MISMATCH naming the keys
  return new Map([...init.keys()].map((k) => [k, loaded.get(k)!]));
}

function modelName(o: TrainOptions, arch: unknown): { model: string; archive: string } {
  const model = typeof (arch as { name?: unknown }).name === 'string' ? (arch as { name: string }).name : 'Model';
  const archive = o.name ?? (model.toLowerCase().replace(/[^a-z0-9_.-]/g, '_').replace(/^[^a-z]+/, '') || 'model');
  return { model, archive };
}

function checkData(data: RunData, g: TrainGraph, loss: LossSpec, model: string): void {
  const hint = g.target.dtype === 'int64'
    ? ` (${loss.type} takes class indices)`
    : ` (${loss.type} takes a float32 target shaped like the model's output)`;
  for (const [label, d] of [['training', data.train], ['validation', data.validation], ['test', data.test]] as const) {
    if (!d) continue;
    checkSampleSpec(`${label} x`, d.xSpec, g.input, model);
    checkSampleSpec(`${label} y`, d.ySpec, g.target, model, hint);
  }
}

export async function runTraining(options: TrainOptions, events: LoopEvents = {}): Promise<TrainResult> {
  const startedAt = performance.now();
  const { loss, optimizer: optSpec } = checkTrainOptions(options);
  const seed = options.seed ?? 0;
  const threads = options.threads ?? availableParallelism();
  const shouldStop = events.shouldStop ?? (() => false);
  const arch = await loadArchitecture(options.architecture);
  const { model, archive } = modelName(options, arch);
  const state = await initialWeights(arch, options.weights, seed);
  const data = await openRunData(options, seed);

  let evalGraph: EvalGraph | undefined;
  let trainGraph: TrainGraph | undefined;
  try {
    evalGraph = await EvalGraph.create(arch, state, { output: options.output, threads });
    const parameters = new Map(evalGraph.params.map((k) => [k, state.get(k)!.data as Float32Array]));
    const { name: optName, ...optOptions } = optSpec;
    const optimizer = createOptimizer(optName, { parameters, param_groups: options.paramGroups, freeze: options.freeze }, optOptions);
    // The weights move into the optimizer's memory, and ONNX Runtime writes the gradients there:
    // a step copies nothing (the graphs read the state_dict's arrays at each run).
    for (const [key, data] of optimizer.adoptParameters()) state.set(key, { ...state.get(key)!, data });
    trainGraph = await TrainGraph.create(arch, state, { loss, frozen: optimizer.frozen, output: options.output, threads, seed, model });
    checkData(data, trainGraph, loss, model);
    const scheduler = options.scheduler ? createScheduler(optimizer, options.scheduler) : undefined;
    const steps = batchCount(data.train.length, options.batchSize, options.dropLast ?? false);
    if (steps === 0) throw nnsError('TRAIN_OPTIONS_INVALID', `dropLast with batchSize ${options.batchSize} leaves no batch of the ${data.train.length} training samples`);

    const serving = await servingFiles(options, data.train);
    const writer = new ArtifactsWriter(options.outDir, archive, arch);
    const run = new Run(options, events, { loss, optimizer, scheduler, trainGraph, evalGraph, data, steps, seed, writer, state, shouldStop });
    await writer.prepare(serving);
    const { epochs, best, stopReason } = await run.epochs();
    const test = data.test ? await evalGraph.evaluate(data.test, loss, Math.max(options.batchSize, EVAL_BATCH)) : undefined;
    const result: TrainResult = {
      model,
      seed,
      loss: loss.type,
      optimizer: optimizer.name,
      batch_size: options.batchSize,
      epochs_requested: options.epochs,
      epochs,
      step_loss: run.stepLoss,
      best,
      stopped_early: stopReason !== undefined,
      ...(stopReason ? { stop_reason: stopReason } : {}),
      ...(test ? { test } : {}),
      train_samples: data.train.length,
      ...(data.validation ? { val_samples: data.validation.length } : {}),
      total_seconds: (performance.now() - startedAt) / 1000,
      files: writer.files,
    };
    await writer.finish(state, run.bestState ?? state, result, { version: options.version ?? '1.0', handler: options.handler ?? 'tensor' });
    return result;
  } finally {
    await trainGraph?.release();
    await evalGraph?.release();
  }
}

interface RunParts {
  loss: LossSpec;
  optimizer: AnyOptimizer;
  scheduler?: LRScheduler;
  trainGraph: TrainGraph;
  evalGraph: EvalGraph;
  data: RunData;
  steps: number;
  seed: number;
  writer: ArtifactsWriter;
  /** The live weights: the optimizer's parameters and the updated buffers. */
  state: StateDict;
  shouldStop: () => boolean;
}

type BestMetric = TrainResult['best']['metric'];

/** The state of one run across its epochs. */
class Run {
  readonly stepLoss: [number, number][] = [];
  private readonly window: number;
  private windowSum = 0;
  private windowCount = 0;
  private readonly monitor: BestMetric;
  private readonly earlyStopping?: EarlyStopping;
  private best: TrainResult['best'] | undefined;
  /** A copy of the weights of the best epoch so far, written as best.safetensors at the end. */
  bestState: StateDict | undefined;
  private readonly startedAt = performance.now();
  private lastProgress = 0;
  /** Where ONNX Runtime writes the gradients: the optimizer's own buffers. */
  private readonly gradients: ReadonlyMap<string, Float32Array>;

  constructor(private readonly o: TrainOptions, private readonly events: LoopEvents, private readonly p: RunParts) {
    this.gradients = p.optimizer.gradientBuffers();
    this.window = Math.max(1, Math.round((p.steps * o.epochs) / CURVE_POINTS));
    const es = o.earlyStopping;
    if (es?.monitor === 'val_accuracy' && !hasAccuracy(p.loss)) {
      throw nnsError('TRAIN_OPTIONS_INVALID', `earlyStopping.monitor "val_accuracy": ${p.loss.type} has no accuracy; monitor val_loss`);
    }
    this.monitor = !p.data.validation ? 'train_loss' : es?.monitor ?? (hasAccuracy(p.loss) ? 'val_accuracy' : 'val_loss');
    if (es) {
      const { monitor = 'val_loss', ...rest } = es;
      this.earlyStopping = new EarlyStopping({ mode: monitor === 'val_accuracy' ? 'max' : 'min', ...rest });
    }
  }

  async epochs(): Promise<{ epochs: EpochMetrics[]; best: TrainResult['best']; stopReason?: 'early_stopping' | 'requested' }> {
    const out: EpochMetrics[] = [];
    let stopReason: 'early_stopping' | 'requested' | undefined;
    for (let epoch = 1; epoch <= this.o.epochs && !stopReason; epoch++) {
      const m = await this.epoch(epoch);
      out.push(m);
      if (this.p.scheduler?.interval === 'epoch') this.p.scheduler.step();
      const value = this.monitor === 'train_loss' ? m.train_loss : this.monitor === 'val_loss' ? m.val_loss! : m.val_accuracy!;
      const better = this.best === undefined || (this.monitor === 'val_accuracy' ? value > this.best.value : value < this.best.value);
      if (Number.isFinite(value) && better) {
        this.best = { epoch, metric: this.monitor, value };
        this.bestState = snapshotStateDict(this.p.state);
      }
      this.events.epoch?.(m);
      if (this.p.shouldStop() && (epoch < this.o.epochs || m.steps < this.p.steps)) stopReason = 'requested';
      else if (this.earlyStopping) {
        const es = this.o.earlyStopping!;
        const v = es.monitor === 'val_accuracy' ? m.val_accuracy! : m.val_loss!;
        if (this.earlyStopping.step(v).stop && epoch < this.o.epochs) stopReason = 'early_stopping';
      }
    }
    return { epochs: out, best: this.best ?? { epoch: out.length, metric: this.monitor, value: NaN }, stopReason };
  }

  private async epoch(epoch: number): Promise<EpochMetrics> {
    const { optimizer, scheduler, trainGraph, data, steps } = this.p;
    const { batchSize, clipGradNorm, clipGradValue } = this.o;
    const lr = optimizer.param_groups[0]!.lr;
    const t0 = performance.now();
    let lossSum = 0;
    let samples = 0;
    let correct = 0;
    let judged = 0;
    let step = 0;
    const batches = data.train.batches({ batchSize, shuffle: this.o.shuffle ?? true, seed: this.p.seed + epoch, dropLast: this.o.dropLast ?? false });
    for await (const { x, y } of batches) {
      step++;
      const n = x.dims[0]!;
      const r = await trainGraph.step(x, y, this.gradients);
      if (!Number.isFinite(r.loss)) {
        throw nnsError('TRAIN_DIVERGED', `the loss is ${r.loss} at epoch ${epoch}, step ${step} of ${steps} (lr ${lr}); training stopped. Lower the learning rate, clip gradients (--clip-grad-norm) or check the data for NaN/Inf`);
      }
      if (clipGradNorm !== undefined) clip_grad_norm_(r.grads, clipGradNorm);
      if (clipGradValue !== undefined) clip_grad_value_(r.grads, clipGradValue);
      optimizer.step(r.grads);
      if (scheduler?.interval === 'step') scheduler.step();
      // reduction 'sum' gives the batch's total; per-sample figures divide it by n below.
      lossSum += (this.p.loss.reduction === 'sum' ? r.loss : r.loss * n);
      samples += n;
      const acc = countCorrect(this.p.loss, r.output, y);
      if (acc) {
        correct += acc.correct;
        judged += acc.judged;
      }
      this.recordStep(epoch, step, this.p.loss.reduction === 'sum' ? r.loss / n : r.loss);
      this.reportProgress(epoch, step, lossSum / samples, samples, t0);
      if (this.p.shouldStop()) break;
    }
    const m: EpochMetrics = {
      epoch,
      train_loss: lossSum / samples,
      ...(judged > 0 ? { train_accuracy: correct / judged } : {}),
      lr,
      seconds: 0,
      samples_per_second: samples / ((performance.now() - t0) / 1000),
      steps: step,
    };
    if (data.validation) {
      const v: EvalMetrics = await this.p.evalGraph.evaluate(data.validation, this.p.loss, Math.max(batchSize, EVAL_BATCH));
      m.val_loss = v.loss;
      if (v.accuracy !== undefined) m.val_accuracy = v.accuracy;
    }
    m.seconds = (performance.now() - t0) / 1000;
    return m;
  }

  private recordStep(epoch: number, step: number, loss: number): void {
    this.windowSum += loss;
    this.windowCount++;
    if (this.windowCount === this.window || step === this.p.steps) {
      this.stepLoss.push([epoch - 1 + step / this.p.steps, this.windowSum / this.windowCount]);
      this.windowSum = 0;
      this.windowCount = 0;
    }
  }

  private reportProgress(epoch: number, step: number, loss: number, samples: number, t0: number): void {
    const now = performance.now();
    const every = this.o.progressIntervalMs ?? 200;
    if (!this.events.progress || (now - this.lastProgress < every && step !== this.p.steps)) return;
    this.lastProgress = now;
    const doneSteps = (epoch - 1) * this.p.steps + step;
    const totalSteps = this.o.epochs * this.p.steps;
    const elapsed = (now - this.startedAt) / 1000;
    this.events.progress({
      epoch,
      epochs: this.o.epochs,
      step,
      steps: this.p.steps,
      loss,
      samplesPerSecond: samples / ((now - t0) / 1000),
      etaSeconds: (elapsed / doneSteps) * (totalSteps - doneSteps),
    });
  }
}
