/**
 * Encoded image -> the float32 CHW tensor torchvision would make from it. The only module that
 * imports sharp for decoding (feature-grid.ts encodes PNGs).
 *
 * What PIL + torchvision do, and so what happens here:
 * - PIL's loader is `Image.open(f).convert('RGB')`: alpha is dropped, not composited (the colour
 *   under a transparent pixel stays); greyscale and palette images become RGB; an ICC profile
 *   is ignored; EXIF orientation is not applied (TorchServe's vision handler does not either).
 * - GIFs: the first frame. 16-bit PNGs and CMYK JPEGs are converted by libvips (PIL's own
 *   conversions differ there by a few levels).
 * - Grayscale is PIL's convert('L'): (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
 * - Resize is Pillow's antialiased bilinear (pil-resize.ts); sizes follow torchvision's
 *   _compute_resized_output_size (the longer side truncated by int()).
 * - CenterCrop zero-pads a smaller image, then crops at round((H - h) / 2) (Python's round).
 * - ToTensor divides by 255 and Normalize subtracts and divides in float32, as torch does.
 * sharp reads the header before anything is decoded, so an oversized image (a decompression
 * bomb) costs nothing.
 */
import sharp, { type Metadata } from 'sharp';
import { nnsError } from '../errors.js';
import type { ImageTransform } from './image-transform.js';
import { outputChannels } from './image-transform.js';
import { pilResizeBilinear, type RawImage } from './pil-resize.js';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif';

/** The container by its magic bytes; sharp would also open SVG, TIFF, HEIF..., which PIL-trained models never see here. */
export function sniffFormat(b: Uint8Array): ImageFormat | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 6 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38 && (b[4] === 0x37 || b[4] === 0x39) && b[5] === 0x61) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  return undefined;
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

function describeStart(b: Uint8Array): string {
  const head = Buffer.from(b.subarray(0, 8));
  const printable = /^[\x20-\x7e]*$/.test(head.toString('latin1'));
  return printable ? JSON.stringify(head.toString('latin1')) : `0x${head.toString('hex')}`;
}

/** torchvision 0.14 _compute_resized_output_size: [h, w]. */
export function resizedSize(width: number, height: number, size: number | [number, number]): [number, number] {
  if (Array.isArray(size)) return size;
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  if (short === size) return [height, width];
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? [newLong, size] : [size, newLong];
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Decode to interleaved 8-bit RGB at full size (PIL's loader), refusing bombs from the header. */
export async function decodeRgb(bytes: Uint8Array, t: Pick<ImageTransform, 'exifOrientation' | 'maxInputPixels'>, what = 'image'): Promise<RawImage> {
  if (bytes.length === 0) throw nnsError('IMAGE_INVALID', `${what} is empty (0 bytes)`);
  const format = sniffFormat(bytes);
  if (!format) throw nnsError('IMAGE_INVALID', `${what} is not a JPEG, PNG, WebP or GIF image (${bytes.length} bytes starting ${describeStart(bytes)})`);
  try {
    // sharp reads the header first and refuses more than limitInputPixels before decoding.
    let img = sharp(bytes, { ignoreIcc: true, failOn: 'error', limitInputPixels: t.maxInputPixels, pages: 1 });
    if (t.exifOrientation) img = img.autoOrient();
    const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    // A plain Uint8Array view: resampling loops stay monomorphic (a Buffer is another class).
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
  } catch (e) {
    const message = (e as Error).message;
    if (/pixel limit/i.test(message)) throw await tooLarge(bytes, t.maxInputPixels, what);
    throw nnsError('IMAGE_INVALID', `${what} could not be decoded as ${format.toUpperCase()} (corrupt or truncated?): ${message}`);
  }
}

async function tooLarge(bytes: Uint8Array, limit: number, what: string) {
  const meta: Metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  return nnsError('IMAGE_TOO_LARGE', `${what} is ${width} x ${height} = ${width * height} pixels; this model accepts at most ${limit} (image.maxInputPixels)`);
}

/** PIL's convert('L') (ITU-R 601-2 luma, 16-bit fixed point with rounding). */
export function toGray(img: RawImage): RawImage {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const d = img.data;
  for (let i = 0, p = 0; i < n; i++, p += 3) out[i] = (d[p]! * 19595 + d[p + 1]! * 38470 + d[p + 2]! * 7471 + 0x8000) >>> 16;
  return { data: out, width: img.width, height: img.height, channels: 1 };
}

async function resizeVips(img: RawImage, w: number, h: number): Promise<RawImage> {
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 } })
    .resize(w, h, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels };
}

