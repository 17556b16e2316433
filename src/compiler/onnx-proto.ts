/**
 * A protobuf writer for the part of onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto)
 * the compiler emits: ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto.
 *
 * Messages are built as lists of byte chunks so a 45 MB initializer is copied once, into the
 * final buffer, and never re-encoded.
 */

/** TensorProto.DataType values used by nnserve. */
export const ONNX_DTYPE = { float32: 1, int64: 7, int32: 6, bool: 9 } as const;
export type OnnxDType = keyof typeof ONNX_DTYPE;

/** An attribute value; floats are tagged because JS cannot tell 1 from 1.0 and ONNX can. */
export type Attr =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: TensorProto }
  /** A subgraph: the body of a Scan. */
  | { type: 'graph'; value: GraphProto };

export interface TensorProto {
  name: string;
  dtype: OnnxDType;
  dims: number[];
  /** Little-endian element bytes (what `raw_data` holds). */
  raw: Uint8Array;
}

export interface NodeProto {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs: Record<string, Attr>;
}

export interface ValueInfoProto {
  name: string;
  dtype: OnnxDType;
  /** A string is a symbolic dimension (dim_param), e.g. "batch". */
  shape: (number | string)[];
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
}

export interface ModelProto {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  graph: GraphProto;
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

class Writer {
  readonly parts: Uint8Array[] = [];
  length = 0;
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    const b = Uint8Array.from(this.scratch);
    this.parts.push(b);
    this.length += b.length;
    this.scratch = [];
  }

  private varint(v: number | bigint): void {
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) {
      this.scratch.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.scratch.push(Number(n));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(b.length);
    this.flushScratch();
    this.parts.push(b);
    this.length += b.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, child: Writer): this {
    child.flushScratch();
    this.tag(field, WIRE_LEN);
    this.varint(child.length);
    this.flushScratch();
    this.parts.push(...child.parts);
    this.length += child.length;
    return this;
  }

  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7, strings: 8 } as const;

function tensorProto(t: TensorProto): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, ONNX_DTYPE[t.dtype]);
  w.string(8, t.name);
  w.bytes(9, t.raw);
  return w;
}

function attributeProto(name: string, a: Attr): Writer {
  const w = new Writer().string(1, name);
  switch (a.type) {
    case 'float': w.float(2, a.value); break;
    case 'int': w.int(3, a.value); break;
    case 'string': w.string(4, a.value); break;
    case 'tensor': w.message(5, tensorProto(a.value)); break;
    case 'graph': w.message(6, graphProto(a.value)); break;
    case 'floats': for (const v of a.value) w.float(7, v); break;
    case 'ints': for (const v of a.value) w.int(8, v); break;
    case 'strings': for (const v of a.value) w.string(9, v); break;
  }
  w.int(20, ATTR_TYPE[a.type]);
  return w;
}

function nodeProto(n: NodeProto): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, a] of Object.entries(n.attrs)) w.message(5, attributeProto(k, a));
  return w;
}

function valueInfoProto(v: ValueInfoProto): Writer {
  const shape = new Writer();
  for (const d of v.shape) {
    const dim = new Writer();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new Writer().int(1, ONNX_DTYPE[v.dtype]).message(2, shape);
  const type = new Writer().message(1, tensorType);
  return new Writer().string(1, v.name).message(2, type);
}

/** Serializes a model to the bytes of an .onnx file. */
function graphProto(graph: GraphProto): Writer {
  const g = new Writer();
  for (const n of graph.nodes) g.message(1, nodeProto(n));
  g.string(2, graph.name);
  for (const t of graph.initializers) g.message(5, tensorProto(t));
  for (const v of graph.inputs) g.message(11, valueInfoProto(v));
  for (const v of graph.outputs) g.message(12, valueInfoProto(v));
  return g;
}

export function encodeModel(m: ModelProto): Uint8Array {
  const g = graphProto(m.graph);

  const model = new Writer();
  model.int(1, m.irVersion);
  model.string(2, m.producerName);
  model.string(3, m.producerVersion);
  model.message(7, g);
  model.message(8, new Writer().string(1, '').int(2, m.opset));
  return model.finish();
}
