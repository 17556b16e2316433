/**
 * What a run leaves in its output folder:
 *   architecture.json   the architecture trained (the archive compiles it at load time)
 *   weights.safetensors the final state_dict (parameters and buffers, PyTorch's key order)
 *   best.safetensors    the state_dict of the best epoch (train-result.ts `best`)
 *   metrics.json        TrainResult
 *   loss.png            the loss curves
 *   NAME.mar            a servable archive: architecture.json + weights.safetensors
 * Files are written beside their target and renamed, so a reader never sees half a file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeArchive } from '../archive/archiver.js';
import { writeSafetensors, type StateDict } from '../weights/index.js';
import { lossCurvePng } from './loss-curve.js';
import type { ServingFiles } from './serving-config.js';
import type { TrainResult } from './train-result.js';

export interface OutputFiles {
  architecture: string;
  weights: string;
  best: string;
  metrics: string;
  loss_curve: string;
  archive: string;
  model_config?: string;
  labels?: string;
}

export interface ArchiveInfo {
  version: string;
  handler: string;
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** A copy of every tensor (the live arrays keep changing while training goes on). */
export function snapshotStateDict(sd: StateDict): StateDict {
  return new Map([...sd].map(([k, t]) => [k, { ...t, data: t.data.slice() }]));
}

export class ArtifactsWriter {
  readonly files: OutputFiles;

  constructor(readonly outDir: string, readonly name: string, private readonly arch: unknown) {
    this.files = {
      architecture: join(outDir, 'architecture.json'),
      weights: join(outDir, 'weights.safetensors'),
      best: join(outDir, 'best.safetensors'),
      metrics: join(outDir, 'metrics.json'),
      loss_curve: join(outDir, 'loss.png'),
      archive: join(outDir, `${name}.mar`),
    };
  }

  /** Creates the folder and writes the architecture and serving files, before the first step. */
  async prepare(serving: ServingFiles): Promise<void> {
    await mkdir(this.outDir, { recursive: true });
    await writeAtomic(this.files.architecture, `${JSON.stringify(this.arch, null, 2)}\n`);
    if (serving.modelConfig !== undefined) {
      this.files.model_config = join(this.outDir, 'model-config.yaml');
      await writeAtomic(this.files.model_config, serving.modelConfig);
    }
    if (serving.labels !== undefined) {
      this.files.labels = join(this.outDir, 'index_to_name.json');
      await writeAtomic(this.files.labels, serving.labels);
    }
  }

  /** Final and best weights, metrics, loss curve and archive, once training has ended. */
  async finish(final: StateDict, best: StateDict, result: TrainResult, archive: ArchiveInfo): Promise<void> {
    await writeAtomic(this.files.weights, writeSafetensors(final, { format: 'pt' }));
    await writeAtomic(this.files.best, writeSafetensors(best, { format: 'pt' }));
    await writeAtomic(this.files.metrics, `${JSON.stringify(result, null, 1)}\n`);
    await writeAtomic(this.files.loss_curve, await lossCurvePng(result));
    await writeArchive({
      modelName: this.name,
      version: archive.version,
      serializedFile: this.files.weights,
      architecture: this.files.architecture,
      handler: archive.handler,
      configFile: this.files.model_config,
      extraFiles: this.files.labels !== undefined ? [this.files.labels] : undefined,
      exportPath: this.outDir,
      force: true,
    });
  }
}
