/**
 * The data iterator every dataset kind shares: torch's Dataset + DataLoader folded into one
 * `batches()` call. A dataset knows its length, the per-sample shape of x and y, and how to
 * gather any set of indices into one batch; shuffling, batching, the partial last batch and
 * validation splits are written once, here.
 */
import type { DType, TensorData } from '../../runtime/ort.js';
import { nnsError } from '../../errors.js';
import { permutation } from './rng.js';

/** One mini-batch: x and y with the batch as the first dimension. */
export interface Batch {
  x: TensorData;
  y: TensorData;
}

/** A tensor's type and per-sample dimensions (without the batch dimension). */
export interface SampleSpec {
  dtype: DType;
  dims: number[];
}

export interface BatchOptions {
  /** Samples per batch. */
  batchSize: number;
  /** Visit samples in a seeded random order. @defaultValue false */
  shuffle?: boolean;
  /** Shuffle seed; pass a different one per epoch (e.g. seed + epoch) for a new order each epoch. @defaultValue 0 */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize. @defaultValue false */
  dropLast?: boolean;
}

export interface Dataset {
  /** Number of samples. */
  readonly length: number;
  /** x's dtype and per-sample dims, e.g. float32 [1, 28, 28]. */
  readonly xSpec: SampleSpec;
  /** y's dtype and per-sample dims, e.g. int64 [] for class indices. */
  readonly ySpec: SampleSpec;
  /** Class names by index, for classification datasets. */
  readonly classes?: readonly string[];
  batches(options: BatchOptions): AsyncIterable<Batch>;
}

/** Number of batches `batches(options)` yields for `length` samples. */
export function batchCount(length: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(length / batchSize) : Math.ceil(length / batchSize);
}

/** A dataset whose samples can be fetched by index; subclasses implement `getBatch`. */
export abstract class IndexedDataset implements Dataset {
  abstract readonly length: number;
  abstract readonly xSpec: SampleSpec;
  abstract readonly ySpec: SampleSpec;
  readonly classes?: readonly string[];

  /** Gathers the samples at `indices` (in that order) into one batch. */
  abstract getBatch(indices: ArrayLike<number>): Batch | Promise<Batch>;

  /** Yields batches in order (or seeded-shuffled), the last one partial unless dropLast. */
  async *batches(options: BatchOptions): AsyncGenerator<Batch> {
    const { batchSize, shuffle = false, seed = 0, dropLast = false } = options ?? ({} as BatchOptions);
    if (!Number.isInteger(batchSize) || batchSize <= 0) {
      throw nnsError('TRAIN_OPTIONS_INVALID', `batch size: expected a positive integer, got ${JSON.stringify(batchSize)}`);
    }
    if (!Number.isFinite(seed)) throw nnsError('TRAIN_OPTIONS_INVALID', `shuffle seed: expected an integer, got ${JSON.stringify(seed)}`);
    const n = this.length;
    const order = shuffle ? permutation(n, seed) : null;
    const count = batchCount(n, batchSize, dropLast);
    const indicesOf = (b: number): ArrayLike<number> => {
      const start = b * batchSize;
      const end = Math.min(n, start + batchSize);
      if (order) return order.subarray(start, end);
      const idx = new Uint32Array(end - start);
      for (let i = 0; i < idx.length; i++) idx[i] = start + i;
      return idx;
    };
    // Gather the next batch while the caller works on this one (image decoding is async).
    let next: Promise<Batch> | null = count > 0 ? Promise.resolve(this.getBatch(indicesOf(0))) : null;
    try {
      for (let b = 0; b < count; b++) {
        const current = await next!;
        next = b + 1 < count ? Promise.resolve().then(() => this.getBatch(indicesOf(b + 1))) : null;
        yield current;
      }
    } finally {
      // The caller stopped early: a pending prefetch must not become an unhandled rejection.
      next?.catch(() => undefined);
    }
  }
}

/** The samples of `dataset` at `indices`, in that order (torch.utils.data.Subset). */
export class Subset extends IndexedDataset {
  readonly length: number;
  readonly xSpec: SampleSpec;
  readonly ySpec: SampleSpec;
  override readonly classes?: readonly string[];

  constructor(readonly dataset: IndexedDataset, readonly indices: Uint32Array) {
    super();
    for (const i of indices) {
      if (i >= dataset.length) throw nnsError('TRAIN_OPTIONS_INVALID', `subset index ${i} is out of range for a dataset of ${dataset.length} samples`);
    }
    this.length = indices.length;
    this.xSpec = dataset.xSpec;
    this.ySpec = dataset.ySpec;
    this.classes = dataset.classes;
  }

  getBatch(indices: ArrayLike<number>): Batch | Promise<Batch> {
    const mapped = new Uint32Array(indices.length);
    for (let i = 0; i < mapped.length; i++) mapped[i] = this.indices[indices[i]];
    return this.dataset.getBatch(mapped);
  }
}

export interface SplitOptions {
  /** Share of samples held out for validation, in (0, 1): floor(length * fraction) samples. */
  fraction: number;
  /** @defaultValue 0 */
  seed?: number;
}

/**
 * A seeded random train/validation split (torch's random_split with [1 - f, f] gives the same
 * sizes; the members differ, as the generator does).
 */
export function validationSplit(dataset: IndexedDataset, options: SplitOptions): { train: Subset; validation: Subset } {
  const { fraction, seed = 0 } = options;
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction < 1)) {
    throw nnsError('TRAIN_OPTIONS_INVALID', `validation split fraction: expected a number between 0 and 1, got ${JSON.stringify(fraction)}`);
  }
  const n = dataset.length;
  const nVal = Math.floor(n * fraction);
  if (nVal === 0 || nVal === n) {
    throw nnsError('TRAIN_OPTIONS_INVALID', `validation split fraction ${fraction} of ${n} samples leaves an empty ${nVal === 0 ? 'validation' : 'training'} set`);
  }
  const order = permutation(n, seed);
  return { train: new Subset(dataset, order.slice(0, n - nVal)), validation: new Subset(dataset, order.slice(n - nVal)) };
}
