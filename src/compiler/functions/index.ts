/** The function table: fx call_function / call_method targets to their lowering. */
import type { FunctionDef } from '../function.js';
import * as math from './math.js';
import * as pool from './pool.js';
import * as shape from './shape.js';

const defs: FunctionDef[] = [math, shape, pool].flatMap((f) => Object.values(f) as FunctionDef[]);

export const FUNCTIONS: ReadonlyMap<string, FunctionDef> = new Map(defs.flatMap((d) => d.targets.map((t) => [t, d] as const)));

/** fx writes operator functions as "_operator.add" and methods by bare name. */
export function lookupFunction(op: 'call_function' | 'call_method', target: string): FunctionDef | undefined {
  if (op === 'call_method') return FUNCTIONS.get(`Tensor.${target}`);
  return FUNCTIONS.get(target.replace(/^_operator\./, 'operator.'));
}

export function functionTargets(): string[] {
  return [...FUNCTIONS.keys()].sort();
}
