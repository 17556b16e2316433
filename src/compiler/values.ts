/**
 * What a node of the architecture graph evaluates to while it is lowered: a tensor, or one of
 * the Python values torch.fx graphs pass around (ints from x.size(0), tuples from an LSTM,
 * slices from x[:, -1]).
 */
import type { Dim } from './dims.js';
import type { Tensor } from './graph-builder.js';

/** An int only known at run time: `x.size(0)` on a dynamic axis. */
export interface SymInt {
  readonly kind: 'symint';
  readonly dim: Dim;
  readonly source: Tensor;
  readonly axis: number;
}

/** A Python slice `start:stop:step`. */
export interface SliceValue {
  readonly kind: 'slice';
  readonly start: number | null;
  readonly stop: number | null;
  readonly step: number | null;
}

export interface EllipsisValue {
  readonly kind: 'ellipsis';
}

export const ELLIPSIS: EllipsisValue = Object.freeze({ kind: 'ellipsis' });

export type Value = Tensor | SymInt | SliceValue | EllipsisValue | number | boolean | string | null | Value[];

export function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as { kind?: string }).kind === 'tensor';
}

export function isSymInt(v: unknown): v is SymInt {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as { kind?: string }).kind === 'symint';
}

/** How a value reads in an error message. */
export function describe(v: Value): string {
  if (isTensor(v)) return `a tensor of shape [${v.shape.join(', ')}]`;
  if (isSymInt(v)) return `an int (${v.dim})`;
  if (Array.isArray(v)) return `a tuple of ${v.length}`;
  if (v === null) return 'None';
  if (typeof v === 'object') return v.kind;
  return JSON.stringify(v);
}
