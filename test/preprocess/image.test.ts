/**
 * Image preprocessing against torchvision: golden tensors made by tools/make_image_fixtures.py
 * (PIL loader, Resize, CenterCrop, ToTensor, Normalize) from real photos, compared in full.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fixture } from '../helpers.js';
import { describe, test } from 'node:test';
import { imagePool } from '../../src/preprocess/image-pool.js';
import { DEFAULT_IMAGE_TRANSFORM, parseImageTransform } from '../../src/preprocess/image-transform.js';
import { imageToTensor, resizedSize, sniffFormat } from '../../src/preprocess/image.js';
import { decodeBase64 } from '../../src/preprocess/inputs.js';
import { pilResizeBilinear } from '../../src/preprocess/pil-resize.js';
import { GOLDEN_INDEX, PHOTOS, diff, goldenTensor, transformOf } from './golden.js';

describe('image preprocessing = torchvision (PIL loader, Resize, CenterCrop, ToTensor, Normalize)', () => {
  for (const [key, g] of Object.entries(GOLDEN_INDEX)) {
    test(`${key}: ${g.grayscale ? `Grayscale(${g.grayscale}), ` : ''}Resize(${g.resize}), CenterCrop(${g.centerCrop}) matches torchvision`, async () => {
      const file = key.split('#')[0]!;
      const got = await imagePool().run(readFileSync(fixture('images', file)), transformOf(g), file);
      const d = diff(got, goldenTensor(key));
      // The acceptance bound; decoding and resampling are in fact bit-exact with Pillow here.
      assert.ok(d.mean <= 0.01 && d.max <= 0.1, `${key}: mean |diff| ${d.mean}, max ${d.max}`);
      assert.ok(d.max <= 1e-6, `${key}: expected Pillow-exact pixels, max |diff| ${d.max}`);
    });
  }

  test('resample "vips" (libvips linear reduce) stays within the acceptance bound on the photos', async () => {
    for (const key of PHOTOS) {
      const got = await imageToTensor(readFileSync(fixture('images', key)), transformOf(GOLDEN_INDEX[key]!, { resample: 'vips' }));
      const d = diff(got, goldenTensor(key));
      assert.ok(d.mean <= 0.01 && d.max <= 0.1, `${key}: mean ${d.mean} max ${d.max}`);
      assert.ok(d.max > 0, 'libvips is not expected to be bit-exact; if it is, make it the default');
    }
  });

  test('EXIF orientation is ignored by default (as PIL) and applied when asked', async () => {
    const bytes = readFileSync(fixture('images/exif-rotated.jpg'));
    const t = parseImageTransform({ resize: false, centerCrop: [160, 240], mean: false, std: false }, undefined, 'm');
    const plain = await imageToTensor(bytes, t);
    assert.equal(plain.length, 3 * 160 * 240);
    const rotated = await imageToTensor(bytes, parseImageTransform({ resize: false, centerCrop: [240, 160], mean: false, std: false, exifOrientation: true }, undefined, 'm'));
    // Orientation 6: the stored 240x160 image displays as 160 wide, 240 high; pixel (x, y) of the
    // stored image lands at (159 - y, x).
    const at = (t3: Float32Array, w: number, h: number, x: number, y: number) => t3[y * w + x]!;
    for (const [x, y] of [[0, 0], [10, 100], [239, 159], [120, 33]] as const) {
      assert.equal(at(rotated, 160, 240, 159 - y, x), at(plain, 240, 160, x, y));
    }
  });

  test('torchvision output sizes: shorter side to `size`, longer side truncated', () => {
    assert.deepEqual(resizedSize(451, 300, 256), [256, 384]);
    assert.deepEqual(resizedSize(300, 451, 256), [384, 256]);
    assert.deepEqual(resizedSize(500, 333, 224), [224, 336]);
    assert.deepEqual(resizedSize(640, 480, [28, 28]), [28, 28]);
  });

  test('Pillow resize of a one-pixel image and an upscale agree with the filter definition', () => {
    const one = pilResizeBilinear({ data: Uint8Array.of(200), width: 1, height: 1, channels: 1 }, 3, 2);
    assert.deepEqual([...one.data], [200, 200, 200, 200, 200, 200]);
    // 2 -> 4 upscale: centres at 0.25, 0.75... weights (0.75, 0.25) -> 0*0.75+100*0.25 = 25.
    const up = pilResizeBilinear({ data: Uint8Array.of(0, 100), width: 2, height: 1, channels: 1 }, 4, 1);
    assert.deepEqual([...up.data], [0, 25, 75, 100]);
  });

  test('formats are recognised by their bytes, not by name', () => {
    assert.equal(sniffFormat(readFileSync(fixture('images/chelsea.jpg'))), 'jpeg');
    assert.equal(sniffFormat(readFileSync(fixture('images/chelsea.png'))), 'png');
    assert.equal(sniffFormat(readFileSync(fixture('images/palette.gif'))), 'gif');
    assert.equal(sniffFormat(readFileSync(fixture('images/photo.webp'))), 'webp');
    assert.equal(sniffFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')), undefined);
  });

  test('bad images are refused with the reason', async () => {
    const t = DEFAULT_IMAGE_TRANSFORM;
    await assert.rejects(imageToTensor(Buffer.alloc(0), t), /empty \(0 bytes\)/);
    await assert.rejects(imageToTensor(Buffer.from('hello, not an image'), t), /not a JPEG, PNG, WebP or GIF image .*"hello, n"/);
    await assert.rejects(imageToTensor(readFileSync(fixture('images/truncated.jpg')), t), (e: Error & { code?: string }) => e.code === 'NNS_ERR_IMAGE_INVALID');
    const png = readFileSync(fixture('images/chelsea.png'));
    const corrupt = Buffer.from(png);
    corrupt.fill(0x55, 200, 4000); // inside the first IDAT: CRC and deflate stream broken
    await assert.rejects(imageToTensor(corrupt, t), (e: Error & { code?: string }) => e.code === 'NNS_ERR_IMAGE_INVALID');
    await assert.rejects(imageToTensor(readFileSync(fixture('images/bomb.png')), t), /30000 x 30000 = 900000000 pixels; this model accepts at most 89478485/);
  });

  test('model-config image: errors name the key and what was expected', () => {
    const input = { name: 'input', dtype: 'float32' as const, shape: ['batch', 1, 28, 28] };
    assert.throws(() => parseImageTransform({ grayscale: 2 }, input, 'm'), /image\.grayscale must be 1 or 3/);
    assert.throws(() => parseImageTransform({ grayscale: 1 }, input, 'm'), /mean and std need 1 values/);
    assert.throws(() => parseImageTransform({ grayscale: 1, mean: [0.5], std: [0.5] }, input, 'm'), /input "input" is float32 \[batch,1,28,28\]; the image transform makes float32 \[batch,1,224,224\]/);
    assert.throws(() => parseImageTransform({ centerCrop: false }, undefined, 'm'), /set centerCrop, or resize as \[height, width\]/);
    assert.throws(() => parseImageTransform({ sizes: 3 }, undefined, 'm'), /unknown key "sizes"/);
    const ok = parseImageTransform({ grayscale: 1, resize: [28, 28], centerCrop: false, mean: [0.286], std: [0.353] }, input, 'm');
    assert.deepEqual(ok.resize, [28, 28]);
  });

  test('base64 is checked strictly', () => {
    assert.deepEqual(decodeBase64('aGVsbG8=', 'x'), Buffer.from('hello'));
    assert.deepEqual(decodeBase64('aGVsbG8', 'x'), Buffer.from('hello'));
    assert.deepEqual(decodeBase64('data:image/png;base64,aGVsbG8=', 'x'), Buffer.from('hello'));
    assert.throws(() => decodeBase64('aGVs!bG8=', 'field "data"'), /field "data" is not valid base64 \(character "!" at 4\)/);
    assert.throws(() => decodeBase64('a', 'x'), /not valid base64/);
  });
});
