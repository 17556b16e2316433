/**
 * Tabular rows from CSV (RFC 4180: a header line, quoted fields, "" escapes) or JSON Lines
 * (one object a line): feature columns become x float32 [B, features], the target column y,
 * either int64 class indices [B] or float32 values [B, targets] for regression.
 *
 * Every value is checked while loading; a bad one is reported with its file, line (1-based, as
 * an editor shows it) and column name.
 */
import { readFile } from 'node:fs/promises';
import { nnsError } from '../../errors.js';
import { IndexedDataset, type Batch, type SampleSpec } from './dataset.js';

export interface TabularOptions {
  /** Column (CSV header name or JSONL key) holding the target; several for multi-output regression. */
  target: string | string[];
  /** Feature columns, in this order. @defaultValue every column but the target(s), in file order */
  features?: string[];
  /**
   * 'class': y int64 [B] class indices (values that are all integers >= 0 are used as the index,
   * any other labels are numbered in sorted order); 'float': y float32 [B, targets].
   * @defaultValue 'class' when some target value is not a number, else 'float'
   */
  targetType?: 'class' | 'float';
  /** CSV field separator. @defaultValue ',' */
  delimiter?: string;
}

const invalid = (message: string) => nnsError('TRAIN_DATASET_INVALID', message);

/** A row as read: where it starts in the file, and its values by column. */
interface Row {
  line: number;
  get(column: string): unknown;
}

/** Splits CSV text into records, each with the line it starts on. */
export function parseCsv(text: string, delimiter: string, file: string): { line: number; fields: string[] }[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: { line: number; fields: string[] }[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const start = line;
    const fields: string[] = [];
    for (;;) {
      let value = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= text.length) throw invalid(`${file} line ${start}: a quoted field is not closed`);
          const c = text[i++];
          if (c === '"') {
            if (text[i] === '"') { value += '"'; i++; } else break;
          } else {
            if (c === '\n') line++;
            value += c;
          }
        }
        if (i < text.length && text[i] !== delimiter && text[i] !== '\n' && text[i] !== '\r') {
          throw invalid(`${file} line ${line}: unexpected ${JSON.stringify(text[i])} after a closing quote`);
        }
      } else {
        const from = i;
        while (i < text.length && text[i] !== delimiter && text[i] !== '\n' && text[i] !== '\r') i++;
        value = text.slice(from, i);
      }
      fields.push(value);
      if (text[i] === delimiter) { i++; continue; }
      break;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    line++;
    if (!(fields.length === 1 && fields[0].trim() === '')) records.push({ line: start, fields });
  }
  return records;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && NUMBER.test(v.trim())) return Number(v.trim());
  return undefined;
}

function describe(v: unknown): string {
  if (v === '' ) return 'an empty field';
  if (v === undefined) return 'nothing';
  return JSON.stringify(v);
}

export class TabularDataset extends IndexedDataset {
  readonly length: number;
  readonly xSpec: SampleSpec;
  readonly ySpec: SampleSpec;
  override readonly classes?: readonly string[] = undefined;
  readonly featureNames: readonly string[];
  readonly targetNames: readonly string[];
  private readonly x: Float32Array;
  private readonly y: Float32Array | BigInt64Array;

  /** Reads a .csv file (or any delimited text with a header line). */
  static async fromCsv(file: string, options: TabularOptions): Promise<TabularDataset> {
    const text = await readText(file);
    const delimiter = options.delimiter ?? ',';
    if (typeof delimiter !== 'string' || delimiter.length !== 1 || delimiter === '"' || delimiter === '\n') {
      throw nnsError('TRAIN_OPTIONS_INVALID', `CSV delimiter: expected one character other than a quote or newline, got ${JSON.stringify(delimiter)}`);
    }
    const records = parseCsv(text, delimiter, file);
    if (records.length === 0) throw invalid(`${file}: empty CSV file (a header line is needed)`);
    const header = records[0].fields.map((h) => h.trim());
    const seen = new Set<string>();
    for (const h of header) {
      if (seen.has(h)) throw invalid(`${file} line ${records[0].line}: column "${h}" appears twice in the header`);
      seen.add(h);
    }
    const col = new Map(header.map((h, i) => [h, i]));
    const rows: Row[] = records.slice(1).map((r) => {
      if (r.fields.length !== header.length) {
        throw invalid(`${file} line ${r.line}: expected ${header.length} fields as the header has, got ${r.fields.length}`);
      }
      return { line: r.line, get: (c: string) => r.fields[col.get(c)!] };
    });
    return new TabularDataset(file, header, rows, options);
  }

