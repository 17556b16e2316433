/**
 * What the archive of a run needs beyond the weights to serve as it was trained: for the
 * image_classifier handler, a model-config.yaml whose `image:` transform is the one the training
 * images went through (an idx dataset: Grayscale(1), Resize to its size, ToTensor, its
 * Normalize; an imagefolder dataset: its transform), and the class names of an imagefolder
 * dataset as index_to_name.json. A model-config or labels file given by the user wins.
 */
import { readFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { nnsError } from '../errors.js';
import { DEFAULT_IMAGE_TRANSFORM } from '../preprocess/image-transform.js';
import { parseDatasetSpec, type IndexedDataset } from './datasets/index.js';
import type { DatasetOptions, TrainOptions } from './train-options.js';

export interface ServingFiles {
  /** model-config.yaml text. */
  modelConfig?: string;
  /** index_to_name.json text. */
  labels?: string;
}

async function readText(what: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw nnsError('TRAIN_OPTIONS_INVALID', `${what} "${path}": ${(e as Error).message}`);
  }
}

/** The image transform the training data went through, as model-config.yaml's `image:` mapping. */
function imageSection(o: TrainOptions, train: IndexedDataset): Record<string, unknown> | undefined {
  if (typeof o.dataset !== 'string' && !('dataset' in o.dataset)) return undefined;
  const spec = typeof o.dataset === 'string' ? o.dataset : o.dataset.dataset;
  const options: DatasetOptions = typeof o.dataset === 'string' ? {} : o.dataset.options ?? {};
  const { kind } = parseDatasetSpec(spec);
  if (kind === 'idx') {
    const dims = train.xSpec.dims;
    if (options.flatten || options.scale === false || dims.length !== 3 || dims[0] !== 1) return undefined;
    const normalized = (options.mean ?? 0) !== 0 || (options.std ?? 1) !== 1;
    return { grayscale: 1, resize: [dims[1], dims[2]], centerCrop: false, mean: normalized ? [options.mean ?? 0] : false, std: normalized ? [options.std ?? 1] : false };
  }
  if (kind === 'imagefolder') {
    const t = { ...DEFAULT_IMAGE_TRANSFORM, ...options.transform };
    return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v === null ? false : v]));
  }
  return undefined;
}

export async function servingFiles(o: TrainOptions, train: IndexedDataset): Promise<ServingFiles> {
  const out: ServingFiles = {};
  if (o.modelConfig !== undefined) out.modelConfig = await readText('modelConfig', o.modelConfig);
  else if (o.handler === 'image_classifier') {
    const image = imageSection(o, train);
    if (image) out.modelConfig = `# written by nnserve train: the transform the training images went through\n${stringify({ image })}`;
  }
  if (o.labels !== undefined) out.labels = await readText('labels', o.labels);
  else if (train.classes && train.classes.some((c, i) => c !== String(i))) {
    out.labels = `${JSON.stringify(Object.fromEntries(train.classes.map((c, i) => [String(i), c])), null, 1)}\n`;
  }
  return out;
}
