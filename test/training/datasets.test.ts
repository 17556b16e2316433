/**
 * Datasets: the real Fashion-MNIST IDX files (facts read by tools/make_training_fixtures.py with
 * gzip + numpy), torchvision's ImageFolder listing and ToTensor values, CSV/JSONL rows with
 * errors that name line and column, char-level text, and the shared batching.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NnsError } from '../../src/errors.js';
import {
  IdxDataset, ImageFolder, openDataset, parseDatasetSpec, permutation, TabularDataset, TextDataset, validationSplit,
  type Batch, type IndexedDataset,
} from '../../src/training/datasets/index.js';
import { f32, FIXTURES, readFixture, relError } from './fixtures.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const tmp = mkdtempSync(join(tmpdir(), 'nnserve-datasets-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

async function all(ds: IndexedDataset, options: Parameters<IndexedDataset['batches']>[0]): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches(options)) out.push(b);
  return out;
}

async function rejects(p: Promise<unknown> | (() => unknown), code: string, re: RegExp): Promise<void> {
  const check = (e: unknown) => {
    assert.ok(e instanceof NnsError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  };
  if (typeof p === 'function') assert.throws(p, check);
  else await assert.rejects(p, check);
}

/** A small in-memory IDX dataset: sample i is filled with the value i, label i % 3. */
function tiny(n: number): IdxDataset {
  const images = new Uint8Array(n * 4).map((_, k) => Math.floor(k / 4));
  return new IdxDataset({ type: 'uint8', dims: [n, 2, 2], data: images }, { type: 'uint8', dims: [n], data: Uint8Array.from({ length: n }, (_, i) => i % 3) }, { scale: false });
}

const firstOf = (b: Batch, size: number) => Array.from({ length: b.y.dims[0] }, (_, i) => (b.x.data as Float32Array)[i * size]);

interface FashionFacts {
  count: number;
  image_dims: number[];
  first_labels: number[];
  label_counts: number[];
  first_image_pixel_sum: number;
  probes: { index: number; row: number; col: number; value: number }[];
  mean: number;
  std: number;
}

