/**
 * The handler contract (TorchServe's preprocess -> inference -> postprocess) and how a handler
 * named in a manifest is found: a built-in name, or a module an operator put in handlers/.
 * Code shipped inside an archive is refused unless `allow_archive_handlers` is on, because
 * TorchServe's custom-code-in-archive runs whatever an uploader sends.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { nnsError } from '../errors.js';
import type { IoSpec, TensorData } from '../runtime/ort.js';

/** One field of a multipart/form-data request (a file or a plain field), in request order. */
export interface FormPart {
  name: string;
  value: Buffer;
  filename?: string;
  contentType?: string;
}

export interface HandlerRequest {
  /** Parsed JSON, a Buffer for raw bodies, or a string for text/*; undefined for multipart. */
  body: unknown;
  /** The fields of a multipart/form-data request (TorchServe hands them over as named parameters). */
  parts?: FormPart[];
  contentType: string;
  query: Record<string, string | undefined>;
  headers: Record<string, string | string[] | undefined>;
}

export interface ModelContext {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly inputs: IoSpec[];
  readonly outputs: IoSpec[];
  /** Index -> label, from the archive's index_to_name.json. */
  readonly labels: Record<string, string> | undefined;
  /** Keys of model-config.yaml that are not frontend settings (TorchServe's model_yaml_config). */
  readonly modelYamlConfig: Record<string, unknown>;
  readonly archiveDir: string;
}

export interface Preprocessed {
  feeds: Record<string, TensorData>;
  /** Samples along axis 0. */
  rows: number;
  /** Handler-private state passed to postprocess (e.g. "the request was one sample"). */
  state?: unknown;
}

export interface Handler {
  readonly name: string;
  preprocess(req: HandlerRequest, ctx: ModelContext): Preprocessed | Promise<Preprocessed>;
  /** Returns a JSON-serialisable value, or a Buffer sent as is. */
  postprocess(outputs: Record<string, TensorData>, pre: Preprocessed, req: HandlerRequest, ctx: ModelContext): unknown;
}

const BUILT_IN = ['tensor', 'image_classifier', 'text_classifier', 'regression'] as const;
/** Folder of the built-in and operator-installed handlers (compiled next to src/). */
const HANDLERS_DIR = resolve(new URL('.', import.meta.url).pathname, '../../handlers');
/** The repository's handlers/ folder, where an operator may drop a plain .js or .mjs module. */
const SOURCE_HANDLERS_DIR = resolve(HANDLERS_DIR, '../../handlers');

export function builtInHandlers(): readonly string[] {
  return BUILT_IN;
}

/**
 * `name` is a built-in ("tensor"), a module in handlers/ ("my_handler" or "my_handler.js"), or,
 * only when allowed, a .js file inside the archive.
 */
export async function loadHandler(name: string, archiveDir: string, allowArchiveHandlers: boolean): Promise<Handler> {
  const base = name.replace(/\.(js|mjs|ts)$/, '');
  if (!/^[A-Za-z][\w.-]*$/.test(base)) {
    throw nnsError('HANDLER_UNKNOWN', `handler "${name}" is not a handler name (letters, digits, _ . -)`);
  }
  const candidates = [join(HANDLERS_DIR, `${base}.js`), join(SOURCE_HANDLERS_DIR, `${base}.js`), join(SOURCE_HANDLERS_DIR, `${base}.mjs`)];
  if (allowArchiveHandlers) candidates.push(join(archiveDir, `${base}.js`), join(archiveDir, `${base}.mjs`));
  for (const file of candidates) {
    const root = file.startsWith(archiveDir) ? archiveDir : file.startsWith(HANDLERS_DIR) ? HANDLERS_DIR : SOURCE_HANDLERS_DIR;
    const rel = relative(root, file);
    if (rel.startsWith('..') || isAbsolute(rel) || !existsSync(file)) continue;
    const mod = (await import(pathToFileURL(file).href)) as { default?: Handler; handler?: Handler };
    const h = mod.default ?? mod.handler;
    if (!h || typeof h.preprocess !== 'function' || typeof h.postprocess !== 'function') {
      throw nnsError('HANDLER_UNKNOWN', `handler "${name}" (${file}) must export default { preprocess, postprocess }`);
    }
    return h;
  }
  const inArchive = existsSync(join(archiveDir, `${base}.js`)) || existsSync(join(archiveDir, `${base}.py`));
  throw nnsError('HANDLER_UNKNOWN', inArchive && !allowArchiveHandlers
    ? `handler "${name}" is code inside the archive; archives may not carry code unless the operator sets allow_archive_handlers=true`
    : `handler "${name}" is neither built in (${BUILT_IN.join(', ')}) nor a module in ${SOURCE_HANDLERS_DIR} (.js, .mjs) or ${HANDLERS_DIR}`);
}
