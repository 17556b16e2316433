/**
 * Lowers a normalized architecture to an ONNX graph: instantiates every module from the layer
 * table, then evaluates the torch.fx graph node by node the way PyTorch's forward would run,
 * each module or function emitting its ONNX ops.
 */
import { nnsError } from '../errors.js';
import type { IoSpec } from '../runtime/ort.js';
import type { ExpectedEntry, StateDict } from '../weights/index.js';
import type { Architecture, GraphNode, ModuleSpec } from './architecture.js';
import { type Param, makeFnCtx } from './function.js';
import { lookupFunction } from './functions/index.js';
import { GraphBuilder, type Tensor } from './graph-builder.js';
import type { Shape } from './dims.js';
import { type AnyLayer, type BackwardRule, EVAL_HOOKS, type ModuleCtx, type ParamSpec, THROUGH_OPS, type TrainHooks, makeModuleCtx } from './layer.js';
import { LAYERS, layerTypes } from './layers/index.js';
import type { ModelProto } from './onnx-proto.js';
import { bindArgs } from './signature.js';
import { ELLIPSIS, type Value, describe, isTensor } from './values.js';

export interface ModuleInstance {
  spec: ModuleSpec;
  /** Null for Sequential, which only runs its children. */
  layer: AnyLayer | null;
  args: unknown;
  params: ParamSpec[];
}

/** Builds every module from its constructor arguments, as PyTorch's __init__ would. */
export function instantiate(arch: Architecture): Map<string, ModuleInstance> {
  const out = new Map<string, ModuleInstance>();
  for (const spec of arch.modules.values()) {
    if (spec.type === 'Sequential') {
      out.set(spec.name, { spec, layer: null, args: {}, params: [] });
      continue;
    }
    const where = `module "${spec.name}" (${spec.type})`;
    const layer = LAYERS.get(spec.type);
    if (!layer) {
      throw nnsError('ARCH_UNKNOWN_LAYER', `module "${spec.name}": unknown layer type "${spec.type}"; supported torch.nn layers are ${layerTypes().join(', ')}`);
    }
    const args = bindArgs(layer.args, spec.positional, spec.keywords, where);
    layer.validate?.(args, (message: string): never => {
      throw nnsError('ARCH_INVALID', `${where}: ${message}`);
    });
    out.set(spec.name, { spec, layer, args, params: layer.params(args) });
  }
  return out;
}

/** The state_dict the architecture expects, in PyTorch's order. */
export function expectedStateDict(modules: Map<string, ModuleInstance>): ExpectedEntry[] {
  return [...modules.values()].flatMap((m) => m.params.map((p) => ({
    key: `${m.spec.name}.${p.name}`, shape: p.shape, dtype: p.dtype, optional: p.name === 'num_batches_tracked',
  })));
}

/** Resolves node references (strings) and JSON encodings of slices and Ellipsis. */
function resolve(raw: unknown, values: Map<string, Value>, where: string): Value {
  if (raw === null || typeof raw === 'number' || typeof raw === 'boolean') return raw;
  if (typeof raw === 'string') {
    if (raw === '...') return ELLIPSIS;
    const v = values.get(raw);
    if (v === undefined) throw nnsError('ARCH_INVALID', `${where}: argument "${raw}" is not the name of an earlier node`);
    return v;
  }
  if (Array.isArray(raw)) return raw.map((r) => resolve(r, values, where));
  if (typeof raw === 'object' && Array.isArray((raw as { slice?: unknown }).slice)) {
    const [start = null, stop = null, step = null] = (raw as { slice: unknown[] }).slice;
    const ok = (x: unknown) => x === null || (typeof x === 'number' && Number.isInteger(x));
    if (!ok(start) || !ok(stop) || !ok(step)) throw nnsError('ARCH_INVALID', `${where}: slice bounds must be ints or null`);
    return { kind: 'slice', start: start as number | null, stop: stop as number | null, step: step as number | null };
  }
  throw nnsError('ARCH_INVALID', `${where}: cannot read argument ${JSON.stringify(raw)} (node names, numbers, lists, null, {"slice": [start, stop, step]} or "...")`);
}

/** Python call binding of a graph node's args/kwargs to a function's parameters. */
function bindCall(params: Param[], node: GraphNode, values: Map<string, Value>, where: string): Record<string, Value> {
  const out: Record<string, Value> = {};
  const get = (p: Param, raw: unknown) => (p.literal ? (raw as Value) : resolve(raw, values, where));
  let i = 0;
  for (const p of params) {
    if (p.varargs) {
      out[p.name] = node.args.slice(i).map((r) => resolve(r, values, where));
      i = node.args.length;
    } else if (i < node.args.length) {
      out[p.name] = get(p, node.args[i++]);
    }
  }
  if (i < node.args.length) throw nnsError('ARCH_INVALID', `${where} takes ${params.length} arguments but ${node.args.length} were given`);
  for (const [k, raw] of Object.entries(node.kwargs)) {
    const p = params.find((q) => q.name === k && !q.varargs);
    if (!p) throw nnsError('ARCH_INVALID', `${where} got an unexpected keyword argument "${k}"; its parameters are ${params.map((q) => q.name).join(', ')}`);
    if (k in out) throw nnsError('ARCH_INVALID', `${where} got multiple values for argument "${k}"`);
    out[k] = get(p, raw);
  }
  for (const p of params) {
    if (p.name in out) continue;
    if (p.varargs) out[p.name] = [];
    else if (p.default !== undefined) out[p.name] = p.default;
    else throw nnsError('ARCH_INVALID', `${where} is missing the required argument "${p.name}"`);
  }
  return out;
}

