/**
 * `?feature_maps=1[&layer=name]`: what a CNN "sees" (seed tutorial 7.5). The model's ONNX is
 * copied with the layer's activations (default: the first Conv's output) added as a graph
 * output and run in its own one-thread worker pool, started on first use and stopped after
 * FEATURE_POOL_IDLE_MS unused, so the serving path never pays for the extra output.
 */
import { readFile } from 'node:fs/promises';
import { Batcher } from '../../engine/batcher.js';
import { WorkerPool } from '../../engine/pool.js';
import { nnsError } from '../../errors.js';
import { addFloatOutput, findLayerOutput, listNodes } from '../../onnx/graph-outputs.js';
import { compileModel } from '../../registry/compile.js';
import type { ModelVersion } from '../../registry/model-version.js';
import type { TensorData } from '../../runtime/ort.js';

const FEATURE_POOL_IDLE_MS = 5 * 60_000;

interface Entry {
  tensor: string;
  pool: WorkerPool;
  batcher: Batcher;
  timer?: NodeJS.Timeout;
}

export class FeatureMaps {
  private readonly entries = new Map<string, Promise<Entry>>();
  private readonly ids = new WeakMap<ModelVersion, number>();
  private nextId = 1;

  /** Activations of `layer` for the preprocessed feeds: [N, C, H, W]. */
  async run(v: ModelVersion, layer: string | undefined, feeds: Record<string, TensorData>, rows: number): Promise<{ tensor: string; maps: TensorData }> {
    const e = await this.entry(v, layer);
    this.touch(e);
    const { outputs } = await e.batcher.submit(feeds, rows);
    this.touch(e);
    const maps = outputs[e.tensor];
    if (!maps) throw nnsError('INTERNAL', `model "${v.modelName}": feature-map output ${e.tensor} missing from the run`);
    return { tensor: e.tensor, maps };
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map(async (p) => {
      const e = await p.catch(() => undefined);
      if (e) await stop(e);
    }));
  }

  private entry(v: ModelVersion, layer: string | undefined): Promise<Entry> {
    let id = this.ids.get(v);
    if (id === undefined) this.ids.set(v, (id = this.nextId++));
    const key = `${id}\0${layer ?? ''}`;
    let p = this.entries.get(key);
    if (!p) {
      p = this.start(v, layer, key);
      p.catch(() => this.entries.delete(key));
      this.entries.set(key, p);
    }
    return p;
  }

  private async start(v: ModelVersion, layer: string | undefined, key: string): Promise<Entry> {
    const onnx = await this.onnx(v);
    const { tensor } = findLayerOutput(listNodes(onnx), layer);
    const model = addFloatOutput(onnx, tensor);
    const label = `${v.modelName}/${v.modelVersion} feature maps (${tensor})`;
    let batcher: Batcher | undefined;
    const pool = new WorkerPool({
      label, model, engine: v.pool.engine, intraOpThreads: 1, startupTimeoutMs: v.startupTimeout * 1000,
      onIdle: () => batcher?.pump(),
    });
    batcher = new Batcher(pool, {
      label, batchSize: 1, maxBatchDelayMs: 0, jobQueueSize: 16, responseTimeoutMs: v.responseTimeout * 1000, batchable: false,
    });
    const e: Entry = { tensor, pool, batcher };
    try {
      await pool.start(1);
    } catch (err) {
      await pool.close();
      throw err;
    }
    e.timer = setTimeout(() => this.expire(key, e), FEATURE_POOL_IDLE_MS);
    e.timer.unref();
    return e;
  }

  private async onnx(v: ModelVersion): Promise<Uint8Array> {
    const m = v.archive.manifest.model;
    return m.architecture ? (await compileModel(v.archive)).onnx : readFile(v.archive.resolveFile(m.serializedFile));
  }

  private touch(e: Entry): void {
    e.timer?.refresh();
  }

  private expire(key: string, e: Entry): void {
    if (e.batcher.pending > 0) return this.touch(e);
    this.entries.delete(key);
    void stop(e);
  }
}

async function stop(e: Entry): Promise<void> {
  clearTimeout(e.timer);
  e.batcher.close();
  await e.pool.close();
}