/**
 * Where torchvision's CenterCrop([ch, cw]) of an h x w image starts: round((h - ch) / 2) (Python
 * rounds halves to even), negative when the image is zero-padded first (by (ch - h) // 2).
 */
export function cropOrigin(h: number, w: number, ch: number, cw: number): [number, number] {
  const top = ch > h ? -Math.floor((ch - h) / 2) : roundHalfEven((h - ch) / 2);
  const left = cw > w ? -Math.floor((cw - w) / 2) : roundHalfEven((w - cw) / 2);
  return [top, left];
}

/**
 * ToTensor + Normalize + channel order of the [ch, cw] crop whose top-left is (top, left) in
 * `img` (outside the image: torchvision's zero padding), written as CHW float32 into `out`.
 */
export function cropToTensor(img: RawImage, t: ImageTransform, out: Float32Array, top: number, left: number, ch: number, cw: number): void {
  const C = outputChannels(t);
  const plane = ch * cw;
  for (let c = 0; c < C; c++) {
    // ToTensor then Normalize on each of the 256 byte values, in float32 like torch.
    const srcC = img.channels === 1 ? 0 : t.channelOrder === 'BGR' ? C - 1 - c : c;
    const lut = new Float32Array(256);
    // mean and std are in the tensor's channel order, as Normalize sees them.
    const m = Math.fround(t.mean?.[c] ?? 0);
    const s = Math.fround(t.std?.[c] ?? 1);
    for (let v = 0; v < 256; v++) lut[v] = t.mean ? Math.fround(Math.fround(Math.fround(v / 255) - m) / s) : Math.fround(v / 255);
    const base = c * plane;
    const data = img.data;
    const W = img.width;
    const H = img.height;
    const step = img.channels;
    // Columns of the crop inside the image; the rest is padding.
    const xa = Math.max(0, -left);
    const xb = Math.min(cw, W - left);
    for (let y = 0; y < ch; y++) {
      const sy = y + top;
      const row = base + y * cw;
      if (sy < 0 || sy >= H || xb <= xa) {
        out.fill(lut[0]!, row, row + cw);
        continue;
      }
      if (xa > 0) out.fill(lut[0]!, row, row + xa);
      if (xb < cw) out.fill(lut[0]!, row + xb, row + cw);
      let q = (sy * W + left + xa) * step + srcC;
      for (let x = xa; x < xb; x++, q += step) out[row + x] = lut[data[q]!]!;
    }
  }
}

/** The whole transform: bytes -> float32 [C, H, W]. */
export async function imageToTensor(bytes: Uint8Array, t: ImageTransform, what = 'image'): Promise<Float32Array> {
  let img = await decodeRgb(bytes, t, what);
  if (t.grayscale) img = toGray(img);
  const [rh, rw] = t.resize === null ? [img.height, img.width] : resizedSize(img.width, img.height, t.resize);
  const [ch, cw] = t.centerCrop ?? [rh, rw];
  let [top, left] = cropOrigin(rh, rw, ch, cw);
  if (t.resample === 'vips') {
    if (rw !== img.width || rh !== img.height) img = await resizeVips(img, rw, rh);
  } else {
    // Only the pixels the crop keeps are resampled.
    const y0 = Math.max(0, top);
    const x0 = Math.max(0, left);
    const win = { top: y0, left: x0, height: Math.min(rh, top + ch) - y0, width: Math.min(rw, left + cw) - x0 };
    img = pilResizeBilinear(img, rw, rh, win);
    top -= y0;
    left -= x0;
  }
  const out = new Float32Array(outputChannels(t) * ch * cw);
  cropToTensor(img, t, out, top, left, ch, cw);
  return out;
}
