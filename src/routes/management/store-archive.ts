/**
 * Getting an archive into the model store for registration: an uploaded multipart file or a
 * downloaded URL is streamed to a hidden temp file (never buffered in memory), checked to be a
 * safe, valid archive, then linked under its final name without overwriting anything there.
 * On any failure nothing is left in the store.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { openArchive } from '../../archive/mar.js';
import type { Config } from '../../config.js';
import { nnsError } from '../../errors.js';
import { download, sizeLimit } from '../../security/model-url.js';

export interface StoredArchive {
  /** File name in the model store. */
  archiveName: string;
  /** Remove it again (registration failed). */
  remove(): Promise<void>;
}

const SAFE_NAME = /^[A-Za-z0-9][\w.-]*\.mar$/;

/** Read a multipart register request: the archive file (field "file" or "data") and option fields. */
export async function receiveUpload(req: FastifyRequest, config: Config): Promise<{ fields: Record<string, string>; archive: StoredArchive }> {
  const fields: Record<string, string> = {};
  let stored: StoredArchive | undefined;
  try {
    for await (const part of req.parts()) {
      if (part.type === 'field') {
        fields[part.fieldname] = String(part.value);
        continue;
      }
      if (part.fieldname !== 'file' && part.fieldname !== 'data') {
        part.file.resume();
        throw nnsError('BAD_REQUEST', `unexpected file field "${part.fieldname}": send the archive as "file"`);
      }
      if (stored) throw nnsError('BAD_REQUEST', 'send one archive per register request');
      const tmp = join(config.model_store, `.upload-${randomUUID()}.mar`);
      try {
        await pipeline(part.file, sizeLimit(config.max_model_size, `uploaded archive ${part.filename}`), createWriteStream(tmp, { flags: 'wx' }));
        if (part.file.truncated) throw nnsError('ARCHIVE_TOO_LARGE', `uploaded archive ${part.filename} is larger than max_model_size ${config.max_model_size} bytes`);
        stored = await place(tmp, part.filename, config);
      } finally {
        await rm(tmp, { force: true });
      }
    }
  } catch (e) {
    await stored?.remove();
    throw e;
  }
  if (!stored) throw nnsError('BAD_REQUEST', 'multipart register request has no archive file (field "file")');
  return { fields, archive: stored };
}

export async function receiveDownload(url: URL, config: Config): Promise<StoredArchive> {
  const tmp = join(config.model_store, `.download-${randomUUID()}.mar`);
  try {
    await download(url, tmp, config);
    return await place(tmp, url.pathname.split('/').pop() ?? '', config);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Validate the temp archive, then hard-link it under its final name (fails if that exists). */
async function place(tmp: string, suggested: string, config: Config): Promise<StoredArchive> {
  const work = await mkdtemp(join(tmpdir(), 'nnserve-check-'));
  let name: string;
  try {
    const archive = await openArchive(tmp, { workDir: work });
    name = SAFE_NAME.test(suggested) ? suggested : `${archive.manifest.model.modelName}.mar`;
    await archive.cleanup();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const finalPath = join(config.model_store, name);
  try {
    await link(tmp, finalPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw nnsError('ARCHIVE_EXISTS', `Model file already exists ${name} in the model store; nothing was replaced`);
    throw e;
  }
  return { archiveName: name, remove: () => unlink(finalPath).catch(() => undefined) };
}
