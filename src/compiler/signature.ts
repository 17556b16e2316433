/**
 * Constructor signatures of torch.nn modules: argument names, order and defaults exactly as
 * in PyTorch, with the coercions PyTorch itself does (`kernel_size=3` means `(3, 3)`).
 */
import { nnsError } from '../errors.js';

export interface ArgSpec<T> {
  /** Parses a JSON value; throws a plain message that the caller prefixes with the module. */
  parse(v: unknown): T;
  /** Undefined: the argument is required. */
  readonly default?: T;
  readonly required: boolean;
  /** JSON Schema of the value (src/compiler/architecture.schema.json is generated from these). */
  readonly schema: JsonSchema;
}

export type JsonSchema = Record<string, unknown>;

export type ArgSpecs<A> = { [K in keyof A]: ArgSpec<A[K]> };

class ArgError extends Error {}

function spec<T>(schema: JsonSchema, parse: (v: unknown) => T, dflt?: T, required = dflt === undefined): ArgSpec<T> {
  return { parse, default: dflt, required, schema: dflt === undefined ? schema : { ...schema, default: dflt } };
}

const INT: JsonSchema = { type: 'integer' };
const intTuple = (n: number): JsonSchema => ({ oneOf: [INT, { type: 'array', items: INT, minItems: n === 1 ? 1 : n, maxItems: n }] });

const show = (v: unknown) => JSON.stringify(v);

function parseInt_(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ArgError(`must be an int, got ${show(v)}`);
  return v;
}

export function int(dflt?: number): ArgSpec<number> {
  return spec(INT, parseInt_, dflt);
}

export function positiveInt(dflt?: number): ArgSpec<number> {
  return spec({ type: 'integer', minimum: 1 }, (v) => {
    const n = parseInt_(v);
    if (n <= 0) throw new ArgError(`must be a positive int, got ${n}`);
    return n;
  }, dflt);
}

export function float(dflt?: number): ArgSpec<number> {
  return spec({ type: 'number' }, (v) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ArgError(`must be a number, got ${show(v)}`);
    return v;
  }, dflt);
}

export function bool(dflt?: boolean): ArgSpec<boolean> {
  return spec({ type: 'boolean' }, (v) => {
    if (typeof v !== 'boolean') throw new ArgError(`must be true or false, got ${show(v)}`);
    return v;
  }, dflt);
}

export function oneOf<T extends string>(values: readonly T[], dflt?: T): ArgSpec<T> {
  return spec({ enum: [...values] }, (v) => {
    if (typeof v !== 'string' || !values.includes(v as T)) throw new ArgError(`must be one of ${values.map(show).join(', ')}, got ${show(v)}`);
    return v as T;
  }, dflt);
}

/** An int or a tuple of n ints (PyTorch's `_pair`, `_single`). */
export function ints(n: number, dflt?: number | number[]): ArgSpec<number[]> {
  const parse = (v: unknown): number[] => {
    if (typeof v === 'number') return Array(n).fill(parseInt_(v)) as number[];
    if (Array.isArray(v) && v.length === n) return v.map(parseInt_);
    if (Array.isArray(v) && v.length === 1) return Array(n).fill(parseInt_(v[0])) as number[];
    throw new ArgError(`must be an int or a list of ${n} ints, got ${show(v)}`);
  };
  return spec(intTuple(n), parse, dflt === undefined ? undefined : parse(dflt));
}

/** A list of ints of any length, or one int (normalized_shape, unflattened_size). */
export function intList(dflt?: number[]): ArgSpec<number[]> {
  return spec({ oneOf: [INT, { type: 'array', items: INT }] }, (v) => {
    if (typeof v === 'number') return [parseInt_(v)];
    if (Array.isArray(v)) return v.map(parseInt_);
    throw new ArgError(`must be a list of ints, got ${show(v)}`);
  }, dflt);
}

