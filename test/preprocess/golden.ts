/** The torchvision golden tensors of tools/make_image_fixtures.py. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parseImageTransform, type ImageTransform } from '../../src/preprocess/image-transform.js';
import { fixture } from '../helpers.js';

interface GoldenEntry { resize: number | [number, number]; centerCrop: number; mean: number[]; std: number[]; grayscale: 1 | 3 | null; shape: number[] }
export const GOLDEN_INDEX = JSON.parse(readFileSync(fixture('golden/images/index.json'), 'utf8')) as Record<string, GoldenEntry>;
export const PHOTOS = ['chelsea.jpg', 'chelsea.png', 'coffee.jpg', 'coffee.png', 'astronaut.jpg', 'astronaut.png'];

export function goldenTensor(key: string): Float32Array {
  const b = gunzipSync(readFileSync(fixture('golden/images', `${key}.f32.gz`)));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function transformOf(g: GoldenEntry, extra: Partial<Record<keyof ImageTransform, unknown>> = {}): ImageTransform {
  return parseImageTransform({ resize: g.resize, centerCrop: g.centerCrop, mean: g.mean, std: g.std, grayscale: g.grayscale ?? false, ...extra }, undefined, 'golden');
}

export function diff(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  assert.equal(a.length, b.length, 'tensor sizes differ');
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

