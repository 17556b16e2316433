/**
 * The torchvision transform a model was trained with, read from the `image:` section of its
 * model-config.yaml (TorchServe's model_yaml_config) and checked against the model's input.
 * Steps run in torchvision's order: PIL loader (convert('RGB')), Grayscale, Resize,
 * CenterCrop, ToTensor, Normalize. Without an `image:` section a model gets the transform of
 * TorchServe's image_classifier: Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet).
 */
import { nnsError } from '../errors.js';
import type { IoSpec } from '../runtime/ort.js';

export interface ImageTransform {
  /** Grayscale(num_output_channels), applied right after decoding; null keeps RGB. @defaultValue null */
  grayscale: 1 | 3 | null;
  /** Resize(size): a number sets the shorter side (aspect kept), [h, w] is exact; null skips. @defaultValue 256 */
  resize: number | [number, number] | null;
  /** CenterCrop([h, w]), zero-padded when the image is smaller, as torchvision does; null skips. @defaultValue [224, 224] */
  centerCrop: [number, number] | null;
  /** Normalize(mean, std), one value per output channel; null for ToTensor alone. @defaultValue ImageNet */
  mean: number[] | null;
  std: number[] | null;
  /** Channel order of the tensor: "RGB" (torchvision) or "BGR" (OpenCV/Caffe-trained models). @defaultValue RGB */
  channelOrder: 'RGB' | 'BGR';
  /** Rotate by the EXIF Orientation tag first. PIL's Image.open and torchvision do not. @defaultValue false */
  exifOrientation: boolean;
  /** "pil": Pillow's antialiased bilinear, bit for bit; "vips": libvips' linear reduce (faster, up to ~10 levels off past 2x). @defaultValue pil */
  resample: 'pil' | 'vips';
  /** Largest image accepted, in decoded pixels, checked from the header. @defaultValue 89478485 (PIL's MAX_IMAGE_PIXELS) */
  maxInputPixels: number;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

export const DEFAULT_IMAGE_TRANSFORM: Readonly<ImageTransform> = Object.freeze<ImageTransform>({
  grayscale: null,
  resize: 256,
  centerCrop: [224, 224],
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  channelOrder: 'RGB',
  exifOrientation: false,
  resample: 'pil',
  maxInputPixels: 89_478_485,
});

const KEYS = new Set(['grayscale', 'resize', 'centerCrop', 'mean', 'std', 'channelOrder', 'exifOrientation', 'resample', 'maxInputPixels']);
const MAX_SIDE = 16384;

/** Channels of the tensor a transform produces. */
export function outputChannels(t: ImageTransform): number {
  return t.grayscale ?? 3;
}

/** [h, w] of every tensor the transform produces, or undefined when it depends on the image. */
export function outputSize(t: ImageTransform): [number, number] | undefined {
  if (t.centerCrop) return t.centerCrop;
  if (Array.isArray(t.resize)) return t.resize;
  return undefined;
}

/**
 * The `image:` section (absent = TorchServe's defaults; a key left out keeps its default; false
 * or null turns a step off), checked against the model's first input [N, C, H, W].
 */
export function parseImageTransform(raw: unknown, input: IoSpec | undefined, model: string): ImageTransform {
  const where = `model "${model}" model-config.yaml image`;
  const bad = (key: string, expected: string, got: unknown) =>
    nnsError('MODEL_CONFIG_INVALID', `${where}.${key} must be ${expected}, got ${JSON.stringify(got)}`);
  if (raw !== undefined && (raw === null || typeof raw !== 'object' || Array.isArray(raw))) {
    throw nnsError('MODEL_CONFIG_INVALID', `${where} must be a mapping of transform settings, got ${JSON.stringify(raw)}`);
  }
  const o = (raw ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw nnsError('MODEL_CONFIG_INVALID', `${where}: unknown key "${k}" (known: ${[...KEYS].join(', ')})`);
  const t: ImageTransform = { ...DEFAULT_IMAGE_TRANSFORM };
  const off = (v: unknown) => v === false || v === null;
  const side = (v: unknown) => Number.isInteger(v) && (v as number) > 0 && (v as number) <= MAX_SIDE;
  const size = (key: string, v: unknown, square: boolean): [number, number] | number => {
    if (side(v)) return square ? [v as number, v as number] : (v as number);
    if (Array.isArray(v) && v.length === 2 && v.every(side)) return [v[0], v[1]];
    throw bad(key, `a size in pixels (1-${MAX_SIDE}) or [height, width], or false`, v);
  };
  if ('grayscale' in o) {
    if (off(o.grayscale)) t.grayscale = null;
    else if (o.grayscale === 1 || o.grayscale === 3) t.grayscale = o.grayscale;
    else throw bad('grayscale', '1 or 3 (num_output_channels), or false', o.grayscale);
  }
  if ('resize' in o) t.resize = off(o.resize) ? null : size('resize', o.resize, false) as ImageTransform['resize'];
  if ('centerCrop' in o) t.centerCrop = off(o.centerCrop) ? null : size('centerCrop', o.centerCrop, true) as [number, number];
  const channels = outputChannels(t);
  for (const key of ['mean', 'std'] as const) {
    if (!(key in o)) continue;
    const v = o[key];
    if (off(v)) { t[key] = null; continue; }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || (key === 'std' && v.some((x) => x === 0))) {
      throw bad(key, `a list of ${channels} numbers${key === 'std' ? ', none zero' : ''}, or false`, v);
    }
    t[key] = v as number[];
  }
  if ((t.mean === null) !== (t.std === null)) throw nnsError('MODEL_CONFIG_INVALID', `${where}: mean and std go together (both lists, or both false)`);
  if (t.mean && t.std) {
    // Grayscale models left on the ImageNet defaults would index past one channel.
    if (t.mean.length !== channels || t.std.length !== channels) {
      throw nnsError('MODEL_CONFIG_INVALID', `${where}: mean and std need ${channels} values (one per output channel), got ${t.mean.length} and ${t.std.length}`);
    }
  }
  if ('channelOrder' in o) {
    if (o.channelOrder !== 'RGB' && o.channelOrder !== 'BGR') throw bad('channelOrder', '"RGB" or "BGR"', o.channelOrder);
    t.channelOrder = o.channelOrder;
  }
  if ('exifOrientation' in o) {
    if (typeof o.exifOrientation !== 'boolean') throw bad('exifOrientation', 'true or false', o.exifOrientation);
    t.exifOrientation = o.exifOrientation;
  }
  if ('resample' in o) {
    if (o.resample !== 'pil' && o.resample !== 'vips') throw bad('resample', '"pil" or "vips"', o.resample);
    t.resample = o.resample;
  }
  if ('maxInputPixels' in o) {
    if (!Number.isInteger(o.maxInputPixels) || (o.maxInputPixels as number) < 1) throw bad('maxInputPixels', 'a positive integer', o.maxInputPixels);
    t.maxInputPixels = o.maxInputPixels as number;
  }

  const hw = outputSize(t);
  if (!hw) throw nnsError('MODEL_CONFIG_INVALID', `${where}: set centerCrop, or resize as [height, width], so that every image of a batch has the same size`);
  if (input) {
    const [, c, h, w] = input.shape;
    const ok = input.shape.length === 4 && [c, h, w].every((d, i) => typeof d !== 'number' || d === [channels, ...hw][i]);
    if (!ok || input.dtype !== 'float32') {
      throw nnsError('MODEL_CONFIG_INVALID', `model "${model}" input "${input.name}" is ${input.dtype} [${input.shape}]; the image transform makes float32 [batch,${channels},${hw[0]},${hw[1]}]`);
    }
  }
  return Object.freeze(t);
}
