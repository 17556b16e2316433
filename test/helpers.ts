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

/** A real `nnserve start` process on free ports, for restart, replica and socket tests. */
export interface ServerProcess {
  pid: number;
  inference: string;
  management: string;
  metrics: string;
  key: string;
  log: () => string;
  /** Fetch on the management port with the key. */
  manage(path: string, init?: RequestInit): Promise<Response>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

let nextPort = 20000 + (process.pid % 200) * 40;

export async function startServerProcess(store: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const { spawn } = await import('node:child_process');
  const port = nextPort;
  nextPort += 3;
  const keyFile = join(mkdtempSync(join(tmpdir(), 'nnserve-keys-')), 'key_file.json');
  const addresses = {
    NNSERVE_INFERENCE_ADDRESS: `http://127.0.0.1:${port}`,
    NNSERVE_MANAGEMENT_ADDRESS: `http://127.0.0.1:${port + 1}`,
    NNSERVE_METRICS_ADDRESS: `http://127.0.0.1:${port + 2}`,
  };
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli.js'), 'start', '--model-store', store], {
    env: { ...process.env, ...addresses, NNSERVE_KEY_FILE: keyFile, NNSERVE_ENABLE_MODEL_API: 'true', NNSERVE_NUMBER_OF_CORES: '2', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
  const until = Date.now() + 30_000;
  while (!out.includes('nnserve started')) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`nnserve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const key = env.NNSERVE_DISABLE_TOKEN_AUTHORIZATION === 'true' ? '' : (JSON.parse(readFileSync(keyFile, 'utf8')) as { management: { key: string } }).management.key;
  const management = addresses.NNSERVE_MANAGEMENT_ADDRESS;
  return {
    pid: child.pid!, inference: addresses.NNSERVE_INFERENCE_ADDRESS, management, metrics: addresses.NNSERVE_METRICS_ADDRESS, key,
    log: () => out,
    manage: (path, init = {}) => fetch(`${management}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers as Record<string, string> | undefined) } }),
    async kill(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}
