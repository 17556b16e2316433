/** Shared test set-up: model stores built with nnserve's own archiver, configs, golden files. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeArchive } from '../src/archive/archiver.js';
import { buildApp, type App } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';

export const ROOT = process.cwd();
export const fixture = (...p: string[]) => resolve(ROOT, 'test/fixtures', ...p);

export interface StoreModel {
  name: string;
  /** ONNX file path. */
  onnx: string;
  version?: string;
  /** model-config.yaml text. */
  modelConfig?: string;
  handler?: string;
  extraFiles?: string[];
}

export async function makeStore(models: StoreModel[]): Promise<string> {
  const store = mkdtempSync(join(tmpdir(), 'nnserve-store-'));
  for (const m of models) {
    let configFile: string | undefined;
    if (m.modelConfig) {
      configFile = join(mkdtempSync(join(tmpdir(), 'nnserve-cfg-')), 'model-config.yaml');
      writeFileSync(configFile, m.modelConfig);
    }
    await writeArchive({
      modelName: m.name, version: m.version ?? '1.0', serializedFile: m.onnx, handler: m.handler ?? 'tensor',
      configFile, extraFiles: m.extraFiles, exportPath: store, force: true,
    });
  }
  return store;
}

export function testConfig(overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  const keyFile = join(mkdtempSync(join(tmpdir(), 'nnserve-keys-')), 'key_file.json');
  return loadConfig({ env: {}, overrides: { number_of_cores: 2, key_file: keyFile, ...overrides } });
}

export async function appWith(models: StoreModel[], overrides: Partial<Record<keyof Config, unknown>> = {}): Promise<App> {
  const store = await makeStore(models);
  return buildApp(testConfig({ model_store: store, ...overrides }));
}

export interface GoldenTensor { dtype: string; shape: number[]; data: number[] }
export interface GoldenCase { inputs: Record<string, GoldenTensor>; outputs: Record<string, GoldenTensor>; labels?: number[] }
export function golden(name: string): GoldenCase[] {
  return (JSON.parse(readFileSync(fixture('golden', `${name}.json`), 'utf8')) as { cases: GoldenCase[] }).cases;
}

/** Nest a flat array into `shape`. */
export function nest(flat: number[], shape: number[]): unknown {
  if (shape.length <= 1) return shape.length === 0 ? flat[0] : flat.slice();
  const [n, ...rest] = shape;
  const size = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n! }, (_, i) => nest(flat.slice(i * size, (i + 1) * size), rest));
}

/** max |a - b| over flattened nested arrays; throws if the lengths differ. */
export function maxAbsDiff(a: unknown, b: number[]): number {
  const flat = (Array.isArray(a) ? (a as unknown[]).flat(Infinity) : [a]) as number[];
  if (flat.length !== b.length) throw new Error(`length ${flat.length} != ${b.length}`);
  return flat.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

export const NEURALNET = { name: 'neuralnet', onnx: resolve(ROOT, 'tools/models/neuralnet/model.onnx') };
export const FASHION_MLP = { name: 'fashion_mlp', onnx: resolve(ROOT, 'tools/models/fashion_mlp/model.onnx') };
export const SLOW = { name: 'slow', onnx: fixture('models/slow_matmul/model.onnx') };
/** One row of the slow model as JSON: [1024 floats]. */
export const slowRows = (n: number) => ({ data: Array.from({ length: n }, () => new Array(1024).fill(0.5)) });
