/**
 * Hostile archives: zip-slip names (TorchServe #2634), links, duplicates, zip bombs and corrupt
 * zips. Each must be refused with its catalogue error, naming the archive and entry, and leave
 * nothing behind in workDir or outside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ErrorKind } from '../../src/errors.js';
import { openArchive, type ArchiveLimits } from '../../src/archive/mar.js';
import {
  listDir, patchBytes, patchCentralUncompressedSize, rejectsWith, validEntries, zipBuffer, zipFixture, type ZipEntry,
} from '../fixtures/archives/build-zips.js';

async function refused(
  zip: Buffer | ZipEntry[], kind: ErrorKind, re: RegExp, limits?: Partial<ArchiveLimits>,
): Promise<string> {
  const { path, workDir, root } = await zipFixture('evil.mar', zip);
  await rejectsWith(openArchive(path, { workDir, limits }), kind, re);
  assert.deepEqual(await listDir(workDir), [], 'the extraction folder must be removed');
  return root;
}

/** A valid archive plus one entry written as `placeholder` and renamed to `evilName` in the bytes. */
async function withEvilName(placeholder: string, evilName: string): Promise<Buffer> {
  return patchBytes(await zipBuffer(validEntries([{ name: placeholder, data: 'pwned' }])), placeholder, evilName);
}

test('an entry with a ".." segment is refused and nothing is written outside', async () => {
  const root = await refused(await withEvilName('xx/evil.txt', '../evil.txt'), 'ARCHIVE_UNSAFE', /evil\.mar.*\.\.\/evil\.txt/);
  assert.ok(!existsSync(join(root, 'evil.txt')));
});

test('a ".." buried in the middle of a path is refused', async () => {
  await refused(await withEvilName('a/xx/evil.txt', 'a/../evil.txt'), 'ARCHIVE_UNSAFE', /evil\.mar.*a\/\.\.\/evil\.txt/);
});

test('an absolute entry name is refused', async () => {
  const target = `/tmp/nns-evil-${randomBytes(4).toString('hex')}.txt`;
  await refused(await withEvilName(`x${target.slice(1)}`, target), 'ARCHIVE_UNSAFE', /absolute path/);
  assert.ok(!existsSync(target));
});

test('a drive-letter entry name is refused', async () => {
  await refused(await withEvilName('Cx/evil.txt', 'C:/evil.txt'), 'ARCHIVE_UNSAFE', /C:\/evil\.txt/);
});

test('backslashes in entry names are refused, not read as separators', async () => {
  await refused(await withEvilName('sub_evil.txt', 'sub\\evil.txt'), 'ARCHIVE_UNSAFE', /sub\\evil\.txt/);
  await refused(await withEvilName('zz_evil.txt', '..\\evil.txt'), 'ARCHIVE_UNSAFE', /\.\.\\evil\.txt/);
});

test('"." and empty segments are refused', async () => {
  await refused(await withEvilName('a/x/b.txt', 'a/./b.txt'), 'ARCHIVE_UNSAFE', /"a\/\.\/b\.txt".*"\." segment/);
  await refused(await withEvilName('a/xb.txt', 'a//b.txt'), 'ARCHIVE_UNSAFE', /"a\/\/b\.txt"/);
});

test('a symbolic link entry is refused', async () => {
  const root = await refused(
    [{ name: 'MAR-INF/MANIFEST.json', data: '{}' }, { name: 'model.onnx', data: '/etc/passwd', mode: 0o120777 }],
    'ARCHIVE_UNSAFE', /entry "model\.onnx" is a symbolic link/,
  );
  assert.deepEqual(await listDir(join(root, 'work')), []);
});

test('special file types (a FIFO) are refused', async () => {
  await refused(validEntries([{ name: 'pipe', data: '', mode: 0o010644 }]), 'ARCHIVE_UNSAFE', /"pipe" is not a regular file/);
});

test('a duplicated entry name is refused', async () => {
  await refused(validEntries([{ name: 'model.onnx', data: 'second copy' }]), 'ARCHIVE_UNSAFE', /"model\.onnx" appears more than once/);
  await refused(validEntries([{ name: 'sub/', dir: true }, { name: 'sub', data: 'x' }]), 'ARCHIVE_UNSAFE', /"sub" appears more than once/);
});

test('an entry under a file is refused', async () => {
  await refused(validEntries([{ name: 'model.onnx/inner', data: 'x' }]), 'ARCHIVE_INVALID', /"model\.onnx\/inner" lies under "model\.onnx"/);
});

test('a zip bomb (300 MB of zeros) is refused by its ratio before anything is inflated', async () => {
  const zeros = Buffer.alloc(1024 * 1024);
  const bomb = Readable.from((function* () { for (let i = 0; i < 300; i++) yield zeros; })());
  const zip = await zipBuffer(validEntries([{ name: 'weights.bin', data: bomb }]));
  assert.ok(zip.length < 1024 * 1024, `the bomb should be small, got ${zip.length}`);
  await refused(zip, 'ARCHIVE_TOO_LARGE', /evil\.mar: entry "weights\.bin" inflates 314572800 bytes from \d+ \(ratio over 200\)/);
});

test('small entries may compress past the ratio', async () => {
  const { path, workDir } = await zipFixture('zeros.mar', validEntries([{ name: 'zeros.bin', data: Buffer.alloc(512 * 1024) }]));
  const a = await openArchive(path, { workDir });
  await a.cleanup();
});

test('a header that understates the size is caught while inflating', async () => {
  const zip = await zipBuffer(validEntries([{ name: 'weights.bin', data: Buffer.alloc(8 * 1024 * 1024) }]));
  await refused(patchCentralUncompressedSize(zip, 'weights.bin', 1000), 'ARCHIVE_TOO_LARGE', /evil\.mar: .*inflates past its declared size/);
});

test('the total size and entry count limits apply', async () => {
  const big = validEntries([{ name: 'weights.bin', data: randomBytes(2000) }]);
  await refused(big, 'ARCHIVE_TOO_LARGE', /"weights\.bin" takes the archive past 1000 uncompressed bytes/, { maxTotalBytes: 1000 });
  await refused(big, 'ARCHIVE_TOO_LARGE', /evil\.mar has 3 entries; the limit is 2/, { maxEntries: 2 });
});

test('a file that is not a zip is ARCHIVE_INVALID with the reason', async () => {
  await refused(randomBytes(4096), 'ARCHIVE_INVALID', /evil\.mar is not a readable zip: end of central directory record signature not found/i);
  await refused(Buffer.alloc(0), 'ARCHIVE_INVALID', /evil\.mar is not a readable zip/);
});

test('a truncated zip is ARCHIVE_INVALID', async () => {
  const zip = await zipBuffer(validEntries([{ name: 'weights.bin', data: randomBytes(64 * 1024) }]));
  await refused(zip.subarray(0, zip.length / 2), 'ARCHIVE_INVALID', /evil\.mar is not a readable zip/);
  await refused(zip.subarray(0, zip.length - 10), 'ARCHIVE_INVALID', /evil\.mar is not a readable zip/);
});

test('a stored entry whose bytes were altered fails its CRC-32', async () => {
  const zip = await zipBuffer(validEntries([{ name: 'labels.txt', data: 'cat dog bird fish', compress: false }]));
  await refused(patchBytes(zip, 'cat dog bird fish', 'cat dog bird fisH'), 'ARCHIVE_INVALID', /evil\.mar: entry "labels\.txt" is corrupt/);
});
