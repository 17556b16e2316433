/**
 * The one validated, frozen configuration. TorchServe's key names (docs/configuration.md) so a
 * TorchServe user finds what they look for; units in the names of nnserve's own keys.
 *
 * Precedence, as TorchServe: environment (NNSERVE_<KEY>) > CLI flags > config file > defaults.
 * This is the only module that reads process.env.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { nnsError } from './errors.js';

export type EngineName = 'native' | 'wasm';

export interface Config {
  /** URL the inference API (and KServe v2) listens on. @defaultValue http://127.0.0.1:8080 */
  readonly inference_address: string;
  /** URL the management API listens on. @defaultValue http://127.0.0.1:8081 */
  readonly management_address: string;
  /** URL the metrics API listens on. @defaultValue http://127.0.0.1:8082 */
  readonly metrics_address: string;
  /** Folder holding .mar archives (or unpacked archive folders). @defaultValue ./model-store */
  readonly model_store: string;
  /** "all", "none"/"standalone", or a comma list of archive names (optionally name=archive). @defaultValue all */
  readonly load_models: string;
  /** Workers per model when the archive does not say. 0 = one per core / intra-op threads. @defaultValue 1 */
  readonly default_workers_per_model: number;
  /** Requests waiting per model version before 503. @defaultValue 100 */
  readonly job_queue_size: number;
  /** Largest request body in bytes. @defaultValue 6553500 (TorchServe's) */
  readonly max_request_size: number;
  /** Largest response body in bytes. @defaultValue 6553500 */
  readonly max_response_size: number;
  /** Per-request limit in seconds when the model config does not say. @defaultValue 120 */
  readonly default_response_timeout: number;
  /** Seconds a model may take to load. @defaultValue 120 */
  readonly default_startup_timeout: number;
  /** Default batch size (requests' rows per inference) when the model config does not say. @defaultValue 1 */
  readonly batch_size: number;
  /** Default max batch delay in milliseconds. @defaultValue 100 */
  readonly max_batch_delay: number;
  /** Inference engine: onnxruntime-node ("native") or onnxruntime-web ("wasm"). @defaultValue native */
  readonly engine: EngineName;
  /** ONNX Runtime intra-op threads per worker; 0 = cores / workers (never oversubscribe), 1 for a model under 1 MiB. @defaultValue 0 */
  readonly intra_op_threads: number;
  /** CPU cores nnserve plans threads for. @defaultValue os.availableParallelism() */
  readonly number_of_cores: number;
  /** Let archives name handler code they carry themselves (TorchServe's known hole). @defaultValue false */
  readonly allow_archive_handlers: boolean;
  /** Model the seed tutorial's `POST /predict` serves; empty = the only registered model. @defaultValue "" */
  readonly default_model: string;
  /** Log level for the Fastify logger. @defaultValue info */
  readonly log_level: string;
  /** Allow register/unregister through the management API (TorchServe's gate). @defaultValue false */
  readonly enable_model_api: boolean;
  /** Turn off bearer-token authorization (management, and inference when enabled). @defaultValue false */
  readonly disable_token_authorization: boolean;
  /** Also require the inference key on the inference port. @defaultValue false */
  readonly enable_inference_auth: boolean;
  /** Where the generated keys are written (mode 0600). @defaultValue key_file.json */
  readonly key_file: string;
  /** Management key (e.g. from a Kubernetes Secret); generated when empty. @defaultValue "" */
  readonly management_key: string;
  /** Inference key; generated when empty. @defaultValue "" */
  readonly inference_key: string;
  /** Comma list of regexes a model URL must match; empty = only archives in the model store. @defaultValue "" */
  readonly allowed_urls: string;
  /** Let model URLs point at loopback, private and link-local addresses. @defaultValue false */
  readonly allow_internal_urls: boolean;
  /** Largest archive accepted by upload or URL download, in bytes. @defaultValue 1073741824 */
  readonly max_model_size: number;
  /** Persist every management change and restore it at start. @defaultValue true */
  readonly enable_snapshots: boolean;
  /** Snapshot file; empty = <model_store>/.nnserve/snapshot.json. @defaultValue "" */
  readonly snapshot_file: string;
  /** Redis URL for replicas that share a model store (also read from REDIS_URL); empty = alone. @defaultValue "" */
  readonly redis_url: string;
}

type Kind = 'string' | 'int' | 'bool' | 'engine';

