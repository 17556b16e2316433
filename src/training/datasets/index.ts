/** Training data: every dataset kind, the shared batching, splits and the CLI spec. */
export { batchCount, IndexedDataset, Subset, validationSplit, type Batch, type BatchOptions, type Dataset, type SampleSpec, type SplitOptions } from './dataset.js';
export { IdxDataset, parseIdx, readIdx, type IdxArray, type IdxOptions } from './idx.js';
export { IMG_EXTENSIONS, ImageFolder, listImageFolder, type ImageFolderOptions } from './image-folder.js';
export { permutation, Rng } from './rng.js';
export { DATASET_KINDS, openDataset, parseDatasetSpec, type DatasetKind, type DatasetSpec, type OpenDatasetOptions } from './spec.js';
export { parseCsv, TabularDataset, type TabularOptions } from './tabular.js';
export { TextDataset, type TextOptions } from './text.js';
