/**
 * safetensors (https://github.com/huggingface/safetensors#format): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}}, then raw little-endian data.
 */
import { nnsError } from '../errors.js';
import { type SourceDType, ELEMENT_SIZE, checkedNumel, decodeElements } from './dtypes.js';
import type { StateDict, StateDictTensor } from './index.js';

/** Same limit as the reference implementation. */
const MAX_HEADER_BYTES = 100_000_000;

export function parseSafetensors(bytes: Uint8Array, label: string): StateDict {
  const bad = (msg: string): never => {
    throw nnsError('WEIGHTS_INVALID', `safetensors file "${label}": ${msg}`);
  };
  if (bytes.length < 8) bad(`only ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) bad(`declared header length ${headerLen} is larger than ${MAX_HEADER_BYTES} bytes`);
  if (headerLen > BigInt(bytes.length - 8)) bad(`declared header length ${headerLen} runs past the end of the file (${bytes.length} bytes): truncated?`);
  const n = Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    return bad(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return bad('header must be a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const out: StateDict = new Map();
  for (const [key, entry] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') continue;
    const where = `tensor "${key}"`;
    if (typeof entry !== 'object' || entry === null) bad(`${where} must be an object {dtype, shape, data_offsets}`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in ELEMENT_SIZE)) {
      bad(`${where} has dtype ${JSON.stringify(dtype)}; supported are F32, F16, BF16, F64 (read as float32) and I64, I32, I16, I8, U8, BOOL`);
    }
    const count = checkedNumel(shape, `safetensors file "${label}": ${where}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      bad(`${where} needs data_offsets [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin || end > dataLen) bad(`${where} has data_offsets [${begin}, ${end}] outside the ${dataLen}-byte data section (truncated?)`);
    const size = ELEMENT_SIZE[dtype as SourceDType];
    if (end - begin !== count * size) bad(`${where} with shape ${JSON.stringify(shape)} and dtype ${dtype} needs ${count * size} bytes, its data_offsets give ${end - begin}`);
    const data = decodeElements(bytes, dataStart + begin, count, dtype as SourceDType, `safetensors file "${label}": ${where}`);
    out.set(key, { dtype: data instanceof Float32Array ? 'float32' : 'int64', shape: shape as number[], data });
  }
  return out;
}

/** Writes float32 as F32 and int64 as I64, in the map's order, 8-byte aligned. */
export function writeSafetensors(tensors: Map<string, StateDictTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [k, t] of tensors) {
    header[k] = { dtype: t.dtype === 'float32' ? 'F32' : 'I64', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let o = 8 + head.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), o);
    o += t.data.byteLength;
  }
  return out;
}
