import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { writeArchive } from '../src/archive/archiver.js';
import { NEURALNET, ROOT, makeStore, startServerProcess } from './helpers.js';

const run = promisify(execFile);

test('nnserve register / list / describe / scale / set-default / unregister against a running server', async () => {
  const store = await makeStore([NEURALNET]);
  const dir = mkdtempSync(join(tmpdir(), 'nnserve-v-'));
  await writeArchive({ modelName: 'neuralnet', version: '2.0', serializedFile: NEURALNET.onnx, exportPath: dir, force: true });
  copyFileSync(join(dir, 'neuralnet.mar'), join(store, 'neuralnet-v2.mar'));
  const server = await startServerProcess(store, { NNSERVE_LOAD_MODELS: 'neuralnet.mar' });
  const keyFile = join(mkdtempSync(join(tmpdir(), 'k-')), 'keys.json');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(keyFile, JSON.stringify({ management: { key: server.key } }));
  const cli = (...args: string[]) => run(process.execPath, [join(ROOT, 'dist/src/cli.js'), ...args, '--address', server.management, '--key-file', keyFile]);
  try {
    const reg = await cli('register', '--url', 'neuralnet-v2.mar', '--initial-workers', '1');
    assert.match(reg.stdout, /Version: 2.0 registered with 1 initial workers/);
    assert.deepEqual(JSON.parse((await cli('list')).stdout).models.map((m: { modelName: string }) => m.modelName), ['neuralnet']);
    assert.equal(JSON.parse((await cli('describe', 'neuralnet', 'all')).stdout).length, 2);
    assert.match((await cli('scale', 'neuralnet', '2.0', '--min-worker', '2', '--sync')).stdout, /Workers scaled to 2/);
    assert.match((await cli('set-default', 'neuralnet', '2.0')).stdout, /to \\"2.0\\"/);
    assert.match((await cli('unregister', 'neuralnet', '1.0')).stdout, /unregistered/);
    const bad = await cli('describe', 'nope').then(() => undefined, (e: { code: number; stderr: string }) => e);
    assert.equal(bad?.code, 1);
    assert.match(bad!.stderr, /Model not found: nope/);
    const noKey = await run(process.execPath, [join(ROOT, 'dist/src/cli.js'), 'list', '--address', server.management, '--key-file', '/nonexistent']).then(() => undefined, (e: { stderr: string }) => e);
    assert.match(noKey!.stderr, /Token Authorization failed/);
  } finally {
    await server.kill();
  }
});
