/**
 * Reads an architecture JSON (docs/architecture.md, src/compiler/architecture.schema.json) into
 * one normalized form: the declared inputs, every module by its qualified name (= state_dict
 * prefix), and a torch.fx-style graph. The Sequential form becomes the graph PyTorch would run.
 */
import { nnsError } from '../errors.js';
import type { Dim } from './dims.js';

export interface InputSpec {
  name: string;
  dtype: 'float32' | 'int64';
  shape: Dim[];
}

export interface ModuleSpec {
  /** Qualified name: "layer1.0.conv1". */
  name: string;
  type: string;
  positional: unknown[];
  keywords: Record<string, unknown>;
  /** Sequential only: its children's qualified names, in order. */
  children?: string[];
}

export type NodeOp = 'placeholder' | 'call_module' | 'call_function' | 'call_method' | 'get_attr' | 'output';

export interface GraphNode {
  op: NodeOp;
  name: string;
  target: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  /** output only: graph output names. */
  names?: string[];
}

export interface Architecture {
  name: string;
  inputs: InputSpec[];
  modules: Map<string, ModuleSpec>;
  graph: GraphNode[];
}

const OPS: NodeOp[] = ['placeholder', 'call_module', 'call_function', 'call_method', 'get_attr', 'output'];
const NAME = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;

