/**
 * Images through real HTTP (inject): the tensor the server feeds a model equals torchvision's,
 * every input shape TorchServe accepts works, and bad input is a clear 4xx after which the
 * next request succeeds.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { PHOTOS, diff, goldenTensor } from '../preprocess/golden.js';
import { multipart } from '../preprocess/http.js';
import { NEURALNET, ROOT, appWith, fixture } from '../helpers.js';

const img = (name: string) => readFileSync(fixture('images', name));
const PROBE_LOGITS = (JSON.parse(readFileSync(fixture('golden/images/probe.json'), 'utf8')) as { logits: Record<string, number[]> }).logits;

/** An operator-installed handler (a plain .mjs in handlers/): image preprocessing, raw tensor out. */
const ECHO = `nnserve_test_echo_${process.pid}`;
const ECHO_FILE = resolve(ROOT, 'handlers', `${ECHO}.mjs`);
const ECHO_SOURCE = `import { preprocess } from '../dist/handlers/image_classifier.js';
export default {
  name: 'echo',
  preprocess,
  postprocess(outputs) {
    const t = outputs.output;
    return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  },
};
`;

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** torch's top-k of the probe for a golden photo, as image_classifier answers it. */
function expectedTopk(key: string, k: number): [string, number][] {
  const p = softmax(PROBE_LOGITS[key]!);
  return p.map((v, i) => [String(i), v] as [string, number]).sort((a, b) => b[1] - a[1]).slice(0, k);
}

function assertTopk(body: unknown, key: string, k = 5): void {
  // Index labels ("0".."9") are integer-like keys, which JSON objects list in numeric order.
  const got = Object.entries(body as Record<string, number>).sort((a, b) => b[1] - a[1]);
  const want = expectedTopk(key, k);
  assert.deepEqual(got.map(([l]) => l), want.map(([l]) => l), `${key}: labels in order`);
  got.forEach(([, v], i) => assert.ok(Math.abs(v - want[i]![1]) < 1e-5, `${key}: p ${v} vs ${want[i]![1]}`));
}

