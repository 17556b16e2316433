import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { writeArchive } from '../../src/archive/archiver.js';
import { buildApp } from '../../src/app.js';
import { FASHION_MLP, NEURALNET, makeStore, testConfig } from '../helpers.js';

describe('management API conformance (TorchServe status codes and bodies)', () => {
  let app: App;
  let store: string;
  before(async () => {
    store = await makeStore([NEURALNET, FASHION_MLP]);
    // Start with only fashion_mlp.mar; neuralnet's versions are registered through the API.
    app = await buildApp(testConfig({ model_store: store, load_models: 'fashion_mlp.mar', enable_model_api: true, default_workers_per_model: 1 }));
  });
  after(() => app.close());

  const call = (method: string, url: string, payload?: unknown, auth = true) =>
    app.management.inject({
      method: method as 'GET', url, payload: payload as string,
      headers: { ...(auth ? { authorization: `Bearer ${app.keys.management}` } : {}), ...(payload ? { 'content-type': 'application/json' } : {}) },
    });

  test('register: missing url 400, bad runtime 400, unknown handler 400, unknown archive 404', async () => {
    const missing = await call('POST', '/models');
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().message, 'Parameter url is required.');
    assert.equal((await call('POST', '/models?url=neuralnet.mar&runtime=python4')).statusCode, 400);
    const handler = await call('POST', '/models?url=neuralnet.mar&handler=no_such_handler');
    assert.equal(handler.statusCode, 400);
    assert.match(handler.json().message, /no_such_handler/);
    assert.equal((await call('POST', '/models?url=resnet-18.mar')).statusCode, 404);
    assert.equal(app.registry.has('neuralnet'), false, 'nothing registered by failed calls');
  });

  test('register synchronously 200, duplicate version 409; JSON body form works too', async () => {
    const ok = await call('POST', '/models?url=neuralnet.mar&initial_workers=1&synchronous=true');
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { status: 'Model "neuralnet" Version: 1.0 registered with 1 initial workers' });
    const dup = await call('POST', '/models?url=neuralnet.mar');
    assert.equal(dup.statusCode, 409);
    assert.match(dup.json().message, /Model version 1.0 is already registered for model neuralnet/);
    const body = await call('POST', '/models', { url: await copyVersion(store, '3.0'), initial_workers: 1 });
    assert.equal(body.statusCode, 200, body.body);
    assert.match(body.json().status, /Version: 3.0 registered/);
    assert.equal((await call('DELETE', '/models/neuralnet/3.0')).statusCode, 200);
  });

  test('async register answers 202, then the version becomes ready', async () => {
    const res = await call('POST', `/models?url=${await copyVersion(store, '2.0')}&synchronous=false&initial_workers=1`);
    assert.equal(res.statusCode, 202);
    assert.deepEqual(res.json(), { status: 'Processing worker updates...' });
    const until = Date.now() + 10_000;
    while (!(app.registry.has('neuralnet') && app.registry.versions('neuralnet').some((v) => v.modelVersion === '2.0' && v.ready))) {
      assert.ok(Date.now() < until, 'version 2.0 never became ready');
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  test('list is sorted and paginated; describe has TorchServe\'s fields; unknown model/version 404', async () => {
    const page = await call('GET', '/models?limit=1');
    assert.deepEqual(page.json(), { nextPageToken: '1', models: [{ modelName: 'fashion_mlp', modelUrl: 'fashion_mlp.mar' }] });
    const rest = await call('GET', '/models?limit=1&next_page_token=1');
    assert.deepEqual(rest.json().models.map((m: { modelName: string }) => m.modelName), ['neuralnet']);
    assert.equal(rest.json().nextPageToken, undefined);
    const all = (await call('GET', '/models/neuralnet/all')).json();
    assert.deepEqual(all.map((d: { modelVersion: string }) => d.modelVersion).sort(), ['1.0', '2.0']);
    const d = all[0];
    for (const k of ['modelName', 'modelVersion', 'modelUrl', 'minWorkers', 'maxWorkers', 'batchSize', 'maxBatchDelay', 'responseTimeout', 'workers', 'jobQueueStatus']) assert.ok(k in d, k);
    assert.equal((await call('GET', '/models/nope')).statusCode, 404);
    assert.equal((await call('GET', '/models/neuralnet/9.9')).statusCode, 404);
  });

  test('scale: min > max 400, negative 400, unknown version 404, async 202, sync 200 with workers', async () => {
    assert.equal((await call('PUT', '/models/neuralnet?min_worker=2&max_worker=1')).statusCode, 400);
    assert.equal((await call('PUT', '/models/neuralnet?max_worker=-1')).statusCode, 400);
    assert.equal((await call('PUT', '/models/neuralnet/0.0?min_worker=1&synchronous=true')).statusCode, 404);
    const a = await call('PUT', '/models/neuralnet?min_worker=2');
    assert.equal(a.statusCode, 202);
    const s = await call('PUT', '/models/neuralnet/1.0?min_worker=3&max_worker=3&synchronous=true');
    assert.equal(s.statusCode, 200, s.body);
    assert.deepEqual(s.json(), { status: 'Workers scaled to 3 for model: neuralnet, version: 1.0' });
    assert.equal(app.registry.get('neuralnet', '1.0').pool.readyCount, 3);
    const down = await call('PUT', '/models/neuralnet/1.0?min_worker=1&synchronous=true');
    assert.equal(down.statusCode, 200);
    assert.equal(app.registry.get('neuralnet', '1.0').pool.readyCount, 1);
  });

  test('set-default routes /predictions/{m}; deleting the default while others exist is 403', async () => {
    const sd = await call('PUT', '/models/neuralnet/2.0/set-default');
    assert.deepEqual(sd.json(), { status: 'Default version successfully updated for model "neuralnet" to "2.0"' });
    assert.equal(app.registry.get('neuralnet').modelVersion, '2.0');
    assert.equal((await call('PUT', '/models/neuralnet/7.0/set-default')).statusCode, 404);
    const del = await call('DELETE', '/models/neuralnet/2.0');
    assert.equal(del.statusCode, 403);
    assert.equal((await call('DELETE', '/models/neuralnet')).statusCode, 403, 'no version = the default');
    const ok = await call('DELETE', '/models/neuralnet/1.0');
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { status: 'Model "neuralnet" unregistered' });
    assert.equal((await call('DELETE', '/models/neuralnet/1.0')).statusCode, 404);
    const pred = await app.inference.inject({ method: 'POST', url: '/predictions/neuralnet', payload: [[1]], headers: { 'content-type': 'application/json' } });
    assert.equal(pred.statusCode, 200, 'version 2.0 still serves');
  });

  test('no token or a wrong token is refused on every management route', async () => {
    const routes: [string, string][] = [['GET', '/models'], ['GET', '/models/neuralnet'], ['POST', '/models?url=neuralnet.mar'], ['PUT', '/models/neuralnet?min_worker=1'], ['DELETE', '/models/neuralnet'], ['PUT', '/models/neuralnet/2.0/set-default'], ['GET', '/models/neuralnet/all']];
    for (const [method, url] of routes) {
      const none = await call(method, url, undefined, false);
      assert.equal(none.statusCode, 401, `${method} ${url} without a token`);
      const wrong = await app.management.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${app.keys.inference}` } });
      assert.equal(wrong.statusCode, 401, `${method} ${url} with the inference key`);
    }
    assert.ok(app.registry.has('neuralnet'));
  });
});

describe('model API gate', () => {
  test('register and unregister answer 405 unless enable_model_api is on', async () => {
    const store = await makeStore([NEURALNET]);
    const app = await buildApp(testConfig({ model_store: store }));
    try {
      const h = { authorization: `Bearer ${app.keys.management}` };
      const post = await app.management.inject({ method: 'POST', url: '/models?url=neuralnet.mar', headers: h });
      assert.equal(post.statusCode, 405);
      assert.equal(post.json().type, 'MethodNotAllowedException');
      assert.equal((await app.management.inject({ method: 'DELETE', url: '/models/neuralnet', headers: h })).statusCode, 405);
      assert.equal((await app.management.inject({ method: 'PUT', url: '/models/neuralnet?min_worker=2&synchronous=true', headers: h })).statusCode, 200, 'scaling stays allowed');
    } finally {
      await app.close();
    }
  });
});

async function copyVersion(store: string, version: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nnserve-v-'));
  await writeArchive({ modelName: 'neuralnet', version, serializedFile: NEURALNET.onnx, exportPath: dir, force: true });
  const name = `neuralnet-v${version}.mar`;
  copyFileSync(join(dir, 'neuralnet.mar'), join(store, name));
  return name;
}
