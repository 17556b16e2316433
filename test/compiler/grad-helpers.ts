/** Shared by the gradient tests: the fixtures of tools/make_grad_fixtures.py and running a training graph. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainingGraph, TrainingGraphOptions } from '../../src/compiler/index.js';
import { type TensorData, createSession } from '../../src/runtime/ort.js';
import type { StateDict, StateDictTensor } from '../../src/weights/index.js';
import { parseSafetensors } from '../../src/weights/safetensors.js';

export const GRAD = join(process.cwd(), 'test', 'fixtures', 'grad');

export function gradCases(): string[] {
  return readdirSync(GRAD).filter((d) => existsSync(join(GRAD, d, 'case.json'))).sort();
}

export interface GradCase {
  arch: unknown;
  options: TrainingGraphOptions;
  weights: StateDict;
  /** Data inputs by name, "target", "mask.<module>". */
  feeds: Map<string, StateDictTensor>;
  /** "loss", "grad.<param>", "update.<buffer>", "output.<name>" from PyTorch. */
  expected: Map<string, StateDictTensor>;
}

function safetensors(path: string): StateDict {
  return parseSafetensors(readFileSync(path), path);
}

export function readGradCase(name: string): GradCase {
  const dir = join(GRAD, name);
  const io = safetensors(join(dir, 'io.safetensors'));
  const feeds = new Map([...io].map(([k, v]) => [k.startsWith('input.') ? k.slice('input.'.length) : k, v]));
  return {
    arch: JSON.parse(readFileSync(join(dir, 'architecture.json'), 'utf8')),
    options: JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as TrainingGraphOptions,
    weights: safetensors(join(dir, 'weights.safetensors')),
    feeds,
    expected: safetensors(join(dir, 'grads.safetensors')),
  };
}

const toData = (t: StateDictTensor): TensorData => ({ dtype: t.dtype, dims: t.shape, data: t.data });

/** One training step's outputs: weights and buffers from `weights`, the rest from `feeds`. */
export async function runTraining(tg: TrainingGraph, weights: StateDict, feeds: Map<string, StateDictTensor>, threads = 1): Promise<Record<string, TensorData>> {
  const session = await createSession(tg.onnx, { engine: 'native', intraOpThreads: threads });
  try {
    const all: Record<string, TensorData> = {};
    for (const p of [...tg.params, ...tg.constants]) {
      const w = weights.get(p.name);
      if (!w) throw new Error(`no weight "${p.name}"`);
      all[p.name] = toData(w);
    }
    for (const i of tg.inputs) {
      const t = feeds.get(i.name);
      if (!t) throw new Error(`no feed for input "${i.name}"`);
      all[i.name] = toData(t);
    }
    return await session.run(all);
  } finally {
    await session.release();
  }
}

/** max|ours - torch| / max|torch| (exact match required for integers); Infinity when shapes differ. */
export function gradError(ours: TensorData | undefined, torch: StateDictTensor): number {
  if (!ours) return Infinity;
  if (ours.dims.length !== torch.shape.length || ours.dims.some((d, i) => d !== torch.shape[i])) return Infinity;
  if (torch.data instanceof BigInt64Array) {
    const a = ours.data as BigInt64Array;
    return torch.data.every((v, i) => v === a[i]) ? 0 : Infinity;
  }
  const a = ours.data as Float32Array;
  const b = torch.data;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= diff)) diff = d;
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / (scale || 1);
}