describe('image inputs over HTTP', () => {
  let app: App;
  before(async () => {
    writeFileSync(ECHO_FILE, ECHO_SOURCE);
    app = await appWith([
      { name: 'probe', onnx: fixture('images/models/probe.onnx'), handler: 'image_classifier', modelConfig: 'batchSize: 8\nmaxBatchDelay: 5\n' },
      { name: 'echo', onnx: fixture('images/models/identity.onnx'), handler: ECHO },
      { name: 'echo_small', onnx: fixture('images/models/identity.onnx'), handler: ECHO, modelConfig: 'image:\n  resize: 64\n  centerCrop: 56\n' },
      { ...NEURALNET, handler: 'regression' },
    ]);
    assert.deepEqual(app.loadFailures, []);
  });
  after(async () => {
    rmSync(ECHO_FILE, { force: true });
    await app?.close();
  });

  const post = (url: string, payload: Buffer | string | object, headers: Record<string, string> = {}) =>
    app.inference.inject({ method: 'POST', url, payload: payload as string, headers });
  const asTensor = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

  test('the tensor fed to the model equals torchvision\'s for real JPEG and PNG photos', async () => {
    const report: string[] = [];
    for (const key of PHOTOS) {
      const res = await post('/predictions/echo', img(key), { 'content-type': key.endsWith('png') ? 'image/png' : 'image/jpeg' });
      assert.equal(res.statusCode, 200, res.body);
      const d = diff(asTensor(res.rawPayload), goldenTensor(key));
      report.push(`${key}: mean ${d.mean.toExponential(2)} max ${d.max.toExponential(2)}`);
      assert.ok(d.mean <= 0.01 && d.max <= 0.1, `${key}: mean ${d.mean} max ${d.max}`);
    }
    console.log(`parity through HTTP (mean / max |diff| after Normalize): ${report.join('; ')}`);
  });

  test('alpha, greyscale, GIF, WebP and EXIF-rotated images match torchvision too', async () => {
    for (const key of ['alpha.png', 'gray.png', 'palette.gif', 'photo.webp', 'exif-rotated.jpg']) {
      const res = await post('/predictions/echo_small', img(key), { 'content-type': 'application/octet-stream' });
      assert.equal(res.statusCode, 200, `${key}: ${res.body}`);
      const d = diff(asTensor(res.rawPayload), goldenTensor(key));
      assert.ok(d.mean <= 0.01 && d.max <= 0.1, `${key}: mean ${d.mean} max ${d.max}`);
    }
  });

  test('image_classifier: raw body, multipart data/file, base64 JSON, KServe v1 and v2 give torch\'s top-5', async () => {
    const jpg = img('chelsea.jpg');
    assertTopk((await post('/predictions/probe', jpg, { 'content-type': 'image/jpeg' })).json(), 'chelsea.jpg');
    for (const name of ['data', 'file']) {
      const form = multipart([{ name, data: jpg, filename: 'chelsea.jpg', type: 'image/jpeg' }]);
      const res = await post('/predictions/probe', form.payload, form.headers);
      assert.equal(res.statusCode, 200, res.body);
      assertTopk(res.json(), 'chelsea.jpg');
    }
    const b64 = jpg.toString('base64');
    assertTopk((await post('/predictions/probe', { data: b64 })).json(), 'chelsea.jpg');
    const v1 = (await post('/predictions/probe', { instances: [{ data: b64 }, { b64: img('coffee.png').toString('base64') }] })).json();
    assert.equal(v1.predictions.length, 2);
    assertTopk(v1.predictions[0], 'chelsea.jpg');
    assertTopk(v1.predictions[1], 'coffee.png');
    const v2 = (await post('/predictions/probe', { id: 'r1', inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: [b64] }] })).json();
    assert.equal(v2.id, 'r1');
    assert.equal(v2.outputs[0].datatype, 'BYTES');
    assertTopk(JSON.parse(v2.outputs[0].data[0]), 'chelsea.jpg');
    const v2route = await post('/v2/models/probe/infer', { id: 'r2', inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: [b64] }] });
    assert.equal(v2route.statusCode, 200, v2route.body);
    assert.equal(v2route.json().id, 'r2');
    assertTopk(JSON.parse(v2route.json().outputs[0].data[0]), 'chelsea.jpg');
  });

  test('several files in one form are a batch, answered in order; ?topk= overrides 5', async () => {
    const keys = ['astronaut.png', 'chelsea.jpg', 'coffee.jpg'];
    const form = multipart(keys.map((k) => ({ name: 'data', data: img(k), filename: k })));
    const res = await post('/predictions/probe?topk=3', form.payload, form.headers);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as unknown[];
    assert.equal(body.length, 3);
    keys.forEach((k, i) => assertTopk(body[i], k, 3));
    const bad = await post('/predictions/probe?topk=zero', img('chelsea.jpg'), { 'content-type': 'image/jpeg' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /topk must be an integer >= 1/);
  });

  test('concurrent requests are batched and each gets its own answer', async () => {
    const keys = [...PHOTOS, ...PHOTOS];
    const all = await Promise.all(keys.map((k) => post('/predictions/probe', img(k), { 'content-type': 'application/octet-stream' })));
    all.forEach((res, i) => assertTopk(res.json(), keys[i]!));
  });

  test('the seed\'s Flask API: POST /predict with multipart "file" answers {"class": n}', async () => {
    // With one model registered, it is the default (default_model picks one among several).
    const solo = await appWith([{ name: 'probe', onnx: fixture('images/models/probe.onnx'), handler: 'image_classifier' }]);
    try {
      const form = multipart([{ name: 'file', data: img('coffee.jpg'), filename: 'coffee.jpg' }]);
      const res = await solo.inference.inject({ method: 'POST', url: '/predict', payload: form.payload, headers: form.headers });
      assert.equal(res.statusCode, 200, res.body);
      const p = softmax(PROBE_LOGITS['coffee.jpg']!);
      assert.deepEqual(res.json(), { class: p.indexOf(Math.max(...p)) });
    } finally {
      await solo.close();
    }
    const several = await post('/predict', img('coffee.jpg'), { 'content-type': 'image/jpeg' });
    assert.equal(several.statusCode, 404);
    assert.match(several.json().message, /set default_model, or use POST \/predictions\/\{model\}/);
  });

  test('bad input -> 4xx naming the problem; memory stays flat; the next request succeeds', async () => {
    const chelsea = img('chelsea.jpg');
    const cases: [string, () => Promise<{ statusCode: number; json(): { message: string } }>, number, RegExp][] = [
      ['corrupt JPEG', () => post('/predictions/probe', Buffer.concat([chelsea.subarray(0, 2000), Buffer.alloc(3000, 0x41)]), { 'content-type': 'image/jpeg' }), 400, /could not be decoded as JPEG|corrupt JPEG/],
      ['truncated JPEG', () => post('/predictions/probe', img('truncated.jpg'), { 'content-type': 'image/jpeg' }), 400, /could not be decoded as JPEG/],
      ['not an image', () => post('/predictions/probe', 'just some text', { 'content-type': 'text/plain' }), 400, /not a JPEG, PNG, WebP or GIF image/],
      ['zero-size body', () => post('/predictions/probe', Buffer.alloc(0), { 'content-type': 'image/png' }), 400, /empty|send the input/],
      ['30000 x 30000 PNG', () => post('/predictions/probe', img('bomb.png'), { 'content-type': 'image/png' }), 413, /30000 x 30000 = 900000000 pixels/],
      ['wrong multipart field', () => { const f = multipart([{ name: 'image', data: chelsea, filename: 'c.jpg' }]); return post('/predictions/probe', f.payload, f.headers); }, 400, /field named "data" or "file"; got "image" \(c\.jpg\)/],
      ['empty multipart file', () => { const f = multipart([{ name: 'file', data: Buffer.alloc(0), filename: 'c.jpg' }]); return post('/predictions/probe', f.payload, f.headers); }, 400, /multipart field "file" \(c\.jpg\) is empty/],
      ['malformed multipart', () => post('/predictions/probe', '--x\r\nnonsense', { 'content-type': 'multipart/form-data; boundary=x' }), 400, /multipart|field named/],
      ['invalid base64', () => post('/predictions/probe', { data: 'iVBORw0K!!!' }), 400, /field "data" is not valid base64/],
      ['base64 of text', () => post('/predictions/probe', { data: Buffer.from('hello').toString('base64') }), 400, /not a JPEG, PNG, WebP or GIF/],
      ['JSON without data', () => post('/predictions/probe', { image: 'x' }), 400, /needs "data"/],
      ['file past max_request_size', () => { const f = multipart([{ name: 'file', data: Buffer.alloc(7_000_000, 1), filename: 'big.jpg' }]); return post('/predictions/probe', f.payload, f.headers); }, 413, /too large|max_request_size/],
    ];
    const rss0 = process.memoryUsage().rss;
    for (let round = 0; round < 3; round++) {
      for (const [what, send, status, message] of cases) {
        const res = await send();
        assert.equal(res.statusCode, status, `${what}: ${res.statusCode} ${JSON.stringify(res.json())}`);
        assert.match(res.json().message, message, what);
      }
    }
    const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
    assert.ok(grown < 100, `RSS grew by ${grown.toFixed(0)} MiB over ${cases.length * 3} bad requests`);
    assertTopk((await post('/predictions/probe', chelsea, { 'content-type': 'image/jpeg' })).json(), 'chelsea.jpg');
  });

  test('regression handler: {"data": rows} -> one number per row; KServe v1 instances', async () => {
    const res = await post('/predictions/neuralnet', { data: [[1.0], [4.0]] });
    assert.equal(res.statusCode, 200, res.body);
    const [a, b] = res.json() as number[];
    assert.ok(Math.abs(a! - 3) < 0.05 && Math.abs(b! - 9) < 0.05, `${a}, ${b}: NeuralNet learned y = 2x + 1`);
    const one = (await post('/predictions/neuralnet', { data: [2.0] })).json();
    assert.equal(typeof one, 'number');
    const v1 = (await post('/predictions/neuralnet', { instances: [[1.0], [4.0]] })).json();
    assert.deepEqual(v1, { predictions: [a, b] });
  });
});
