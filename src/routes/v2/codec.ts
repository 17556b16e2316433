/**
 * KServe Open Inference Protocol v2 tensors: JSON `{name, shape, datatype, data}` and the binary
 * tensor data extension (extension_binary_data.md): a JSON header of
 * `Inference-Header-Content-Length` bytes, then each binary tensor's raw little-endian bytes in
 * the order the tensors are listed.
 */
import { nnsError } from '../../errors.js';
import { typedArrayFor, typedArrayView, type DType, type IoSpec, type TensorData } from '../../runtime/ort.js';
import { fromFlat, toFlat } from '../../tensors.js';

const V2_TO_DTYPE: Record<string, DType> = {
  BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64',
  INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64', FP16: 'float16', FP32: 'float32', FP64: 'float64',
};
const DTYPE_TO_V2 = Object.fromEntries(Object.entries(V2_TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;
const BYTES_PER: Record<DType, number> = {
  bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, float16: 2, uint32: 4, int32: 4, float32: 4, uint64: 8, int64: 8, float64: 8,
};

export function v2Datatype(dtype: DType): string {
  return DTYPE_TO_V2[dtype];
}

export interface V2Input {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data?: unknown;
}

export interface V2Request {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: V2Input[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

/** Split a request body into its JSON header and binary section. */
export function splitBody(body: unknown, headerLength: number | undefined): { header: unknown; binary: Buffer } {
  if (headerLength === undefined) {
    if (Buffer.isBuffer(body)) {
      try {
        return { header: JSON.parse(body.toString('utf8')), binary: Buffer.alloc(0) };
      } catch (e) {
        throw nnsError('INPUT_INVALID', `request body is not valid JSON: ${(e as Error).message}`);
      }
    }
    return { header: body, binary: Buffer.alloc(0) };
  }
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > buf.length) {
    throw nnsError('INPUT_INVALID', `Inference-Header-Content-Length ${headerLength} is not within the body of ${buf.length} bytes`);
  }
  if (headerLength === 0) return { header: undefined, binary: buf };
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(0, headerLength).toString('utf8'));
  } catch (e) {
    throw nnsError('INPUT_INVALID', `the first ${headerLength} bytes (Inference-Header-Content-Length) are not a JSON inference header: ${(e as Error).message}`);
  }
  return { header, binary: buf.subarray(headerLength) };
}

export function validateRequest(header: unknown): V2Request {
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw nnsError('INPUT_INVALID', 'inference request must be a JSON object with "inputs"');
  const r = header as V2Request;
  if (!Array.isArray(r.inputs) || r.inputs.length === 0) throw nnsError('INPUT_INVALID', 'inference request needs a non-empty "inputs" array');
  r.inputs.forEach((inp, i) => {
    if (!inp || typeof inp.name !== 'string') throw nnsError('INPUT_INVALID', `inputs[${i}] needs a "name"`);
    if (!Array.isArray(inp.shape) || !inp.shape.every((d) => Number.isInteger(d) && d >= 0)) throw nnsError('INPUT_INVALID', `input "${inp.name}": "shape" must be an array of non-negative integers`);
    if (typeof inp.datatype !== 'string') throw nnsError('INPUT_INVALID', `input "${inp.name}" needs a "datatype"`);
  });
  if (r.outputs !== undefined && (!Array.isArray(r.outputs) || !r.outputs.every((o) => o && typeof o.name === 'string'))) {
    throw nnsError('INPUT_INVALID', '"outputs" must be an array of {"name": ...}');
  }
  return r;
}

/** Decode every input to a tensor of the model's dtype, taking binary inputs from `binary` in order. */
export function decodeInputs(req: V2Request, binary: Buffer, specs: IoSpec[], model: string): Record<string, TensorData> {
  const feeds: Record<string, TensorData> = {};
  let offset = 0;
  for (const inp of req.inputs) {
    const spec = specs.find((s) => s.name === inp.name);
    if (!spec) throw nnsError('INPUT_INVALID', `model "${model}" has no input "${inp.name}" (inputs: ${specs.map((s) => s.name).join(', ')})`);
    const dtype = V2_TO_DTYPE[inp.datatype];
    if (!dtype) throw nnsError('INPUT_DTYPE_MISMATCH', `input "${inp.name}": datatype ${inp.datatype} is not supported here (model expects ${v2Datatype(spec.dtype)})`);
    if (dtype !== spec.dtype) throw nnsError('INPUT_DTYPE_MISMATCH', `input "${inp.name}": model "${model}" expects datatype ${v2Datatype(spec.dtype)}, received ${inp.datatype}`, { expected: v2Datatype(spec.dtype), received: inp.datatype });
    const size = inp.shape.reduce((a, b) => a * b, 1);
    const binSize = inp.parameters?.binary_data_size;
    if (binSize !== undefined) {
      const n = Number(binSize);
      if (!Number.isInteger(n) || n < 0 || offset + n > binary.length) throw nnsError('INPUT_INVALID', `input "${inp.name}": binary_data_size ${binSize} runs past the ${binary.length} bytes of binary data`);
      if (n !== size * BYTES_PER[dtype]) throw nnsError('INPUT_SHAPE_MISMATCH', `input "${inp.name}": shape [${inp.shape}] of ${inp.datatype} is ${size * BYTES_PER[dtype]} bytes, binary_data_size is ${n}`);
      feeds[inp.name] = fromBytes(binary.subarray(offset, offset + n), dtype, inp.shape);
      offset += n;
    } else {
      if (inp.data === undefined) throw nnsError('INPUT_INVALID', `input "${inp.name}" has neither "data" nor parameters.binary_data_size`);
      feeds[inp.name] = fromFlat(inp.data, inp.shape, dtype, `input "${inp.name}"`);
    }
  }
  if (offset !== binary.length) throw nnsError('INPUT_INVALID', `${binary.length - offset} bytes of binary data were not claimed by any input's binary_data_size`);
  return feeds;
}

/** Raw binary request (Inference-Header-Content-Length: 0): one input; the batch axis is inferred. */
export function decodeRaw(binary: Buffer, specs: IoSpec[], model: string): Record<string, TensorData> {
  if (specs.length !== 1) throw nnsError('INPUT_INVALID', `model "${model}" has ${specs.length} inputs; a raw binary body (Inference-Header-Content-Length: 0) needs exactly one`);
  const spec = specs[0]!;
  const fixed = spec.shape.slice(1);
  if (!fixed.every((d) => typeof d === 'number')) throw nnsError('INPUT_INVALID', `model "${model}" input "${spec.name}" has dynamic dimensions beyond the batch; send a JSON header with its shape`);
  const rowBytes = (fixed as number[]).reduce((a, b) => a * b, 1) * BYTES_PER[spec.dtype];
  if (binary.length === 0 || binary.length % rowBytes !== 0) throw nnsError('INPUT_SHAPE_MISMATCH', `raw body of ${binary.length} bytes is not a whole number of [${fixed}] ${spec.dtype} samples (${rowBytes} bytes each)`);
  return { [spec.name]: fromBytes(binary, spec.dtype, [binary.length / rowBytes, ...(fixed as number[])]) };
}

function fromBytes(bytes: Buffer, dtype: DType, shape: number[]): TensorData {
  const size = shape.reduce((a, b) => a * b, 1);
  // A view of the body when the tensor starts on an element boundary (the batcher copies it into
  // the batch, nothing writes to it); otherwise a copy into a fresh, aligned buffer.
  if (bytes.byteOffset % BYTES_PER[dtype] === 0) return { dtype, dims: shape, data: typedArrayView(dtype, bytes.buffer, bytes.byteOffset, size) };
  const data = typedArrayFor(dtype, size);
  new Uint8Array(data.buffer).set(bytes);
  return { dtype, dims: shape, data };
}

export interface EncodedResponse {
  json: Record<string, unknown>;
  blobs: Buffer[];
}

/** Build the response: JSON data, or binary blobs where asked for (per output, or request-wide). */
export function encodeOutputs(req: V2Request, outputs: Record<string, TensorData>, model: string, version: string): EncodedResponse {
  const wanted = req.outputs?.length ? req.outputs : Object.keys(outputs).map((name) => ({ name, parameters: undefined as Record<string, unknown> | undefined }));
  const allBinary = req.parameters?.binary_data_output === true;
  const blobs: Buffer[] = [];
  const out = wanted.map((o) => {
    const t = outputs[o.name];
    if (!t) throw nnsError('INPUT_INVALID', `model "${model}" has no output "${o.name}" (outputs: ${Object.keys(outputs).join(', ')})`);
    const binary = o.parameters?.binary_data === undefined ? allBinary : o.parameters.binary_data === true;
    const base = { name: o.name, datatype: v2Datatype(t.dtype), shape: t.dims };
    if (!binary) return { ...base, data: toFlat(t) };
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    blobs.push(bytes);
    return { ...base, parameters: { binary_data_size: bytes.length } };
  });
  const json: Record<string, unknown> = { model_name: model, model_version: version, outputs: out };
  if (req.id !== undefined) json.id = req.id;
  return { json, blobs };
}
