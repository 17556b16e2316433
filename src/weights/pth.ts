/**
 * PyTorch's own checkpoint format, as `torch.save(model.state_dict(), "model.pth")` writes it
 * since 1.6: a zip holding `<name>/data.pkl` (the pickled OrderedDict) and one file per storage
 * under `<name>/data/<key>`. Tensors are read through the restricted unpickler.
 */
import { nnsError } from '../errors.js';
import { ELEMENT_SIZE, MAX_ELEMENTS, decodeElements } from './dtypes.js';
import type { StateDict, StateDictTensor } from './index.js';
import { type PyTensor, type PyValue, PyTuple, unpickle } from './unpickler.js';
import { ZipReader } from './zip.js';

/** Checkpoint dicts that wrap the state_dict under a well-known key. */
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model'];

function isTensor(v: PyValue): v is PyTensor {
  return typeof v === 'object' && v !== null && !(v instanceof Map) && !(v instanceof PyTuple) && !Array.isArray(v) && !(v instanceof Uint8Array) && (v as PyTensor).kind === 'tensor';
}

function typeName(v: PyValue): string {
  if (v === null) return 'None';
  if (v instanceof Map) return 'dict';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return v.kind;
  return typeof v === 'number' || typeof v === 'bigint' ? 'a number' : typeof v;
}

export function parsePth(bytes: Uint8Array, label: string): StateDict {
  const bad = (msg: string): never => {
    throw nnsError('WEIGHTS_INVALID', `"${label}": ${msg}`);
  };
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1]! <= 5) {
    bad('this is the legacy torch.save format (_use_new_zipfile_serialization=False); save it again with a default torch.save');
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) bad('not a PyTorch checkpoint (a .pth file is a zip archive written by torch.save)');
  const zip = new ZipReader(bytes, label);
  const names = [...zip.entries.keys()];
  const pkl = names.find((n) => /^[^/]+\/data\.pkl$/.test(n)) ?? bad('no data.pkl in the archive; not a torch.save checkpoint');
  const prefix = pkl.slice(0, -'data.pkl'.length);
  if (names.some((n) => n.startsWith(`${prefix}code/`) || n === `${prefix}constants.pkl`)) {
    bad('this is a TorchScript archive (torch.jit.save); nnserve takes torch.save(model.state_dict()) here, or serve the TorchScript model through ONNX');
  }
  const byteorder = zip.entries.has(`${prefix}byteorder`) ? new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim() : 'little';
  if (byteorder !== 'little') bad(`storages are ${byteorder}-endian; only little-endian checkpoints are supported`);

  let root = unpickle(zip.read(pkl), label);
  if (root instanceof Map) {
    for (const k of WRAPPER_KEYS) {
      const inner: PyValue | undefined = root.get(k);
      if (inner instanceof Map && [...inner.values()].some(isTensor)) root = inner;
    }
  }
  if (!(root instanceof Map)) return bad(`holds ${typeName(root)}, not a state_dict; save model.state_dict()`);

  const storages = new Map<string, Uint8Array>();
  const out: StateDict = new Map();
  for (const [key, value] of root) {
    if (typeof key !== 'string') bad(`state_dict key ${String(key)} is not a string`);
    if (!isTensor(value)) bad(`state_dict entry "${String(key)}" holds ${typeName(value)}, not a tensor; save model.state_dict()`);
    const t = value as PyTensor;
    const where = `tensor "${String(key)}"`;
    let data = storages.get(t.storage.key);
    if (!data) {
      data = zip.read(`${prefix}data/${t.storage.key}`);
      storages.set(t.storage.key, data);
    }
    const size = ELEMENT_SIZE[t.storage.dtype];
    if (t.storage.numel * size > data.length) bad(`${where}: its storage declares ${t.storage.numel} elements but holds ${data.length} bytes (truncated?)`);
    out.set(key as string, materialize(t, data, `"${label}": ${where}`, bad));
  }
  return out;
}

/** Copies a (possibly strided) view of a storage into a contiguous float32/int64 tensor. */
function materialize(t: PyTensor, storage: Uint8Array, label: string, bad: (m: string) => never): StateDictTensor {
  let count = 1;
  for (const d of t.size) {
    count *= d;
    if (count > MAX_ELEMENTS) bad(`${label}: declared shape [${t.size.join(', ')}] is too large`);
  }
  const contiguous = t.size.every((_, i) => t.size.slice(i + 1).reduce((p, d) => p * d, 1) === t.stride[i] || t.size[i] === 1);
  const last = count === 0 ? 0 : t.offset + t.size.reduce((s, d, i) => s + (d - 1) * t.stride[i]!, 0);
  if (count > 0 && last >= t.storage.numel) bad(`${label}: shape [${t.size.join(', ')}] with stride [${t.stride.join(', ')}] reads past its storage of ${t.storage.numel} elements`);
  const size = ELEMENT_SIZE[t.storage.dtype];
  if (contiguous) {
    const data = decodeElements(storage, t.offset * size, count, t.storage.dtype, label);
    return { dtype: data instanceof Float32Array ? 'float32' : 'int64', shape: t.size, data };
  }
  const all = decodeElements(storage, 0, t.storage.numel, t.storage.dtype, label);
  const data = all instanceof Float32Array ? new Float32Array(count) : new BigInt64Array(count);
  const idx = new Array<number>(t.size.length).fill(0);
  for (let i = 0; i < count; i++) {
    let src = t.offset;
    for (let d = 0; d < idx.length; d++) src += idx[d]! * t.stride[d]!;
    data[i] = all[src]! as never;
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d]! < t.size[d]!) break;
      idx[d] = 0;
    }
  }
  return { dtype: data instanceof Float32Array ? 'float32' : 'int64', shape: t.size, data };
}
