/**
 * Models, their versions, and each model's default version. Every lookup the APIs make goes
 * through here, so "unknown model" and "unknown version" are answered in one place.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listArchives, openArchive } from '../archive/mar.js';
import type { Config } from '../config.js';
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

export class Registry {
  private readonly models = new Map<string, ModelEntry>();
  /** Where archives are unpacked; removed on close. */
  readonly workDir: string;

  constructor(private readonly config: Config, private readonly log?: Log) {
    this.workDir = mkdtempSync(join(tmpdir(), 'nnserve-'));
  }

  /** Load archives from the model store per `load_models`; a broken one is reported, not fatal. */
  async loadStartupModels(): Promise<LoadFailure[]> {
    const spec = this.config.load_models.trim();
    if (spec === '' || spec === 'none' || spec === 'standalone') return [];
    const available = await listArchives(this.config.model_store);
    const wanted = spec === 'all' ? available : spec.split(',').map((s) => s.trim()).filter(Boolean);
    const failures: LoadFailure[] = [];
    // Loaded one after another: concurrent session creation fights over the same cores.
    for (const item of wanted) {
      const archiveName = item.includes('=') ? item.slice(item.indexOf('=') + 1) : item;
      try {
        if (!available.includes(archiveName)) {
          throw nnsError('ARCHIVE_NOT_FOUND', `archive "${archiveName}" is not in the model store ${this.config.model_store}`);
        }
        const v = await this.register(join(this.config.model_store, archiveName), {}, item.includes('=') ? item.slice(0, item.indexOf('=')) : undefined);
        this.log?.info({ model: v.modelName, version: v.modelVersion, workers: v.pool.readyCount, engine: v.pool.engine }, 'model loaded');
      } catch (e) {
        const reason = (e as Error).message;
        failures.push({ archive: archiveName, reason });
        this.log?.error({ archive: archiveName, err: reason }, 'model failed to load');
      }
    }
    return failures;
  }

  /** Open, validate and start a model version; nothing is registered unless all of it works. */
  async register(archivePath: string, overrides: LoadOverrides = {}, nameOverride?: string): Promise<ModelVersion> {
    const archive = await openArchive(archivePath, { workDir: this.workDir });
    try {
      if (nameOverride) (archive.manifest.model as { modelName: string }).modelName = nameOverride;
      const { modelName, modelVersion } = archive.manifest.model;
      if (this.models.get(modelName)?.versions.has(modelVersion)) {
        throw nnsError('MODEL_VERSION_EXISTS', `Model version ${modelVersion} is already registered for model ${modelName}`);
      }
      const v = await ModelVersion.load(archive, this.config, overrides, this.log);
      // Checked again: another registration of the same version may have finished meanwhile.
      const entry = this.models.get(modelName);
      if (entry?.versions.has(modelVersion)) {
        await v.unload();
        throw nnsError('MODEL_VERSION_EXISTS', `Model version ${modelVersion} is already registered for model ${modelName}`);
      }
      if (entry) entry.versions.set(modelVersion, v);
      else this.models.set(modelName, { versions: new Map([[modelVersion, v]]), defaultVersion: modelVersion });
      return v;
    } catch (e) {
      await archive.cleanup();
      throw e;
    }
  }

  /** The version asked for, or the model's default version. */
  get(modelName: string, version?: string): ModelVersion {
    const entry = this.models.get(modelName);
    if (!entry) throw nnsError('MODEL_NOT_FOUND', `Model not found: ${modelName}`);
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
    const entry = this.models.get(modelName);
    if (!entry) throw nnsError('MODEL_NOT_FOUND', `Model not found: ${modelName}`);
    return [...entry.versions.values()];
  }

  defaultVersion(modelName: string): string {
    const entry = this.models.get(modelName);
    if (!entry) throw nnsError('MODEL_NOT_FOUND', `Model not found: ${modelName}`);
    return entry.defaultVersion;
  }

  all(): ModelVersion[] {
    return [...this.models.values()].flatMap((e) => [...e.versions.values()]);
  }

  /** TorchServe's /ping: healthy only when every version with minWorkers > 0 has a ready worker. */
  healthy(): boolean {
    return this.all().every((v) => v.minWorkers === 0 || v.ready);
  }

  async close(): Promise<void> {
    const all = this.all();
    this.models.clear();
    await Promise.all(all.map((v) => v.unload()));
    await rm(this.workDir, { recursive: true, force: true });
  }
}