test('Fashion-MNIST IDX files read with the counts, labels and pixels numpy sees', { skip: !existsSync(FASHION) && `no ${FASHION}` }, async () => {
  const facts = readFixture<Record<'train' | 'test', FashionFacts>>('fashion-mnist.json');
  for (const split of ['train', 'test'] as const) {
    const f = facts[split];
    const ds = await openDataset(`idx:${FASHION}`, { split });
    assert.equal(ds.length, f.count);
    assert.deepEqual(ds.xSpec, { dtype: 'float32', dims: [1, ...f.image_dims] });
    assert.deepEqual(ds.ySpec, { dtype: 'int64', dims: [] });
    assert.deepEqual(ds.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    if (split === 'test') {
      const byFile = await openDataset(`idx:${FASHION}/t10k-images-idx3-ubyte.gz`);
      assert.equal(byFile.length, f.count);
    }
    const counts = new Array(10).fill(0);
    let batches = 0;
    let first: Batch | undefined;
    let last: Batch | undefined;
    for await (const b of ds.batches({ batchSize: 4096 })) {
      first ??= b;
      last = b;
      batches++;
      for (const y of b.y.data as BigInt64Array) counts[Number(y)]++;
    }
    assert.equal(batches, Math.ceil(f.count / 4096));
    assert.deepEqual(counts, f.label_counts);
    assert.deepEqual(first!.x.dims, [4096, 1, 28, 28]);
    assert.deepEqual(last!.x.dims, [f.count % 4096, 1, 28, 28]);
    assert.deepEqual(Array.from(first!.y.data as BigInt64Array, Number).slice(0, f.first_labels.length), f.first_labels);
    const x0 = (first!.x.data as Float32Array).subarray(0, 784);
    assert.equal(Math.round(x0.reduce((a, b) => a + b * 255, 0)), f.first_image_pixel_sum);
    for (const p of f.probes) {
      const b = p.index === 0 ? first! : last!;
      const row = p.index === 0 ? 0 : b.y.dims[0] - 1;
      assert.equal((b.x.data as Float32Array)[row * 784 + p.row * 28 + p.col], p.value, `${split} image ${p.index} (${p.row}, ${p.col})`);
    }
  }
});

test('IDX options: flattened x and Normalize(mean, std) in float32', { skip: !existsSync(FASHION) && `no ${FASHION}` }, async () => {
  const f = readFixture<Record<'train' | 'test', FashionFacts>>('fashion-mnist.json').test;
  const ds = await IdxDataset.open(FASHION, { split: 'test', flatten: true, mean: 0.286, std: 0.353 });
  assert.deepEqual(ds.xSpec.dims, [784]);
  const b = ds.getBatch([0]);
  assert.deepEqual(b.x.dims, [1, 784]);
  const p = f.probes[0];
  const want = Math.fround(Math.fround(p.value - Math.fround(0.286)) / Math.fround(0.353));
  assert.equal((b.x.data as Float32Array)[p.row * 28 + p.col], want);
});

test('IDX files that lie about their size or type are refused', async () => {
  const header = (type: number, dims: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b[2] = type;
    b[3] = dims.length;
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  writeFileSync(join(tmp, 'short'), Buffer.concat([header(8, [2, 3, 3]), Buffer.alloc(10)]));
  await rejects(IdxDataset.open({ images: join(tmp, 'short'), labels: join(tmp, 'short') }), 'NNS_ERR_TRAIN_DATASET_INVALID', /dimensions \[2, 3, 3\] need 18 bytes of uint8, the file has 10/);
  writeFileSync(join(tmp, 'images'), Buffer.concat([header(8, [2, 2, 2]), Buffer.alloc(8)]));
  writeFileSync(join(tmp, 'labels'), Buffer.concat([header(8, [3]), Buffer.alloc(3)]));
  await rejects(IdxDataset.open({ images: join(tmp, 'images'), labels: join(tmp, 'labels') }), 'NNS_ERR_TRAIN_DATASET_INVALID', /holds 2 samples but .*labels 3 labels/);
  await rejects(IdxDataset.open(tmp), 'NNS_ERR_TRAIN_DATASET_INVALID', /no train-images-idx3-ubyte or train-images-idx3-ubyte\.gz/);
});

test('batches: a partial last batch unless dropLast, every sample once', async () => {
  const ds = tiny(10);
  const b = await all(ds, { batchSize: 4 });
  assert.deepEqual(b.map((x) => x.x.dims), [[4, 1, 2, 2], [4, 1, 2, 2], [2, 1, 2, 2]]);
  assert.deepEqual(b.flatMap((x) => firstOf(x, 4)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(b.flatMap((x) => Array.from(x.y.data as BigInt64Array, Number)), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
  const dropped = await all(ds, { batchSize: 4, dropLast: true });
  assert.deepEqual(dropped.map((x) => x.y.dims), [[4], [4]]);
  await rejects(all(ds, { batchSize: 0 }), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /batch size: expected a positive integer/);
});

test('shuffling is seeded: the same seed gives the same order, another seed another', async () => {
  const ds = tiny(50);
  const order = async (seed: number) => (await all(ds, { batchSize: 8, shuffle: true, seed })).flatMap((b) => firstOf(b, 4));
  const a = await order(1);
  assert.deepEqual(await order(1), a);
  assert.notDeepEqual(await order(2), a);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  // Pinned: a change of generator would silently change every user's shuffled runs.
  assert.deepEqual(Array.from(permutation(10, 42)), PINNED_42);
});
const PINNED_42 = [3, 6, 8, 7, 5, 0, 9, 2, 1, 4];

test('validation split: floor(n * fraction) held out, disjoint, seeded', async () => {
  const ds = tiny(103);
  const { train, validation } = validationSplit(ds, { fraction: 0.2, seed: 5 });
  assert.equal(validation.length, 20);
  assert.equal(train.length, 83);
  const seen = [...train.indices, ...validation.indices].sort((a, b) => a - b);
  assert.deepEqual(seen, Array.from({ length: 103 }, (_, i) => i));
  assert.deepEqual(validationSplit(ds, { fraction: 0.2, seed: 5 }).validation.indices, validation.indices);
  const vb = await all(validation, { batchSize: 32 });
  assert.deepEqual(vb.flatMap((b) => firstOf(b, 4)), Array.from(validation.indices));
  await rejects(() => validationSplit(ds, { fraction: 1.5 }), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /fraction: expected a number between 0 and 1/);
});

test('CSV: quoted fields, CRLF, class labels numbered in sorted order', async () => {
  const path = file('iris.csv', 'sepal length,"petal, width",species\r\n5.1,0.2,setosa\r\n7.0,1.4,"versicolor"\r\n6.3,2.5,virginica\r\n4.9,".2",setosa\r\n\r\n');
  const ds = await TabularDataset.fromCsv(path, { target: 'species' });
  assert.equal(ds.length, 4);
  assert.deepEqual(ds.featureNames, ['sepal length', 'petal, width']);
  assert.deepEqual(ds.classes, ['setosa', 'versicolor', 'virginica']);
  const [b] = await all(ds, { batchSize: 10 });
  assert.deepEqual(b.x.dims, [4, 2]);
  assert.deepEqual(Array.from(b.x.data as Float32Array), [5.1, 0.2, 7.0, 1.4, 6.3, 2.5, 4.9, 0.2].map(Math.fround));
  assert.deepEqual(b.y, { dtype: 'int64', dims: [4], data: BigInt64Array.from([0n, 1n, 2n, 0n]) });
});

test('CSV/JSONL: numeric targets are float32 [B, targets]; integer classes keep their number', async () => {
  const path = file('reg.csv', 'a,b,y1,y2\n1,2,0.5,-1\n3,4,1.5,2e-3\n');
  const ds = await TabularDataset.fromCsv(path, { target: ['y1', 'y2'] });
  const [b] = await all(ds, { batchSize: 2 });
  assert.deepEqual(b.y.dims, [2, 2]);
  assert.deepEqual(Array.from(b.y.data as Float32Array), [0.5, -1, 1.5, 0.002].map(Math.fround));
  const cls = await TabularDataset.fromJsonl(file('c.jsonl', '{"x": 1, "label": 3}\n{"x": "2.5", "label": 0}\n'), { target: 'label', targetType: 'class' });
  const [c] = await all(cls, { batchSize: 2 });
  assert.deepEqual(Array.from(c.y.data as BigInt64Array), [3n, 0n]);
  assert.deepEqual(Array.from(c.x.data as Float32Array), [1, 2.5]);
  assert.equal(cls.classes?.length, 4);
});

test('bad CSV and JSONL lines are reported with file, line and column', async () => {
  const code = 'NNS_ERR_TRAIN_DATASET_INVALID';
  // The quoted newline on line 3 makes the bad value's line 5, not row 4.
  const bad = file('bad.csv', 'id,note,value,label\n1,ok,0.5,a\n2,"two\nlines",0.7,b\n3,x,abc,a\n');
  await rejects(TabularDataset.fromCsv(bad, { target: 'label', features: ['id', 'value'] }), code, /bad\.csv line 5, column "value": expected a number, got "abc"/);
  await rejects(TabularDataset.fromCsv(file('empty.csv', 'a,b\n1,\n'), { target: 'b', targetType: 'float' }), code, /line 2, column "b": expected a number, got an empty field/);
  await rejects(TabularDataset.fromCsv(file('ragged.csv', 'a,b\n1,2\n3\n'), { target: 'b' }), code, /ragged\.csv line 3: expected 2 fields as the header has, got 1/);
  await rejects(TabularDataset.fromCsv(file('open.csv', 'a,b\n1,"2\n'), { target: 'b' }), code, /open\.csv line 2: a quoted field is not closed/);
  await rejects(TabularDataset.fromJsonl(file('bad.jsonl', '{"x": 1, "y": 0}\n\n{"x": 2, y: 1}\n'), { target: 'y' }), code, /bad\.jsonl line 3: not valid JSON/);
  await rejects(TabularDataset.fromJsonl(file('miss.jsonl', '{"x": 1, "y": 0}\n{"y": 1}\n'), { target: 'y' }), code, /miss\.jsonl line 2, column "x": expected a number, got nothing/);
  await rejects(TabularDataset.fromCsv(file('cols.csv', 'a,b\n1,2\n'), { target: 'label' }), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /no column "label" \(columns are a, b\)/);
});

test('char-level text: windows of seqLength and next-character targets (seed 8.11)', async () => {
  const ds = new TextDataset('hello', { seqLength: 4 });
  assert.deepEqual(ds.vocab, ['e', 'h', 'l', 'o']);
  assert.equal(ds.length, 1);
  const [b] = await all(ds, { batchSize: 1 });
  assert.deepEqual(b.x.dims, [1, 4]);
  assert.equal(ds.decode(b.x.data as BigInt64Array), 'hell');
  assert.equal(ds.decode(b.y.data as BigInt64Array), 'ello');
  const lines = await TextDataset.open(file('t.txt', 'abcdefghij\nklm'), { seqLength: 3, stride: 2 });
  assert.equal(lines.length, Math.floor((14 - 1 - 3) / 2) + 1);
  const batches = await all(lines, { batchSize: 4 });
  assert.deepEqual(batches.map((x) => x.x.dims), [[4, 3], [2, 3]]);
  // Sample 4 starts at character 8: x "ij\n", y "j\nk".
  assert.equal(lines.decode((batches[1].x.data as BigInt64Array).subarray(0, 3)), 'ij\n');
  assert.equal(lines.decode((batches[1].y.data as BigInt64Array).subarray(0, 3)), 'j\nk');
  await rejects(() => new TextDataset('abc', { seqLength: 3 }), 'NNS_ERR_TRAIN_DATASET_INVALID', /3 characters are too few for one sequence of 3/);
  await rejects(() => new TextDataset('ab\nz', { seqLength: 1, vocab: ['a', 'b', '\n'] }), 'NNS_ERR_TRAIN_DATASET_INVALID', /line 2: character "z" is not in the vocabulary/);
});

interface FolderFixture { classes: string[]; samples: [string, number][]; tensors: string[]; dims: number[] }

test("ImageFolder lists classes and samples as torchvision's does, and decodes through preprocess", async () => {
  const fx = readFixture<FolderFixture>('image-folder.json');
  const root = join(FIXTURES, 'image-folder');
  const ds = await ImageFolder.open(root, { transform: { resize: null, centerCrop: [4, 5], mean: null, std: null } });
  assert.deepEqual(ds.classes, fx.classes);
  assert.deepEqual(ds.samples.map(([p, c]) => [p.slice(root.length + 1), c]), fx.samples);
  assert.deepEqual(ds.xSpec.dims, fx.dims);
  const [b] = await all(ds, { batchSize: 16 });
  assert.deepEqual(b.x.dims, [fx.samples.length, ...fx.dims]);
  assert.deepEqual(Array.from(b.y.data as BigInt64Array, Number), fx.samples.map(([, c]) => c));
  const size = fx.dims.reduce((a, c) => a * c, 1);
  fx.tensors.forEach((t, i) => {
    const err = relError((b.x.data as Float32Array).subarray(i * size, (i + 1) * size), f32(t));
    assert.ok(err < 1e-6, `${fx.samples[i][0]}: relative error ${err}`);
  });
});

test('ImageFolder with an injected decoder, and its errors', async () => {
  const root = join(tmp, 'folder');
  mkdirSync(join(root, 'b'), { recursive: true });
  mkdirSync(join(root, 'a'), { recursive: true });
  writeFileSync(join(root, 'a', '1.jpg'), '');
  writeFileSync(join(root, 'b', '2.webp'), '');
  const ds = await ImageFolder.open(root, { decode: async (p) => new Float32Array(6).fill(p.endsWith('.jpg') ? 1 : 2), sampleDims: [1, 2, 3] });
  const [b] = await all(ds, { batchSize: 2 });
  assert.deepEqual(b.x.dims, [2, 1, 2, 3]);
  assert.deepEqual(Array.from(b.x.data as Float32Array), [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
  mkdirSync(join(root, 'c'));
  writeFileSync(join(root, 'c', 'readme.txt'), '');
  await rejects(ImageFolder.open(root, { decode: async () => new Float32Array(6), sampleDims: [6] }), 'NNS_ERR_TRAIN_DATASET_INVALID', /no image files for the classes c; supported extensions are \.jpg/);
  await rejects(ImageFolder.open(join(root, 'a'), { decode: async () => new Float32Array(6), sampleDims: [6] }), 'NNS_ERR_TRAIN_DATASET_INVALID', /no class folders/);
  const wrong = await ImageFolder.open(join(FIXTURES, 'image-folder'), { decode: async () => new Float32Array(5), sampleDims: [6] });
  await rejects(all(wrong, { batchSize: 2 }), 'NNS_ERR_TRAIN_DATASET_INVALID', /decoded to 5 values; every sample must have dims \[6\]/);
});

test('--dataset KIND:PATH specs', async () => {
  assert.deepEqual(parseDatasetSpec('idx:/usr/share/datasets/fashion-mnist'), { kind: 'idx', path: '/usr/share/datasets/fashion-mnist' });
  assert.deepEqual(parseDatasetSpec('CSV:C:/data/x.csv'), { kind: 'csv', path: 'C:/data/x.csv' });
  const code = 'NNS_ERR_TRAIN_DATASET_INVALID';
  await rejects(() => parseDatasetSpec('parquet:/x'), code, /unknown kind "parquet"; known kinds are idx, imagefolder, csv, jsonl, text/);
  await rejects(() => parseDatasetSpec('/data/train.csv'), code, /expected KIND:PATH/);
  await rejects(() => parseDatasetSpec('text:'), code, /the path after "text:" is empty/);
  await rejects(openDataset('csv:/nowhere.csv'), 'NNS_ERR_TRAIN_OPTIONS_INVALID', /needs the option target/);
  await rejects(openDataset('text:/nowhere.txt', { seqLength: 8 }), code, /cannot read \/nowhere\.txt/);
});
