/**
 * Writing a model archive: nnserve's torch-model-archiver. Files are stored under their base
 * names next to MAR-INF/MANIFEST.json, as torch-model-archiver stores them.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import yazl from 'yazl';
import { isNnsError, nnsError } from '../errors.js';
import { BUILTIN_HANDLERS, validateManifest, type Manifest, type TensorSpec } from './manifest.js';
import { MANIFEST_PATH } from './mar.js';
import { parseModelConfig } from './model-config.js';

/** Version of the archive layout nnserve writes, recorded as the manifest's archiverVersion. */
export const ARCHIVER_VERSION = '0.1.0';
const LABELS_FILE = 'index_to_name.json';

export interface ArchiveOptions {
  modelName: string;
  version: string;
  serializedFile: string;
  /** Built-in handler name or a handler file to store. @defaultValue "tensor" */
  handler?: string;
  architecture?: string;
  extraFiles?: string[];
  configFile?: string;
  /** Folder the archive is written to; created if missing. */
  exportPath: string;
  /** Replace an existing archive. @defaultValue false */
  force?: boolean;
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
  labels?: string;
  /** "default" writes NAME.mar; "no-archive" writes the folder NAME/. @defaultValue "default" */
  format?: 'default' | 'no-archive';
}

/** torch-model-archiver's datetime.now().strftime("%d/%m/%Y %H:%M:%S"). */
function createdOn(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getDate())}/${p(d.getMonth() + 1)}/${d.getFullYear()} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Writes the archive and returns its path (the .mar, or the folder for no-archive). */
export async function writeArchive(o: ArchiveOptions): Promise<string> {
  const files = new Map<string, string>(); // name in archive -> path on disk
  const add = async (flag: string, file: string): Promise<string> => {
    const st = await stat(file).catch(() => undefined);
    if (st === undefined) throw nnsError('ARCHIVE_NOT_FOUND', `${flag}: file ${file} does not exist`);
    if (!st.isFile()) throw nnsError('ARCHIVE_INVALID', `${flag}: ${file} is not a file (folders are not archived)`);
    const name = basename(file);
    if (name === 'MAR-INF') throw nnsError('ARCHIVE_INVALID', `${flag}: the name MAR-INF is reserved for the manifest folder`);
    const prev = files.get(name);
    if (prev !== undefined && resolve(prev) !== resolve(file)) {
      throw nnsError('ARCHIVE_INVALID', `${flag}: ${file} and ${prev} would both be stored as "${name}"`);
    }
    files.set(name, file);
    return name;
  };

  let handler = o.handler ?? 'tensor';
  if (!(BUILTIN_HANDLERS as readonly string[]).includes(handler) && /[./]/.test(handler)) {
    handler = await add('--handler', handler);
  }
  const model: Manifest['model'] = {
    modelName: o.modelName,
    modelVersion: o.version,
    handler,
    serializedFile: await add('--serialized-file', o.serializedFile),
  };
  if (o.architecture !== undefined) model.architecture = await add('--architecture', o.architecture);
  if (o.inputs !== undefined) model.inputs = o.inputs;
  if (o.outputs !== undefined) model.outputs = o.outputs;
  if (o.labels !== undefined) model.labels = await add('--labels', o.labels);
  if (o.configFile !== undefined) {
    model.configFile = await add('--config-file', o.configFile);
    parseModelConfig(await readFile(o.configFile, 'utf8'), o.configFile); // refuse now, not at registration
  }
  if (o.extraFiles !== undefined && o.extraFiles.length > 0) {
    model.extraFiles = [];
    for (const f of o.extraFiles) model.extraFiles.push(await add('--extra-files', f));
    if (model.labels === undefined && model.extraFiles.includes(LABELS_FILE)) model.labels = LABELS_FILE;
  }
  const manifest = validateManifest(
    { createdOn: createdOn(), runtime: 'onnx', archiverVersion: ARCHIVER_VERSION, model },
    `archive options for ${o.modelName}`,
  );
  const manifestJson = `${JSON.stringify(manifest, null, 2)}\n`;

  const exportPath = resolve(o.exportPath);
  await mkdir(exportPath, { recursive: true });
  const noArchive = o.format === 'no-archive';
  const target = join(exportPath, noArchive ? o.modelName : `${o.modelName}.mar`);
  if (!o.force && (await stat(target).catch(() => undefined)) !== undefined) {
    throw nnsError('ARCHIVE_EXISTS', `${target} already exists; use -f/--force to replace it`);
  }
  // Build beside the target and rename, so a failure never leaves a half-written archive.
  const tmp = join(exportPath, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    if (noArchive) await writeFolder(tmp, manifestJson, files);
    else await writeZip(tmp, manifestJson, files);
    if (noArchive && o.force) await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return target;
}

async function writeZip(path: string, manifestJson: string, files: Map<string, string>): Promise<void> {
  const zip = new yazl.ZipFile();
  const output = zip.outputStream as Readable;
  // yazl reports a file it cannot read on the ZipFile; failing the output fails the pipeline.
  zip.on('error', (e: Error) => output.destroy(e));
  zip.addBuffer(Buffer.from(manifestJson), MANIFEST_PATH, { mode: 0o100644 });
  for (const [name, file] of files) zip.addFile(file, name, { mode: 0o100644 });
  zip.end();
  await pipeline(output, createWriteStream(path, { flags: 'wx' }));
}

async function writeFolder(path: string, manifestJson: string, files: Map<string, string>): Promise<void> {
  await mkdir(join(path, 'MAR-INF'), { recursive: true });
  await writeFile(join(path, MANIFEST_PATH), manifestJson, { flag: 'wx' });
  for (const [name, file] of files) await copyFile(file, join(path, name));
}

const USAGE = `Usage: nnserve archive --model-name NAME --version V --serialized-file FILE --export-path DIR [options]

Writes NAME.mar (a zip holding MAR-INF/MANIFEST.json and the files, under their base names).

  --model-name NAME          starts with a letter; then letters, digits, _ - .
  -v, --version V            model version, e.g. 1.0
  --serialized-file FILE     model.onnx, or weights (.pth/.safetensors) with --architecture
  --handler H                built-in (tensor, image_classifier, text_classifier, regression)
                             or a handler .js file to store (default: tensor)
  --architecture FILE        architecture JSON compiled to ONNX at load time
  --extra-files A,B          more files; an index_to_name.json among them sets the labels
  -c, --config-file FILE     model-config.yaml (minWorkers, batchSize, ...)
  --labels FILE              labels file, e.g. index_to_name.json
  --export-path DIR          folder to write into
  --archive-format FORMAT    default (NAME.mar) or no-archive (folder NAME/)
  -f, --force                replace an existing archive
  -h, --help                 show this help
`;

export interface CliIo { out: (s: string) => void; err: (s: string) => void }

const stdio: CliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/**
 * `nnserve archive ...`: argv after "archive". Exit codes: 0 written (or help), 1 the archive
 * could not be written, 2 bad command line.
 */
export async function runArchiveCli(argv: string[], io: CliIo = stdio): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'model-name': { type: 'string' },
        version: { type: 'string', short: 'v' },
        'serialized-file': { type: 'string' },
        handler: { type: 'string' },
        architecture: { type: 'string' },
        'extra-files': { type: 'string' },
        'config-file': { type: 'string', short: 'c' },
        labels: { type: 'string' },
        'export-path': { type: 'string' },
        'archive-format': { type: 'string' },
        force: { type: 'boolean', short: 'f' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.err(`nnserve archive: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const missing = ['model-name', 'version', 'serialized-file', 'export-path'].filter((k) => values[k as keyof typeof values] === undefined);
  if (missing.length > 0) {
    io.err(`nnserve archive: missing ${missing.map((k) => `--${k}`).join(', ')}\n\n${USAGE}`);
    return 2;
  }
  const format = values['archive-format'] ?? 'default';
  if (format !== 'default' && format !== 'no-archive') {
    io.err(`nnserve archive: --archive-format must be "default" or "no-archive", got "${format}"\n`);
    return 2;
  }
  try {
    const written = await writeArchive({
      modelName: values['model-name']!,
      version: values.version!,
      serializedFile: values['serialized-file']!,
      handler: values.handler,
      architecture: values.architecture,
      extraFiles: values['extra-files']?.split(',').map((s) => s.trim()).filter((s) => s !== ''),
      configFile: values['config-file'],
      labels: values.labels,
      exportPath: values['export-path']!,
      force: values.force ?? false,
      format,
    });
    io.out(`${written}\n`);
    return 0;
  } catch (e) {
    io.err(`nnserve archive: ${isNnsError(e) ? `${e.code}: ${e.message}` : (e as Error).message}\n`);
    return 1;
  }
}
