/**
 * torch.utils.data.TensorDataset: samples held in memory as two tensors whose first dimension
 * is the sample, e.g. the seed's X = [[1.0], [2.0], [3.0], [4.0]], Y = [[3.0], [5.0], ...].
 */
import { nnsError } from '../errors.js';
import { typedArrayFor, type TensorData } from '../runtime/ort.js';
import { IndexedDataset, type Batch, type SampleSpec } from './datasets/index.js';

export class TensorDataset extends IndexedDataset {
  readonly length: number;
  readonly xSpec: SampleSpec;
  readonly ySpec: SampleSpec;

  constructor(readonly x: TensorData, readonly y: TensorData) {
    super();
    for (const [name, t] of [['x', x], ['y', y]] as const) {
      if (!t || !Array.isArray(t.dims) || t.dims.length === 0 || t.data?.length !== t.dims.reduce((a, b) => a * b, 1)) {
        throw nnsError('TRAIN_DATASET_INVALID', `in-memory dataset: ${name} must be {dtype, dims, data} with the samples on dims[0] and dims matching data's length`);
      }
    }
    if (x.dims[0] !== y.dims[0]) {
      throw nnsError('TRAIN_DATASET_INVALID', `in-memory dataset: x holds ${x.dims[0]} samples but y ${y.dims[0]} (TensorDataset needs the same first dimension)`);
    }
    this.length = x.dims[0];
    this.xSpec = { dtype: x.dtype, dims: x.dims.slice(1) };
    this.ySpec = { dtype: y.dtype, dims: y.dims.slice(1) };
  }

  getBatch(indices: ArrayLike<number>): Batch {
    return { x: gather(this.x, indices), y: gather(this.y, indices) };
  }
}

function gather(t: TensorData, indices: ArrayLike<number>): TensorData {
  const size = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const out = typedArrayFor(t.dtype, indices.length * size);
  for (let b = 0; b < indices.length; b++) {
    const from = indices[b] * size;
    (out as Float32Array).set((t.data as Float32Array).subarray(from, from + size), b * size);
  }
  return { dtype: t.dtype, dims: [indices.length, ...t.dims.slice(1)], data: out };
}
