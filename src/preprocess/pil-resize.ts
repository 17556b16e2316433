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

// Sums stay below 2^31 (255 * 2^22 plus rounding; bilinear weights are never negative), so
// int32 arithmetic is exact and V8 keeps it in integer registers.
function clip8(v: number): number {
  if (v >= MAX) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/**
 * Pillow's ImagingResampleHorizontal_8bpc over input rows [first, first + rows), for output
 * columns [x0, x1) only.
 */
function horizontal(img: RawImage, hc: Coeffs, x0: number, x1: number, first: number, rows: number): Uint8Array {
  const C = img.channels;
  const width = x1 - x0;
  const out = new Uint8Array(width * rows * C);
  const inData = img.data;
  const inStride = img.width * C;
  const { k, bounds, ksize } = hc;
  let o = 0;
  for (let yy = 0; yy < rows; yy++) {
    const rowIn = (yy + first) * inStride;
    for (let xx = x0; xx < x1; xx++) {
      const n = bounds[xx * 2 + 1]!;
      const kb = xx * ksize;
      let p = rowIn + bounds[xx * 2]! * C;
      if (C === 3) {
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let x = 0; x < n; x++, p += 3) {
          const w = k[kb + x]!;
          s0 = (s0 + inData[p]! * w) | 0;
          s1 = (s1 + inData[p + 1]! * w) | 0;
          s2 = (s2 + inData[p + 2]! * w) | 0;
        }
        out[o++] = clip8(s0);
        out[o++] = clip8(s1);
        out[o++] = clip8(s2);
      } else {
        for (let c = 0; c < C; c++) {
          let s = HALF;
          for (let x = 0, q = p + c; x < n; x++, q += C) s = (s + inData[q]! * k[kb + x]!) | 0;
          out[o++] = clip8(s);
        }
      }
    }
  }
  return out;
}

/** Interleaved uint8 pixels (`channels` per pixel, row-major). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** A rectangle of the resized image, in its pixel coordinates. */
export interface Window { left: number; top: number; width: number; height: number }

/**
 * Resize as PIL's `img.resize((width, height), Image.BILINEAR)`, computing only the pixels in
 * `window` (default: all): each output pixel depends only on its own coefficients, so the
 * pixels of a later CenterCrop come out exactly as Pillow makes them, for half the work.
 * Returns the window's pixels (the input itself when nothing changes).
 */
export function pilResizeBilinear(img: RawImage, width: number, height: number, window?: Window): RawImage {
  const C = img.channels;
  const win = window ?? { left: 0, top: 0, width, height };
  const [x0, x1, y0, y1] = [win.left, win.left + win.width, win.top, win.top + win.height];
  const needH = width !== img.width;
  const needV = height !== img.height;
  if (!needH && !needV && x0 === 0 && y0 === 0 && x1 === width && y1 === height) return img;
  const vert = needV ? coeffs(img.height, height) : undefined;
  // Input rows the vertical pass reads (all of [y0, y1) when there is no vertical pass).
  const first = vert ? vert.bounds[y0 * 2]! : y0;
  const last = vert ? vert.bounds[(y1 - 1) * 2]! + vert.bounds[(y1 - 1) * 2 + 1]! : y1;
  let src: RawImage;
  if (needH) {
    src = { data: horizontal(img, coeffs(img.width, width), x0, x1, first, last - first), width: x1 - x0, height: last - first, channels: C };
  } else {
    const w = x1 - x0;
    const data = new Uint8Array(w * (last - first) * C);
    for (let y = first; y < last; y++) data.set(img.data.subarray((y * img.width + x0) * C, (y * img.width + x1) * C), (y - first) * w * C);
    src = { data, width: w, height: last - first, channels: C };
  }
  if (!vert) return src;
  const stride = src.width * C;
  const out = new Uint8Array(stride * (y1 - y0));
  const inData = src.data;
  const acc = new Int32Array(stride);
  for (let yy = y0; yy < y1; yy++) {
    const ymin = vert.bounds[yy * 2]! - first;
    const n = vert.bounds[yy * 2 + 1]!;
    const kb = yy * vert.ksize;
    acc.fill(HALF);
    for (let y = 0; y < n; y++) {
      const kv = vert.k[kb + y]!;
      const row = (y + ymin) * stride;
      for (let i = 0; i < stride; i++) acc[i] = (acc[i]! + inData[row + i]! * kv) | 0;
    }
    const rowOut = (yy - y0) * stride;
    for (let i = 0; i < stride; i++) out[rowOut + i] = clip8(acc[i]!);
  }
  return { data: out, width: src.width, height: y1 - y0, channels: C };
}
