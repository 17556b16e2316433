/**
 * The one error catalogue. Domain code throws `NnsError`s built from these entries and never
 * sets an HTTP status itself; `toHttp` (routes) maps the status. Every code is documented in
 * docs/errors.md and a test checks that.
 */

export interface ErrorDef {
  readonly code: string;
  /** HTTP status a route answers with. */
  readonly status: number;
  /** TorchServe's exception type name, used as `type` in `{code,type,message}` bodies. */
  readonly type: string;
}

function def(code: string, status: number, type: string): ErrorDef {
  return Object.freeze({ code, status, type });
}

export const ERRORS = Object.freeze({
  // configuration
  CONFIG_INVALID: def('NNS_ERR_CONFIG_INVALID', 500, 'ConfigException'),

  // archives (.mar / folder) and manifests
  ARCHIVE_NOT_FOUND: def('NNS_ERR_ARCHIVE_NOT_FOUND', 404, 'ModelNotFoundException'),
  ARCHIVE_INVALID: def('NNS_ERR_ARCHIVE_INVALID', 400, 'InvalidModelException'),
  ARCHIVE_UNSAFE: def('NNS_ERR_ARCHIVE_UNSAFE', 400, 'InvalidModelException'),
  ARCHIVE_TOO_LARGE: def('NNS_ERR_ARCHIVE_TOO_LARGE', 413, 'RequestEntityTooLarge'),
  MANIFEST_INVALID: def('NNS_ERR_MANIFEST_INVALID', 400, 'InvalidModelException'),
  MODEL_CONFIG_INVALID: def('NNS_ERR_MODEL_CONFIG_INVALID', 400, 'InvalidModelException'),
  ARCHIVE_EXISTS: def('NNS_ERR_ARCHIVE_EXISTS', 409, 'FileAlreadyExistsException'),

  // registry
  MODEL_NOT_FOUND: def('NNS_ERR_MODEL_NOT_FOUND', 404, 'ModelNotFoundException'),
  MODEL_VERSION_NOT_FOUND: def('NNS_ERR_MODEL_VERSION_NOT_FOUND', 404, 'ModelVersionNotFoundException'),
  MODEL_VERSION_EXISTS: def('NNS_ERR_MODEL_VERSION_EXISTS', 409, 'ConflictStatusException'),
  HANDLER_UNKNOWN: def('NNS_ERR_HANDLER_UNKNOWN', 400, 'InvalidModelException'),

  // engine
  MODEL_LOAD_FAILED: def('NNS_ERR_MODEL_LOAD_FAILED', 500, 'ModelLoadException'),
  ENGINE_UNAVAILABLE: def('NNS_ERR_ENGINE_UNAVAILABLE', 500, 'InternalServerException'),
  QUEUE_FULL: def('NNS_ERR_QUEUE_FULL', 503, 'ServiceUnavailableException'),
  NO_WORKER: def('NNS_ERR_NO_WORKER', 503, 'ServiceUnavailableException'),
  WORKER_DIED: def('NNS_ERR_WORKER_DIED', 500, 'InternalServerException'),
  INFERENCE_FAILED: def('NNS_ERR_INFERENCE_FAILED', 503, 'PredictionException'),
  REQUEST_TIMEOUT: def('NNS_ERR_REQUEST_TIMEOUT', 408, 'RequestTimeoutException'),
  SHUTTING_DOWN: def('NNS_ERR_SHUTTING_DOWN', 503, 'ServiceUnavailableException'),

  // request input
  INPUT_INVALID: def('NNS_ERR_INPUT_INVALID', 400, 'BadRequestException'),
  INPUT_SHAPE_MISMATCH: def('NNS_ERR_INPUT_SHAPE_MISMATCH', 400, 'BadRequestException'),
  INPUT_DTYPE_MISMATCH: def('NNS_ERR_INPUT_DTYPE_MISMATCH', 400, 'BadRequestException'),
  REQUEST_TOO_LARGE: def('NNS_ERR_REQUEST_TOO_LARGE', 413, 'RequestEntityTooLarge'),
  NOT_FOUND: def('NNS_ERR_NOT_FOUND', 404, 'ResourceNotFoundException'),
  METHOD_NOT_ALLOWED: def('NNS_ERR_METHOD_NOT_ALLOWED', 405, 'MethodNotAllowedException'),
  BAD_REQUEST: def('NNS_ERR_BAD_REQUEST', 400, 'BadRequestException'),
  IMAGE_INVALID: def('NNS_ERR_IMAGE_INVALID', 400, 'BadRequestException'),
  IMAGE_TOO_LARGE: def('NNS_ERR_IMAGE_TOO_LARGE', 413, 'RequestEntityTooLarge'),

  // compiler (architecture JSON -> ONNX) and weights
  ARCH_INVALID: def('NNS_ERR_ARCH_INVALID', 400, 'InvalidModelException'),
  ARCH_UNKNOWN_LAYER: def('NNS_ERR_ARCH_UNKNOWN_LAYER', 400, 'InvalidModelException'),
  ARCH_SHAPE_MISMATCH: def('NNS_ERR_ARCH_SHAPE_MISMATCH', 400, 'InvalidModelException'),
  WEIGHTS_INVALID: def('NNS_ERR_WEIGHTS_INVALID', 400, 'InvalidModelException'),
  WEIGHTS_UNSAFE: def('NNS_ERR_WEIGHTS_UNSAFE', 400, 'InvalidModelException'),
  STATE_DICT_MISMATCH: def('NNS_ERR_STATE_DICT_MISMATCH', 400, 'InvalidModelException'),

  // management and security
  AUTH_FAILED: def('NNS_ERR_AUTH_FAILED', 401, 'InvalidKeyException'),
  MODEL_API_DISABLED: def('NNS_ERR_MODEL_API_DISABLED', 405, 'MethodNotAllowedException'),
  URL_NOT_ALLOWED: def('NNS_ERR_URL_NOT_ALLOWED', 400, 'InvalidModelUrlException'),
  DOWNLOAD_FAILED: def('NNS_ERR_DOWNLOAD_FAILED', 400, 'DownloadModelException'),
  DEFAULT_VERSION_DELETE: def('NNS_ERR_DEFAULT_VERSION_DELETE', 403, 'InvalidModelVersionException'),
  WORKERS_INVALID: def('NNS_ERR_WORKERS_INVALID', 400, 'BadRequestException'),
  RUNTIME_UNKNOWN: def('NNS_ERR_RUNTIME_UNKNOWN', 400, 'BadRequestException'),
  SNAPSHOT_INVALID: def('NNS_ERR_SNAPSHOT_INVALID', 500, 'SnapshotException'),

  // training: optimizers, schedulers, clipping, early stopping, datasets
  TRAIN_OPTIONS_INVALID: def('NNS_ERR_TRAIN_OPTIONS_INVALID', 400, 'BadRequestException'),
  TRAIN_STATE_INVALID: def('NNS_ERR_TRAIN_STATE_INVALID', 400, 'BadRequestException'),
  TRAIN_GRADIENTS_INVALID: def('NNS_ERR_TRAIN_GRADIENTS_INVALID', 500, 'InternalServerException'),
  TRAIN_DATASET_INVALID: def('NNS_ERR_TRAIN_DATASET_INVALID', 400, 'BadRequestException'),
  TRAIN_LOSS_INVALID: def('NNS_ERR_TRAIN_LOSS_INVALID', 400, 'BadRequestException'),
  TRAIN_NOT_DIFFERENTIABLE: def('NNS_ERR_TRAIN_NOT_DIFFERENTIABLE', 400, 'BadRequestException'),
  TRAIN_DIVERGED: def('NNS_ERR_TRAIN_DIVERGED', 422, 'BadRequestException'),

  INTERNAL: def('NNS_ERR_INTERNAL', 500, 'InternalServerException'),
} as const);

