/**
 * The CLI's `--dataset KIND:PATH` (e.g. `idx:/usr/share/datasets/fashion-mnist`) and the one
 * function that opens any kind with its options.
 */
import { nnsError } from '../../errors.js';
import type { IndexedDataset } from './dataset.js';
import { IdxDataset, type IdxOptions } from './idx.js';
import { ImageFolder, type ImageFolderOptions } from './image-folder.js';
import { TabularDataset, type TabularOptions } from './tabular.js';
import { TextDataset, type TextOptions } from './text.js';

export const DATASET_KINDS = ['idx', 'imagefolder', 'csv', 'jsonl', 'text'] as const;
export type DatasetKind = (typeof DATASET_KINDS)[number];

export interface DatasetSpec {
  kind: DatasetKind;
  path: string;
}

const invalid = (message: string) => nnsError('TRAIN_DATASET_INVALID', message);

/** "KIND:PATH" -> {kind, path}; the kind is matched without regard to case. */
export function parseDatasetSpec(spec: string): DatasetSpec {
  if (typeof spec !== 'string') throw invalid(`dataset: expected "KIND:PATH", got ${JSON.stringify(spec)}`);
  const colon = spec.indexOf(':');
  if (colon <= 0) throw invalid(`dataset "${spec}": expected KIND:PATH with KIND one of ${DATASET_KINDS.join(', ')}`);
  const kind = spec.slice(0, colon).trim().toLowerCase();
  const path = spec.slice(colon + 1).trim();
  if (!(DATASET_KINDS as readonly string[]).includes(kind)) {
    throw invalid(`dataset "${spec}": unknown kind "${spec.slice(0, colon)}"; known kinds are ${DATASET_KINDS.join(', ')}`);
  }
  if (path === '') throw invalid(`dataset "${spec}": the path after "${kind}:" is empty`);
  return { kind: kind as DatasetKind, path };
}

/** Options for every kind; each kind reads its own (tabular needs target, text seqLength). */
export type OpenDatasetOptions = IdxOptions & Partial<TabularOptions> & Partial<TextOptions> & ImageFolderOptions;

/** Opens the dataset a spec names. */
export async function openDataset(spec: DatasetSpec | string, options: OpenDatasetOptions = {}): Promise<IndexedDataset> {
  const { kind, path } = typeof spec === 'string' ? parseDatasetSpec(spec) : spec;
  const need = (key: string, what: string) => nnsError('TRAIN_OPTIONS_INVALID', `dataset ${kind}:${path} needs the option ${key} (${what})`);
  switch (kind) {
    case 'idx':
      return IdxDataset.open(path, options);
    case 'imagefolder':
      return ImageFolder.open(path, options);
    case 'csv':
    case 'jsonl': {
      if (options.target === undefined) throw need('target', 'the column to predict');
      const o = options as TabularOptions;
      return kind === 'csv' ? TabularDataset.fromCsv(path, o) : TabularDataset.fromJsonl(path, o);
    }
    case 'text':
      if (options.seqLength === undefined) throw need('seqLength', 'characters per sample');
      return TextDataset.open(path, options as TextOptions);
  }
}
