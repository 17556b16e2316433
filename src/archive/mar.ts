/**
 * Opening a model archive: a .mar zip (extracted into a fresh folder under workDir) or an
 * unpacked folder with the same layout. Archives come from users, so every entry name, link,
 * size and manifest path is checked before it can touch the disk (zip-slip was TorchServe
 * issue #2634).
 */
import { createWriteStream, realpathSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, realpath, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { ERRORS, isNnsError, nnsError } from '../errors.js';
import { referencedFiles, validateManifest, type Manifest } from './manifest.js';
import { parseModelConfig, type ModelConfig } from './model-config.js';

export interface ArchiveLimits {
  /** Most entries (files and folders) in a zip. @defaultValue 10_000 */
  maxEntries: number;
  /** Most bytes all entries may inflate to together. @defaultValue 4 GiB */
  maxTotalBytes: number;
  /** Most an entry may inflate relative to its compressed size. @defaultValue 200 */
  maxCompressionRatio: number;
}

export const DEFAULT_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxEntries: 10_000,
  maxTotalBytes: 4 * 1024 ** 3,
  maxCompressionRatio: 200,
});

// Small files (a JSON of zeros, an empty tensor) legitimately compress past any ratio; like
// Apache POI's ZipSecureFile, the ratio applies only once an entry is past this size.
export const RATIO_GRACE_BYTES = 1024 * 1024;

export const MANIFEST_PATH = 'MAR-INF/MANIFEST.json';
const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface OpenedArchive {
  /** e.g. "mlp.mar" or the folder's name. */
  archiveName: string;
  /** Absolute path of the .mar or folder. */
  sourcePath: string;
  /** Absolute folder holding the archive's files (the folder itself, or the extraction folder). */
  dir: string;
  manifest: Manifest;
  /** {} when the manifest names no configFile. */
  modelConfig: ModelConfig;
  /** Absolute path of a file inside dir; ARCHIVE_UNSAFE if rel escapes dir, ARCHIVE_INVALID if missing. */
  resolveFile(rel: string): string;
  /** Removes the extraction folder; a no-op for unpacked folders. */
  cleanup(): Promise<void>;
}

export async function openArchive(
  path: string,
  opts: { workDir: string; limits?: Partial<ArchiveLimits> },
): Promise<OpenedArchive> {
  const sourcePath = resolve(path);
  const archiveName = basename(sourcePath);
  const st = await stat(sourcePath).catch(() => undefined);
  if (st === undefined) throw nnsError('ARCHIVE_NOT_FOUND', `archive ${path} does not exist`);
  if (st.isDirectory()) return load(archiveName, sourcePath, await realpath(sourcePath), async () => {});
  if (!st.isFile()) throw nnsError('ARCHIVE_INVALID', `archive ${path} is neither a file nor a folder`);

  // `??` rather than a spread, so an explicit undefined never switches a limit off.
  const limits: ArchiveLimits = {
    maxEntries: opts.limits?.maxEntries ?? DEFAULT_LIMITS.maxEntries,
    maxTotalBytes: opts.limits?.maxTotalBytes ?? DEFAULT_LIMITS.maxTotalBytes,
    maxCompressionRatio: opts.limits?.maxCompressionRatio ?? DEFAULT_LIMITS.maxCompressionRatio,
  };
  await mkdir(opts.workDir, { recursive: true });
  const prefix = archiveName.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100);
  const extractDir = await mkdtemp(join(opts.workDir, `${prefix}-`));
  const cleanup = () => rm(extractDir, { recursive: true, force: true });
  try {
    await extractZip(sourcePath, archiveName, extractDir, limits);
    return await load(archiveName, sourcePath, await realpath(extractDir), cleanup);
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** Names of *.mar files and of folders holding MAR-INF/MANIFEST.json in the model store, sorted. */
export async function listArchives(modelStore: string): Promise<string[]> {
  const entries = await readdir(modelStore).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ENOENT' ? nnsError('ARCHIVE_NOT_FOUND', `model store ${modelStore} does not exist`) : e;
  });
  const names: string[] = [];
  for (const name of entries) {
    if (name.startsWith('.')) continue; // archiver temp files and editor litter
    const st = await stat(join(modelStore, name)).catch(() => undefined);
    if (st?.isFile() && name.endsWith('.mar')) names.push(name);
    const manifest = st?.isDirectory() ? await stat(join(modelStore, name, MANIFEST_PATH)).catch(() => undefined) : undefined;
    if (manifest?.isFile()) names.push(name);
  }
  return names.sort();
}