function invalid(path: string, message: string): never {
  throw nnsError('ARCH_INVALID', `architecture ${path}: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseInputs(v: unknown): InputSpec[] {
  if (!Array.isArray(v) || v.length === 0) invalid('"inputs"', 'must be a non-empty list of {name, dtype, shape}');
  return v.map((inp, i) => {
    const p = `"inputs"[${i}]`;
    if (!isObject(inp)) invalid(p, 'must be an object {name, dtype, shape}');
    if (typeof inp.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(inp.name)) invalid(`${p}.name`, 'must be an identifier');
    const dtype = inp.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'int64') invalid(`${p}.dtype`, `must be "float32" or "int64", got ${JSON.stringify(dtype)}`);
    if (!Array.isArray(inp.shape)) invalid(`${p}.shape`, 'must be a list of dims (ints, or names like "batch" for dynamic ones)');
    const shape = inp.shape.map((d: unknown) => {
      if (typeof d === 'number' && Number.isInteger(d) && d > 0) return d;
      if (typeof d === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(d)) return d;
      return invalid(`${p}.shape`, `dims must be positive ints or names, got ${JSON.stringify(d)}`);
    });
    return { name: inp.name, dtype, shape };
  });
}

/** Adds a module (and a Sequential's children, named "<prefix>.<i>") to `modules`. */
function addModule(modules: Map<string, ModuleSpec>, name: string, v: unknown, path: string): void {
  if (!NAME.test(name)) invalid(path, `module name "${name}" is not a state_dict prefix (dotted identifiers)`);
  if (modules.has(name)) invalid(path, `module "${name}" is declared twice`);
  if (!isObject(v) || typeof v.type !== 'string') invalid(path, 'a module must be an object with a "type" (a torch.nn class name)');
  const { type, args, modules: children, ...keywords } = v;
  if (args !== undefined && !Array.isArray(args)) invalid(`${path}.args`, 'positional arguments must be a list');
  if (type === 'Sequential') {
    const spec: ModuleSpec = { name, type, positional: [], keywords: {}, children: [] };
    modules.set(name, spec);
    for (const [child, cv] of sequentialEntries(children, `${path}.modules`)) {
      spec.children!.push(`${name}.${child}`);
      addModule(modules, `${name}.${child}`, cv, `${path}.modules.${child}`);
    }
    return;
  }
  if (children !== undefined) invalid(path, `"modules" is only for Sequential, not ${type}`);
  modules.set(name, { name, type, positional: (args as unknown[] | undefined) ?? [], keywords });
}

/** A Sequential's children: a list (named "0", "1", ...) or an object (an OrderedDict). */
function sequentialEntries(v: unknown, path: string): [string, unknown][] {
  if (Array.isArray(v)) return v.map((m, i) => [String(i), m]);
  if (isObject(v)) return Object.entries(v);
  return invalid(path, 'must be a list of modules or an object of named modules');
}

function parseNode(v: unknown, i: number): GraphNode {
  const p = `"graph"[${i}]`;
  if (!isObject(v)) invalid(p, 'must be an object {op, name, target, args, kwargs}');
  const op = v.op as NodeOp;
  if (!OPS.includes(op)) invalid(`${p}.op`, `must be one of ${OPS.join(', ')}, got ${JSON.stringify(v.op)}`);
  const name = v.name ?? (op === 'output' ? 'output' : undefined);
  if (typeof name !== 'string' || name === '') invalid(`${p}.name`, 'must be a non-empty string');
  const target = v.target ?? (op === 'placeholder' || op === 'output' ? name : undefined);
  if (typeof target !== 'string') invalid(`${p}.target`, `a ${op} node needs a target`);
  const args = v.args ?? [];
  if (!Array.isArray(args)) invalid(`${p}.args`, 'must be a list');
  const kwargs = v.kwargs ?? {};
  if (!isObject(kwargs)) invalid(`${p}.kwargs`, 'must be an object');
  const node: GraphNode = { op, name, target, args, kwargs };
  if (v.names !== undefined) {
    if (op !== 'output' || !Array.isArray(v.names) || !v.names.every((n) => typeof n === 'string')) invalid(`${p}.names`, 'only an output node has names, a list of strings');
    node.names = v.names as string[];
  }
  return node;
}

export function parseArchitecture(json: unknown): Architecture {
  if (!isObject(json)) invalid('', 'must be a JSON object');
  const known = new Set(['$schema', 'format', 'name', 'inputs', 'sequential', 'modules', 'graph']);
  for (const k of Object.keys(json)) if (!known.has(k)) invalid(`"${k}"`, `unknown key; expected ${[...known].join(', ')}`);
  if (json.format !== undefined && json.format !== 'nnserve.architecture/1') invalid('"format"', `unsupported format ${JSON.stringify(json.format)}; this server reads "nnserve.architecture/1"`);
  const name = typeof json.name === 'string' ? json.name : 'Model';
  const inputs = parseInputs(json.inputs);
  const modules = new Map<string, ModuleSpec>();

  if (json.sequential !== undefined) {
    if (json.graph !== undefined || json.modules !== undefined) invalid('', 'give either "sequential" or "modules" + "graph", not both');
    if (inputs.length !== 1) invalid('"inputs"', 'a Sequential takes exactly one input');
    const graph: GraphNode[] = [{ op: 'placeholder', name: inputs[0]!.name, target: inputs[0]!.name, args: [], kwargs: {} }];
    let prev = inputs[0]!.name;
    for (const [child, v] of sequentialEntries(json.sequential, '"sequential"')) {
      addModule(modules, child, v, `"sequential".${child}`);
      const node = `${child}`.replace(/\./g, '_');
      graph.push({ op: 'call_module', name: node, target: child, args: [prev], kwargs: {} });
      prev = node;
    }
    graph.push({ op: 'output', name: 'output', target: 'output', args: [prev], kwargs: {} });
    return { name, inputs, modules, graph };
  }

  if (!Array.isArray(json.graph)) invalid('', 'needs "sequential" (a list of modules) or "graph" (a list of torch.fx nodes) with "modules"');
  if (json.modules !== undefined && !isObject(json.modules)) invalid('"modules"', 'must be an object of module name to module');
  for (const [n, v] of Object.entries((json.modules as Record<string, unknown> | undefined) ?? {})) addModule(modules, n, v, `"modules"."${n}"`);
  const graph = json.graph.map(parseNode);
  const seen = new Set<string>();
  for (const n of graph) {
    if (seen.has(n.name)) invalid('"graph"', `node name "${n.name}" is used twice`);
    seen.add(n.name);
  }
  const outputs = graph.filter((n) => n.op === 'output');
  if (outputs.length !== 1 || graph[graph.length - 1]!.op !== 'output') invalid('"graph"', 'must end with exactly one output node');
  return { name, inputs, modules, graph };
}
