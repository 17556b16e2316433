/** Element decoding shared by the safetensors and .pth readers: everything float becomes float32. */
import { nnsError } from '../errors.js';

export type SourceDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const ELEMENT_SIZE: Record<SourceDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Largest tensor accepted, in elements: guards declared sizes before anything is allocated. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Decodes `count` little-endian elements at `offset` of `bytes` into float32 (floats) or int64
 * (integers and bool), the two dtypes a StateDict holds.
 */
export function decodeElements(bytes: Uint8Array, offset: number, count: number, dtype: SourceDType, label: string): Float32Array | BigInt64Array {
  const size = ELEMENT_SIZE[dtype];
  if (offset + count * size > bytes.length) {
    throw nnsError('WEIGHTS_INVALID', `${label}: data runs past the end of the file (truncated?)`);
  }
  const abs = bytes.byteOffset + offset;
  if (dtype === 'F32') {
    if (abs % 4 === 0) return new Float32Array(bytes.buffer, abs, count);
    const copy = new Uint8Array(count * 4);
    copy.set(bytes.subarray(offset, offset + count * 4));
    return new Float32Array(copy.buffer);
  }
  const view = new DataView(bytes.buffer, abs, count * size);
  if (dtype === 'F16' || dtype === 'BF16' || dtype === 'F64') {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      if (dtype === 'F64') out[i] = view.getFloat64(i * 8, true);
      else if (dtype === 'F16') out[i] = halfToFloat(view.getUint16(i * 2, true));
      else out[i] = new Float32Array(new Uint32Array([view.getUint16(i * 2, true) << 16]).buffer)[0]!;
    }
    return out;
  }
  const out = new BigInt64Array(count);
  for (let i = 0; i < count; i++) {
    switch (dtype) {
      case 'I64': out[i] = view.getBigInt64(i * 8, true); break;
      case 'I32': out[i] = BigInt(view.getInt32(i * 4, true)); break;
      case 'I16': out[i] = BigInt(view.getInt16(i * 2, true)); break;
      case 'I8': out[i] = BigInt(view.getInt8(i)); break;
      default: out[i] = BigInt(view.getUint8(i));
    }
  }
  return out;
}

/** Product of dims, or an error when a dim is not a non-negative int or the total is absurd. */
export function checkedNumel(shape: unknown, label: string): number {
  if (!Array.isArray(shape)) throw nnsError('WEIGHTS_INVALID', `${label}: shape must be a list of ints`);
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) throw nnsError('WEIGHTS_INVALID', `${label}: invalid dimension ${JSON.stringify(d)} in shape ${JSON.stringify(shape)}`);
    n *= d;
    if (n > MAX_ELEMENTS) throw nnsError('WEIGHTS_INVALID', `${label}: declared shape ${JSON.stringify(shape)} has more than ${MAX_ELEMENTS} elements`);
  }
  return n;
}
