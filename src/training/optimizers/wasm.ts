/**
 * Just enough of the WebAssembly binary format (https://webassembly.github.io/spec/core/binary/)
 * to write the optimizers' SIMD kernels in TypeScript: functions over one imported memory, and
 * their instructions as small builders that return bytes in stack order, so that a kernel reads
 * as nested expressions: `f32x4.add(load(m), f32x4.mul(get(c1), get(x)))`.
 */

export type Bytes = number[];

/** Value types (binary encoding). */
export const i32 = 0x7f;
export const f32 = 0x7d;
export const v128 = 0x7b;
export type ValType = typeof i32 | typeof f32 | typeof v128;

/** Unsigned LEB128. */
function uleb(n: number): Bytes {
  const out: Bytes = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128. */
function sleb(n: number): Bytes {
  const out: Bytes = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

const name = (s: string): Bytes => [...uleb(s.length), ...new TextEncoder().encode(s)];
const vec = (items: Bytes[]): Bytes => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Bytes): Bytes => [id, ...uleb(body.length), ...body];
const simd = (opcode: number): Bytes => [0xfd, ...uleb(opcode)];
const seq = (...parts: Bytes[]): Bytes => parts.flat();

/** A local's index; a kernel that names a local it does not have gets undefined here. */
function localIndex(local: number | undefined): Bytes {
  if (!Number.isInteger(local)) throw new Error(`a WebAssembly local index must be an integer, got ${local}`);
  return uleb(local!);
}

// Locals, constants, integer arithmetic and control flow (MVP).
export const get = (local: number | undefined): Bytes => [0x20, ...localIndex(local)];
export const set = (local: number | undefined, value: Bytes): Bytes => [...value, 0x21, ...localIndex(local)];
const i32Const = (n: number): Bytes => [0x41, ...sleb(n)];
const i32Add = (a: Bytes, b: Bytes): Bytes => seq(a, b, [0x6a]);
const i32GeU = (a: Bytes, b: Bytes): Bytes => seq(a, b, [0x4f]);

/**
 * `for (i = 0; i < end; i += step) body`: `i` and `end` are i32 locals; `i` must start at 0
 * (locals are zeroed on entry).
 */
export function forLoop(i: number | undefined, end: number | undefined, step: number, body: Bytes): Bytes {
  // block { loop { br_if 1 (i >= end); body; i += step; br 0 } }
  return seq([0x02, 0x40, 0x03, 0x40], i32GeU(get(i), get(end)), [0x0d, 1], body, set(i, i32Add(get(i), i32Const(step))), [0x0c, 0, 0x0b, 0x0b]);
}

/** 128-bit SIMD over four float32 lanes. Memory operands are a base address plus an offset local, both i32. */
export const f32x4 = {
  /** Loads 16 bytes at base + offset (16-byte aligned). */
  load: (base: Bytes, offset: Bytes): Bytes => seq(i32Add(base, offset), simd(0x00), [4, 0]),
  store: (base: Bytes, offset: Bytes, value: Bytes): Bytes => seq(i32Add(base, offset), value, simd(0x0b), [4, 0]),
  splat: (x: Bytes): Bytes => seq(x, simd(0x13)),
  add: (a: Bytes, b: Bytes): Bytes => seq(a, b, simd(0xe4)),
  sub: (a: Bytes, b: Bytes): Bytes => seq(a, b, simd(0xe5)),
  mul: (a: Bytes, b: Bytes): Bytes => seq(a, b, simd(0xe6)),
  div: (a: Bytes, b: Bytes): Bytes => seq(a, b, simd(0xe7)),
  sqrt: (a: Bytes): Bytes => seq(a, simd(0xe3)),
  neg: (a: Bytes): Bytes => seq(a, simd(0xe1)),
  /** NaN if either lane is NaN, as torch.maximum. */
  max: (a: Bytes, b: Bytes): Bytes => seq(a, b, simd(0xe9)),
};

export interface WasmFunction {
  name: string;
  params: ValType[];
  /** Locals after the params, numbered from params.length. */
  locals: ValType[];
  body: Bytes;
}

/** A module importing `env.memory` and exporting `functions` (no results). */
export function encodeModule(functions: WasmFunction[]): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [0x60, ...vec(f.params.map((t) => [t])), 0]);
  const code = functions.map((f) => {
    const body = [...vec(f.locals.map((t) => [1, t])), ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(code)),
  ]);
}
