/** Fixed pseudo-random benchmark inputs, identical in every process that asks for them. */

/** mulberry32: a small seeded PRNG, so "random" inputs are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const IMAGE_DIMS = [3, 224, 224] as const;
export const IMAGE_FLOATS = 3 * 224 * 224;

/** `images` copies of one fixed [3,224,224] image (values roughly N(0,1)-ish, in [-2, 2)), as [images,3,224,224]. */
export function fixedImages(images: number, seed = 1): Float32Array {
  const rnd = prng(seed);
  const one = new Float32Array(IMAGE_FLOATS);
  for (let i = 0; i < one.length; i++) one[i] = (rnd() + rnd() - 1) * 2;
  const out = new Float32Array(IMAGE_FLOATS * images);
  for (let k = 0; k < images; k++) out.set(one, k * IMAGE_FLOATS);
  return out;
}
