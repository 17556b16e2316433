import assert from 'node:assert/strict';
import { createWriteStream, readdirSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import yazl from 'yazl';
import type { App } from '../../src/app.js';
import { buildApp } from '../../src/app.js';
import { NEURALNET, makeStore, testConfig } from '../helpers.js';
import { manifestFor, patchBytes, tempDir, zipBuffer } from '../fixtures/archives/build-zips.js';

/** multipart/form-data with one archive file and option fields, as curl -F would send it. */
function multipart(file: Buffer, filename: string, fields: Record<string, string> = {}, fieldName = 'file') {
  const boundary = '----nnserve' + Math.random().toString(16).slice(2);
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${fieldName}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`), file, Buffer.from(`\r\n--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

describe('management security: uploads and URLs', () => {
  let app: App;
  let store: string;
  let onnx: Buffer;
  before(async () => {
    store = await makeStore([NEURALNET]);
    onnx = await readFile(NEURALNET.onnx);
    app = await buildApp(testConfig({ model_store: store, enable_model_api: true, allowed_urls: 'http://.*,https://.*,file://.*' }));
  });
  after(() => app.close());

  const upload = (zip: Buffer, name = 'evil.mar', fields: Record<string, string> = {}, fieldName = 'file') => {
    const m = multipart(zip, name, fields, fieldName);
    return app.management.inject({ method: 'POST', url: '/models', payload: m.payload, headers: { ...m.headers, authorization: `Bearer ${app.keys.management}` } });
  };
  const storeFiles = () => readdirSync(store).filter((f) => !f.startsWith('.')).sort();

  test('a valid uploaded archive registers and serves', async () => {
    const zip = await zipBuffer([{ name: 'MAR-INF/MANIFEST.json', data: manifestFor({ modelName: 'uploaded', modelVersion: '1.0' }) }, { name: 'model.onnx', data: onnx }]);
    const res = await upload(zip, 'uploaded.mar', { initial_workers: '1' });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(storeFiles().includes('uploaded.mar'));
    const pred = await app.inference.inject({ method: 'POST', url: '/predictions/uploaded', payload: [[1]], headers: { 'content-type': 'application/json' } });
    assert.equal(pred.statusCode, 200);
    const again = await upload(zip, 'uploaded.mar');
    assert.equal(again.statusCode, 409, 'an existing archive is never replaced');
  });

  test('zip-slip, absolute paths, symlinks, a manifest pointing outside: refused, nothing written outside the store', async () => {
    const before = storeFiles();
    const parent = dirname(store);
    const slip = patchBytes(await zipBuffer([{ name: 'MAR-INF/MANIFEST.json', data: manifestFor() }, { name: 'model.onnx', data: onnx }, { name: 'XX/nnserve-slip.txt', data: 'pwned' }]), 'XX/nnserve-slip.txt', '../nnserve-slip.txt');
    const abs = patchBytes(await zipBuffer([{ name: 'MAR-INF/MANIFEST.json', data: manifestFor() }, { name: 'model.onnx', data: onnx }, { name: 'Xtmp/nnserve-abs.txt', data: 'pwned' }]), 'Xtmp/nnserve-abs.txt', '/tmp/nnserve-abs.txt');
    const symlink = await zipBuffer([{ name: 'MAR-INF/MANIFEST.json', data: manifestFor() }, { name: 'model.onnx', data: '/etc/passwd', mode: 0o120777 }]);
    const outside = await zipBuffer([{ name: 'MAR-INF/MANIFEST.json', data: manifestFor({ serializedFile: '../../../etc/passwd.onnx' }) }, { name: 'model.onnx', data: onnx }]);
    for (const [what, zip] of [['zip-slip', slip], ['absolute path', abs], ['symlink', symlink], ['manifest outside', outside]] as const) {
      const res = await upload(zip, 'evil.mar');
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
      assert.match(res.json().message, /unsafe|outside|symbolic|symlink|\.\.|absolute|escapes/i, `${what}: ${res.json().message}`);
    }
    assert.equal(existsSync(join(parent, 'nnserve-slip.txt')), false);
    assert.equal(existsSync('/tmp/nnserve-abs.txt'), false);
    assert.deepEqual(storeFiles(), before, 'the store holds exactly what it held');
    assert.deepEqual(app.registry.names(), ['neuralnet', 'uploaded']);
  });

  test('a zip bomb expanding to 1 GB is refused before it fills the disk', async () => {
    const dir = await tempDir();
    const bomb = join(dir, 'bomb.mar');
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.from(manifestFor({ modelName: 'bomb' })), 'MAR-INF/MANIFEST.json');
    zip.addReadStream(Readable.from((function* () {
      const chunk = Buffer.alloc(1 << 20);
      for (let i = 0; i < 1024; i++) yield chunk; // 1 GiB of zeros
    })()), 'model.onnx');
    zip.end();
    await pipeline(zip.outputStream as Readable, createWriteStream(bomb));
    const bytes = await readFile(bomb);
    assert.ok(bytes.length < 2 * 1024 * 1024, `the bomb is ${bytes.length} bytes on the wire`);
    const res = await upload(bytes, 'bomb.mar');
    assert.equal(res.statusCode, 413, res.body);
    assert.match(res.json().message, /ratio|too large|exceeds|limit/i);
    assert.equal(app.registry.has('bomb'), false);
    assert.ok(!storeFiles().includes('bomb.mar'));
  });

  test('URLs to internal addresses, file:// and ".." are refused even when allowed_urls matches', async () => {
    const h = { authorization: `Bearer ${app.keys.management}` };
    for (const url of ['http://127.0.0.1:8081/models', 'http://localhost:8080/x.mar', 'http://[::1]/x.mar', 'http://169.254.169.254/latest/meta-data', 'file:///etc/passwd', 'https://example.com/../x.mar', '../neuralnet.mar', 'sub/neuralnet.mar']) {
      const res = await app.management.inject({ method: 'POST', url: `/models?url=${encodeURIComponent(url)}`, headers: h });
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
      assert.equal(res.json().type, 'InvalidModelUrlException', url);
    }
    assert.deepEqual(app.registry.names(), ['neuralnet', 'uploaded']);
  });

  test('with the default allowed_urls (empty) no URL is fetched at all', async () => {
    const s = await makeStore([]);
    const plain = await buildApp(testConfig({ model_store: s, enable_model_api: true }));
    try {
      const res = await plain.management.inject({ method: 'POST', url: `/models?url=${encodeURIComponent('https://example.com/m.mar')}`, headers: { authorization: `Bearer ${plain.keys.management}` } });
      assert.equal(res.statusCode, 400);
      assert.match(res.json().message, /allowed_urls is empty/);
    } finally {
      await plain.close();
    }
  });

  test('wrong multipart field names are a clear 400', async () => {
    const zip = await zipBuffer([{ name: 'MAR-INF/MANIFEST.json', data: manifestFor() }, { name: 'model.onnx', data: onnx }]);
    const res = await upload(zip, 'x.mar', {}, 'archive');
    assert.equal(res.statusCode, 400);
    assert.match(res.json().message, /"archive".*"file"/);
  });
});
