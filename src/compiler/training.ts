/**
 * Training graphs: one ONNX graph that runs the forward pass in train (or eval) mode, the loss,
 * and the backward pass, so ONNX Runtime returns the loss, the model outputs, every trainable
 * parameter's gradient and the new values of updated buffers in one session.run. Parameters
 * are graph inputs named by their state_dict keys: the training loop owns the weights and
 * feeds them each step. docs/training-graphs.md describes the contract.
 */
import { nnsError } from '../errors.js';
import type { IoSpec } from '../runtime/ort.js';
import { parseArchitecture } from './architecture.js';
import { emitBackward } from './backward.js';
import type { Tensor } from './graph-builder.js';
import { type LossSpec, emitLoss, targetSpec, validateLoss } from './losses.js';
import { type ModuleInstance, type TrainLowering, instantiate, lowerGraph } from './lower.js';
import { encodeModel } from './onnx-proto.js';

export type { LossSpec } from './losses.js';

const OPSET = 17;
const PRODUCER_VERSION = '0.1.0';

export interface TrainingGraphOptions {
  loss: LossSpec;
  /** Which model output feeds the loss. @defaultValue the first output */
  output?: string;
  /** Parameters that get no gradient (requires_grad=False): state_dict keys or globs ("layer1.*"; `*` matches dots too, `?` one character). */
  frozen?: string[];
  /** Train mode: Dropout multiplies by the fed masks, BatchNorm uses batch statistics and updates its running stats. @defaultValue true */
  train?: boolean;
}

export interface TrainingGraph {
  onnx: Uint8Array;
  /** Trainable parameters (graph inputs named by their state_dict keys), in state_dict order. */
  params: { name: string; shape: number[] }[];
  /** Frozen parameters and buffers (BatchNorm running_mean/var, num_batches_tracked): graph inputs too. */
  constants: { name: string; shape: number[]; dtype: 'float32' | 'int64' }[];
  /** Data inputs (the architecture's, symbolic batch), "target", then the dropout masks "mask.<module>". */
  inputs: IoSpec[];
  /** Output names: "loss", the model outputs, "grad.<param>" per trainable param, "update.<buffer>" per updated buffer. */
  outputs: { loss: string; predictions: string[]; grads: Record<string, string>; updates: Record<string, string> };
  /** Train-mode dropout masks the loop feeds: 0 or 1/(1-p) per element, in `shape` (symbolic dims as in `inputs`). */
  masks: { name: string; module: string; p: number; shape: (number | string)[] }[];
}

/** fnmatch-style glob (as param groups use): `*` any run of characters, `?` one. */
function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Parameter (not buffer) keys in state_dict order. */
function parameterKeys(modules: Map<string, ModuleInstance>): string[] {
  return [...modules.values()].flatMap((m) => m.params.filter((p) => !p.buffer).map((p) => `${m.spec.name}.${p.name}`));
}

function frozenSet(patterns: unknown, keys: string[]): Set<string> {
  if (patterns === undefined) return new Set();
  if (!Array.isArray(patterns)) throw nnsError('TRAIN_OPTIONS_INVALID', 'frozen must be a list of parameter names or globs');
  const out = new Set<string>();
  for (const p of patterns) {
    if (typeof p !== 'string' || p === '') throw nnsError('TRAIN_OPTIONS_INVALID', `frozen: expected a parameter name or glob, got ${JSON.stringify(p)}`);
    const re = globToRegExp(p);
    const hits = keys.filter((k) => re.test(k));
    if (hits.length === 0) throw nnsError('TRAIN_OPTIONS_INVALID', `frozen: "${p}" matches no parameter; the parameters are ${keys.join(', ')}`);
    for (const k of hits) out.add(k);
  }
  return out;
}

function shapeOf(t: Tensor): number[] {
  return t.shape.map((d) => {
    if (typeof d !== 'number') throw nnsError('INTERNAL', `parameter "${t.name}" has a symbolic shape`);
    return d;
  });
}

