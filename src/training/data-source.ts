/**
 * Opens a run's training, validation and test sets from their `DataSource`s (train-options.ts):
 * a KIND:PATH spec, a spec with options and a sample limit, or in-memory tensors.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { nnsError } from '../errors.js';
import { Subset, openDataset, parseDatasetSpec, validationSplit, type IndexedDataset } from './datasets/index.js';
import { TensorDataset } from './tensor-dataset.js';
import type { DataSource, DatasetOptions, TrainOptions } from './train-options.js';

export interface RunData {
  train: IndexedDataset;
  validation?: IndexedDataset;
  test?: IndexedDataset;
}

function firstN(d: IndexedDataset, limit: number | undefined): IndexedDataset {
  if (limit === undefined || limit >= d.length) return d;
  return new Subset(d, Uint32Array.from({ length: limit }, (_, i) => i));
}

export async function openSource(src: DataSource): Promise<IndexedDataset> {
  if (typeof src === 'string') return openDataset(src);
  if ('x' in src) return new TensorDataset(src.x, src.y);
  return firstN(await openDataset(src.dataset, src.options ?? {}), src.limit);
}

/** An idx training set's folder also holds the test split (t10k-*): the seed evaluates on it. */
async function defaultTest(src: DataSource): Promise<IndexedDataset | undefined> {
  const spec = typeof src === 'string' ? src : 'dataset' in src ? src.dataset : undefined;
  if (spec === undefined) return undefined;
  const { kind, path } = parseDatasetSpec(spec);
  if (kind !== 'idx') return undefined;
  const isDir = await stat(path).then((s) => s.isDirectory(), () => false);
  const hasTest = isDir && (await stat(join(path, 't10k-labels-idx1-ubyte.gz')).then(() => true, () => stat(join(path, 't10k-labels-idx1-ubyte')).then(() => true, () => false)));
  if (!hasTest) return undefined;
  const options: DatasetOptions = typeof src === 'string' ? {} : (src as { options?: DatasetOptions }).options ?? {};
  return openDataset({ kind, path }, { ...options, split: 'test' });
}

export async function openRunData(o: TrainOptions, seed: number): Promise<RunData> {
  let train = await openSource(o.dataset);
  let validation: IndexedDataset | undefined;
  const v = o.validation as { split?: number } | DataSource | undefined;
  if (v !== undefined && typeof v === 'object' && 'split' in v && typeof v.split === 'number') {
    const split = validationSplit(train, { fraction: v.split, seed });
    train = split.train;
    validation = split.validation;
  } else if (v !== undefined) {
    validation = await openSource(v as DataSource);
  }
  const test = o.test === null ? undefined : o.test !== undefined ? await openSource(o.test) : await defaultTest(o.dataset);
  if (train.length === 0) throw nnsError('TRAIN_DATASET_INVALID', 'the training set is empty');
  return { train, validation, test };
}
