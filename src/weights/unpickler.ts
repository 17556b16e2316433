/**
 * A restricted pickle reader for PyTorch state_dicts. It interprets the pickle opcodes that
 * build data (ints, floats, strings, tuples, lists, dicts) and recognises the handful of
 * globals a state_dict refers to (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch.*Storage). Any other global, and every opcode that would make Python call or construct
 * something else (INST, OBJ, NEWOBJ, EXT*), is refused with WEIGHTS_UNSAFE before anything is
 * "called": nothing in the file is ever executed, the allowed callables are implemented here.
 *
 * Opcodes: CPython Lib/pickletools.py. Persistent ids and _rebuild_tensor_v2: torch/serialization.py.
 */
import { nnsError } from '../errors.js';
import type { SourceDType } from './dtypes.js';

export interface PyGlobal { readonly kind: 'global'; readonly module: string; readonly name: string }
export interface PyStorage { readonly kind: 'storage'; readonly dtype: SourceDType; readonly key: string; readonly numel: number }
export interface PyTensor {
  readonly kind: 'tensor';
  readonly storage: PyStorage;
  readonly offset: number;
  readonly size: number[];
  readonly stride: number[];
}
export class PyTuple { constructor(readonly items: PyValue[]) {} }
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | Map<PyValue, PyValue> | PyGlobal | PyStorage | PyTensor;

/** torch.<X>Storage -> element dtype. */
const STORAGES: Record<string, SourceDType> = {
  FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', DoubleStorage: 'F64', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
]);

function allowedGlobal(module: string, name: string): boolean {
  return CALLABLES.has(`${module}.${name}`) || (module === 'torch' && name in STORAGES);
}

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

function isGlobal(v: unknown, qualified: string): v is PyGlobal {
  return typeof v === 'object' && v !== null && (v as PyGlobal).kind === 'global' && `${(v as PyGlobal).module}.${(v as PyGlobal).name}` === qualified;
}

function items(v: PyValue): PyValue[] | undefined {
  if (v instanceof PyTuple) return v.items;
  return Array.isArray(v) ? v : undefined;
}

