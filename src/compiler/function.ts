/**
 * The shape of one entry of the function table: the torch functions, Tensor methods and
 * operator.* calls a torch.fx graph makes (call_function / call_method), with Python's own
 * parameter names and defaults, a forward lowering and the slot for a backward rule.
 */
import { type ErrorKind, nnsError } from '../errors.js';
import type { Shape } from './dims.js';
import type { GraphBuilder, Tensor } from './graph-builder.js';
import { EVAL_HOOKS, type THROUGH_OPS, type TrainHooks } from './layer.js';
import { type Value, describe, isSymInt, isTensor } from './values.js';

export interface Param {
  readonly name: string;
  /** Absent: required. */
  readonly default?: Value;
  /** `*shape`: collects the remaining positional arguments. */
  readonly varargs?: boolean;
  /** A string here is a Python str, not a reference to another node (approximate='tanh'). */
  readonly literal?: boolean;
}

export interface FnCtx {
  readonly g: GraphBuilder;
  /** The graph node's name and target, for messages: `node "view" (view)`. */
  readonly where: string;
  fail(kind: ErrorKind, message: string): never;
  tensor(v: Value | undefined, what: string): Tensor;
  int(v: Value | undefined, what: string): number;
  /** Train mode (the model's .training), for F.dropout(x, training=True). */
  readonly training: boolean;
  /** Train-mode dropout mask input `mask.<node>`, as a module's (docs/training-graphs.md). */
  mask(p: number, shape: Shape): Tensor;
}

export interface FunctionDef {
  /** fx targets: qualified function names ("torch.flatten", "operator.add") and "Tensor.<method>". */
  readonly targets: string[];
  readonly params: Param[];
  forward(f: FnCtx, args: Record<string, Value>): Value;
  /**
   * Its gradient: THROUGH_OPS, the chain rule over the ONNX ops it emitted (op-grads/); every
   * function's ops have rules there. Null: not differentiable (training refuses a gradient through it).
   */
  readonly backward: typeof THROUGH_OPS | null;
}

/**
 * Parses a Python parameter list: "input, start_dim=0, end_dim=-1", "self, *shape",
 * "input, approximate='none'". A str default marks the parameter literal.
 */
export function params(spec: string, literal: string[] = []): Param[] {
  if (spec.trim() === '') return [];
  return spec.split(',').map((p) => {
    const [rawName, rawDefault] = p.split('=').map((s) => s.trim()) as [string, string | undefined];
    const varargs = rawName.startsWith('*');
    const name = varargs ? rawName.slice(1) : rawName;
    if (rawDefault === undefined) return { name, varargs, literal: literal.includes(name) };
    let dflt: Value;
    if (rawDefault === 'None') dflt = null;
    else if (rawDefault === 'True' || rawDefault === 'False') dflt = rawDefault === 'True';
    else if (/^'.*'$/.test(rawDefault)) dflt = rawDefault.slice(1, -1);
    else dflt = Number(rawDefault);
    return { name, default: dflt, literal: typeof dflt === 'string' || literal.includes(name) };
  });
}

export function defineFunction(def: FunctionDef): FunctionDef {
  return def;
}

export function makeFnCtx(g: GraphBuilder, where: string, node = '', hooks: TrainHooks = EVAL_HOOKS): FnCtx {
  const fail = (kind: ErrorKind, message: string): never => {
    throw nnsError(kind, `${where}: ${message}`);
  };
  return {
    g, where, fail,
    training: hooks.training,
    mask: (p, shape) => hooks.mask(node, p, shape),
    tensor(v, what) {
      if (!isTensor(v)) return fail('ARCH_SHAPE_MISMATCH', `${what} must be a tensor, got ${v === undefined ? 'nothing' : describe(v)}`);
      return v;
    },
    int(v, what) {
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      if (isSymInt(v)) return fail('ARCH_INVALID', `${what} must be a constant int here, got the run-time size ${v.dim}`);
      return fail('ARCH_INVALID', `${what} must be an int, got ${v === undefined ? 'nothing' : describe(v)}`);
    },
  };
}

