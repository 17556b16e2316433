/**
 * Tensors <-> JSON: nested arrays (TorchServe's tensor.tolist()), flat arrays with a shape
 * (KServe v2), and the checks of a request tensor against a model's input spec.
 */
import { nnsError } from './errors.js';
import { typedArrayFor, type DType, type IoSpec, type TensorData, type TypedArray } from './runtime/ort.js';

const INT_RANGES: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127], int16: [-32768, 32767], int32: [-2147483648, 2147483647],
  uint8: [0, 255], uint16: [0, 65535], uint32: [0, 4294967295],
};

/** Shape of a rectangular nested array; throws naming the first ragged position. */
export function nestedShape(value: unknown, what: string): number[] {
  const shape: number[] = [];
  let v = value;
  while (Array.isArray(v)) {
    shape.push(v.length);
    if (v.length === 0) break;
    v = v[0];
  }
  return shape;
}

/** Flatten a nested array of the given shape into a typed array of `dtype`, checking every element. */
export function fromNested(value: unknown, dtype: DType, what: string): TensorData {
  const dims = nestedShape(value, what);
  const size = dims.reduce((a, b) => a * b, 1);
  const data = typedArrayFor(dtype, size);
  // The position ([i][j]...) is spelled out only for an error message: index[] holds it.
  const index: number[] = new Array(dims.length).fill(0);
  const path = (depth: number) => index.slice(0, depth).map((k) => `[${k}]`).join('');
  let i = 0;
  const walk = (v: unknown, depth: number): void => {
    if (!Array.isArray(v) || v.length !== dims[depth]) throw ragged(what, path(depth));
    if (depth === dims.length - 1) {
      for (let k = 0; k < v.length; k++) {
        const x: unknown = v[k];
        // The common case (a finite number into a float tensor) skips the general checks.
        if (dtype === 'float32' && typeof x === 'number' && Number.isFinite(x)) data[i++] = x;
        else {
          index[depth] = k;
          if (Array.isArray(x)) throw ragged(what, path(depth + 1));
          writeElement(data, dtype, i++, x, what, path(depth + 1));
        }
      }
      return;
    }
    for (let k = 0; k < v.length; k++) {
      index[depth] = k;
      walk(v[k], depth + 1);
    }
  };
  if (dims.length === 0) writeElement(data, dtype, i++, value, what, '');
  else walk(value, 0);
  return { dtype, dims, data };
}

/** A flat array (KServe v2 `data`, possibly nested) of `shape`. */
export function fromFlat(value: unknown, shape: number[], dtype: DType, what: string): TensorData {
  const flat = Array.isArray(value) ? (value as unknown[]).flat(Infinity) : [value];
  const size = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== size) {
    throw nnsError('INPUT_SHAPE_MISMATCH', `${what}: shape [${shape}] needs ${size} elements, got ${flat.length}`, { expected: shape, received: flat.length });
  }
  const data = typedArrayFor(dtype, size);
  for (let k = 0; k < size; k++) writeElement(data, dtype, k, flat[k], what, `[${k}]`);
  return { dtype, dims: shape, data };
}

function ragged(what: string, path: string) {
  return nnsError('INPUT_INVALID', `${what}: not a rectangular array of numbers (ragged or mixed at ${path || 'the top level'})`);
}

function writeElement(data: TypedArray, dtype: DType, i: number, v: unknown, what: string, path: string): void {
  if (dtype === 'bool') {
    if (typeof v !== 'boolean' && v !== 0 && v !== 1) throw badElement(what, path, v, 'a boolean');
    data[i] = v ? 1 : 0;
    return;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    // JSON has no NaN/Inf; a string or null here is a client error.
    throw badElement(what, path, v, `a number (${dtype})`);
  }
  if (dtype === 'int64' || dtype === 'uint64') {
    if (!Number.isInteger(v)) throw badElement(what, path, v, `an integer (${dtype})`);
    (data as BigInt64Array)[i] = BigInt(v);
    return;
  }
  const range = INT_RANGES[dtype];
  if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
    throw badElement(what, path, v, `an integer in [${range[0]}, ${range[1]}] (${dtype})`);
  }
  if (dtype === 'float16') throw nnsError('INPUT_DTYPE_MISMATCH', `${what}: float16 inputs must be sent as binary tensors`);
  data[i] = v;
}

function badElement(what: string, path: string, v: unknown, expected: string) {
  return nnsError('INPUT_DTYPE_MISMATCH', `${what}: element ${path || ''} is ${JSON.stringify(v)}, expected ${expected}`);
}

/** Typed array -> nested JS arrays of the given dims (int64 as numbers when safe). */
export function toNested(t: TensorData): unknown {
  const { dims, data } = t;
  const flat = toFlat(t);
  if (dims.length === 0) return flat[0];
  let idx = 0;
  const build = (depth: number): unknown[] => {
    const n = dims[depth]!;
    const out = new Array<unknown>(n);
    if (depth === dims.length - 1) {
      for (let k = 0; k < n; k++) out[k] = flat[idx++];
    } else {
      for (let k = 0; k < n; k++) out[k] = build(depth + 1);
    }
    return out;
  };
  void data;
  return build(0);
}

export function toFlat(t: TensorData): (number | boolean | string)[] {
  const out = new Array<number | boolean | string>(t.data.length);
  if (t.dtype === 'int64' || t.dtype === 'uint64') {
    const d = t.data as BigInt64Array;
    for (let k = 0; k < d.length; k++) {
      const b = d[k]!;
      out[k] = b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString();
    }
  } else if (t.dtype === 'bool') {
    for (let k = 0; k < t.data.length; k++) out[k] = t.data[k] !== 0;
  } else {
    const d = t.data as Float32Array;
    for (let k = 0; k < d.length; k++) out[k] = d[k]!;
  }
  return out;
}

/**
 * Check a request tensor against the model input: same dtype, same rank, every fixed dimension
 * equal. Returns the batch rows (axis 0).
 */
export function checkAgainstSpec(t: TensorData, spec: IoSpec, model: string): number {
  if (t.dtype !== spec.dtype) {
    throw nnsError('INPUT_DTYPE_MISMATCH', `model "${model}" input "${spec.name}" expects ${spec.dtype}, received ${t.dtype}`, { expected: spec.dtype, received: t.dtype });
  }
  const ok = t.dims.length === spec.shape.length && spec.shape.every((d, k) => typeof d !== 'number' || d === t.dims[k]);
  if (!ok) {
    throw nnsError('INPUT_SHAPE_MISMATCH', `model "${model}" input "${spec.name}" expects shape [${spec.shape}], received [${t.dims}]`, { expected: spec.shape, received: t.dims });
  }
  return t.dims[0] ?? 1;
}
