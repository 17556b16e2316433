/**
 * Models, their versions, and each model's default version. Every lookup the APIs make goes
 * through here, so "unknown model" and "unknown version" are answered in one place. State
 * changes (register, scale, set-default, unregister) run one at a time and are announced to
 * listeners (the snapshot writer, replica sync) as a `RegistryState`.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listArchives, openArchive } from '../archive/mar.js';
import { splitList, type Config } from '../config.js';
import { nnsError } from '../errors.js';
import { ModelVersion, type LoadOverrides } from './model-version.js';

interface ModelEntry {
  versions: Map<string, ModelVersion>;
  defaultVersion: string;
}

type Log = NonNullable<Parameters<typeof ModelVersion.load>[3]> & { error: (o: object, m: string) => void };

export interface LoadFailure {
  archive: string;
  reason: string;
}

/** What is registered, in TorchServe's snapshot terms (docs/snapshot.md). */
export interface VersionState {
  marName: string;
  minWorkers: number;
  maxWorkers: number;
  batchSize: number;
  maxBatchDelay: number;
  responseTimeout: number;
}
export interface RegistryState {
  models: Record<string, { defaultVersion: string; versions: Record<string, VersionState> }>;
}

export type ChangeListener = (state: RegistryState) => void | Promise<void>;

export class Registry {
  private readonly models = new Map<string, ModelEntry>();
  /** Archives configured to load at start-up that have not finished loading (or failing). */
  private loading = new Set<string>();
  private readonly listeners: ChangeListener[] = [];
  private lock: Promise<unknown> = Promise.resolve();
  /** Where archives are unpacked; removed on close. */
  readonly workDir: string;

