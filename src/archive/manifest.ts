/**
 * MAR-INF/MANIFEST.json: TorchServe's schema (model-archiver/model_archiver/manifest_components/)
 * plus nnserve's optional tensor specs and architecture file. Validation is by hand so each
 * message names the exact field and what was expected.
 */
import { nnsError } from '../errors.js';

export type DType =
  | 'float32' | 'float64' | 'float16'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'bool';

export const DTYPES: readonly DType[] = [
  'float32', 'float64', 'float16', 'int8', 'int16', 'int32', 'int64',
  'uint8', 'uint16', 'uint32', 'uint64', 'bool',
];

/** A string dim (e.g. "batch") or -1 is dynamic. */
export interface TensorSpec { name: string; dtype: DType; shape: (number | string)[] }

export interface Manifest {
  /** "dd/mm/YYYY HH:MM:SS", as TorchServe's archiver writes it. */
  createdOn: string;
  /** "onnx" for nnserve; "python"/"python3" accepted so TorchServe archives open. */
  runtime: string;
  archiverVersion: string;
  model: {
    /** Starts with a letter; then letters, digits, `_ - .` (torch-model-archiver's rule). */
    modelName: string;
    /** @defaultValue "1.0" */
    modelVersion: string;
    /** A built-in handler name or a file in the archive such as "my_handler.js". */
    handler: string;
    /** model.onnx, or weights (model.pth, *.safetensors) when `architecture` is set. */
    serializedFile: string;
    /** Architecture JSON in the archive, compiled to ONNX by src/compiler. */
    architecture?: string;
    /** When absent the server reads inputs from the ONNX model. */
    inputs?: TensorSpec[];
    outputs?: TensorSpec[];
    labels?: string;
    configFile?: string;
    extraFiles?: string[];
  };
}

export const RUNTIMES = ['onnx', 'python', 'python3'] as const;
export const BUILTIN_HANDLERS = ['tensor', 'image_classifier', 'text_classifier', 'regression'] as const;
export const DEFAULT_MODEL_VERSION = '1.0';

const MODEL_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
// Versions appear in URL paths (/models/{name}/{version}), so they stay URL-safe.
const MODEL_VERSION = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const CREATED_ON = /^\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2}$/;

/**
 * The archive file a handler names, or undefined for a handler name (built-in or installed by
 * the operator). Built-in names never contain a dot or slash; file names do ("my_handler.js").
 */
export function handlerFile(handler: string): string | undefined {
  if ((BUILTIN_HANDLERS as readonly string[]).includes(handler)) return undefined;
  return /[./]/.test(handler) ? handler : undefined;
}

