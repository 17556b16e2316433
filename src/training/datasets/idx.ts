/**
 * IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a
 * magic of two zero bytes, a type byte and a dimension count, the dimensions as big-endian
 * uint32, then the values big-endian. Gzipped files (.gz, or any file starting 1f 8b) are
 * inflated first.
 *
 * Samples come out as torchvision's MNIST + ToTensor() gives them: x float32 [1, H, W] scaled
 * to [0, 1] (or flattened to [H*W]), optionally normalised (x - mean) / std as
 * transforms.Normalize; y int64 class indices.
 */
import { access, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { nnsError } from '../../errors.js';
import { IndexedDataset, type Batch, type SampleSpec } from './dataset.js';

const inflate = promisify(gunzip);

export interface IdxArray {
  /** The IDX type byte's name. */
  type: 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
  dims: number[];
  /** Values as stored: Uint8Array for uint8, otherwise converted to a native-endian typed array. */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const TYPES = {
  0x08: { type: 'uint8', size: 1 },
  0x09: { type: 'int8', size: 1 },
  0x0b: { type: 'int16', size: 2 },
  0x0c: { type: 'int32', size: 4 },
  0x0d: { type: 'float32', size: 4 },
  0x0e: { type: 'float64', size: 8 },
} as const;

const invalid = (message: string) => nnsError('TRAIN_DATASET_INVALID', message);

/** Parses one IDX file's bytes (already inflated). */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw invalid(`${file}: not an IDX file (the magic number must start with two zero bytes)`);
  const t = TYPES[bytes[2] as keyof typeof TYPES];
  if (!t) throw invalid(`${file}: unknown IDX type byte 0x${bytes[2].toString(16)}`);
  const ndim = bytes[3];
  if (ndim === 0 || bytes.length < 4 + 4 * ndim) throw invalid(`${file}: truncated IDX header (${ndim} dimensions)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * ndim;
  if (bytes.length - offset !== count * t.size) {
    throw invalid(`${file}: dimensions [${dims.join(', ')}] need ${count * t.size} bytes of ${t.type}, the file has ${bytes.length - offset}`);
  }
  const body = bytes.subarray(offset);
  let data: IdxArray['data'];
  switch (t.type) {
    case 'uint8': data = body; break;
    case 'int8': data = new Int8Array(body.buffer, body.byteOffset, count); break;
    case 'int16': data = Int16Array.from({ length: count }, (_, i) => view.getInt16(offset + 2 * i, false)); break;
    case 'int32': data = Int32Array.from({ length: count }, (_, i) => view.getInt32(offset + 4 * i, false)); break;
    case 'float32': data = Float32Array.from({ length: count }, (_, i) => view.getFloat32(offset + 4 * i, false)); break;
    case 'float64': data = Float64Array.from({ length: count }, (_, i) => view.getFloat64(offset + 8 * i, false)); break;
  }
  return { type: t.type, dims, data };
}

/** Reads an IDX file, inflating it when gzipped. */
export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw invalid(`cannot read IDX file ${file}: ${(e as Error).message}`);
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await inflate(bytes);
    } catch (e) {
      throw invalid(`${file}: corrupt gzip data: ${(e as Error).message}`);
    }
  }
  return parseIdx(bytes, file);
}

export interface IdxOptions {
  /** Which files of a folder: train-* or t10k-*. @defaultValue 'train' */
  split?: 'train' | 'test';
  /** x as [H*W...] instead of [1, H, W]. @defaultValue false */
  flatten?: boolean;
  /** Divide uint8 pixels by 255, as ToTensor(). @defaultValue true */
  scale?: boolean;
  /** Subtracted after scaling (transforms.Normalize). @defaultValue 0 */
  mean?: number;
  /** Divides after subtracting mean. @defaultValue 1 */
  std?: number;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/**
 * The images and labels files of an MNIST-layout folder, gzipped or not; or, given an images
 * file, the labels file beside it (images-idx3 -> labels-idx1 in the name).
 */
async function findFiles(folder: string, split: 'train' | 'test'): Promise<{ images: string; labels: string }> {
  const isFile = await stat(folder).then((s) => s.isFile(), () => false);
  if (isFile) {
    const labels = join(dirname(folder), basename(folder).replace('images-idx3', 'labels-idx1'));
    if (labels === folder || !(await exists(labels))) throw invalid(`IDX dataset ${folder}: no labels file beside it (expected ${labels})`);
    return { images: folder, labels };
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  const out: Record<string, string> = {};
  for (const [key, name] of [['images', `${prefix}-images-idx3-ubyte`], ['labels', `${prefix}-labels-idx1-ubyte`]]) {
    const found = [name, `${name}.gz`, name.replace(/-idx(\d)-/, '.idx$1-')].map((n) => join(folder, n));
    let hit: string | undefined;
    for (const f of found) if (await exists(f)) { hit = f; break; }
    if (!hit) throw invalid(`IDX dataset ${folder}: no ${name} or ${name}.gz for the ${split} split`);
    out[key] = hit;
  }
  return { images: out.images, labels: out.labels };
}

export class IdxDataset extends IndexedDataset {
  readonly length: number;
  readonly xSpec: SampleSpec;
  readonly ySpec: SampleSpec = { dtype: 'int64', dims: [] };
  override readonly classes: readonly string[];
  /** Raw images as read, [N, H, W]. */
  readonly images: IdxArray;
  /** Labels as read, [N]. */
  readonly labels: Int32Array;
  private readonly sampleSize: number;
  private readonly factor: number;
  private readonly mean: number;
  private readonly std: number;

  /** Opens `{images, labels}` files, a folder holding train-/t10k- files (MNIST's names), or an images file. */
  static async open(source: string | { images: string; labels: string }, options: IdxOptions = {}): Promise<IdxDataset> {
    const split = options.split ?? 'train';
    if (split !== 'train' && split !== 'test') throw nnsError('TRAIN_OPTIONS_INVALID', `IDX split: expected "train" or "test", got ${JSON.stringify(split)}`);
    const files = typeof source === 'string' ? await findFiles(source, split) : source;
    const [images, labels] = await Promise.all([readIdx(files.images), readIdx(files.labels)]);
    return new IdxDataset(images, labels, options, files.images, files.labels);
  }

  constructor(images: IdxArray, labels: IdxArray, options: IdxOptions = {}, imagesName = 'images', labelsName = 'labels') {
    super();
    const { flatten = false, scale = true, mean = 0, std = 1 } = options;
    if (!Number.isFinite(mean)) throw nnsError('TRAIN_OPTIONS_INVALID', `IDX mean: expected a finite number, got ${JSON.stringify(mean)}`);
    if (!Number.isFinite(std) || std <= 0) throw nnsError('TRAIN_OPTIONS_INVALID', `IDX std: expected a number > 0, got ${JSON.stringify(std)}`);
    if (images.dims.length < 2) throw invalid(`${imagesName}: expected samples of at least one dimension, got dims [${images.dims.join(', ')}]`);
    if (labels.dims.length !== 1) throw invalid(`${labelsName}: expected one label per sample (1 dimension), got dims [${labels.dims.join(', ')}]`);
    if (labels.type === 'float32' || labels.type === 'float64') throw invalid(`${labelsName}: labels must be integers, the file holds ${labels.type}`);
    if (labels.dims[0] !== images.dims[0]) throw invalid(`${imagesName} holds ${images.dims[0]} samples but ${labelsName} ${labels.dims[0]} labels`);
    const lab = Int32Array.from(labels.data as ArrayLike<number>);
    let max = -1;
    for (let i = 0; i < lab.length; i++) {
      if (lab[i] < 0) throw invalid(`${labelsName}: label ${lab[i]} of sample ${i} is negative`);
      if (lab[i] > max) max = lab[i];
    }
    this.images = images;
    this.labels = lab;
    this.length = images.dims[0];
    const sample = images.dims.slice(1);
    this.sampleSize = sample.reduce((a, b) => a * b, 1);
    // torchvision's MNIST gives [1, H, W]: one channel before the image dims.
    this.xSpec = { dtype: 'float32', dims: flatten ? [this.sampleSize] : sample.length === 2 ? [1, ...sample] : sample };
    this.classes = Array.from({ length: max + 1 }, (_, i) => String(i));
    this.factor = scale && images.type === 'uint8' ? 255 : 1;
    this.mean = Math.fround(mean);
    this.std = Math.fround(std);
  }

  getBatch(indices: ArrayLike<number>): Batch {
    const n = indices.length;
    const s = this.sampleSize;
    const x = new Float32Array(n * s);
    const y = new BigInt64Array(n);
    const src = this.images.data;
    const { factor, mean, std } = this;
    const plain = mean === 0 && std === 1;
    for (let b = 0; b < n; b++) {
      const i = indices[b];
      const from = i * s;
      const to = b * s;
      // Float32 at each step, as ToTensor() then Normalize() compute.
      if (plain) for (let k = 0; k < s; k++) x[to + k] = src[from + k] / factor;
      else for (let k = 0; k < s; k++) x[to + k] = Math.fround(Math.fround(src[from + k] / factor) - mean) / std;
      y[b] = BigInt(this.labels[i]);
    }
    return { x: { dtype: 'float32', dims: [n, ...this.xSpec.dims], data: x }, y: { dtype: 'int64', dims: [n], data: y } };
  }
}
