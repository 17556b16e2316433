/**
 * The bundled Fashion-MNIST CNN (tools/make_fashion_cnn.py, the seed's SimpleCNN on 1x28x28)
 * served by image_classifier: 1000 real test images sent as PNG over HTTP get PyTorch's top-1
 * and PyTorch's accuracy; its first conv layer's feature maps come back as a PNG grid whose
 * tiles are PyTorch's activations.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import type { App } from '../../src/app.js';
import { splitPngs } from '../preprocess/http.js';
import { ROOT, appWith, fixture } from '../helpers.js';

const DIR = resolve(ROOT, 'tools/models/fashion_cnn');
const GOLDEN = JSON.parse(readFileSync(fixture('golden/images/fashion_cnn_1000.json'), 'utf8')) as {
  accuracy: number; labels: number[]; torch_top1: number[]; softmax_first16: number[][];
};
const CLASSES = Object.values(JSON.parse(readFileSync(resolve(DIR, 'index_to_name.json'), 'utf8')) as Record<string, string>);
const PNGS = splitPngs(readFileSync(fixture('images/fashion-1000.pngs')));

describe('fashion_cnn (Fashion-MNIST SimpleCNN) over HTTP', () => {
  let app: App;
  before(async () => {
    app = await appWith([{
      name: 'fashion_cnn', onnx: resolve(DIR, 'model.onnx'), handler: 'image_classifier',
      modelConfig: readFileSync(resolve(DIR, 'model-config.yaml'), 'utf8'), extraFiles: [resolve(DIR, 'index_to_name.json')],
    }]);
    assert.deepEqual(app.loadFailures, []);
  });
  after(() => app?.close());

  const post = (png: Buffer, query = '') =>
    app.inference.inject({ method: 'POST', url: `/predictions/fashion_cnn${query}`, payload: png, headers: { 'content-type': 'image/png' } });

  test('1000 test PNGs: top-1 agrees with PyTorch on every image; accuracy equals PyTorch\'s', async () => {
    assert.equal(PNGS.length, 1000);
    const top1 = new Array<number>(PNGS.length);
    const CONCURRENT = 16;
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENT }, async () => {
      while (next < PNGS.length) {
        const i = next++;
        const res = await post(PNGS[i]!);
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json() as Record<string, number>;
        assert.equal(Object.keys(body).length, 3, 'the model config sets topk: 3');
        top1[i] = CLASSES.indexOf(Object.keys(body)[0]!);
      }
    }));
    const agree = top1.filter((c, i) => c === GOLDEN.torch_top1[i]).length;
    const correct = top1.filter((c, i) => c === GOLDEN.labels[i]).length;
    const torchCorrect = GOLDEN.torch_top1.filter((c, i) => c === GOLDEN.labels[i]).length;
    console.log(`fashion_cnn over HTTP: top-1 agrees with PyTorch on ${agree}/1000; accuracy ${correct / 1000} (PyTorch ${torchCorrect / 1000})`);
    assert.equal(agree, 1000);
    assert.equal(correct, torchCorrect);
    assert.ok(Math.abs(torchCorrect / 1000 - GOLDEN.accuracy) < 1e-6, 'the script\'s own accuracy');
  });

  test('probabilities equal PyTorch\'s softmax (labels from index_to_name.json)', async () => {
    for (let i = 0; i < GOLDEN.softmax_first16.length; i++) {
      const body = (await post(PNGS[i]!, '?topk=10')).json() as Record<string, number>;
      CLASSES.forEach((label, k) => assert.ok(Math.abs(body[label]! - GOLDEN.softmax_first16[i]![k]!) < 1e-5, `image ${i} ${label}`));
    }
  });

  test('?feature_maps=1: the first Conv\'s 16 maps as a PNG grid, each tile PyTorch\'s conv1 output', async () => {
    const gz = gunzipSync(readFileSync(fixture('golden/images/fashion_cnn_conv1_0.f32.gz')));
    const conv1 = new Float32Array(gz.buffer.slice(gz.byteOffset, gz.byteOffset + gz.byteLength));
    for (const layer of ['', '&layer=conv1', '&layer=/conv1/Conv']) {
      const res = await post(PNGS[0]!, `?feature_maps=1${layer}`);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['content-type'], 'image/png');
      const header = String(res.headers['x-feature-maps']);
      assert.match(header, /layer=%2Fconv1%2FConv_output_0; images=1; channels=16; grid=4x4; map=28x28; scale=2; gap=2/);
      assert.equal((await sharp(res.rawPayload).metadata()).channels, 1, 'a greyscale PNG');
      const { data, info } = await sharp(res.rawPayload).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
      const [scale, gap, cols] = [2, 2, 4];
      let worst = 0;
      for (let c = 0; c < 16; c++) {
        const map = conv1.subarray(c * 784, (c + 1) * 784);
        const min = Math.min(...map);
        const max = Math.max(...map);
        const y0 = gap + Math.floor(c / cols) * (28 * scale + gap);
        const x0 = gap + (c % cols) * (28 * scale + gap);
        for (let y = 0; y < 28; y++) {
          for (let x = 0; x < 28; x++) {
            const want = ((map[y * 28 + x]! - min) / (max - min)) * 255;
            const got = data[(y0 + y * scale + 1) * info.width + x0 + x * scale + 1]!;
            worst = Math.max(worst, Math.abs(got - want));
          }
        }
      }
      assert.ok(worst <= 1, `a tile pixel is ${worst} levels from PyTorch's activation`);
    }
  });

  test('feature maps of a deeper layer, and errors for a missing or non-spatial layer', async () => {
    const conv2 = await post(PNGS[1]!, '?feature_maps=1&layer=conv2');
    assert.equal(conv2.statusCode, 200, conv2.body);
    assert.match(String(conv2.headers['x-feature-maps']), /channels=32; grid=6x6; map=14x14/);
    const missing = await post(PNGS[1]!, '?feature_maps=1&layer=conv9');
    assert.equal(missing.statusCode, 400);
    assert.match(missing.json().message, /no layer "conv9".*Conv nodes: \/conv1\/Conv, \/conv2\/Conv/);
    const flat = await post(PNGS[1]!, '?feature_maps=1&layer=fc1');
    assert.equal(flat.statusCode, 400);
    assert.match(flat.json().message, /not \[N, C, H, W\] feature maps/);
  });
});
