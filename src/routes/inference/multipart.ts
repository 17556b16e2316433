/**
 * multipart/form-data for the inference API (TorchServe turns form fields into named
 * parameters for the handler). Files and plain fields are read into memory in request order,
 * within max_request_size in total; malformed forms are a 400, oversized ones a 413.
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isNnsError, nnsError } from '../../errors.js';
import type { FormPart } from '../../registry/handler.js';

/** Most fields (files and plain) in one form: a batch larger than any model's batchSize. */
const MAX_PARTS = 256;

export async function registerMultipart(app: FastifyInstance): Promise<void> {
  const limit = app.initialConfig.bodyLimit ?? 6_553_500;
  await app.register(multipart, {
    limits: { fileSize: limit, fieldSize: limit, parts: MAX_PARTS, files: MAX_PARTS, fields: MAX_PARTS, headerPairs: 100 },
    throwFileSizeLimit: true,
  });
}

export async function readParts(req: FastifyRequest): Promise<FormPart[]> {
  const limit = req.server.initialConfig.bodyLimit ?? 6_553_500;
  const parts: FormPart[] = [];
  let total = 0;
  try {
    for await (const part of req.parts()) {
      const value = part.type === 'file' ? await part.toBuffer() : Buffer.from(String(part.value ?? ''), 'utf8');
      total += value.length;
      if (total > limit) throw nnsError('REQUEST_TOO_LARGE', `the multipart body is larger than max_request_size (${limit} bytes)`);
      parts.push({
        name: part.fieldname, value,
        ...(part.type === 'file' && part.filename ? { filename: part.filename } : {}),
        ...(part.mimetype ? { contentType: part.mimetype } : {}),
      });
    }
  } catch (e) {
    if (isNnsError(e)) throw e;
    const err = e as { statusCode?: number; message: string };
    if (err.statusCode === 413) throw nnsError('REQUEST_TOO_LARGE', `multipart/form-data: ${err.message} (at most ${MAX_PARTS} fields, ${limit} bytes)`);
    throw nnsError('INPUT_INVALID', `malformed multipart/form-data: ${err.message}`);
  }
  return parts;
}