  constructor(private readonly config: Config, private readonly log?: Log) {
    this.workDir = mkdtempSync(join(tmpdir(), 'nnserve-'));
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /** Run state changes one at a time (register, scale, unregister, reconcile). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async changed(): Promise<void> {
    const state = this.state();
    for (const l of this.listeners) {
      try {
        await l(state);
      } catch (e) {
        this.log?.error({ err: (e as Error).message }, 'registry change listener failed');
      }
    }
  }

  /** Load archives from the model store per `load_models`; a broken one is reported, not fatal. */
  async loadStartupModels(): Promise<LoadFailure[]> {
    const spec = this.config.load_models.trim();
    if (spec === '' || spec === 'none' || spec === 'standalone') return [];
    const available = await listArchives(this.config.model_store);
    const wanted = spec === 'all' ? available : splitList(spec);
    const failures: LoadFailure[] = [];
    for (const item of wanted) this.loading.add(item);
    // Loaded one after another: concurrent session creation fights over the same cores.
    for (const item of wanted) {
      const archiveName = item.includes('=') ? item.slice(item.indexOf('=') + 1) : item;
      try {
        if (!available.includes(archiveName)) {
          throw nnsError('ARCHIVE_NOT_FOUND', `archive "${archiveName}" is not in the model store ${this.config.model_store}`);
        }
        const name = item.includes('=') ? item.slice(0, item.indexOf('=')) : undefined;
        const v = await this.exclusive(() => this.add(archiveName, { atStartup: true }, name));
        this.log?.info({ model: v.modelName, version: v.modelVersion, workers: v.pool.readyCount, engine: v.pool.engine }, 'model loaded');
      } catch (e) {
        const reason = (e as Error).message;
        failures.push({ archive: archiveName, reason });
        this.log?.error({ archive: archiveName, err: reason }, 'model failed to load');
      } finally {
        this.loading.delete(item);
      }
    }
    await this.changed();
    return failures;
  }

  /** Register an archive of the model store; nothing is registered unless all of it works. */
  async register(archiveName: string, overrides: LoadOverrides = {}, nameOverride?: string, handler?: string): Promise<ModelVersion> {
    if (handler) overrides = { ...overrides, handler };
    const v = await this.exclusive(() => this.add(archiveName, overrides, nameOverride));
    await this.changed();
    return v;
  }

  private async add(archiveName: string, overrides: LoadOverrides, nameOverride?: string): Promise<ModelVersion> {
    const archive = await openArchive(join(this.config.model_store, archiveName), { workDir: this.workDir });
    try {
      if (nameOverride) (archive.manifest.model as { modelName: string }).modelName = nameOverride;
      const { modelName, modelVersion } = archive.manifest.model;
      if (this.models.get(modelName)?.versions.has(modelVersion)) {
        throw nnsError('MODEL_VERSION_EXISTS', `Model version ${modelVersion} is already registered for model ${modelName}`);
      }
      const v = await ModelVersion.load(archive, this.config, overrides, this.log);
      const entry = this.models.get(modelName);
      if (entry) entry.versions.set(modelVersion, v);
      else this.models.set(modelName, { versions: new Map([[modelVersion, v]]), defaultVersion: modelVersion });
      return v;
    } catch (e) {
      await archive.cleanup();
      throw e;
    }
  }

  /** TorchServe: unregistering the default version while others remain is refused (403). */
  async unregister(modelName: string, version?: string): Promise<ModelVersion> {
    const v = await this.exclusive(async () => {
      const entry = this.entry(modelName);
      const target = version ?? entry.defaultVersion;
      const v = this.get(modelName, target);
      if (target === entry.defaultVersion && entry.versions.size > 1) {
        throw nnsError('DEFAULT_VERSION_DELETE', `Cannot remove default version ${target} for model ${modelName}; set another default first`);
      }
      entry.versions.delete(target);
      if (entry.versions.size === 0) this.models.delete(modelName);
      await v.unload();
      return v;
    });
    await this.changed();
    return v;
  }

  async setDefault(modelName: string, version: string): Promise<void> {
    await this.exclusive(async () => {
      this.get(modelName, version);
      this.entry(modelName).defaultVersion = version;
    });
    await this.changed();
  }

  /** Scale workers; with `waitMs` resolves once that many are ready (or the wait ends). */
  async scale(modelName: string, version: string | undefined, minWorkers: number, maxWorkers: number): Promise<ModelVersion> {
    if (!Number.isInteger(minWorkers) || !Number.isInteger(maxWorkers) || minWorkers < 0 || maxWorkers < 0) {
      throw nnsError('WORKERS_INVALID', `worker counts must be non-negative integers (min_worker=${minWorkers}, max_worker=${maxWorkers})`);
    }
    if (maxWorkers < minWorkers) throw nnsError('WORKERS_INVALID', `max_worker ${maxWorkers} is smaller than min_worker ${minWorkers}`);
    const v = await this.exclusive(async () => {
      const v = this.get(modelName, version);
      v.scale(minWorkers, maxWorkers);
      return v;
    });
    await this.changed();
    return v;
  }

  /**
   * Make the local registry equal `target` (a snapshot, or another replica's state): load what
   * is missing from the shared model store, unload what is gone, then scale and set defaults.
   * A version that fails to load is reported and skipped; the rest still converge.
   */
  async reconcile(target: RegistryState, notify = false): Promise<LoadFailure[]> {
    const failures: LoadFailure[] = [];
    await this.exclusive(async () => {
      for (const [name, model] of Object.entries(target.models)) {
        for (const [version, s] of Object.entries(model.versions)) {
          const have = this.models.get(name)?.versions.get(version);
          if (have) {
            if (have.minWorkers !== s.minWorkers || have.maxWorkers !== s.maxWorkers) have.scale(s.minWorkers, s.maxWorkers);
            continue;
          }
          try {
            await this.add(s.marName, { atStartup: this.loading.size > 0, minWorkers: s.minWorkers, maxWorkers: s.maxWorkers, batchSize: s.batchSize, maxBatchDelay: s.maxBatchDelay, responseTimeout: s.responseTimeout }, name);
          } catch (e) {
            failures.push({ archive: s.marName, reason: (e as Error).message });
            this.log?.error({ archive: s.marName, err: (e as Error).message }, 'model failed to load');
          }
        }
        const entry = this.models.get(name);
        if (entry?.versions.has(model.defaultVersion)) entry.defaultVersion = model.defaultVersion;
      }
      // Take what is gone out of the maps first, so no lookup sees a model without versions.
      const gone: ModelVersion[] = [];
      for (const [name, entry] of [...this.models]) {
        for (const [version, v] of [...entry.versions]) {
          if (target.models[name]?.versions[version]) continue;
          entry.versions.delete(version);
          gone.push(v);
        }
        if (entry.versions.size === 0) this.models.delete(name);
        else if (!entry.versions.has(entry.defaultVersion)) entry.defaultVersion = [...entry.versions.keys()][0]!;
      }
      await Promise.all(gone.map((v) => v.unload()));
    });
    if (notify) await this.changed();
    return failures;
  }

  /** Mark start-up as loading while `fn` runs (for readiness). */
  async startingUp<T>(label: string, fn: () => Promise<T>): Promise<T> {
    this.loading.add(label);
    try {
      return await fn();
    } finally {
      this.loading.delete(label);
    }
  }

  state(): RegistryState {
    const models: RegistryState['models'] = {};
    for (const [name, entry] of [...this.models].sort(([a], [b]) => a.localeCompare(b))) {
      const versions: Record<string, VersionState> = {};
      for (const [version, v] of entry.versions) {
        const b = v.batcher.options;
        versions[version] = {
          marName: v.archive.archiveName, minWorkers: v.minWorkers, maxWorkers: v.maxWorkers,
          batchSize: b.batchSize, maxBatchDelay: b.maxBatchDelayMs, responseTimeout: v.responseTimeout,
        };
      }
      models[name] = { defaultVersion: entry.defaultVersion, versions };
    }
    return { models };
  }

  private entry(modelName: string): ModelEntry {
    const entry = this.models.get(modelName);
    if (!entry) throw nnsError('MODEL_NOT_FOUND', `Model not found: ${modelName}`);
    return entry;
  }

  /** The version asked for, or the model's default version. */
  get(modelName: string, version?: string): ModelVersion {
    const entry = this.entry(modelName);
    const v = entry.versions.get(version ?? entry.defaultVersion);
    if (!v) throw nnsError('MODEL_VERSION_NOT_FOUND', `Model version: ${version} does not exist for model: ${modelName}`);
    return v;
  }

  has(modelName: string): boolean {
    return this.models.has(modelName);
  }

  names(): string[] {
    return [...this.models.keys()].sort();
  }

  versions(modelName: string): ModelVersion[] {
    return [...this.entry(modelName).versions.values()];
  }

  defaultVersion(modelName: string): string {
    return this.entry(modelName).defaultVersion;
  }

  all(): ModelVersion[] {
    return [...this.models.values()].flatMap((e) => [...e.versions.values()]);
  }

  /** Start-up archives still loading. */
  get loadingCount(): number {
    return this.loading.size;
  }

  /**
   * TorchServe's /ping and the readiness probe: true only when no start-up model is still
   * loading and every version with minWorkers > 0 has a ready worker (TorchServe answered
   * "Healthy" before a large model had loaded: its issue #2434).
   */
  ready(): boolean {
    return this.loading.size === 0 && this.all().every((v) => v.minWorkers === 0 || v.ready);
  }

  async close(): Promise<void> {
    await this.lock;
    const all = this.all();
    this.models.clear();
    await Promise.all(all.map((v) => v.unload()));
    await rm(this.workDir, { recursive: true, force: true });
  }
}
