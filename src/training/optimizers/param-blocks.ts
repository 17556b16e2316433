/**
 * Where the optimizer kernels (kernels.ts) read and write: for each trainable parameter one
 * block of WebAssembly memory holding a slot for the parameter, one for its gradient and one
 * per state array the optimizer may keep (exp_avg, momentum_buffer, ...). Each slot is padded
 * to a multiple of 16 bytes so that kernels run four lanes at a time with no tail.
 *
 * All slots are laid out when the optimizer is made, also those it may never use (AMSGrad's
 * max_exp_avg_sq, a momentum buffer a scheduler may turn on later): a memory cannot grow
 * without invalidating the arrays over it, and pages never written take no physical memory.
 * Blocks go into memories of up to 1 GiB each, with one kernel instance per memory; a single
 * block past 4 GiB (Adam: about 200M elements) cannot be made.
 */
import { nnsError } from '../../errors.js';
import { instantiateKernels, type Kernels } from './kernels.js';

const PAGE = 65536;
const MAX_MEMORY_BYTES = 2 ** 30;

/** Bytes a slot of `length` float32 elements takes: rounded up to 16 (four lanes). */
const slotBytes = (length: number) => Math.ceil(length / 4) * 16;

export interface ParamBlock {
  /** Bytes a kernel runs over: length * 4 rounded up to 16. */
  readonly bytes: number;
  /** The kernels over the memory this block is in. */
  readonly kernels: Kernels;
  /** Byte address of each slot in that memory. */
  readonly at: Readonly<Record<string, number>>;
  /** Each slot as a Float32Array of `length` elements. */
  readonly views: Readonly<Record<string, Float32Array>>;
}

/** Lays out one block per parameter, in order, with the slots named. */
export function layoutParamBlocks(sizes: ReadonlyMap<string, number>, slots: readonly string[]): Map<string, ParamBlock> {
  const blocks = new Map<string, ParamBlock>();
  let pending: [string, number][] = [];
  let used = 0;
  const flush = () => {
    if (pending.length === 0) return;
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: Math.ceil(used / PAGE) });
    } catch (e) {
      throw nnsError('INTERNAL', `the optimizer could not reserve ${used} bytes of WebAssembly memory for parameters ${pending.map(([n]) => n).join(', ')}: ${(e as Error).message}`);
    }
    const kernels = instantiateKernels(memory);
    let offset = 0;
    for (const [name, length] of pending) {
      const bytes = slotBytes(length);
      const at: Record<string, number> = {};
      const views: Record<string, Float32Array> = {};
      for (const slot of slots) {
        at[slot] = offset;
        views[slot] = new Float32Array(memory.buffer, offset, length);
        offset += bytes;
      }
      blocks.set(name, { bytes, kernels, at, views });
    }
    pending = [];
    used = 0;
  };
  for (const [name, length] of sizes) {
    const size = slotBytes(length) * slots.length;
    if (used + size > MAX_MEMORY_BYTES) flush();
    pending.push([name, length]);
    used += size;
  }
  flush();
  return blocks;
}