export type ErrorKind = keyof typeof ERRORS;

export class NnsError extends Error {
  readonly code: string;
  readonly status: number;
  readonly type: string;
  /** Extra fields a route may add to its body (e.g. expected/received shapes). */
  readonly details: Record<string, unknown> | undefined;

  constructor(kind: ErrorKind, message: string, details?: Record<string, unknown>) {
    super(message);
    const d = ERRORS[kind];
    this.name = 'NnsError';
    this.code = d.code;
    this.status = d.status;
    this.type = d.type;
    this.details = details;
  }
}

/** Shorthand used across the code base: `throw nnsError('QUEUE_FULL', 'Model "x" queue is full')`. */
export function nnsError(kind: ErrorKind, message: string, details?: Record<string, unknown>): NnsError {
  return new NnsError(kind, message, details);
}

export function isNnsError(e: unknown): e is NnsError {
  return e instanceof NnsError;
}

/** The one place an arbitrary thrown value becomes an HTTP status plus a body-ready triple. */
export function toHttp(e: unknown): { status: number; type: string; message: string; code: string } {
  if (isNnsError(e)) return { status: e.status, type: e.type, message: e.message, code: e.code };
  const err = e as { statusCode?: number; message?: string; code?: string };
  // Fastify's own errors (body too large, bad content type, JSON parse) carry statusCode.
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600) {
    const type = err.statusCode === 413 ? 'RequestEntityTooLarge' : err.statusCode < 500 ? 'BadRequestException' : 'InternalServerException';
    return { status: err.statusCode, type, message: err.message ?? 'Bad request', code: err.code ?? ERRORS.BAD_REQUEST.code };
  }
  return { status: 500, type: ERRORS.INTERNAL.type, message: err?.message ?? String(e), code: ERRORS.INTERNAL.code };
}
