/** Shared by the compiler tests: fixtures on disk, running a compiled model, comparing with PyTorch. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CompiledModel } from '../../src/compiler/index.js';
import { type TensorData, createSession } from '../../src/runtime/ort.js';
import { type StateDict, type StateDictTensor } from '../../src/weights/index.js';
import { parseSafetensors } from '../../src/weights/safetensors.js';

export const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'compiler');
export const GOLDEN = join(FIXTURES, 'golden');

export function goldenCases(): string[] {
  return readdirSync(GOLDEN).filter((d) => existsSync(join(GOLDEN, d, 'architecture.json'))).sort();
}

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** io.safetensors: "input.<name>" and "output.<name>". */
export function readIo(path: string): { inputs: Map<string, StateDictTensor>; outputs: Map<string, StateDictTensor> } {
  const all = parseSafetensors(readFileSync(path), path);
  const pick = (prefix: string) => new Map([...all].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return { inputs: pick('input.'), outputs: pick('output.') };
}

export async function run(model: CompiledModel, inputs: Map<string, StateDictTensor>): Promise<Record<string, TensorData>> {
  const session = await createSession(model.onnx, { engine: 'native', intraOpThreads: 1 });
  try {
    const feeds: Record<string, TensorData> = {};
    for (const [name, t] of inputs) feeds[name] = { dtype: t.dtype, dims: t.shape, data: t.data };
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** max|ours - torch| / max|torch|; Infinity when the shapes differ. */
export function relativeError(ours: TensorData, torch: StateDictTensor): number {
  if (ours.dims.length !== torch.shape.length || ours.dims.some((d, i) => d !== torch.shape[i])) return Infinity;
  let diff = 0;
  let scale = 0;
  const a = ours.data as Float32Array;
  const b = torch.data as Float32Array;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= diff)) diff = d; // NaN propagates as a failure
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / (scale || 1);
}

export const TOLERANCE = 1e-4;

export type { StateDict };