/** The archive files a manifest refers to, each with the field naming it. */
export function referencedFiles(m: Manifest): { field: string; file: string }[] {
  const out = [{ field: 'model.serializedFile', file: m.model.serializedFile }];
  const hf = handlerFile(m.model.handler);
  if (hf !== undefined) out.push({ field: 'model.handler', file: hf });
  for (const field of ['architecture', 'labels', 'configFile'] as const) {
    const file = m.model[field];
    if (file !== undefined) out.push({ field: `model.${field}`, file });
  }
  (m.model.extraFiles ?? []).forEach((file, i) => out.push({ field: `model.extraFiles[${i}]`, file }));
  return out;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function validateManifest(raw: unknown, where: string): Manifest {
  const fail = (field: string, expected: string, got: unknown): never => {
    throw nnsError('MANIFEST_INVALID', `${where}: field "${field}" must be ${expected}, got ${JSON.stringify(got)}`);
  };
  const str = (o: Obj, key: string, path: string): string => {
    const v = o[key];
    if (typeof v !== 'string' || v.trim() === '') return fail(path, 'a non-empty string', v);
    return v;
  };
  const optStr = (o: Obj, key: string, path: string): string | undefined =>
    o[key] === undefined ? undefined : str(o, key, path);

  if (!isObject(raw)) return fail('(root)', 'a JSON object', raw);
  const createdOn = str(raw, 'createdOn', 'createdOn');
  if (!CREATED_ON.test(createdOn)) fail('createdOn', 'a date as "dd/mm/YYYY HH:MM:SS"', createdOn);
  const runtime = str(raw, 'runtime', 'runtime');
  if (!(RUNTIMES as readonly string[]).includes(runtime)) fail('runtime', `one of ${RUNTIMES.join(', ')}`, runtime);
  const archiverVersion = str(raw, 'archiverVersion', 'archiverVersion');

  const m = raw.model;
  if (!isObject(m)) return fail('model', 'an object', m);
  const modelName = str(m, 'modelName', 'model.modelName');
  if (!MODEL_NAME.test(modelName)) {
    fail('model.modelName', 'a name starting with a letter, then letters, digits, "_", "-" or "."', modelName);
  }
  const modelVersion = optStr(m, 'modelVersion', 'model.modelVersion') ?? DEFAULT_MODEL_VERSION;
  if (!MODEL_VERSION.test(modelVersion)) {
    fail('model.modelVersion', 'letters, digits, "_", "-" or "." (it appears in URLs)', modelVersion);
  }
  const handler = str(m, 'handler', 'model.handler');
  const serializedFile = str(m, 'serializedFile', 'model.serializedFile');
  const architecture = optStr(m, 'architecture', 'model.architecture');
  if (architecture === undefined && !serializedFile.toLowerCase().endsWith('.onnx')) {
    fail('model.serializedFile', 'an .onnx file (or weights together with "model.architecture")', serializedFile);
  }

  const model: Manifest['model'] = { modelName, modelVersion, handler, serializedFile };
  if (architecture !== undefined) model.architecture = architecture;
  for (const key of ['inputs', 'outputs'] as const) {
    if (m[key] !== undefined) model[key] = tensorSpecs(m[key], `model.${key}`, fail);
  }
  for (const key of ['labels', 'configFile'] as const) {
    const v = optStr(m, key, `model.${key}`);
    if (v !== undefined) model[key] = v;
  }
  if (m.extraFiles !== undefined) {
    if (!Array.isArray(m.extraFiles)) return fail('model.extraFiles', 'an array of file names', m.extraFiles);
    model.extraFiles = m.extraFiles.map((f: unknown, i): string =>
      typeof f === 'string' && f.trim() !== '' ? f : fail(`model.extraFiles[${i}]`, 'a non-empty string', f));
  }
  // Other TorchServe keys (modelFile, requirementsFile, extensions) are ignored, as nnserve has no use for them.
  return { createdOn, runtime, archiverVersion, model };
}

function tensorSpecs(raw: unknown, path: string, fail: (f: string, e: string, g: unknown) => never): TensorSpec[] {
  if (!Array.isArray(raw) || raw.length === 0) return fail(path, 'a non-empty array of {name, dtype, shape}', raw);
  const seen = new Set<string>();
  return raw.map((t: unknown, i) => {
    const at = `${path}[${i}]`;
    if (!isObject(t)) return fail(at, 'an object {name, dtype, shape}', t);
    if (typeof t.name !== 'string' || t.name === '') return fail(`${at}.name`, 'a non-empty string', t.name);
    if (seen.has(t.name)) fail(`${at}.name`, 'unique within the list', t.name);
    seen.add(t.name);
    if (!DTYPES.includes(t.dtype as DType)) fail(`${at}.dtype`, `one of ${DTYPES.join(', ')}`, t.dtype);
    if (!Array.isArray(t.shape)) return fail(`${at}.shape`, 'an array of dims', t.shape);
    const shape = t.shape.map((d: unknown, j): number | string => {
      const ok = (typeof d === 'number' && Number.isInteger(d) && d >= -1) || (typeof d === 'string' && d !== '');
      return ok ? (d as number | string) : fail(`${at}.shape[${j}]`, 'an integer >= 0, -1 or a dim name like "batch"', d);
    });
    return { name: t.name, dtype: t.dtype as DType, shape };
  });
}
