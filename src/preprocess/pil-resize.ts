/**
 * Pillow's Image.resize with BILINEAR (what torchvision 0.14's Resize does to a PIL image),
 * bit for bit: libImaging/Resample.c of Pillow 9.x. The filter is a triangle whose support
 * grows with the downscale factor (antialiasing); coefficients are 22-bit fixed point; the
 * horizontal pass runs first over only the rows the vertical pass reads, and each pass
 * rounds to uint8. libvips' reduce (sharp's `kernel: 'linear'`) differs at the borders and,
 * past a 2x reduction, by up to 10 levels (it box-shrinks first and quantises sub-pixel
 * positions), which is why nnserve resamples itself.
 */

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const MAX = 255 * 2 ** PRECISION_BITS;

interface Coeffs {
  /** Taps per output pixel (row stride of `k`). */
  ksize: number;
  /** Per output pixel: first input index, tap count. */
  bounds: Int32Array;
  k: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter over the box [0, inSize). */
function coeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = 1 * filterscale; // bilinear support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * 2 ** PRECISION_BITS) : Math.trunc(0.5 + v * 2 ** PRECISION_BITS);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = Math.max(0, xmax);
  }
  return { ksize, bounds, k };
}

function clip8(v: number): number {
  if (v >= MAX) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / 2 ** PRECISION_BITS);
}

/** Interleaved uint8 pixels (`channels` per pixel, row-major). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** Resize as PIL's `img.resize((width, height), Image.BILINEAR)`; returns the input when the size is unchanged. */
export function pilResizeBilinear(img: RawImage, width: number, height: number): RawImage {
  const { channels: C } = img;
  const needH = width !== img.width;
  const needV = height !== img.height;
  if (!needH && !needV) return img;
  const vert = coeffs(img.height, height);
  let src = img;
  if (needH) {
    // Only the rows the vertical pass will read.
    const first = vert.bounds[0]!;
    const last = vert.bounds[height * 2 - 2]! + vert.bounds[height * 2 - 1]!;
    const rows = needV ? last - first : img.height;
    const offset = needV ? first : 0;
    const hc = coeffs(img.width, width);
    const out = new Uint8Array(width * rows * C);
    const inData = img.data;
    const inStride = img.width * C;
    for (let yy = 0; yy < rows; yy++) {
      const rowIn = (yy + offset) * inStride;
      const rowOut = yy * width * C;
      for (let xx = 0; xx < width; xx++) {
        const xmin = hc.bounds[xx * 2]!;
        const n = hc.bounds[xx * 2 + 1]!;
        const kb = xx * hc.ksize;
        for (let c = 0; c < C; c++) {
          let ss = HALF;
          let p = rowIn + xmin * C + c;
          for (let x = 0; x < n; x++, p += C) ss += inData[p]! * hc.k[kb + x]!;
          out[rowOut + xx * C + c] = clip8(ss);
        }
      }
    }
    src = { data: out, width, height: rows, channels: C };
    if (needV) for (let i = 0; i < height; i++) vert.bounds[i * 2] -= first;
  }
  if (!needV) return src;
  const out = new Uint8Array(width * height * C);
  const stride = width * C;
  const inData = src.data;
  const acc = new Float64Array(stride);
  for (let yy = 0; yy < height; yy++) {
    const ymin = vert.bounds[yy * 2]!;
    const n = vert.bounds[yy * 2 + 1]!;
    const kb = yy * vert.ksize;
    acc.fill(HALF);
    for (let y = 0; y < n; y++) {
      const kv = vert.k[kb + y]!;
      const row = (y + ymin) * stride;
      for (let i = 0; i < stride; i++) acc[i] += inData[row + i]! * kv;
    }
    const rowOut = yy * stride;
    for (let i = 0; i < stride; i++) out[rowOut + i] = clip8(acc[i]!);
  }
  return { data: out, width, height, channels: C };
}
