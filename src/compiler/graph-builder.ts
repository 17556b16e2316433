/**
 * Builds one ONNX graph. Every value carries its shape (symbolic dims allowed) so each layer
 * can check what it is given and say which module is wrong before ONNX Runtime ever sees it.
 */
import { nnsError } from '../errors.js';
import { type Dim, type Shape, dimEq, isStatic, normAxis, numel, showShape } from './dims.js';
import { type Attr, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './onnx-proto.js';

export type DType = 'float32' | 'int64' | 'bool';

/** A tensor value in the graph being built. */
export interface Tensor {
  readonly kind: 'tensor';
  readonly name: string;
  readonly shape: Shape;
  readonly dtype: DType;
}

export type AttrValue = number | number[] | string | string[] | Attr;

/** Tags a float attribute (Gemm alpha, LeakyRelu alpha, epsilon, ...). */
export function float(value: number): Attr {
  return { type: 'float', value };
}

export function floats(value: number[]): Attr {
  return { type: 'floats', value };
}

function toAttr(key: string, v: AttrValue): Attr {
  if (typeof v === 'object' && !Array.isArray(v)) return v;
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${key}=${v} must be tagged with float()`);
    return { type: 'int', value: v };
  }
  if (v.length > 0 && typeof v[0] === 'string') return { type: 'strings', value: v as string[] };
  for (const x of v as number[]) if (!Number.isInteger(x)) throw new Error(`attribute ${key} must be tagged with floats()`);
  return { type: 'ints', value: v as number[] };
}

function bytesOf(data: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface OutSpec {
  shape: Shape;
  dtype?: DType;
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly names: Set<string>;
  private readonly graphInputs = new Set<string>();
  /** Every value by name, with its shape: what the backward pass reads about a node's inputs. */
  private readonly values: Map<string, Tensor>;
  private readonly constants: Map<string, Float32Array | BigInt64Array>;
  private counter = 0;
  /** Module (or graph node) whose lowering is being emitted; names nodes and error messages. */
  scope = '';
  /** A backward pass will follow: layers keep what it needs (LayerNormalization's Mean and InvStdDev outputs). */
  differentiable = false;

  /** The graph a subgraph (a Scan body) belongs to: names are unique across both, constants live there. */
  private readonly parent: GraphBuilder | null;

  constructor(readonly opset: number, parent: GraphBuilder | null = null) {
    this.parent = parent;
    this.names = parent ? parent.names : new Set();
    this.values = parent ? parent.values : new Map();
    this.constants = parent ? parent.constants : new Map();
  }

  /** A subgraph (the body of a Scan) that may read this graph's values by name (ONNX outer scope). */
  subgraph(): GraphBuilder {
    const sub = new GraphBuilder(this.opset, this);
    sub.scope = this.scope;
    sub.differentiable = this.differentiable;
    return sub;
  }

  /** This subgraph as a graph attribute value. */
  toGraph(name: string): GraphProto {
    return { name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs };
  }

  private fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  input(name: string, dtype: DType, shape: Shape): Tensor {
    this.names.add(name);
    this.graphInputs.add(name);
    this.inputs.push({ name, dtype, shape });
    return this.register({ kind: 'tensor', name, dtype, shape });
  }

  private register(t: Tensor): Tensor {
    this.values.set(t.name, t);
    return t;
  }

  /** A graph input under a fresh name made from `base` (a Scan body's inputs). */
  freshInput(base: string, dtype: DType, shape: Shape): Tensor {
    return this.input(this.fresh(base), dtype, shape);
  }

  /**
   * A (sub)graph output: the value itself when it is computed here and not yet an output, else
   * a copy under a fresh name made from `base`. In a Scan body, run once per step, each Identity
   * saved is one op less per step.
   */
  freshOutput(t: Tensor, base: string): void {
    if (this.nodes.some((n) => n.outputs.includes(t.name)) && !this.outputs.some((o) => o.name === t.name)) {
      this.outputs.push({ name: t.name, dtype: t.dtype, shape: t.shape });
      return;
    }
    const name = this.fresh(base);
    this.names.delete(name);
    this.output(t, name);
  }

  /** The value of that name (a graph input, initializer or node output). */
  value(name: string): Tensor {
    const t = this.values.get(name);
    if (!t) throw new Error(`no value named "${name}"`);
    return t;
  }

  /** An initializer's data, or undefined for values computed at run time. */
  constant(name: string): Float32Array | BigInt64Array | undefined {
    return this.constants.get(name);
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  node(i: number): NodeProto {
    return this.nodes[i]!;
  }

  isGraphInput(name: string): boolean {
    return this.graphInputs.has(name);
  }

  output(t: Tensor, name: string): void {
    let src = t;
    if (src.name !== name) {
      if (this.names.has(name)) throw nnsError('ARCH_INVALID', `output name "${name}" is already used by another value`);
      this.nodes.push({ opType: 'Identity', inputs: [src.name], outputs: [name], name: `${name}/Identity`, attrs: {} });
      this.names.add(name);
      src = this.register({ ...t, name });
    } else if (this.graphInputs.has(name)) {
      throw nnsError('ARCH_INVALID', `graph input "${name}" cannot also be an output under the same name`);
    }
    this.outputs.push({ name, dtype: t.dtype, shape: t.shape });
  }

  /** A named weight (a state_dict entry keeps its key as the initializer name). */
  initializer(name: string, shape: number[], data: Float32Array | BigInt64Array): Tensor {
    if (this.parent) return this.parent.initializer(name, shape, data);
    const dtype: DType = data instanceof Float32Array ? 'float32' : 'int64';
    const unique = this.fresh(name);
    this.initializers.push({ name: unique, dtype, dims: shape, raw: bytesOf(data) });
    this.constants.set(unique, data);
    return this.register({ kind: 'tensor', name: unique, dtype, shape });
  }

  constFloat(values: ArrayLike<number>, shape: number[] = [values.length]): Tensor {
    return this.initializer(this.fresh(`${this.scope || 'const'}/const`), shape, Float32Array.from(values));
  }

  constInt64(values: ArrayLike<number>, shape: number[] = [values.length]): Tensor {
    return this.initializer(this.fresh(`${this.scope || 'const'}/const`), shape, BigInt64Array.from(Array.from(values, (v) => BigInt(v))));
  }

  /** Emits one node with several outputs; `null` inputs are ONNX's omitted optional inputs. */
  opN(opType: string, inputs: (Tensor | null)[], attrs: Record<string, AttrValue>, outs: OutSpec[]): Tensor[] {
    const base = this.fresh(`${this.scope ? this.scope + '/' : ''}${opType}`);
    const outputs = outs.map((o, i) => this.register({
      kind: 'tensor' as const,
      name: outs.length === 1 ? base : this.fresh(`${base}:${i}`),
      shape: o.shape,
      dtype: o.dtype ?? 'float32',
    }));
    const a: Record<string, Attr> = {};
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) a[k] = toAttr(k, v);
    // Trailing omitted inputs are dropped, not written as "": ORT's fusions (Conv+BatchNormalization)
    // look for an initializer behind every input that is present.
    const names = inputs.map((t) => t?.name ?? '');
    while (names.length > 0 && names[names.length - 1] === '') names.pop();
    this.nodes.push({ opType, inputs: names, outputs: outputs.map((o) => o.name), name: base, attrs: a });
    return outputs;
  }

  op(opType: string, inputs: (Tensor | null)[], attrs: Record<string, AttrValue>, out: OutSpec): Tensor {
    return this.opN(opType, inputs, attrs, [out])[0]!;
  }

  /** Same-shape elementwise op. */
  unary(opType: string, x: Tensor, attrs: Record<string, AttrValue> = {}): Tensor {
    return this.op(opType, [x], attrs, { shape: x.shape, dtype: x.dtype });
  }

  transpose(x: Tensor, perm: number[]): Tensor {
    return this.op('Transpose', [x], { perm }, { shape: perm.map((p) => x.shape[p]!), dtype: x.dtype });
  }

  unsqueeze(x: Tensor, axes: number[]): Tensor {
    const shape = [...x.shape];
    for (const a of [...axes].sort((p, q) => p - q)) shape.splice(a, 0, 1);
    return this.op('Unsqueeze', [x, this.constInt64(axes)], {}, { shape, dtype: x.dtype });
  }

  squeeze(x: Tensor, axes: number[]): Tensor {
    const shape = x.shape.filter((_, i) => !axes.includes(i));
    return this.op('Squeeze', [x, this.constInt64(axes)], {}, { shape, dtype: x.dtype });
  }

  /** x[start:end:step] along one axis (static bounds, PyTorch clamping). */
  slice(x: Tensor, axis: number, start: number, end: number, step = 1): Tensor {
    const shape = [...x.shape];
    const n = shape[axis]!;
    if (isStatic(n)) {
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
      const s = clamp(start);
      const e = clamp(end);
      shape[axis] = Math.max(0, Math.ceil((e - s) / step));
    } else if (!(start === 0 && end >= Number.MAX_SAFE_INTEGER && step === 1)) {
      shape[axis] = `${n}_slice`;
    }
    const big = (v: number) => (v >= Number.MAX_SAFE_INTEGER ? 2 ** 62 : v);
    return this.op('Slice', [x, this.constInt64([big(start)]), this.constInt64([big(end)]), this.constInt64([axis]), this.constInt64([step])], {}, { shape, dtype: x.dtype });
  }

  concat(xs: Tensor[], axis: number): Tensor {
    const shape = [...xs[0]!.shape];
    let total: Dim = 0;
    for (const x of xs) total = isStatic(total) && isStatic(x.shape[axis]!) ? total + (x.shape[axis] as number) : `${total}+${x.shape[axis]}`;
    shape[axis] = total;
    if (xs.length === 1) return xs[0]!;
    return this.op('Concat', xs, { axis }, { shape, dtype: xs[0]!.dtype });
  }

  /**
   * Reshape to a shape given with symbolic dims: a symbolic dim that sits at the same index of
   * the input is copied (ONNX 0), one other symbolic dim becomes -1.
   */
  reshape(x: Tensor, shape: Shape): Tensor {
    if (shape.length === x.shape.length && shape.every((d, i) => dimEq(d, x.shape[i]!))) return x;
    let inferred = -1;
    const target = shape.map((d, i) => {
      if (isStatic(d)) return d;
      if (i < x.shape.length && dimEq(d, x.shape[i]!)) return 0;
      if (inferred >= 0) {
        throw nnsError('ARCH_INVALID', `${this.scope}: cannot reshape ${showShape(x.shape)} to ${showShape(shape)} (two dynamic dimensions)`);
      }
      inferred = i;
      return -1;
    });
    if (inferred < 0 && target.every((d) => d !== 0) && !isStatic(numel(x.shape))) {
      throw nnsError('ARCH_SHAPE_MISMATCH', `${this.scope}: cannot reshape ${showShape(x.shape)} to ${showShape(shape)}`);
    }
    return this.op('Reshape', [x, this.constInt64(target)], {}, { shape, dtype: x.dtype });
  }

  /** Normalizes a PyTorch `dim` for x, or throws naming the scope. */
  axis(x: Tensor, dim: number, what = 'dim'): number {
    const a = normAxis(dim, x.shape.length);
    if (a === undefined) {
      throw nnsError('ARCH_SHAPE_MISMATCH', `${this.scope}: ${what}=${dim} is out of range for an input of shape ${showShape(x.shape)}`);
    }
    return a;
  }

  toModel(opts: { opset: number; name: string; producerVersion: string }): ModelProto {
    return {
      irVersion: 8,
      opset: opts.opset,
      producerName: 'nnserve',
      producerVersion: opts.producerVersion,
      graph: { name: opts.name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs },
    };
  }
}