/** Compiles the forward pass, the loss and the backward pass into one training graph. */
export function compileTraining(arch: unknown, opts: TrainingGraphOptions): TrainingGraph {
  if (typeof opts !== 'object' || opts === null) throw nnsError('TRAIN_OPTIONS_INVALID', 'training graph options must be an object with a "loss"');
  const loss = validateLoss(opts.loss);
  const parsed = parseArchitecture(arch);
  const modules = instantiate(parsed);
  const keys = parameterKeys(modules);
  const frozen = frozenSet(opts.frozen, keys);
  const training: TrainLowering = { train: opts.train ?? true, tape: [], masks: [], updates: new Map() };
  const lowered = lowerGraph(parsed, modules, { opset: OPSET, producerVersion: PRODUCER_VERSION, weights: 'inputs', training });
  const { g } = lowered;

  const outName = opts.output ?? lowered.outputs[0]!.name;
  const out = lowered.outputTensors.get(outName);
  if (!out) throw nnsError('TRAIN_LOSS_INVALID', `output "${outName}" is not an output of the model; its outputs are ${lowered.outputs.map((o) => o.name).join(', ')}`);
  if (lowered.inputs.some((i) => i.name === 'target')) throw nnsError('TRAIN_OPTIONS_INVALID', 'the model has an input named "target", which the training graph uses for the loss target; rename it');
  const ts = targetSpec(loss, out, outName);
  const target = g.input('target', ts.dtype, ts.shape);
  const { loss: lossValue, grad } = emitLoss(g, loss, out, target);
  g.output(lossValue, 'loss');

  const paramKeys = new Set(keys);
  const requires = new Set<string>();
  for (const [key, t] of lowered.params) if (paramKeys.has(key) && !frozen.has(key)) requires.add(t.name);
  const grads = emitBackward(g, training.tape, new Map([[out.name, grad]]), requires);

  const params: TrainingGraph['params'] = [];
  const constants: TrainingGraph['constants'] = [];
  const gradOutputs: Record<string, string> = {};
  const order = [...modules.values()].flatMap((m) => m.params.map((p) => `${m.spec.name}.${p.name}`));
  for (const key of order) {
    const t = lowered.params.get(key);
    if (!t) continue;
    const dw = paramKeys.has(key) && !frozen.has(key) ? grads.get(t.name) : undefined;
    if (dw) {
      g.output(dw, `grad.${key}`);
      gradOutputs[key] = `grad.${key}`;
      params.push({ name: key, shape: shapeOf(t) });
    } else {
      constants.push({ name: key, shape: shapeOf(t), dtype: t.dtype === 'int64' ? 'int64' : 'float32' });
    }
  }
  const updates: Record<string, string> = {};
  for (const [key, t] of training.updates) {
    g.output(t, `update.${key}`);
    updates[key] = `update.${key}`;
  }
  const inputs: IoSpec[] = [
    ...lowered.inputs,
    { name: 'target', dtype: ts.dtype, shape: ts.shape },
    ...training.masks.map((m) => ({ name: m.name, dtype: 'float32' as const, shape: m.shape })),
  ];
  return {
    onnx: encodeModel(g.toModel({ opset: OPSET, name: parsed.name, producerVersion: PRODUCER_VERSION })),
    params,
    constants,
    inputs,
    outputs: { loss: 'loss', predictions: lowered.outputs.map((o) => o.name), grads: gradOutputs, updates },
    masks: training.masks.map((m) => ({ name: m.name, module: m.module, p: m.p, shape: m.shape })),
  };
}

/**
 * The forward graph in eval mode with parameters and buffers as graph inputs (named by their
 * state_dict keys) instead of initializers, to evaluate while the weights change every step.
 */
export function compileEvalWithParamInputs(arch: unknown): { onnx: Uint8Array; params: string[]; constants: string[]; inputs: IoSpec[]; outputs: IoSpec[] } {
  const parsed = parseArchitecture(arch);
  const modules = instantiate(parsed);
  const lowered = lowerGraph(parsed, modules, { opset: OPSET, producerVersion: PRODUCER_VERSION, weights: 'inputs' });
  const keys = new Set(parameterKeys(modules));
  const order = [...modules.values()].flatMap((m) => m.params.map((p) => `${m.spec.name}.${p.name}`)).filter((k) => lowered.params.has(k));
  return {
    onnx: encodeModel(lowered.g.toModel({ opset: OPSET, name: parsed.name, producerVersion: PRODUCER_VERSION })),
    params: order.filter((k) => keys.has(k)),
    constants: order.filter((k) => !keys.has(k)),
    inputs: lowered.inputs,
    outputs: lowered.outputs,
  };
}
