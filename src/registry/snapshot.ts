/**
 * Snapshots (TorchServe's docs/snapshot.md): every management change writes the registry state;
 * a restart restores the same models, versions, defaults and worker counts. Written as a temp
 * file, fsynced, then renamed over the old one, so a crash never leaves half a snapshot.
 */
import { mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { nnsError } from '../errors.js';
import type { RegistryState } from './registry.js';

export function writeSnapshot(path: string, state: RegistryState): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const body = JSON.stringify({ name: 'nnserve-snapshot', created: new Date().toISOString(), modelCount: Object.keys(state.models).length, ...state }, null, 2);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, body);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function readSnapshot(path: string): RegistryState | undefined {
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw nnsError('SNAPSHOT_INVALID', `snapshot ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return validateState(raw, `snapshot ${path}`);
}

export function validateState(raw: unknown, where: string): RegistryState {
  const models = (raw as { models?: unknown })?.models;
  if (models === null || typeof models !== 'object' || Array.isArray(models)) throw nnsError('SNAPSHOT_INVALID', `${where}: "models" must be an object`);
  for (const [name, m] of Object.entries(models as Record<string, unknown>)) {
    const model = m as { defaultVersion?: unknown; versions?: Record<string, Record<string, unknown>> };
    if (typeof model?.defaultVersion !== 'string' || !model.versions || typeof model.versions !== 'object') {
      throw nnsError('SNAPSHOT_INVALID', `${where}: model "${name}" needs defaultVersion and versions`);
    }
    for (const [v, s] of Object.entries(model.versions)) {
      const ok = typeof s?.marName === 'string' && ['minWorkers', 'maxWorkers', 'batchSize', 'maxBatchDelay', 'responseTimeout'].every((k) => Number.isInteger(s[k]));
      if (!ok) throw nnsError('SNAPSHOT_INVALID', `${where}: model "${name}" version "${v}" needs marName and integer worker/batch settings`);
    }
  }
  return raw as RegistryState;
}
