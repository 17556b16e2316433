/**
 * Activation maps [N, C, H, W] as one PNG: per image a grid of its C maps (the seed tutorial's
 * 7.5 plots them with imshow(cmap='gray')), grids stacked top to bottom. Each map is scaled
 * from its own min..max to 0..255 (a constant map is black), enlarged by an integer factor
 * (nearest neighbour) so small maps stay visible, and separated by a gap of mid grey.
 */
import { nnsError } from '../errors.js';
import type { TensorData } from '../runtime/ort.js';

export interface GridLayout {
  images: number;
  channels: number;
  columns: number;
  rows: number;
  /** One map's size before scaling. */
  height: number;
  width: number;
  /** Each map pixel becomes scale x scale PNG pixels. */
  scale: number;
  /** Pixels between maps and around the grid. */
  gap: number;
}

const GAP = 2;
const GAP_GREY = 128;
/** Maps are enlarged to at least this many pixels on their longer side. */
const MIN_TILE = 64;
const MAX_PIXELS = 64 * 1024 * 1024;

export function gridLayout(dims: number[]): GridLayout {
  if (dims.length !== 4) throw nnsError('INPUT_INVALID', `the layer's output has shape [${dims}], not [N, C, H, W] feature maps`);
  const [images, channels, height, width] = dims as [number, number, number, number];
  const columns = Math.ceil(Math.sqrt(channels));
  const rows = Math.ceil(channels / columns);
  const scale = Math.max(1, Math.floor(MIN_TILE / Math.max(height, width)));
  return { images, channels, columns, rows, height, width, scale, gap: GAP };
}

/** Top-left PNG pixel of map `c` of image `n`. */
export function tileOrigin(l: GridLayout, n: number, c: number): [number, number] {
  const gridH = l.rows * (l.height * l.scale + l.gap) + l.gap;
  const y = n * gridH + l.gap + Math.floor(c / l.columns) * (l.height * l.scale + l.gap);
  const x = l.gap + (c % l.columns) * (l.width * l.scale + l.gap);
  return [y, x];
}

export async function featureGridPng(t: TensorData): Promise<{ png: Buffer; layout: GridLayout }> {
  const l = gridLayout(t.dims);
  const W = l.columns * (l.width * l.scale + l.gap) + l.gap;
  const H = l.images * (l.rows * (l.height * l.scale + l.gap) + l.gap);
  if (W * H > MAX_PIXELS) throw nnsError('INPUT_INVALID', `feature maps [${t.dims}] would make a ${W} x ${H} PNG; pick a smaller layer or send fewer images`);
  const px = Buffer.alloc(W * H, GAP_GREY);
  const plane = l.height * l.width;
  const data = t.data as Float32Array;
  for (let n = 0; n < l.images; n++) {
    for (let c = 0; c < l.channels; c++) {
      const base = (n * l.channels + c) * plane;
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < plane; i++) {
        const v = data[base + i]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const k = max > min ? 255 / (max - min) : 0;
      const [y0, x0] = tileOrigin(l, n, c);
      for (let y = 0; y < l.height * l.scale; y++) {
        const src = base + Math.floor(y / l.scale) * l.width;
        const row = (y0 + y) * W + x0;
        for (let x = 0; x < l.width * l.scale; x++) px[row + x] = Math.round((data[src + Math.floor(x / l.scale)]! - min) * k);
      }
    }
  }
  // sharp (libvips) costs ~28 MiB of RSS once loaded: only a process that draws loads it.
  const { default: sharp } = await import('sharp');
  const png = await sharp(px, { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: 6 }).toBuffer();
  return { png, layout: l };
}
