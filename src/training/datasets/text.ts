/**
 * Character-level text for next-character models (seed tutorial 8.11): the file is one stream
 * of characters (newlines included); x is a window of seqLength character indices and y the
 * same window shifted one character on, both int64 [B, seqLength].
 *
 * The vocabulary is the sorted set of the text's characters (Unicode code points), as
 * char-rnn builds it, unless one is given (then an unknown character is an error naming its line).
 */
import { readFile } from 'node:fs/promises';
import { nnsError } from '../../errors.js';
import { IndexedDataset, type Batch, type SampleSpec } from './dataset.js';

export interface TextOptions {
  /** Characters per sample. */
  seqLength: number;
  /** Characters between the starts of two samples. @defaultValue seqLength (no overlap) */
  stride?: number;
  /** The vocabulary, index -> character; e.g. the training set's for a validation file. @defaultValue sorted characters of the text */
  vocab?: readonly string[];
}

export class TextDataset extends IndexedDataset {
  readonly length: number;
  readonly xSpec: SampleSpec;
  readonly ySpec: SampleSpec;
  /** index -> character */
  readonly vocab: readonly string[];
  /** character -> index */
  readonly charToIndex: ReadonlyMap<string, number>;
  readonly seqLength: number;
  readonly stride: number;
  /** The whole text as vocabulary indices. */
  readonly tokens: Int32Array;

  static async open(file: string, options: TextOptions): Promise<TextDataset> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw nnsError('TRAIN_DATASET_INVALID', `cannot read ${file}: ${(e as Error).message}`);
    }
    return new TextDataset(text, options, file);
  }

  constructor(text: string, options: TextOptions, source = 'text') {
    super();
    const { seqLength, stride = seqLength, vocab } = options ?? ({} as TextOptions);
    const opt = (m: string) => nnsError('TRAIN_OPTIONS_INVALID', m);
    if (!Number.isInteger(seqLength) || seqLength <= 0) throw opt(`text seqLength: expected a positive integer, got ${JSON.stringify(seqLength)}`);
    if (!Number.isInteger(stride) || stride <= 0) throw opt(`text stride: expected a positive integer, got ${JSON.stringify(stride)}`);
    const chars = Array.from(text);
    const v = vocab ? [...vocab] : [...new Set(chars)].sort();
    const index = new Map(v.map((c, i) => [c, i]));
    if (index.size !== v.length) throw opt('text vocab: a character appears twice');
    const tokens = new Int32Array(chars.length);
    let line = 1;
    chars.forEach((c, i) => {
      const k = index.get(c);
      if (k === undefined) throw nnsError('TRAIN_DATASET_INVALID', `${source} line ${line}: character ${JSON.stringify(c)} is not in the vocabulary`);
      tokens[i] = k;
      if (c === '\n') line++;
    });
    // A sample needs seqLength + 1 characters: the window and its next-character targets.
    const usable = chars.length - 1 - seqLength;
    if (usable < 0) throw nnsError('TRAIN_DATASET_INVALID', `${source}: ${chars.length} characters are too few for one sequence of ${seqLength} plus its target`);
    this.length = Math.floor(usable / stride) + 1;
    this.vocab = v;
    this.charToIndex = index;
    this.seqLength = seqLength;
    this.stride = stride;
    this.tokens = tokens;
    this.xSpec = { dtype: 'int64', dims: [seqLength] };
    this.ySpec = { dtype: 'int64', dims: [seqLength] };
  }

  getBatch(indices: ArrayLike<number>): Batch {
    const n = indices.length;
    const L = this.seqLength;
    const x = new BigInt64Array(n * L);
    const y = new BigInt64Array(n * L);
    for (let b = 0; b < n; b++) {
      const start = indices[b] * this.stride;
      for (let k = 0; k < L; k++) {
        x[b * L + k] = BigInt(this.tokens[start + k]);
        y[b * L + k] = BigInt(this.tokens[start + k + 1]);
      }
    }
    return { x: { dtype: 'int64', dims: [n, L], data: x }, y: { dtype: 'int64', dims: [n, L], data: y } };
  }

  /** Characters back from indices (for generated samples). */
  decode(indices: ArrayLike<number | bigint>): string {
    return Array.from(indices, (i) => this.vocab[Number(i)] ?? '\uFFFD').join('');
  }
}
