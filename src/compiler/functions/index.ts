/** The function table: fx call_function / call_method targets to their lowering. */
import type { FunctionDef } from '../function.js';
import * as math from './math.js';
import * as pool from './pool.js';
import * as shape from './shape.js';

const defs: FunctionDef[] = [math, shape, pool].flatMap((f) => Object.values(f) as FunctionDef[]);

export const FUNCTIONS: ReadonlyMap<string, FunctionDef> = new Map(defs.flatMap((d) => d.targets.map((t) => [t, d] as const)));

/**
 * fx's qualified names can be the implementation's: "_operator.add", "torch._C._nn.gelu" (for
 * F.gelu), a bare "getattr"; methods are given by bare name.
 */
export function lookupFunction(op: 'call_function' | 'call_method', target: string): FunctionDef | undefined {
  if (op === 'call_method') return FUNCTIONS.get(`Tensor.${target}`);
  const name = target
    .replace(/^_operator\./, 'operator.')
    .replace(/^torch\._C\._nn\./, 'torch.nn.functional.')
    .replace(/^torch\._C\._VariableFunctions\./, 'torch.')
    .replace(/^(getattr)$/, 'builtins.$1');
  return FUNCTIONS.get(name);
}

export function functionTargets(): string[] {
  return [...FUNCTIONS.keys()].sort();
}