/** Why an archive-relative path is unsafe, or undefined when it is a plain relative path. */
export function unsafePathReason(rel: string): string | undefined {
  if (rel.includes('\\')) return 'contains a backslash';
  if (/[\0-\x1f]/.test(rel)) return 'contains a control character';
  if (rel.startsWith('/') || /^[A-Za-z]:/.test(rel)) return 'is an absolute path';
  const segments = rel.split('/');
  if (segments.includes('..')) return 'has a ".." segment';
  if (segments.some((s) => s === '' || s === '.')) return 'has an empty or "." segment';
  return undefined;
}

function isInside(dir: string, p: string): boolean {
  const r = relative(dir, p);
  return r !== '' && r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r);
}

function resolveInside(archiveName: string, dir: string, rel: string, what: string): string {
  const reason = unsafePathReason(rel);
  if (reason !== undefined) throw nnsError('ARCHIVE_UNSAFE', `archive ${archiveName}: ${what} "${rel}" ${reason}`);
  let real: string;
  try {
    real = realpathSync(join(dir, rel));
  } catch {
    throw nnsError('ARCHIVE_INVALID', `archive ${archiveName}: ${what} "${rel}" is not in the archive`);
  }
  if (!isInside(dir, real)) {
    throw nnsError('ARCHIVE_UNSAFE', `archive ${archiveName}: ${what} "${rel}" resolves outside the archive (a symbolic link?)`);
  }
  if (!statSync(real).isFile()) throw nnsError('ARCHIVE_INVALID', `archive ${archiveName}: ${what} "${rel}" is not a file`);
  return real;
}

async function load(archiveName: string, sourcePath: string, dir: string, cleanup: () => Promise<void>): Promise<OpenedArchive> {
  const manifest = await readManifest(archiveName, dir);
  for (const { field, file } of referencedFiles(manifest)) resolveInside(archiveName, dir, file, field);
  const configFile = manifest.model.configFile;
  const modelConfig = configFile === undefined
    ? {}
    : parseModelConfig(await readFile(resolveInside(archiveName, dir, configFile, 'model.configFile'), 'utf8'), `${archiveName}/${configFile}`);
  return {
    archiveName,
    sourcePath,
    dir,
    manifest,
    modelConfig,
    resolveFile: (rel) => resolveInside(archiveName, dir, rel, 'file'),
    cleanup,
  };
}