function flattenOutputs(v: Value, where: string): Tensor[] {
  if (isTensor(v)) return [v];
  if (Array.isArray(v)) return v.flatMap((x) => flattenOutputs(x, where));
  throw nnsError('ARCH_INVALID', `${where}: a model output must be a tensor or a tuple of tensors, got ${describe(v)}`);
}

export interface Lowered {
  model: ModelProto;
  inputs: IoSpec[];
  outputs: IoSpec[];
}

/** A step of the forward pass, recorded for the backward pass (src/compiler/backward.ts). */
export type TapeEntry =
  /** Nodes [start, end) are differentiated op by op (THROUGH_OPS). */
  | { kind: 'ops'; start: number; end: number }
  /** A layer with a backward rule of its own; its nodes [start, end) are not differentiated. */
  | {
    kind: 'module'; start: number; end: number; where: string; rule: BackwardRule<unknown>; ctx: ModuleCtx<unknown>;
    inputs: Value[]; output: Value; params: Map<string, Tensor>;
  }
  /** Neither: a gradient must not flow through these nodes. */
  | { kind: 'none'; start: number; end: number; where: string };

export interface TrainLowering {
  /** model.train() vs model.eval(). */
  train: boolean;
  tape: TapeEntry[];
  /** Dropout mask inputs, in the order created. */
  masks: { name: string; module: string; p: number; shape: Shape }[];
  /** state_dict key -> the buffer's new value (BatchNorm running stats). */
  updates: Map<string, Tensor>;
}

export interface LowerOptions {
  opset: number;
  producerVersion: string;
  /** Parameters and buffers: initializers from a state_dict (serving), or graph inputs named by their keys. */
  weights: StateDict | 'inputs';
  /** Present when a backward pass follows: the graph is lowered in train or eval mode and recorded. */
  training?: TrainLowering;
}

export interface LoweredGraph {
  g: GraphBuilder;
  inputs: IoSpec[];
  outputs: IoSpec[];
  /** The output tensors, by output name (before the Identity that names them). */
  outputTensors: Map<string, Tensor>;
  /** state_dict key -> the initializer or graph input it became, for the entries the graph uses. */
  params: Map<string, Tensor>;
}

export function lower(arch: Architecture, modules: Map<string, ModuleInstance>, weights: StateDict, opset: number, producerVersion: string): Lowered {
  const l = lowerGraph(arch, modules, { opset, producerVersion, weights });
  return { model: l.g.toModel({ opset, name: arch.name, producerVersion }), inputs: l.inputs, outputs: l.outputs };
}