export function unpickle(bytes: Uint8Array, label: string): PyValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;

  const bad = (msg: string): never => {
    throw nnsError('WEIGHTS_INVALID', `"${label}": ${msg}`);
  };
  const unsafe = (msg: string): never => {
    throw nnsError('WEIGHTS_UNSAFE', `"${label}": ${msg}; a state_dict holds only tensors, so the file is refused (nothing in it was run)`);
  };
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) bad('the pickle ends early (truncated or corrupt file)');
  };
  const u8 = () => { need(1); return bytes[pos++]!; };
  const u16 = () => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) bad('a length in the pickle is larger than the file');
    return Number(v);
  };
  const take = (n: number) => { need(n); const b = bytes.subarray(pos, pos + n); pos += n; return b; };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) bad('the pickle ends early (truncated or corrupt file)');
    const s = new TextDecoder().decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8 = (b: Uint8Array) => {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return bad('a string in the pickle is not valid UTF-8');
    }
  };
  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) bad('pickle stack underflow (corrupt file)');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0) bad('pickle stack underflow (corrupt file)');
    return stack[stack.length - 1] as PyValue;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) bad('pickle MARK missing (corrupt file)');
    return stack.splice(m!) as PyValue[];
  };
  const pushGlobal = (module: string, name: string) => {
    if (!allowedGlobal(module, name)) unsafe(`pickle imports ${module}.${name}`);
    stack.push({ kind: 'global', module, name });
  };
  const long = (b: Uint8Array): number | bigint => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b.length > 0 && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (dict: PyValue, kv: PyValue[]) => {
    if (!(dict instanceof Map)) bad('SETITEM on something that is not a dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (dict as Map<PyValue, PyValue>).set(kv[i]!, kv[i + 1]!);
  };

  const reduce = (fn: PyValue, args: PyValue): PyValue => {
    const a = items(args);
    if (!a) return bad('REDUCE arguments must be a tuple');
    if (isGlobal(fn, 'collections.OrderedDict')) {
      const m = new Map<PyValue, PyValue>();
      for (const pair of items(a[0] ?? []) ?? []) {
        const kv = items(pair);
        if (kv?.length === 2) m.set(kv[0]!, kv[1]!);
      }
      return m;
    }
    if (isGlobal(fn, 'torch._utils._rebuild_tensor_v2')) return rebuildTensor(a, bad);
    if (isGlobal(fn, 'torch._utils._rebuild_parameter') || isGlobal(fn, 'torch._utils._rebuild_parameter_with_state')) {
      const t = a[0];
      if (typeof t !== 'object' || t === null || (t as PyTensor).kind !== 'tensor') bad('_rebuild_parameter expects a tensor');
      return t!;
    }
    const g = fn as unknown as PyGlobal;
    const what = typeof fn === 'object' && fn !== null && g.kind === 'global' ? `${g.module}.${g.name}` : 'a value that is not a function';
    return unsafe(`pickle calls ${what}`);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x2e: { // STOP
        if (stack.length !== 1) bad('pickle stack is not a single value at STOP (corrupt file)');
        return stack[0] as PyValue;
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(take(u8()))); break; // LONG1
      case 0x8b: { const n = i32(); if (n < 0) bad('negative LONG4 length'); stack.push(long(take(n))); break; }
      case 0x49: { // INT (protocol 0): "I01\n" is True
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : /^-?\d+$/.test(s) ? Number(s) : bad(`bad INT ${JSON.stringify(s)}`));
        break;
      }
      case 0x4c: { const s = line().replace(/L$/, ''); stack.push(/^-?\d+$/.test(s) ? Number(s) : bad('bad LONG')); break; }
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT
      case 0x46: { const s = line(); const v = Number(s); stack.push(Number.isNaN(v) && s !== 'nan' ? bad('bad FLOAT') : v); break; }
      case 0x58: stack.push(utf8(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(take(u64()))); break; // BINUNICODE8
      case 0x53: { // STRING (protocol 0): a quoted Python literal; escapes are kept as written
        const s = line();
        stack.push(/^(['"]).*\1$/.test(s) ? s.slice(1, -1) : bad('bad STRING'));
        break;
      }
      case 0x56: stack.push(line()); break; // UNICODE (protocol 0)
      case 0x54: { const n = i32(); stack.push(new TextDecoder('latin1').decode(take(n))); break; } // BINSTRING
      case 0x55: stack.push(new TextDecoder('latin1').decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32())); break; // BINBYTES
      case 0x43: stack.push(take(u8())); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: stack.push(take(u64())); break; // BINBYTES8, BYTEARRAY8
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) bad('APPEND to something that is not a list'); (l as PyValue[]).push(v); break; }
      case 0x65: { const vs = popMark(); const l = top(); if (!Array.isArray(l)) bad('APPENDS to something that is not a list'); (l as PyValue[]).push(...vs); break; }
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const m = new Map<PyValue, PyValue>(); setItems(m, popMark()); stack.push(m); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x8f: stack.push([]); break; // EMPTY_SET (a list is enough: sets hold no tensors)
      case 0x90: { const vs = popMark(); const s = top(); if (!Array.isArray(s)) bad('ADDITEMS to something that is not a set'); (s as PyValue[]).push(...vs); break; }
      case 0x91: stack.push(popMark()); break; // FROZENSET
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(line());
        if (!memo.has(k)) bad(`pickle refers to memo entry ${k} that was never stored (corrupt file)`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x63: { const module = line(); const name = line(); pushGlobal(module, name); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') bad('STACK_GLOBAL needs two strings');
        pushGlobal(module as string, name as string);
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(reduce(fn, args)); break; } // REDUCE
      case 0x62: { // BUILD: only the attributes PyTorch sets on an OrderedDict (state_dict._metadata).
        pop();
        const obj = top();
        if (!(obj instanceof Map)) unsafe('pickle sets the state of an object that is not a dict');
        break;
      }
      case 0x51: stack.push(persistentLoad(pop(), bad, unsafe)); break; // BINPERSID
      case 0x50: unsafe('pickle uses a text persistent id (PERSID)'); break;
      case 0x69: case 0x6f: case 0x81: case 0x92: unsafe('pickle constructs an object (INST/OBJ/NEWOBJ)'); break;
      case 0x82: case 0x83: case 0x84: unsafe('pickle uses the extension registry (EXT1/2/4)'); break;
      default: bad(`unknown pickle opcode 0x${op.toString(16)} at byte ${pos - 1} (corrupt file)`);
    }
  }
}

/** ('storage', torch.FloatStorage, key, location, numel) -> a storage reference. */
function persistentLoad(pid: PyValue, bad: (m: string) => never, unsafe: (m: string) => never): PyStorage {
  const t = items(pid);
  if (!t || t[0] !== 'storage' || t.length !== 5) return unsafe('pickle loads a persistent object that is not a storage');
  const [, type, key, , numel] = t;
  const g = type as PyGlobal;
  if (typeof g !== 'object' || g === null || g.kind !== 'global' || g.module !== 'torch' || !(g.name in STORAGES)) return bad('storage of an unknown type');
  if (typeof key !== 'string' || !/^[A-Za-z0-9_]+$/.test(key)) return bad('storage key must be a plain name');
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) return bad('storage size must be a non-negative int');
  return { kind: 'storage', dtype: STORAGES[g.name]!, key, numel };
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]). */
function rebuildTensor(a: PyValue[], bad: (m: string) => never): PyTensor {
  const [storage, offset, size, stride] = a;
  if (typeof storage !== 'object' || storage === null || (storage as PyStorage).kind !== 'storage') return bad('_rebuild_tensor_v2 expects a storage');
  const ints = (v: PyValue | undefined, what: string): number[] => {
    const l = items(v ?? null);
    if (!l || !l.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) return bad(`tensor ${what} must be a tuple of non-negative ints`);
    return l as number[];
  };
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return bad('tensor storage offset must be a non-negative int');
  const sz = ints(size, 'size');
  const st = ints(stride, 'stride');
  if (sz.length !== st.length) return bad('tensor size and stride differ in length');
  return { kind: 'tensor', storage: storage as PyStorage, offset, size: sz, stride: st };
}