async function readManifest(archiveName: string, dir: string): Promise<Manifest> {
  let path: string;
  try {
    path = resolveInside(archiveName, dir, MANIFEST_PATH, 'manifest');
  } catch (e) {
    if (isNnsError(e) && e.code === ERRORS.ARCHIVE_INVALID.code) {
      throw nnsError('MANIFEST_INVALID', `archive ${archiveName} has no ${MANIFEST_PATH}`);
    }
    throw e;
  }
  if (statSync(path).size > MAX_MANIFEST_BYTES) {
    throw nnsError('MANIFEST_INVALID', `archive ${archiveName}: ${MANIFEST_PATH} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw nnsError('MANIFEST_INVALID', `archive ${archiveName}: ${MANIFEST_PATH} is not valid JSON: ${(e as Error).message}`);
  }
  return validateManifest(raw, `archive ${archiveName} ${MANIFEST_PATH}`);
}

// ---- zip extraction ----

const S_IFMT = 0o170000;
const ALLOWED_TYPES = new Set([0, 0o100000, 0o040000]); // unset (DOS-made zips), regular file, directory

/** yauzl's own name checks fire before we see the entry; keep their verdict as ARCHIVE_UNSAFE. */
function zipError(archiveName: string, e: unknown): Error {
  if (isNnsError(e)) return e;
  // A failing disk (ENOSPC, EIO) is the server's problem, not the archive's.
  if ((e as NodeJS.ErrnoException).syscall !== undefined) return e as Error;
  const msg = (e as Error).message ?? String(e);
  if (/^(invalid relative path|absolute path|invalid characters in fileName)/.test(msg)) {
    return nnsError('ARCHIVE_UNSAFE', `archive ${archiveName}: unsafe entry name (${msg})`);
  }
  if (msg.startsWith('too many bytes in the stream')) {
    return nnsError('ARCHIVE_TOO_LARGE', `archive ${archiveName}: an entry inflates past its declared size (${msg})`);
  }
  return nnsError('ARCHIVE_INVALID', `archive ${archiveName} is not a readable zip: ${msg}`);
}

async function extractZip(zipPath: string, archiveName: string, dir: string, limits: ArchiveLimits): Promise<void> {
  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(zipPath, {
      lazyEntries: true, validateEntrySizes: true, decodeStrings: true, strictFileNames: true, autoClose: false,
    });
  } catch (e) {
    throw zipError(archiveName, e);
  }
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw nnsError('ARCHIVE_TOO_LARGE', `archive ${archiveName} has ${zip.entryCount} entries; the limit is ${limits.maxEntries}`);
    }
    // Check the whole central directory before writing a byte, then extract.
    const entries = await readEntries(zip, archiveName, limits).catch((e) => { throw zipError(archiveName, e); });
    const written = { total: 0 };
    for (const entry of entries) {
      await extractEntry(zip, entry, archiveName, dir, limits, written).catch((e) => { throw zipError(archiveName, e); });
    }
  } finally {
    zip.close();
  }
}

async function readEntries(zip: ZipFile, archiveName: string, limits: ArchiveLimits): Promise<Entry[]> {
  const entries: Entry[] = [];
  const names = new Set<string>();
  const files = new Set<string>();
  let declared = 0;
  for await (const entry of zip.eachEntry()) {
    const isDir = entry.fileName.endsWith('/');
    const name = isDir ? entry.fileName.slice(0, -1) : entry.fileName;
    const fail = (kind: 'ARCHIVE_UNSAFE' | 'ARCHIVE_INVALID' | 'ARCHIVE_TOO_LARGE', why: string) =>
      nnsError(kind, `archive ${archiveName}: entry "${entry.fileName}" ${why}`);
    const reason = unsafePathReason(name);
    if (reason !== undefined) throw fail('ARCHIVE_UNSAFE', reason);
    const type = (entry.externalFileAttributes >>> 16) & S_IFMT;
    if (type === 0o120000) throw fail('ARCHIVE_UNSAFE', 'is a symbolic link');
    if (!ALLOWED_TYPES.has(type)) throw fail('ARCHIVE_UNSAFE', `is not a regular file or folder (mode ${type.toString(8)})`);
    if (names.has(name)) throw fail('ARCHIVE_UNSAFE', 'appears more than once');
    names.add(name);
    if (entry.isEncrypted()) throw fail('ARCHIVE_INVALID', 'is encrypted');
    if (!entry.canDecodeFileData()) throw fail('ARCHIVE_INVALID', `uses unsupported compression method ${entry.compressionMethod}`);
    const { uncompressedSize: size, compressedSize } = entry;
    if (size > RATIO_GRACE_BYTES && size > compressedSize * limits.maxCompressionRatio) {
      throw fail('ARCHIVE_TOO_LARGE', `inflates ${size} bytes from ${compressedSize} (ratio over ${limits.maxCompressionRatio}); refusing a likely zip bomb`);
    }
    declared += size;
    if (declared > limits.maxTotalBytes) {
      throw fail('ARCHIVE_TOO_LARGE', `takes the archive past ${limits.maxTotalBytes} uncompressed bytes`);
    }
    if (!isDir) files.add(name);
    entries.push(entry);
  }
  for (const name of names) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (files.has(parent)) throw nnsError('ARCHIVE_INVALID', `archive ${archiveName}: entry "${name}" lies under "${parent}", which is a file`);
    }
  }
  return entries;
}

async function extractEntry(
  zip: ZipFile, entry: Entry, archiveName: string, dir: string, limits: ArchiveLimits, written: { total: number },
): Promise<void> {
  const target = join(dir, entry.fileName);
  if (!isInside(dir, target)) throw nnsError('ARCHIVE_UNSAFE', `archive ${archiveName}: entry "${entry.fileName}" escapes the archive`);
  if (entry.fileName.endsWith('/')) {
    await mkdir(target, { recursive: true });
    return;
  }
  await mkdir(dirname(target), { recursive: true });
  // Headers can lie: count the bytes actually inflated and stop at the first byte past a limit.
  const entryLimit = Math.min(
    entry.uncompressedSize,
    Math.max(RATIO_GRACE_BYTES, entry.compressedSize * limits.maxCompressionRatio),
  );
  let count = 0;
  let crc = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      count += chunk.length;
      written.total += chunk.length;
      if (count > entryLimit || written.total > limits.maxTotalBytes) {
        done(nnsError('ARCHIVE_TOO_LARGE', `archive ${archiveName}: entry "${entry.fileName}" inflates past its limit (${entryLimit} bytes, ${limits.maxTotalBytes} in all); refusing a likely zip bomb`));
        return;
      }
      crc = crc32(chunk, crc);
      done(null, chunk);
    },
  });
  const source = await zip.openReadStreamPromise(entry);
  // 'wx': the folder is fresh, so an existing path here means something is wrong; never follow it.
  await pipeline(source, guard, createWriteStream(target, { flags: 'wx', mode: 0o644 }));
  if (count !== entry.uncompressedSize || crc !== entry.crc32) {
    throw nnsError('ARCHIVE_INVALID', `archive ${archiveName}: entry "${entry.fileName}" is corrupt (size or CRC-32 does not match its header)`);
  }
}