const SCHEMA: Record<keyof Config, { kind: Kind; min?: number; def: () => unknown }> = {
  inference_address: { kind: 'string', def: () => 'http://127.0.0.1:8080' },
  management_address: { kind: 'string', def: () => 'http://127.0.0.1:8081' },
  metrics_address: { kind: 'string', def: () => 'http://127.0.0.1:8082' },
  model_store: { kind: 'string', def: () => 'model-store' },
  load_models: { kind: 'string', def: () => 'all' },
  default_workers_per_model: { kind: 'int', min: 0, def: () => 1 },
  job_queue_size: { kind: 'int', min: 1, def: () => 100 },
  max_request_size: { kind: 'int', min: 1, def: () => 6553500 },
  max_response_size: { kind: 'int', min: 1, def: () => 6553500 },
  default_response_timeout: { kind: 'int', min: 1, def: () => 120 },
  default_startup_timeout: { kind: 'int', min: 1, def: () => 120 },
  batch_size: { kind: 'int', min: 1, def: () => 1 },
  max_batch_delay: { kind: 'int', min: 0, def: () => 100 },
  engine: { kind: 'engine', def: () => 'native' },
  intra_op_threads: { kind: 'int', min: 0, def: () => 0 },
  number_of_cores: { kind: 'int', min: 1, def: () => availableParallelism() },
  allow_archive_handlers: { kind: 'bool', def: () => false },
  default_model: { kind: 'string', def: () => '' },
  log_level: { kind: 'string', def: () => 'info' },
  enable_model_api: { kind: 'bool', def: () => false },
  disable_token_authorization: { kind: 'bool', def: () => false },
  enable_inference_auth: { kind: 'bool', def: () => false },
  key_file: { kind: 'string', def: () => 'key_file.json' },
  management_key: { kind: 'string', def: () => '' },
  inference_key: { kind: 'string', def: () => '' },
  allowed_urls: { kind: 'string', def: () => '' },
  allow_internal_urls: { kind: 'bool', def: () => false },
  max_model_size: { kind: 'int', min: 1, def: () => 1024 * 1024 * 1024 },
  enable_snapshots: { kind: 'bool', def: () => true },
  snapshot_file: { kind: 'string', def: () => '' },
  redis_url: { kind: 'string', def: () => '' },
};

export const CONFIG_KEYS = Object.keys(SCHEMA) as (keyof Config)[];

function coerce(key: keyof Config, raw: unknown, source: string): unknown {
  const spec = SCHEMA[key];
  const bad = (expected: string) =>
    nnsError('CONFIG_INVALID', `config key "${key}" from ${source}: expected ${expected}, got ${JSON.stringify(raw)}`);
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string' && typeof raw !== 'number') throw bad('a string');
      return String(raw).trim();
    case 'int': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
      if (!Number.isInteger(n) || n < (spec.min ?? -Infinity)) throw bad(`an integer >= ${spec.min ?? 0}`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (s === 'true') return true;
      if (s === 'false') return false;
      throw bad('true or false');
    }
    case 'engine': {
      const s = String(raw).trim();
      if (s !== 'native' && s !== 'wasm') throw bad('"native" or "wasm"');
      return s;
    }
  }
}

/** TorchServe's config.properties: `key=value` lines, `#` comments. A .yaml/.yml/.json file also works. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw nnsError('CONFIG_INVALID', `cannot read config file ${path}: ${(e as Error).message}`);
  }
  if (/\.(ya?ml|json)$/i.test(path)) {
    const doc = parseYaml(text) as unknown;
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw nnsError('CONFIG_INVALID', `config file ${path} must hold a mapping of keys to values`);
    }
    return doc as Record<string, unknown>;
  }
  const out: Record<string, unknown> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith('!')) return;
    const eq = t.search(/[=:]/);
    if (eq <= 0) throw nnsError('CONFIG_INVALID', `config file ${path} line ${i + 1}: expected key=value, got "${t}"`);
    out[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
  });
  return out;
}

export interface ConfigSources {
  /** Parsed config file contents (lowest precedence after defaults). */
  file?: Record<string, unknown>;
  /** Values from CLI flags or from a test. */
  overrides?: Partial<Record<keyof Config, unknown>>;
  /** Environment; defaults to process.env. Pass {} in tests for isolation. */
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const out: Record<string, unknown> = {};
  const layers: [string, Record<string, unknown>][] = [
    ['config file', sources.file ?? {}],
    ['command line', (sources.overrides ?? {}) as Record<string, unknown>],
  ];
  // Keys nnserve does not use (vmargs, netty threads...) are ignored, as TorchServe ignores them.
  for (const key of CONFIG_KEYS) {
    let value: unknown = SCHEMA[key].def();
    let source = 'default';
    for (const [name, layer] of layers) {
      if (layer[key] !== undefined) {
        value = layer[key];
        source = name;
      }
    }
    // REDIS_URL is the name every Redis-backed service reads; NNSERVE_REDIS_URL still wins.
    const envValue = env[`NNSERVE_${key.toUpperCase()}`] ?? (key === 'redis_url' ? env.REDIS_URL : undefined);
    if (envValue !== undefined) {
      value = envValue;
      source = `environment NNSERVE_${key.toUpperCase()}`;
    }
    out[key] = coerce(key, value, source);
  }
  for (const key of ['inference_address', 'management_address', 'metrics_address'] as const) {
    parseAddress(out[key] as string, key);
  }
  out.model_store = resolve(out.model_store as string);
  out.snapshot_file = resolve(out.model_store as string, (out.snapshot_file as string) || '.nnserve/snapshot.json');
  out.key_file = resolve(out.key_file as string);
  for (const re of splitList(out.allowed_urls as string)) {
    try {
      new RegExp(re);
    } catch {
      throw nnsError('CONFIG_INVALID', `config key "allowed_urls": "${re}" is not a valid regular expression`);
    }
  }
  return Object.freeze(out as unknown as Config);
}

/** `http://127.0.0.1:8080` -> host and port; TorchServe's address format. */
export function parseAddress(address: string, key = 'address'): { host: string; port: number } {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw nnsError('CONFIG_INVALID', `config key "${key}": "${address}" is not a URL like http://127.0.0.1:8080`);
  }
  if (url.protocol !== 'http:') {
    throw nnsError('CONFIG_INVALID', `config key "${key}": only http:// addresses are supported, got "${address}"`);
  }
  const port = url.port === '' ? 80 : Number(url.port);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
}

/** TorchServe's comma-separated list form (allowed_urls, load_models). */
export function splitList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}
