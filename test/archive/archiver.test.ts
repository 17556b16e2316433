import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import yauzl from 'yauzl';
import { openArchive } from '../../src/archive/mar.js';
import { runArchiveCli, writeArchive, type CliIo } from '../../src/archive/archiver.js';
import { rejectsWith, tempDir } from '../fixtures/archives/build-zips.js';

// A real ONNX model from the repo's fixtures; the archive must carry it byte for byte.
const MODEL = resolve(process.cwd(), 'test/fixtures/models/two_inputs/model.onnx');

async function sources(): Promise<{ root: string; out: string; labels: string; config: string; vocab: string }> {
  const root = await tempDir();
  const labels = join(root, 'index_to_name.json');
  const config = join(root, 'model-config.yaml');
  const vocab = join(root, 'vocab.txt');
  await writeFile(labels, JSON.stringify({ 0: 'cat', 1: 'dog' }));
  await writeFile(config, 'minWorkers: 1\nmaxWorkers: 2\nbatchSize: 4\nmaxBatchDelay: 10\n');
  await writeFile(vocab, 'hello\nworld\n');
  return { root, out: join(root, 'store'), labels, config, vocab };
}

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', out: (s: string) => { io.stdout += s; }, err: (s: string) => { io.stderr += s; } };
  return io;
}

async function zipEntryNames(path: string): Promise<string[]> {
  const zip = await yauzl.openPromise(path, { lazyEntries: true });
  const names: string[] = [];
  for await (const e of zip.eachEntry()) names.push(e.fileName);
  return names.sort();
}

