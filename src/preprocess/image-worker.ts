/** Image preprocessing thread entry: decode + transform one image at a time (image-pool.ts). */
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { imageToTensor } from './image.js';
import type { ImageJob, ImageJobResult } from './image-pool.js';

// Every request's image is new: libvips' operation cache would only hold memory.
sharp.cache(false);
const port = parentPort!;
port.on('message', async (job: ImageJob) => {
  let result: ImageJobResult;
  try {
    const tensor = await imageToTensor(job.bytes, job.transform, job.what);
    result = { id: job.id, tensor };
    port.postMessage(result, [tensor.buffer as ArrayBuffer]);
  } catch (e) {
    const err = e as { code?: string; message: string };
    result = { id: job.id, error: { code: err.code ?? 'NNS_ERR_IMAGE_INVALID', message: err.message } };
    port.postMessage(result);
  }
});
