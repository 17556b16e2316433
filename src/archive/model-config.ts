/**
 * model-config.yaml, with TorchServe's frontend key names (frontend/archive/.../ModelConfig.java).
 * Known keys are checked here; every other key is a backend parameter handed to the handler,
 * as TorchServe hands them over in context.model_yaml_config.
 */
import { parseDocument } from 'yaml';
import { nnsError } from '../errors.js';

export interface ModelConfig {
  /** Workers started at registration. */
  minWorkers?: number;
  /** Most workers scaling may reach; >= minWorkers. */
  maxWorkers?: number;
  /** Requests merged into one inference; >= 1. */
  batchSize?: number;
  /** Milliseconds the batcher waits to fill a batch. */
  maxBatchDelay?: number;
  /** Seconds a request may take; >= 1. */
  responseTimeout?: number;
  /** Seconds a worker may take to load the model; >= 1. */
  startupTimeout?: number;
  /** Requests waiting per model version before 503; >= 1. */
  jobQueueSize?: number;
  [backendKey: string]: unknown;
}

// TorchServe ignores values <= 0 for these (ModelConfig.java setters); nnserve refuses them instead.
const KNOWN_KEYS: Record<string, { min: number }> = {
  minWorkers: { min: 0 },
  maxWorkers: { min: 0 },
  batchSize: { min: 1 },
  maxBatchDelay: { min: 0 },
  responseTimeout: { min: 1 },
  startupTimeout: { min: 1 },
  jobQueueSize: { min: 1 },
};

export function parseModelConfig(yamlText: string, where: string): ModelConfig {
  const bad = (msg: string) => nnsError('MODEL_CONFIG_INVALID', `${where}: ${msg}`);
  // The yaml package's default (core) schema builds plain data only; no tags run code.
  const doc = parseDocument(yamlText, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw bad(`not valid YAML: ${doc.errors[0]!.message}`);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw bad(`expected a mapping of keys to values, got ${Array.isArray(data) ? 'a list' : JSON.stringify(data)}`);
  }
  const config = data as ModelConfig;
  for (const [key, { min }] of Object.entries(KNOWN_KEYS)) {
    const v = config[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw bad(`key "${key}" must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
  }
  if (config.minWorkers !== undefined && config.maxWorkers !== undefined && config.minWorkers > config.maxWorkers) {
    throw bad(`key "minWorkers" (${config.minWorkers}) must not exceed "maxWorkers" (${config.maxWorkers})`);
  }
  return config;
}