/** An int or tuple of n ints, or 'same' / 'valid' (Conv padding). */
export function convPadding(n: number): ArgSpec<number[] | 'same' | 'valid'> {
  const tuple = ints(n);
  return spec({ oneOf: [...(intTuple(n).oneOf as JsonSchema[]), { enum: ['same', 'valid'] }] }, (v) => (v === 'same' || v === 'valid' ? v : tuple.parse(v)), Array(n).fill(0) as number[]);
}

/** Like `ints`, but null entries are kept (AdaptiveAvgPool2d((None, 7))). */
export function optionalInts(n: number): ArgSpec<(number | null)[]> {
  return spec({ oneOf: [INT, { type: 'array', items: { type: ['integer', 'null'] }, minItems: n, maxItems: n }] }, (v) => {
    if (typeof v === 'number') return Array(n).fill(parseInt_(v)) as number[];
    if (Array.isArray(v) && v.length === n) return v.map((x) => (x === null ? null : parseInt_(x)));
    throw new ArgError(`must be an int or a list of ${n} ints or nulls, got ${show(v)}`);
  });
}

/** `T | None`. */
export function nullable<T>(inner: ArgSpec<T>, dflt: T | null = null): ArgSpec<T | null> {
  return { parse: (v) => (v === null ? null : inner.parse(v)), default: dflt, required: false, schema: { oneOf: [inner.schema, { type: 'null' }], default: dflt } };
}

/** factory kwargs PyTorch modules accept (device, dtype): only the values that change nothing here. */
export const FACTORY_KWARGS: Record<string, ArgSpec<unknown>> = {
  device: spec({ enum: [null, 'cpu'] }, (v) => {
    if (v !== null && v !== 'cpu') throw new ArgError(`must be null or "cpu", got ${show(v)}`);
    return v;
  }, null, false),
  dtype: spec({ enum: [null, 'float32', 'torch.float32'] }, (v) => {
    if (v !== null && v !== 'float32' && v !== 'torch.float32') throw new ArgError(`must be null or "float32", got ${show(v)}`);
    return v;
  }, null, false),
};

/**
 * Binds positional and keyword arguments to a signature like Python does, and parses each.
 * `where` names the module in error messages: `module "fc1" (Linear)`.
 */
export function bindArgs<A>(specs: ArgSpecs<A>, positional: unknown[], keywords: Record<string, unknown>, where: string): A {
  const all = { ...(specs as Record<string, ArgSpec<unknown>>), ...FACTORY_KWARGS };
  const names = Object.keys(specs as object);
  const raw: Record<string, unknown> = {};
  if (positional.length > names.length) {
    throw nnsError('ARCH_INVALID', `${where} takes ${names.length} positional arguments (${names.join(', ')}) but ${positional.length} were given`);
  }
  positional.forEach((v, i) => { raw[names[i]!] = v; });
  for (const [k, v] of Object.entries(keywords)) {
    if (!(k in all)) {
      throw nnsError('ARCH_INVALID', `${where} got an unexpected argument "${k}"; its arguments are ${names.join(', ')}`);
    }
    if (k in raw) throw nnsError('ARCH_INVALID', `${where} got multiple values for argument "${k}"`);
    raw[k] = v;
  }
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const s = all[name]!;
    if (!(name in raw)) {
      if (s.required) throw nnsError('ARCH_INVALID', `${where} is missing the required argument "${name}"`);
      out[name] = s.default;
      continue;
    }
    try {
      out[name] = s.parse(raw[name]);
    } catch (e) {
      if (e instanceof ArgError) throw nnsError('ARCH_INVALID', `${where}: ${name} ${e.message}`);
      throw e;
    }
  }
  for (const k of Object.keys(FACTORY_KWARGS)) {
    if (k in raw) {
      try {
        FACTORY_KWARGS[k]!.parse(raw[k]);
      } catch (e) {
        if (e instanceof ArgError) throw nnsError('ARCH_INVALID', `${where}: ${k} ${e.message}`);
        throw e;
      }
    }
  }
  return out as A;
}
