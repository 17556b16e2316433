/**
 * Just enough of the ONNX protobuf (onnx/onnx.proto3) to list a graph's nodes and to expose an
 * intermediate tensor as an extra graph output, for feature maps.
 *
 * Wire format (protobuf encoding spec): each field is a varint key (field << 3 | wire type)
 * then a varint (type 0), 8 bytes (1), a length-prefixed body (2) or 4 bytes (5).
 * ModelProto.graph = 7; GraphProto.node = 1, .output = 12; NodeProto.input = 1, .output = 2,
 * .name = 3, .op_type = 4; ValueInfoProto.name = 1, .type = 2; TypeProto.tensor_type = 1;
 * TypeProto.Tensor.elem_type = 1 (1 = FLOAT).
 *
 * Adding an output needs no re-encoding: protobuf merges a repeated occurrence of an embedded
 * message field into the first, and appends to its repeated fields. So appending
 * `graph { output { name, type } }` to a ModelProto's bytes adds one output to its graph.
 */
import { nnsError } from '../errors.js';

export interface OnnxNode {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
}

interface Field { no: number; wire: number; start: number; end: number }

function varint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (pos >= b.length) throw new Error('truncated varint');
    const byte = b[pos++]!;
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, pos];
    mul *= 128;
    if (mul > 2 ** 63) throw new Error('varint too long');
  }
}

/** Top-level fields of one message; `start..end` is the value (the body, for length-delimited fields). */
function* fields(b: Uint8Array, from = 0, to = b.length): Generator<Field> {
  let pos = from;
  while (pos < to) {
    const [key, p] = varint(b, pos);
    const no = Math.floor(key / 8);
    const wire = key & 7;
    let start = p;
    let end: number;
    if (wire === 0) end = varint(b, p)[1];
    else if (wire === 1) end = p + 8;
    else if (wire === 5) end = p + 4;
    else if (wire === 2) {
      const [len, q] = varint(b, p);
      start = q;
      end = q + len;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (end > to) throw new Error('field runs past its message');
    yield { no, wire, start, end };
    pos = end;
  }
}

const text = new TextDecoder();

/** The graph's nodes in order (nodes inside If/Loop subgraphs are not listed). */
export function listNodes(model: Uint8Array): OnnxNode[] {
  const nodes: OnnxNode[] = [];
  try {
    for (const g of fields(model)) {
      if (g.no !== 7 || g.wire !== 2) continue;
      for (const f of fields(model, g.start, g.end)) {
        if (f.no !== 1 || f.wire !== 2) continue;
        const node: OnnxNode = { name: '', opType: '', inputs: [], outputs: [] };
        for (const nf of fields(model, f.start, f.end)) {
          if (nf.wire !== 2) continue;
          const s = text.decode(model.subarray(nf.start, nf.end));
          if (nf.no === 1) node.inputs.push(s);
          else if (nf.no === 2) node.outputs.push(s);
          else if (nf.no === 3) node.name = s;
          else if (nf.no === 4) node.opType = s;
        }
        nodes.push(node);
      }
    }
  } catch (e) {
    throw nnsError('MODEL_LOAD_FAILED', `the model is not a readable ONNX protobuf: ${(e as Error).message}`);
  }
  return nodes;
}

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function lengthDelimited(no: number, body: Uint8Array): Uint8Array {
  return Uint8Array.from([...encodeVarint((no << 3) | 2), ...encodeVarint(body.length), ...body]);
}

/** The model with `tensor` as an extra float32 graph output. */
export function addFloatOutput(model: Uint8Array, tensor: string): Uint8Array {
  const elemFloat = Uint8Array.from([0x08, 0x01]); // TypeProto.Tensor.elem_type = FLOAT
  const valueInfo = new Uint8Array([
    ...lengthDelimited(1, new TextEncoder().encode(tensor)),
    ...lengthDelimited(2, lengthDelimited(1, elemFloat)),
  ]);
  const tail = lengthDelimited(7, lengthDelimited(12, valueInfo));
  const out = new Uint8Array(model.length + tail.length);
  out.set(model);
  out.set(tail, model.length);
  return out;
}

/**
 * The tensor holding a layer's activations. `layer` may be a node name ("/conv1/Conv"), a
 * tensor name ("/conv1/Conv_output_0"), or a torch module path as torch.onnx.export scopes
 * it ("conv1", "layer1.0.conv1": the output of the last node inside that module). Without a
 * layer, the first Conv node's output.
 */
export function findLayerOutput(nodes: OnnxNode[], layer: string | undefined): { tensor: string; node: OnnxNode } {
  if (layer === undefined || layer === '') {
    const conv = nodes.find((n) => n.opType === 'Conv');
    if (!conv) throw nnsError('INPUT_INVALID', 'the model has no Conv node; name a layer with ?layer=');
    return { tensor: conv.outputs[0]!, node: conv };
  }
  const byName = nodes.find((n) => n.name === layer);
  if (byName) return { tensor: byName.outputs[0]!, node: byName };
  const byOutput = nodes.find((n) => n.outputs.includes(layer));
  if (byOutput) return { tensor: layer, node: byOutput };
  const inScope = nodes.filter((n) => {
    const q = modulePath(n.name);
    return q === layer || q.startsWith(`${layer}.`);
  });
  const last = inScope[inScope.length - 1];
  if (last) return { tensor: last.outputs[0]!, node: last };
  const convs = nodes.filter((n) => n.opType === 'Conv').map((n) => n.name || n.outputs[0]).slice(0, 12);
  throw nnsError('INPUT_INVALID', `the model has no layer "${layer}"; name a node, a tensor or a module path (Conv nodes: ${convs.join(', ') || 'none'})`);
}

/**
 * The torch module path of a node named by torch.onnx.export (1.13): "/layer1/layer1.0/conv1/Conv"
 * -> "layer1.0.conv1". A scope segment either repeats its parent's path ("layer1.0") or is
 * the attribute name ("conv1").
 */
function modulePath(nodeName: string): string {
  let q = '';
  for (const seg of nodeName.split('/').slice(1, -1)) q = q === '' || seg.startsWith(`${q}.`) ? seg : `${q}.${seg}`;
  return q;
}