test('write then open: manifest, files and model config survive the round trip', async () => {
  const s = await sources();
  const inputs = [{ name: 'x', dtype: 'float32' as const, shape: ['batch', 4] }];
  const path = await writeArchive({
    modelName: 'two_inputs', version: '2.1', serializedFile: MODEL, exportPath: s.out,
    extraFiles: [s.labels, s.vocab], configFile: s.config, inputs,
  });
  assert.equal(path, join(s.out, 'two_inputs.mar'));
  assert.deepEqual(await zipEntryNames(path), ['MAR-INF/MANIFEST.json', 'index_to_name.json', 'model-config.yaml', 'model.onnx', 'vocab.txt']);

  const a = await openArchive(path, { workDir: join(s.root, 'work') });
  try {
    const m = a.manifest;
    assert.equal(m.runtime, 'onnx');
    assert.match(m.createdOn, /^\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d$/);
    assert.deepEqual(m.model, {
      modelName: 'two_inputs', modelVersion: '2.1', handler: 'tensor', serializedFile: 'model.onnx',
      inputs, labels: 'index_to_name.json', configFile: 'model-config.yaml', extraFiles: ['index_to_name.json', 'vocab.txt'],
    });
    assert.deepEqual(a.modelConfig, { minWorkers: 1, maxWorkers: 2, batchSize: 4, maxBatchDelay: 10 });
    assert.deepEqual(await readFile(a.resolveFile('model.onnx')), await readFile(MODEL));
    const manifestText = await readFile(a.resolveFile('MAR-INF/MANIFEST.json'), 'utf8');
    assert.match(manifestText, /^\{\n {2}"createdOn"/, 'pretty-printed JSON');
  } finally {
    await a.cleanup();
  }
});

test('no-archive writes a folder that opens the same way', async () => {
  const s = await sources();
  const dir = await writeArchive({ modelName: 'mlp', version: '1.0', serializedFile: MODEL, exportPath: s.out, labels: s.labels, format: 'no-archive' });
  assert.equal(dir, join(s.out, 'mlp'));
  assert.deepEqual((await readdir(dir)).sort(), ['MAR-INF', 'index_to_name.json', 'model.onnx']);
  const a = await openArchive(dir, { workDir: join(s.root, 'work') });
  assert.equal(a.manifest.model.labels, 'index_to_name.json');
  assert.equal(a.dir, dir);
});

test('a handler file is stored and named by its base name', async () => {
  const s = await sources();
  const handler = join(s.root, 'my_handler.js');
  await writeFile(handler, 'export function preprocess(x) { return x; }\n');
  const path = await writeArchive({ modelName: 'h', version: '1.0', serializedFile: MODEL, exportPath: s.out, handler });
  const a = await openArchive(path, { workDir: join(s.root, 'work') });
  assert.equal(a.manifest.model.handler, 'my_handler.js');
  assert.equal(await readFile(a.resolveFile('my_handler.js'), 'utf8'), await readFile(handler, 'utf8'));
  await a.cleanup();
});

test('an existing archive is kept unless force is given', async () => {
  const s = await sources();
  const first = await writeArchive({ modelName: 'mlp', version: '1.0', serializedFile: MODEL, exportPath: s.out });
  await rejectsWith(writeArchive({ modelName: 'mlp', version: '2.0', serializedFile: MODEL, exportPath: s.out }), 'ARCHIVE_EXISTS', /mlp\.mar already exists/);
  await writeArchive({ modelName: 'mlp', version: '2.0', serializedFile: MODEL, exportPath: s.out, force: true });
  const a = await openArchive(first, { workDir: join(s.root, 'work') });
  assert.equal(a.manifest.model.modelVersion, '2.0');
  await a.cleanup();
  assert.deepEqual(await readdir(s.out), ['mlp.mar'], 'no temp files left');
});

test('bad options fail before anything is written', async () => {
  const s = await sources();
  const opts = { modelName: 'mlp', version: '1.0', serializedFile: MODEL, exportPath: s.out };
  await rejectsWith(writeArchive({ ...opts, modelName: '9lives' }), 'MANIFEST_INVALID', /"model\.modelName"/);
  await rejectsWith(writeArchive({ ...opts, serializedFile: join(s.root, 'none.onnx') }), 'ARCHIVE_NOT_FOUND', /--serialized-file: file .*none\.onnx does not exist/);
  await rejectsWith(writeArchive({ ...opts, extraFiles: [s.root] }), 'ARCHIVE_INVALID', /--extra-files: .* is not a file/);
  await mkdir(join(s.root, 'other'));
  await writeFile(join(s.root, 'other', 'vocab.txt'), 'different');
  await rejectsWith(writeArchive({ ...opts, extraFiles: [s.vocab, join(s.root, 'other', 'vocab.txt')] }), 'ARCHIVE_INVALID', /would both be stored as "vocab\.txt"/);
  await writeFile(s.config, 'batchSize: 0\n');
  await rejectsWith(writeArchive({ ...opts, configFile: s.config }), 'MODEL_CONFIG_INVALID', /"batchSize"/);
  assert.deepEqual(await readdir(s.out).catch(() => []), []);
});

test('CLI: writes an archive and exits 0', async () => {
  const s = await sources();
  const io = capture();
  const code = await runArchiveCli([
    '--model-name', 'mlp', '--version', '1.0', '--serialized-file', MODEL,
    '--extra-files', `${s.labels},${s.vocab}`, '--config-file', s.config, '--export-path', s.out,
  ], io);
  assert.equal(code, 0, io.stderr);
  assert.equal(io.stdout.trim(), join(s.out, 'mlp.mar'));
  const a = await openArchive(join(s.out, 'mlp.mar'), { workDir: join(s.root, 'work') });
  assert.equal(a.manifest.model.labels, 'index_to_name.json', 'index_to_name.json among extra files sets labels');
  assert.equal(a.modelConfig.batchSize, 4);
  await a.cleanup();
});

test('CLI: refuses to overwrite without -f, replaces with -f', async () => {
  const s = await sources();
  const args = ['--model-name', 'mlp', '-v', '1.0', '--serialized-file', MODEL, '--export-path', s.out];
  assert.equal(await runArchiveCli(args, capture()), 0);
  const io = capture();
  assert.equal(await runArchiveCli(args, io), 1);
  assert.match(io.stderr, /NNS_ERR_ARCHIVE_EXISTS: .*mlp\.mar already exists; use -f\/--force/);
  assert.equal(await runArchiveCli([...args, '-f'], capture()), 0);
  assert.equal(await runArchiveCli([...args, '--force', '--archive-format', 'no-archive'], capture()), 0);
  assert.ok(existsSync(join(s.out, 'mlp', 'MAR-INF', 'MANIFEST.json')));
});

test('CLI: usage errors exit 2, help exits 0', async () => {
  const s = await sources();
  let io = capture();
  assert.equal(await runArchiveCli(['-h'], io), 0);
  assert.match(io.stdout, /--serialized-file/);
  io = capture();
  assert.equal(await runArchiveCli(['--model-name', 'mlp'], io), 2);
  assert.match(io.stderr, /missing --version, --serialized-file, --export-path/);
  io = capture();
  assert.equal(await runArchiveCli(['--model-name', 'mlp', '--runtime', 'python'], io), 2);
  assert.match(io.stderr, /--runtime/);
  io = capture();
  const args = ['--model-name', 'mlp', '--version', '1.0', '--serialized-file', MODEL, '--export-path', s.out];
  assert.equal(await runArchiveCli([...args, '--archive-format', 'tgz'], io), 2);
  assert.match(io.stderr, /--archive-format/);
});

test('CLI: a missing input file exits 1 naming the flag', async () => {
  const s = await sources();
  const io = capture();
  const code = await runArchiveCli(['--model-name', 'mlp', '--version', '1.0', '--serialized-file', join(s.root, 'nope.onnx'), '--export-path', s.out], io);
  assert.equal(code, 1);
  assert.match(io.stderr, /NNS_ERR_ARCHIVE_NOT_FOUND: --serialized-file: file .*nope\.onnx does not exist/);
});
