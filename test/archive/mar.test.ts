import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listArchives, openArchive } from '../../src/archive/mar.js';
import {
  listDir, manifestFor, rejectsWith, tempDir, validEntries, zipFixture,
} from '../fixtures/archives/build-zips.js';

async function folderArchive(root: string, name: string, manifest: string, files: Record<string, string> = { 'model.onnx': 'bytes' }): Promise<string> {
  const dir = join(root, name);
  await mkdir(join(dir, 'MAR-INF'), { recursive: true });
  await writeFile(join(dir, 'MAR-INF/MANIFEST.json'), manifest);
  for (const [f, data] of Object.entries(files)) await writeFile(join(dir, f), data);
  return dir;
}

test('a .mar zip is extracted into a fresh folder under workDir and cleaned up', async () => {
  const { path, workDir } = await zipFixture('mlp.mar', [
    { name: 'MAR-INF/MANIFEST.json', data: manifestFor({ configFile: 'model-config.yaml', extraFiles: ['sub/vocab.txt'] }) },
    { name: 'model.onnx', data: 'onnx bytes' },
    { name: 'model-config.yaml', data: 'batchSize: 4\nmaxBatchDelay: 20\ntemperature: 0.5\n' },
    { name: 'sub/', dir: true },
    { name: 'sub/vocab.txt', data: 'a\nb\n' },
  ]);
  const a = await openArchive(path, { workDir });
  assert.equal(a.archiveName, 'mlp.mar');
  assert.equal(a.sourcePath, path);
  assert.ok(a.dir.startsWith(join(await realpath(workDir), 'mlp.mar-')), a.dir);
  assert.equal(a.manifest.model.modelName, 'mlp');
  assert.deepEqual(a.modelConfig, { batchSize: 4, maxBatchDelay: 20, temperature: 0.5 });
  assert.equal(await readFile(a.resolveFile('model.onnx'), 'utf8'), 'onnx bytes');
  assert.equal(await readFile(a.resolveFile('sub/vocab.txt'), 'utf8'), 'a\nb\n');
  assert.equal((await listDir(workDir)).length, 1);
  await a.cleanup();
  assert.deepEqual(await listDir(workDir), []);
});

test('two opens of one archive get separate folders', async () => {
  const { path, workDir } = await zipFixture('mlp.mar', validEntries());
  const [a, b] = await Promise.all([openArchive(path, { workDir }), openArchive(path, { workDir })]);
  assert.notEqual(a.dir, b.dir);
  await a.cleanup();
  assert.ok(existsSync(b.resolveFile('model.onnx')));
  await b.cleanup();
});

test('resolveFile refuses escapes and names missing files', async () => {
  const { path, workDir } = await zipFixture('mlp.mar', validEntries());
  const a = await openArchive(path, { workDir });
  try {
    assert.throws(() => a.resolveFile('../mlp.mar'), { code: 'NNS_ERR_ARCHIVE_UNSAFE', message: /"\.\.\/mlp\.mar"/ });
    assert.throws(() => a.resolveFile('/etc/passwd'), { code: 'NNS_ERR_ARCHIVE_UNSAFE' });
    assert.throws(() => a.resolveFile('nope.bin'), { code: 'NNS_ERR_ARCHIVE_INVALID', message: /mlp\.mar.*"nope\.bin" is not in the archive/ });
    assert.throws(() => a.resolveFile('MAR-INF'), { code: 'NNS_ERR_ARCHIVE_INVALID', message: /not a file/ });
  } finally {
    await a.cleanup();
  }
});

test('an unpacked folder opens in place and cleanup leaves it alone', async () => {
  const root = await tempDir();
  const dir = await folderArchive(root, 'mlp', manifestFor({ handler: 'my_handler.js' }), { 'model.onnx': 'x', 'my_handler.js': 'export {}' });
  const a = await openArchive(dir, { workDir: join(root, 'work') });
  assert.equal(a.archiveName, 'mlp');
  assert.equal(a.dir, dir);
  assert.deepEqual(a.modelConfig, {});
  assert.equal(a.resolveFile('model.onnx'), join(dir, 'model.onnx'));
  await a.cleanup();
  assert.ok(existsSync(join(dir, 'model.onnx')));
  assert.ok(!existsSync(join(root, 'work')), 'no work folder needed for an unpacked archive');
});

test('a folder whose model file is a symlink out of the folder is refused', async () => {
  const root = await tempDir();
  await writeFile(join(root, 'secret.onnx'), 'outside');
  const dir = await folderArchive(root, 'mlp', manifestFor(), {});
  await symlink(join(root, 'secret.onnx'), join(dir, 'model.onnx'));
  await rejectsWith(openArchive(dir, { workDir: join(root, 'work') }), 'ARCHIVE_UNSAFE', /mlp: model\.serializedFile "model\.onnx" resolves outside/);
});

