import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createWriteStream, openAsBlob, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import yazl from 'yazl';
import { NEURALNET, makeStore, startServerProcess } from '../helpers.js';
import { manifestFor, tempDir } from '../fixtures/archives/build-zips.js';

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

test('a 100 MB archive upload streams to disk: server RSS grows by far less than 100 MB', async () => {
  const dir = await tempDir();
  const mar = join(dir, 'big.mar');
  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from(manifestFor({ modelName: 'big', extraFiles: ['blob.bin'] })), 'MAR-INF/MANIFEST.json');
  zip.addBuffer(readFileSync(NEURALNET.onnx), 'model.onnx');
  zip.addReadStream(Readable.from((function* () {
    for (let i = 0; i < 100; i++) yield randomBytes(1 << 20);
  })()), 'blob.bin', { compress: false });
  zip.end();
  await pipeline(zip.outputStream as Readable, createWriteStream(mar));

  const store = await makeStore([]);
  const server = await startServerProcess(store);
  try {
    const base = rssMb(server.pid);
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(server.pid))), 10);
    const form = new FormData();
    // No worker yet: a new ONNX Runtime thread alone adds tens of MB, which is not the upload.
    form.set('initial_workers', '0');
    form.set('file', await openAsBlob(mar), 'big.mar');
    const res = await server.manage('/models', { method: 'POST', body: form });
    clearInterval(sampler);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.ok(readdirSync(store).includes('big.mar'));
    const scaled = await server.manage('/models/big?min_worker=1&synchronous=true', { method: 'PUT' });
    assert.equal(scaled.status, 200, await scaled.text());
    const pred = await fetch(`${server.inference}/predictions/big`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[[1]]' });
    assert.equal(pred.status, 200);
    console.log(`# upload of 100 MB: server RSS ${base.toFixed(0)} MB -> peak ${peak.toFixed(0)} MB`);
    assert.ok(peak - base < 50, `RSS grew by ${(peak - base).toFixed(1)} MB during a 100 MB upload`);
  } finally {
    await server.kill();
  }
});
