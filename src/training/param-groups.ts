/**
 * Which parameters an optimizer updates, and with which options: torch's param groups, with
 * parameters named by their state_dict keys (or globs of them) instead of tensor objects.
 *
 * Frozen parameters are torch's `requires_grad = False` (seed tutorial 7.6): named in `freeze`
 * or in a group with `requires_grad: false`. The optimizer never updates them and the trainer
 * needs no gradient for them (`ResolvedParamGroups.frozen`).
 */
import { nnsError } from '../errors.js';

/** A model's parameters by state_dict name; optimizers update these arrays in place. */
export type NamedParameters = Map<string, Float32Array>;

/** One param group as a user writes it, e.g. `{params: ["fc.*"], lr: 0.01}`. */
export interface ParamGroupSpec {
  /** state_dict names or globs: `*` matches any run of characters (dots too), `?` one character. */
  params: string[];
  /** false freezes the whole group. @defaultValue true */
  requires_grad?: boolean;
  /** Options for this group that override the optimizer's (lr, weight_decay, betas, ...). */
  [option: string]: unknown;
}

export interface ResolvedParamGroup {
  /** Parameter names, in the order the model lists them. */
  params: string[];
  requires_grad: boolean;
  /** The group's own options (everything but params and requires_grad), not yet validated. */
  options: Record<string, unknown>;
}

export interface ResolvedParamGroups {
  groups: ResolvedParamGroup[];
  /** Names never updated and needing no gradient, in model order. */
  frozen: string[];
  /** Names the trainer must compute gradients for, in model order. */
  trainable: string[];
}

const bad = (message: string) => nnsError('TRAIN_OPTIONS_INVALID', message);

/** fnmatch-style glob -> RegExp; a pattern without * or ? matches only itself. */
function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

function matching(names: readonly string[], pattern: string, where: string): string[] {
  if (typeof pattern !== 'string' || pattern === '') throw bad(`${where}: expected a parameter name or glob, got ${JSON.stringify(pattern)}`);
  const re = globToRegExp(pattern);
  const found = names.filter((n) => re.test(n));
  if (found.length === 0) {
    const some = names.slice(0, 8).join(', ') + (names.length > 8 ? ', ...' : '');
    throw bad(`${where}: "${pattern}" matches no parameter (the model has: ${some})`);
  }
  return found;
}

/**
 * Resolves group specs against the model's parameter names. As in torch a parameter may sit in
 * only one group; unlike torch, parameters no group names are not dropped but form one last
 * group with the optimizer's defaults (freeze them to leave them untouched).
 */
export function resolveParamGroups(
  parameterNames: readonly string[],
  specs: readonly ParamGroupSpec[] = [],
  freeze: readonly string[] = [],
): ResolvedParamGroups {
  if (parameterNames.length === 0) throw bad('the optimizer got an empty parameter list');
  if (!Array.isArray(specs)) throw bad('param_groups: expected an array of {params: [...], ...options}');
  if (!Array.isArray(freeze)) throw bad('freeze: expected an array of parameter names or globs');
  const owner = new Map<string, number>();
  const groups: ResolvedParamGroup[] = specs.map((spec, i) => {
    if (spec === null || typeof spec !== 'object' || !Array.isArray(spec.params)) {
      throw bad(`param_groups[${i}]: expected {params: [names or globs], ...options}`);
    }
    const { params, requires_grad = true, ...options } = spec;
    if (typeof requires_grad !== 'boolean') throw bad(`param_groups[${i}].requires_grad: expected true or false`);
    const names = new Set<string>();
    for (const p of params) for (const n of matching(parameterNames, p, `param_groups[${i}].params`)) names.add(n);
    for (const n of names) {
      const other = owner.get(n);
      if (other !== undefined) throw bad(`parameter "${n}" appears in param_groups[${other}] and param_groups[${i}]; a parameter may be in one group only`);
      owner.set(n, i);
    }
    return { params: parameterNames.filter((n) => names.has(n)), requires_grad, options };
  });
  const rest = parameterNames.filter((n) => !owner.has(n));
  if (rest.length > 0 || groups.length === 0) groups.push({ params: rest, requires_grad: true, options: {} });

  const frozenSet = new Set<string>();
  for (const p of freeze) for (const n of matching(parameterNames, p, 'freeze')) frozenSet.add(n);
  for (const g of groups) if (!g.requires_grad) for (const n of g.params) frozenSet.add(n);
  return {
    groups,
    frozen: parameterNames.filter((n) => frozenSet.has(n)),
    trainable: parameterNames.filter((n) => !frozenSet.has(n)),
  };
}