export function lowerGraph(arch: Architecture, modules: Map<string, ModuleInstance>, opts: LowerOptions): LoweredGraph {
  const g = new GraphBuilder(opts.opset);
  const training = opts.training;
  g.differentiable = training !== undefined;
  const values = new Map<string, Value>();
  const params = new Map<string, Tensor>();
  const specs = new Map<string, ParamSpec>();
  for (const m of modules.values()) for (const p of m.params) specs.set(`${m.spec.name}.${p.name}`, p);
  const getParam = (module: string, name: string): Tensor => {
    const key = `${module}.${name}`;
    const updated = training?.updates.get(key);
    if (updated) return updated;
    let t = params.get(key);
    if (!t) {
      if (opts.weights === 'inputs') {
        const spec = specs.get(key);
        if (!spec) throw nnsError('INTERNAL', `module "${module}" asks for "${key}", which it does not declare`);
        t = g.input(key, spec.dtype, spec.shape);
      } else {
        const w = opts.weights.get(key);
        if (!w) throw nnsError('STATE_DICT_MISMATCH', `module "${module}" needs "${key}", which the state_dict does not have`);
        t = g.initializer(key, w.shape, w.data);
      }
      params.set(key, t);
    }
    return t;
  };
  const hooks: TrainHooks = training
    ? {
      training: training.train,
      mask(module, p, shape) {
        const name = `mask.${module}`;
        if (training.masks.some((m) => m.name === name)) throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `dropout "${module}" is called twice in one forward; give each call its own module`);
        training.masks.push({ name, module, p, shape });
        return g.input(name, 'float32', shape);
      },
      update(key, value) {
        training.updates.set(key, value);
      },
    }
    : EVAL_HOOKS;
  const record = (entry: TapeEntry) => {
    if (training && entry.end > entry.start) training.tape.push(entry);
  };

  const callModule = (name: string, inputs: Value[]): Value => {
    const inst = modules.get(name)!;
    if (!inst.layer) {
      let v: Value = inputs[0] ?? null;
      if (inputs.length !== 1) throw nnsError('ARCH_INVALID', `module "${name}" (Sequential) takes one input, got ${inputs.length}`);
      for (const child of inst.spec.children!) {
        if (!isTensor(v)) {
          throw nnsError('ARCH_SHAPE_MISMATCH', `module "${child}" (${modules.get(child)!.spec.type}): its input is ${describe(v)} from the previous module of the Sequential "${name || 'sequential'}"; PyTorch would fail the same way (take the tensor out with a graph and getitem)`);
        }
        v = callModule(child, [v]);
      }
      return v;
    }
    const saved = g.scope;
    g.scope = name;
    const start = g.nodeCount;
    const used = new Map<string, Tensor>();
    const param = (p: string) => {
      const t = getParam(name, p);
      used.set(p, t);
      return t;
    };
    const where = `module "${name}" (${inst.spec.type})`;
    try {
      const ctx = makeModuleCtx(g, name, inst.spec.type, inst.args, param, hooks);
      const output = inst.layer.forward(ctx, inputs);
      const end = g.nodeCount;
      const rule = inst.layer.backward;
      if (rule === THROUGH_OPS) record({ kind: 'ops', start, end });
      else if (rule === null) record({ kind: 'none', start, end, where });
      else record({ kind: 'module', start, end, where, rule: rule as BackwardRule<unknown>, ctx: ctx as ModuleCtx<unknown>, inputs, output, params: used });
      return output;
    } finally {
      g.scope = saved;
    }
  };

  const inputs: IoSpec[] = [];
  const outputs: IoSpec[] = [];
  const outputTensors = new Map<string, Tensor>();
  for (const node of arch.graph) {
    const where = `node "${node.name}" (${node.op} ${node.target})`;
    switch (node.op) {
      case 'placeholder': {
        const spec = arch.inputs.find((i) => i.name === node.target);
        if (!spec) throw nnsError('ARCH_INVALID', `${where}: no entry in "inputs" declares "${node.target}" (its dtype and shape)`);
        values.set(node.name, g.input(spec.name, spec.dtype, spec.shape));
        inputs.push({ name: spec.name, dtype: spec.dtype, shape: spec.shape });
        break;
      }
      case 'call_module': {
        const inst = modules.get(node.target);
        if (!inst) throw nnsError('ARCH_INVALID', `${where}: module "${node.target}" is not declared in "modules"`);
        const names = inst.layer ? inst.layer.inputs : ['input'];
        const bound = bindCall(names.map((n) => (n.endsWith('?') ? { name: n.slice(0, -1), default: null } : { name: n })), node, values, `module "${node.target}" (${inst.spec.type})`);
        values.set(node.name, callModule(node.target, Object.values(bound)));
        break;
      }
      case 'call_function':
      case 'call_method': {
        const fn = lookupFunction(node.op, node.target);
        if (!fn) throw nnsError('ARCH_UNKNOWN_LAYER', `${where}: unsupported ${node.op === 'call_method' ? 'Tensor method' : 'function'} "${node.target}"`);
        const f = makeFnCtx(g, `node "${node.name}" (${node.target})`, node.name, hooks);
        const saved = g.scope;
        g.scope = node.name;
        const start = g.nodeCount;
        try {
          values.set(node.name, fn.forward(f, bindCall(fn.params, node, values, f.where)));
          if (fn.backward === null) record({ kind: 'none', start, end: g.nodeCount, where: f.where });
          else record({ kind: 'ops', start, end: g.nodeCount });
        } finally {
          g.scope = saved;
        }
        break;
      }
      case 'get_attr':
        throw nnsError('ARCH_INVALID', `${where}: get_attr (a parameter used outside a torch.nn module) is not supported`);
      case 'output': {
        const v = resolve(node.args[0] ?? null, values, where);
        const tensors = flattenOutputs(v, where);
        const names = node.names ?? (tensors.length === 1 ? ['output'] : tensors.map((_, i) => `output_${i}`));
        if (names.length !== tensors.length) throw nnsError('ARCH_INVALID', `${where}: ${names.length} names for ${tensors.length} outputs`);
        tensors.forEach((t, i) => {
          g.output(t, names[i]!);
          outputs.push({ name: names[i]!, dtype: t.dtype, shape: t.shape });
          outputTensors.set(names[i]!, t);
        });
        break;
      }
    }
  }
  for (const spec of arch.inputs) {
    if (!inputs.some((i) => i.name === spec.name)) throw nnsError('ARCH_INVALID', `input "${spec.name}" is declared but no placeholder node reads it`);
  }
  return { g, inputs, outputs, outputTensors, params };
}
