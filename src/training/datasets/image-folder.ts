/**
 * A folder of images per class, as torchvision.datasets.ImageFolder (0.14) lists it: classes
 * are the sorted names of root's subfolders (index = position); samples are every file below
 * a class folder (symlinks followed) whose lower-cased name ends in an image extension, walked
 * in sorted order; a class folder without any is an error.
 *
 * Images are decoded and transformed by src/preprocess/image.ts (sharp, Pillow-exact resize,
 * ToTensor, Normalize) with the given torchvision-style transform, or by an injected `decode`.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { nnsError } from '../../errors.js';
import type { ImageTransform } from '../../preprocess/image-transform.js';
import { IndexedDataset, type Batch, type SampleSpec } from './dataset.js';

/** torchvision's IMG_EXTENSIONS. */
export const IMG_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

export interface ImageFolderOptions {
  /** The torchvision transform; it must give a fixed size (centerCrop, or resize [h, w]). @defaultValue preprocess's default: Resize(256), CenterCrop(224), ImageNet Normalize */
  transform?: Partial<ImageTransform>;
  /** Decodes one file to a float32 tensor of sampleDims instead of preprocess/image.ts. */
  decode?: (path: string) => Promise<Float32Array>;
  /** Per-sample dims of what `decode` returns, e.g. [3, 224, 224]; required with decode. */
  sampleDims?: number[];
  /** Extensions counted as images (lower case, with the dot). @defaultValue IMG_EXTENSIONS */
  extensions?: string[];
}

const invalid = (message: string) => nnsError('TRAIN_DATASET_INVALID', message);

async function isDir(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

/** os.walk(top, followlinks=True) as [folder, sorted file names], sorted by folder path. */
async function walk(top: string): Promise<[string, string[]][]> {
  const out: [string, string[]][] = [];
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<void> => {
    const real = await realpath(dir);
    if (seen.has(real)) return; // a symlink loop; os.walk would recurse until the path is too long
    seen.add(real);
    const entries = await readdir(dir, { withFileTypes: true });
    const files: string[] = [];
    const dirs: string[] = [];
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(path)))) dirs.push(path);
      else files.push(e.name);
    }
    out.push([dir, files.sort()]);
    for (const d of dirs) await visit(d);
  };
  await visit(top);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** torchvision's find_classes + make_dataset: class names and [path, class index] samples. */
export async function listImageFolder(root: string, extensions = IMG_EXTENSIONS): Promise<{ classes: string[]; samples: [string, number][] }> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    throw invalid(`cannot read image folder ${root}: ${(e as Error).message}`);
  }
  const classes: string[] = [];
  for (const e of entries) if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(join(root, e.name))))) classes.push(e.name);
  classes.sort();
  if (classes.length === 0) throw invalid(`image folder ${root}: no class folders (expected ${root}/<class>/<image>)`);
  const exts = extensions.map((x) => x.toLowerCase());
  const samples: [string, number][] = [];
  const empty: string[] = [];
  for (const [index, name] of classes.entries()) {
    const before = samples.length;
    for (const [dir, files] of await walk(join(root, name))) {
      for (const f of files) if (exts.some((x) => f.toLowerCase().endsWith(x))) samples.push([join(dir, f), index]);
    }
    if (samples.length === before) empty.push(name);
  }
  if (empty.length > 0) {
    throw invalid(`image folder ${root}: no image files for the classes ${empty.join(', ')}; supported extensions are ${exts.join(', ')}`);
  }
  return { classes, samples };
}

export class ImageFolder extends IndexedDataset {
  readonly length: number;
  readonly xSpec: SampleSpec;
  readonly ySpec: SampleSpec = { dtype: 'int64', dims: [] };
  override readonly classes: readonly string[];
  /** [path, class index], torchvision's `samples`. */
  readonly samples: readonly [string, number][];
  private readonly decode: (path: string) => Promise<Float32Array>;
  private readonly sampleSize: number;

  static async open(root: string, options: ImageFolderOptions = {}): Promise<ImageFolder> {
    const { classes, samples } = await listImageFolder(root, options.extensions);
    if (options.decode) {
      const dims = options.sampleDims;
      if (!Array.isArray(dims) || dims.length === 0 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
        throw nnsError('TRAIN_OPTIONS_INVALID', `ImageFolder sampleDims: expected the decoded tensor's dims, e.g. [3, 224, 224], got ${JSON.stringify(dims)}`);
      }
      return new ImageFolder(classes, samples, options.decode, dims);
    }
    // Loaded only here, so that other datasets never load sharp.
    const [{ imageToTensor }, { DEFAULT_IMAGE_TRANSFORM, outputChannels, outputSize }] = await Promise.all([
      import('../../preprocess/image.js'),
      import('../../preprocess/image-transform.js'),
    ]);
    const t: ImageTransform = { ...DEFAULT_IMAGE_TRANSFORM, ...options.transform };
    const size = outputSize(t);
    if (!size) throw nnsError('TRAIN_OPTIONS_INVALID', 'ImageFolder transform: batches need one image size; set centerCrop or resize to [height, width]');
    const decode = async (path: string) => imageToTensor(await readFile(path), t, path);
    return new ImageFolder(classes, samples, decode, [outputChannels(t), ...size]);
  }

  private constructor(classes: string[], samples: [string, number][], decode: (path: string) => Promise<Float32Array>, dims: number[]) {
    super();
    this.classes = classes;
    this.samples = samples;
    this.length = samples.length;
    this.decode = decode;
    this.xSpec = { dtype: 'float32', dims };
    this.sampleSize = dims.reduce((a, b) => a * b, 1);
  }

  async getBatch(indices: ArrayLike<number>): Promise<Batch> {
    const n = indices.length;
    const x = new Float32Array(n * this.sampleSize);
    const y = new BigInt64Array(n);
    await Promise.all(
      Array.from(indices, async (i, b) => {
        const [path, label] = this.samples[i];
        let t: Float32Array;
        try {
          t = await this.decode(path);
        } catch (e) {
          throw (e as { code?: string }).code ? e : invalid(`cannot decode image ${path}: ${(e as Error).message}`);
        }
        if (t.length !== this.sampleSize) {
          throw invalid(`image ${path} decoded to ${t.length} values; every sample must have dims [${this.xSpec.dims.join(', ')}]`);
        }
        x.set(t, b * this.sampleSize);
        y[b] = BigInt(label);
      }),
    );
    return { x: { dtype: 'float32', dims: [n, ...this.xSpec.dims], data: x }, y: { dtype: 'int64', dims: [n], data: y } };
  }
}
