/**
 * The shape of one entry of the layer table: a torch.nn class by its exact name, its
 * constructor signature, the state_dict entries it owns (with PyTorch's default init), its
 * forward lowering to ONNX (which checks and infers shapes), and the slot for its backward rule.
 */
import { type ErrorKind, nnsError } from '../errors.js';
import { type Shape, showShape } from './dims.js';
import type { GraphBuilder, Tensor } from './graph-builder.js';
import type { ArgSpecs } from './signature.js';
import { type Value, describe, isTensor } from './values.js';

/** PyTorch's default initialisation of one state_dict entry (torch/nn/modules/*.reset_parameters). */
export type InitRule =
  /** U(-bound, bound): kaiming_uniform(a=sqrt(5)) comes down to bound = 1/sqrt(fan_in). */
  | { uniform: number }
  /** N(0, std), with PyTorch's zeroed padding row for Embedding. */
  | { normal: number; zeroRow?: number }
  | { fill: number };

export interface ParamSpec {
  /** Name inside the module: "weight", "running_mean", "weight_ih_l0_reverse". */
  readonly name: string;
  readonly shape: number[];
  readonly dtype: 'float32' | 'int64';
  readonly init: InitRule;
  /** A buffer (register_buffer: BatchNorm's running stats), not a parameter: it never gets a gradient. */
  readonly buffer?: boolean;
}

/** What a layer's forward (and later backward) lowering is given. */
export interface ModuleCtx<A> {
  readonly g: GraphBuilder;
  /** Qualified module name, equal to its state_dict prefix: "layer1.0.conv1". */
  readonly name: string;
  readonly type: string;
  readonly args: A;
  /** The module's parameter or buffer as a graph initializer named by its state_dict key. */
  param(name: string): Tensor;
  /** Throws an error that names the module: `module "fc1" (Linear): ...`. */
  fail(kind: ErrorKind, message: string): never;
  /** The input as a tensor of the given rank(s), or a clear error. */
  tensor(v: Value | undefined, what: string, ranks?: number[]): Tensor;
  /** Train mode (model.train()): Dropout drops, BatchNorm uses and updates batch statistics. */
  readonly training: boolean;
  /** What the forward keeps for its backward rule (BatchNorm's batch statistics, an RNN's states). */
  readonly stash: Record<string, unknown>;
  /**
   * Train-mode dropout: the graph input `mask.<module>` holding 0 or 1/(1-p) per element,
   * fed by the training loop (docs/training-graphs.md).
   */
  mask(p: number, shape: Shape): Tensor;
  /** A buffer's new value after this call (BatchNorm's running stats in train mode). */
  update(name: string, value: Tensor): void;
}

/** A gradient with the structure of the value it belongs to; null where no gradient flows. */
export type Grad = Tensor | null | Grad[];

/** What a backward rule is given besides dL/d(output). */
export interface Saved {
  readonly inputs: Value[];
  readonly output: Value;
  /** dL/d(output) with the output's structure (tuples of RNN outputs); `gradOutput` is its tensor form. */
  readonly outputGrads: Grad;
  /** Which inputs (by position) and parameters (by name) need a gradient; skip the others. */
  needsInput(i: number): boolean;
  needsParam(name: string): boolean;
}

/**
 * Gradient rule of a layer for the training compiler: given the forward's saved values and
 * dL/d(output), emit dL/d(inputs) and dL/d(parameters) into the same graph builder.
 */
export type BackwardRule<A> = (
  m: ModuleCtx<A>,
  saved: Saved,
  gradOutput: Tensor,
) => { inputs: Grad[]; params: Record<string, Tensor> };

/**
 * The layer's backward is the chain rule over the ONNX ops its forward emitted, with the
 * per-op rules of src/compiler/op-grads/ (ReLU's is dy * Sign(y), Conv's a Conv, ...).
 */
export const THROUGH_OPS = 'through-ops' as const;

export interface LayerDef<A> {
  /** torch.nn class name. */
  readonly type: string;
  /** Constructor arguments in PyTorch's positional order with PyTorch's defaults. */
  readonly args: ArgSpecs<A>;
  /** forward()'s parameter names; a trailing "?" marks an optional one (RNN's hx). */
  readonly inputs: string[];
  /** Cross-argument checks PyTorch's constructor makes (in_channels % groups, ...). */
  validate?(a: A, fail: (message: string) => never): void;
  /** state_dict entries in PyTorch's order. */
  params(a: A): ParamSpec[];
  forward(m: ModuleCtx<A>, inputs: Value[]): Value;
  /** Its gradient: a rule of its own, or THROUGH_OPS. Null: not differentiable (training refuses it). */
  readonly backward: BackwardRule<A> | typeof THROUGH_OPS | null;
}

// The table holds layers of different argument types; `any` here is the usual erasure.
export type AnyLayer = LayerDef<any>;

export function defineLayer<A>(def: LayerDef<A>): LayerDef<A> {
  return def;
}

/** How a module is being lowered: serving (eval, no hooks) or for training. */
export interface TrainHooks {
  readonly training: boolean;
  mask(module: string, p: number, shape: Shape): Tensor;
  update(key: string, value: Tensor): void;
}

export const EVAL_HOOKS: TrainHooks = {
  training: false,
  mask: () => {
    throw nnsError('INTERNAL', 'dropout masks exist only in train mode');
  },
  update: () => {
    throw nnsError('INTERNAL', 'buffers are updated only in train mode');
  },
};

export function makeModuleCtx<A>(
  g: GraphBuilder,
  name: string,
  type: string,
  args: A,
  param: (name: string) => Tensor,
  hooks: TrainHooks = EVAL_HOOKS,
): ModuleCtx<A> {
  const fail = (kind: ErrorKind, message: string): never => {
    throw nnsError(kind, `module "${name}" (${type}): ${message}`);
  };
  return {
    g, name, type, args, param, fail,
    training: hooks.training,
    stash: {},
    mask: (p, shape) => hooks.mask(name, p, shape),
    update: (key, value) => hooks.update(`${name}.${key}`, value),
    tensor(v, what, ranks) {
      if (!isTensor(v)) return fail('ARCH_SHAPE_MISMATCH', `${what} must be a tensor, got ${v === undefined ? 'nothing' : describe(v)}`);
      if (ranks && !ranks.includes(v.shape.length)) {
        return fail('ARCH_SHAPE_MISMATCH', `expects a ${ranks.join('-D or ')}-D ${what}, got shape ${showShape(v.shape)}`);
      }
      return v;
    },
  };
}

/** kaiming_uniform(a=sqrt(5)) and PyTorch's bias rule both give U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
export function fanInBound(fanIn: number): InitRule {
  return { uniform: fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0 };
}

export function weight(name: string, shape: number[], init: InitRule): ParamSpec {
  return { name, shape, dtype: 'float32', init };
}