test('a folder whose manifest is a symlink out of the folder is refused', async () => {
  const root = await tempDir();
  await writeFile(join(root, 'evil.json'), manifestFor());
  const dir = join(root, 'mlp');
  await mkdir(join(dir, 'MAR-INF'), { recursive: true });
  await writeFile(join(dir, 'model.onnx'), 'x');
  await symlink(join(root, 'evil.json'), join(dir, 'MAR-INF/MANIFEST.json'));
  await rejectsWith(openArchive(dir, { workDir: join(root, 'work') }), 'ARCHIVE_UNSAFE', /manifest.*resolves outside/);
});

test('a symlink that stays inside the folder is fine', async () => {
  const root = await tempDir();
  const dir = await folderArchive(root, 'mlp', manifestFor(), { 'real.onnx': 'x' });
  await symlink('real.onnx', join(dir, 'model.onnx'));
  const a = await openArchive(dir, { workDir: join(root, 'work') });
  assert.equal(a.resolveFile('model.onnx'), join(dir, 'real.onnx'));
});

test('a missing archive is ARCHIVE_NOT_FOUND', async () => {
  const root = await tempDir();
  await rejectsWith(openArchive(join(root, 'nope.mar'), { workDir: root }), 'ARCHIVE_NOT_FOUND', /nope\.mar/);
});

test('manifest problems are MANIFEST_INVALID naming the archive', async () => {
  const cases: [string, Parameters<typeof zipFixture>[1], RegExp][] = [
    ['no-manifest.mar', [{ name: 'model.onnx', data: 'x' }], /no-manifest\.mar has no MAR-INF\/MANIFEST\.json/],
    ['not-json.mar', [{ name: 'MAR-INF/MANIFEST.json', data: '{"model": ' }, { name: 'model.onnx', data: 'x' }], /not-json\.mar.*not valid JSON/],
    ['bad-name.mar', [{ name: 'MAR-INF/MANIFEST.json', data: manifestFor({ modelName: '_x' }) }, { name: 'model.onnx' }], /bad-name\.mar.*"model\.modelName"/],
  ];
  for (const [name, entries, re] of cases) {
    const { path, workDir } = await zipFixture(name, entries);
    await rejectsWith(openArchive(path, { workDir }), 'MANIFEST_INVALID', re);
    assert.deepEqual(await listDir(workDir), [], `${name} left files behind`);
  }
});

test('manifest paths must name files inside the archive', async () => {
  const cases: [Record<string, unknown>, 'ARCHIVE_INVALID' | 'ARCHIVE_UNSAFE', RegExp][] = [
    [{ serializedFile: 'missing.onnx' }, 'ARCHIVE_INVALID', /model\.serializedFile "missing\.onnx" is not in the archive/],
    [{ serializedFile: '../x.onnx' }, 'ARCHIVE_UNSAFE', /model\.serializedFile "\.\.\/x\.onnx" has a "\.\." segment/],
    [{ serializedFile: '/etc/x.onnx' }, 'ARCHIVE_UNSAFE', /absolute/],
    [{ labels: 'index_to_name.json' }, 'ARCHIVE_INVALID', /model\.labels/],
    [{ extraFiles: ['model.onnx', 'vocab.txt'] }, 'ARCHIVE_INVALID', /model\.extraFiles\[1\] "vocab\.txt"/],
    [{ handler: 'my_handler.js' }, 'ARCHIVE_INVALID', /model\.handler "my_handler\.js"/],
    [{ configFile: 'model-config.yaml' }, 'ARCHIVE_INVALID', /model\.configFile/],
  ];
  for (const [model, kind, re] of cases) {
    const { path, workDir } = await zipFixture('mlp.mar', [
      { name: 'MAR-INF/MANIFEST.json', data: manifestFor(model) },
      { name: 'model.onnx', data: 'x' },
    ]);
    await rejectsWith(openArchive(path, { workDir }), kind, re);
    assert.deepEqual(await listDir(workDir), []);
  }
});

test('a bad model-config.yaml is MODEL_CONFIG_INVALID naming the file', async () => {
  const { path, workDir } = await zipFixture('mlp.mar', [
    { name: 'MAR-INF/MANIFEST.json', data: manifestFor({ configFile: 'model-config.yaml' }) },
    { name: 'model.onnx', data: 'x' },
    { name: 'model-config.yaml', data: 'batchSize: 0\n' },
  ]);
  await rejectsWith(openArchive(path, { workDir }), 'MODEL_CONFIG_INVALID', /mlp\.mar\/model-config\.yaml.*"batchSize"/);
  assert.deepEqual(await listDir(workDir), []);
});

test('listArchives lists .mar files and archive folders, sorted', async () => {
  const root = await tempDir();
  await writeFile(join(root, 'zeta.mar'), 'x');
  await writeFile(join(root, 'alpha.mar'), 'x');
  await writeFile(join(root, '.alpha.mar.1234.tmp'), 'x');
  await writeFile(join(root, 'notes.txt'), 'x');
  await mkdir(join(root, 'empty-folder'));
  await folderArchive(root, 'mid', manifestFor());
  assert.deepEqual(await listArchives(root), ['alpha.mar', 'mid', 'zeta.mar']);
  await rejectsWith(listArchives(join(root, 'nope')), 'ARCHIVE_NOT_FOUND', /model store .*nope does not exist/);
});
