/**
 * The only module that imports ONNX Runtime. Everything else speaks `TensorData` and `Session`.
 *
 * Engines: onnxruntime-node ("native", a C++ addon) and onnxruntime-web ("wasm", WebAssembly),
 * imported lazily so a process (or worker thread) only loads the one it uses. Both packages
 * register an execution provider named "cpu", so they must never be loaded side by side.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as OrtTypes from 'onnxruntime-common';
import type { EngineName } from '../config.js';
import { nnsError } from '../errors.js';

export type DType =
  | 'float32' | 'float64' | 'float16' | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'bool';

export type TypedArray =
  | Float32Array | Float64Array | Uint16Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint32Array | BigUint64Array;

/** A plain tensor that can cross a worker boundary (structured clone) without ORT objects. */
export interface TensorData {
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

/** Input/output description; a string dimension is symbolic (dynamic), e.g. "batch". */
export interface IoSpec {
  name: string;
  dtype: DType;
  shape: (number | string)[];
}

export interface SessionOptions {
  engine: EngineName;
  /** ONNX Runtime intra-op threads. */
  intraOpThreads: number;
  /**
   * Intra-op threads spin between the ops of a run instead of sleeping, and stop spinning when
   * the run returns: faster for a process that owns its cores (a training run), but the
   * spinning burns the cores an HTTP thread needs. @defaultValue false
   */
  spinning?: boolean;
  /** ONNX Runtime's graph optimisation level. @defaultValue 'all' */
  graphOptimizationLevel?: 'basic' | 'extended' | 'all';
}

export interface Session {
  readonly engine: EngineName;
  readonly inputs: IoSpec[];
  readonly outputs: IoSpec[];
  /**
   * `into`: outputs ONNX Runtime writes into these arrays instead of allocating new ones (dtype
   * and dims must be what the model produces); the other outputs are allocated as usual.
   */
  run(feeds: Record<string, TensorData>, into?: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

type OrtModule = typeof OrtTypes;

const loaded = new Map<EngineName, Promise<OrtModule>>();
/** Why the native engine could not load, once a session fell back to WASM. */
export let fallbackReason: string | undefined;

/** ONNX Runtime's type names (Tensor.Type) <-> ours. They match except 'bool'. */
const CTORS: Record<DType, { new (n: number): TypedArray; new (b: ArrayBufferLike, offset: number, length: number): TypedArray }> = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, int16: Int16Array,
  int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array,
  uint64: BigUint64Array, bool: Uint8Array,
};

export function typedArrayFor(dtype: DType, length: number): TypedArray {
  return new CTORS[dtype](length);
}

/** A `dtype` view of `length` elements of `buffer` from byte `offset` (which must be aligned). */
export function typedArrayView(dtype: DType, buffer: ArrayBufferLike, offset: number, length: number): TypedArray {
  return new CTORS[dtype](buffer, offset, length);
}

export const DTYPES = Object.keys(CTORS) as DType[];

async function loadEngine(engine: EngineName): Promise<OrtModule> {
  let p = loaded.get(engine);
  if (!p) {
    p = (async () => {
      if (engine === 'native') return (await import('onnxruntime-node')) as unknown as OrtModule;
      const ort = (await import('onnxruntime-web')) as unknown as OrtModule;
      // In Node the .wasm file is read from the package folder; threads would need their own
      // workers, and nnserve already runs one session per worker thread.
      const require = createRequire(import.meta.url);
      const dist = join(dirname(require.resolve('onnxruntime-web')), '/');
      ort.env.wasm.wasmPaths = dist;
      ort.env.wasm.numThreads = 1;
      return ort;
    })();
    loaded.set(engine, p);
    p.catch(() => loaded.delete(engine));
  }
  return p;
}

function toSpec(meta: OrtTypes.InferenceSession.ValueMetadata): IoSpec {
  if (!meta.isTensor) return { name: meta.name, dtype: 'float32', shape: [] };
  const dtype = (meta.type === 'bool' ? 'bool' : meta.type) as DType;
  return { name: meta.name, dtype, shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) };
}

/**
 * Load a model on the requested engine. When the native addon cannot load on this machine
 * (missing or incompatible binary), WASM is used instead and `session.engine` says so.
 */
export async function createSession(model: string | Uint8Array, requested: SessionOptions): Promise<Session> {
  let ort: OrtModule;
  let opts = requested;
  try {
    ort = await loadEngine(opts.engine);
  } catch (e) {
    if (opts.engine !== 'native') throw nnsError('ENGINE_UNAVAILABLE', `ONNX Runtime engine "${opts.engine}" cannot load: ${(e as Error).message}`);
    fallbackReason = (e as Error).message;
    opts = { ...opts, engine: 'wasm' };
    try {
      ort = await loadEngine('wasm');
    } catch (e2) {
      throw nnsError('ENGINE_UNAVAILABLE', `neither ONNX Runtime engine loads: native: ${fallbackReason}; wasm: ${(e2 as Error).message}`);
    }
  }
  const options: OrtTypes.InferenceSession.SessionOptions = {
    executionProviders: [opts.engine === 'native' ? 'cpu' : 'wasm'],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    intraOpNumThreads: opts.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // Run-time failures come back to nnserve as errors and are logged there, once.
    logSeverityLevel: 4,
    // Spinning threads burn the cores the HTTP thread needs (ORT issue #13808).
    extra: {
      session: {
        intra_op: { allow_spinning: opts.spinning ? '1' : '0' },
        inter_op: { allow_spinning: '0' },
        // Without this, threads go on spinning for a while after run() returns.
        ...(opts.spinning ? { force_spinning_stop: '1' } : {}),
      },
    },
  };
  let s: OrtTypes.InferenceSession;
  try {
    s = typeof model === 'string'
      ? await ort.InferenceSession.create(model, options)
      : await ort.InferenceSession.create(model, options);
  } catch (e) {
    throw nnsError('MODEL_LOAD_FAILED', `ONNX Runtime (${opts.engine}) could not load the model: ${(e as Error).message}`);
  }
  const inputs = s.inputMetadata.map(toSpec);
  const outputs = s.outputMetadata.map(toSpec);
  return {
    engine: opts.engine,
    inputs,
    outputs,
    async run(feeds, into) {
      const ortFeeds: Record<string, OrtTypes.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        ortFeeds[name] = new ort.Tensor(t.dtype, t.data as never, t.dims);
      }
      let result: OrtTypes.InferenceSession.OnnxValueMapType;
      if (into) {
        // Naming some outputs fetches only those: name them all, null where ORT allocates.
        const fetches: Record<string, OrtTypes.Tensor | null> = {};
        for (const name of s.outputNames) {
          const t = into[name];
          fetches[name] = t ? new ort.Tensor(t.dtype, t.data as never, t.dims) : null;
        }
        result = await s.run(ortFeeds, fetches);
      } else result = await s.run(ortFeeds);
      const out: Record<string, TensorData> = {};
      for (const [name, v] of Object.entries(result)) {
        const t = v as OrtTypes.Tensor;
        out[name] = { dtype: t.type as DType, dims: [...t.dims], data: t.data as TypedArray };
      }
      return out;
    },
    release: () => s.release(),
  };
}