  /** Reads a .jsonl file: one JSON object a line. */
  static async fromJsonl(file: string, options: TabularOptions): Promise<TabularDataset> {
    const text = await readText(file);
    const rows: Row[] = [];
    let columns: string[] | undefined;
    text.split('\n').forEach((raw, i) => {
      const t = raw.trim();
      if (t === '') return;
      let obj: unknown;
      try {
        obj = JSON.parse(t);
      } catch (e) {
        throw invalid(`${file} line ${i + 1}: not valid JSON: ${(e as Error).message}`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw invalid(`${file} line ${i + 1}: expected a JSON object`);
      const record = obj as Record<string, unknown>;
      columns ??= Object.keys(record);
      rows.push({ line: i + 1, get: (c) => (Object.hasOwn(record, c) ? record[c] : undefined) });
    });
    return new TabularDataset(file, columns ?? [], rows, options);
  }

  private constructor(file: string, columns: string[], rows: Row[], options: TabularOptions) {
    super();
    const opt = (m: string) => nnsError('TRAIN_OPTIONS_INVALID', `${file}: ${m}`);
    if (rows.length === 0) throw invalid(`${file}: no data rows`);
    const targets = Array.isArray(options.target) ? options.target : [options.target];
    if (targets.length === 0 || targets.some((t) => typeof t !== 'string')) throw opt('target: expected a column name');
    const features = options.features ?? columns.filter((c) => !targets.includes(c));
    if (!Array.isArray(features) || features.length === 0) throw opt('features: expected at least one feature column');
    for (const c of [...targets, ...features]) {
      if (!columns.includes(c) && rows[0].get(c) === undefined) throw opt(`no column "${c}" (columns are ${columns.join(', ')})`);
    }
    const overlap = features.find((f) => targets.includes(f));
    if (overlap) throw opt(`column "${overlap}" is both a feature and the target`);
    const targetType = options.targetType ?? (rows.some((r) => targets.some((t) => toNumber(r.get(t)) === undefined)) ? 'class' : 'float');
    if (targetType !== 'class' && targetType !== 'float') throw opt(`targetType: expected "class" or "float", got ${JSON.stringify(targetType)}`);
    if (targetType === 'class' && targets.length !== 1) throw opt('targetType "class" takes one target column');

    const F = features.length;
    const n = rows.length;
    const x = new Float32Array(n * F);
    const number = (r: Row, c: string): number => {
      const raw = r.get(c);
      const v = toNumber(raw);
      if (v === undefined) throw invalid(`${file} line ${r.line}, column "${c}": expected a number, got ${describe(raw)}`);
      return v;
    };
    rows.forEach((r, i) => features.forEach((c, j) => (x[i * F + j] = number(r, c))));

    if (targetType === 'float') {
      const y = new Float32Array(n * targets.length);
      rows.forEach((r, i) => targets.forEach((c, j) => (y[i * targets.length + j] = number(r, c))));
      this.y = y;
      this.ySpec = { dtype: 'float32', dims: [targets.length] };
    } else {
      const c = targets[0];
      const labels = rows.map((r) => {
        const raw = r.get(c);
        if (raw === undefined || raw === null || (typeof raw !== 'string' && typeof raw !== 'number') || String(raw).trim() === '') {
          throw invalid(`${file} line ${r.line}, column "${c}": expected a class label, got ${describe(raw)}`);
        }
        return String(raw).trim();
      });
      const y = new BigInt64Array(n);
      if (labels.every((l) => /^\d+$/.test(l))) {
        const ints = labels.map(Number);
        ints.forEach((v, i) => (y[i] = BigInt(v)));
        this.classes = Array.from({ length: Math.max(...ints) + 1 }, (_, i) => String(i));
      } else {
        const classes = [...new Set(labels)].sort();
        const index = new Map(classes.map((l, i) => [l, i]));
        labels.forEach((l, i) => (y[i] = BigInt(index.get(l)!)));
        this.classes = classes;
      }
      this.y = y;
      this.ySpec = { dtype: 'int64', dims: [] };
    }
    this.x = x;
    this.length = n;
    this.xSpec = { dtype: 'float32', dims: [F] };
    this.featureNames = features;
    this.targetNames = targets;
  }

  getBatch(indices: ArrayLike<number>): Batch {
    const n = indices.length;
    const F = this.featureNames.length;
    const x = new Float32Array(n * F);
    for (let b = 0; b < n; b++) x.set(this.x.subarray(indices[b] * F, indices[b] * F + F), b * F);
    if (this.y instanceof BigInt64Array) {
      const y = new BigInt64Array(n);
      for (let b = 0; b < n; b++) y[b] = this.y[indices[b]];
      return { x: { dtype: 'float32', dims: [n, F], data: x }, y: { dtype: 'int64', dims: [n], data: y } };
    }
    const T = this.targetNames.length;
    const y = new Float32Array(n * T);
    for (let b = 0; b < n; b++) y.set(this.y.subarray(indices[b] * T, indices[b] * T + T), b * T);
    return { x: { dtype: 'float32', dims: [n, F], data: x }, y: { dtype: 'float32', dims: [n, T], data: y } };
  }
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw invalid(`cannot read ${file}: ${(e as Error).message}`);
  }
}
