/**
 * What every optimizer shares, as torch.optim.Optimizer: param groups holding options, per-
 * parameter state created on the first step a parameter has a gradient, `step`, and state_dict
 * save/load. Each optimizer supplies its options' schema and its update rule, written after
 * torch 1.13's `_single_tensor_*` functions as a WebAssembly SIMD kernel (kernels.ts).
 *
 * The kernels work in WebAssembly memory (param-blocks.ts), where the state arrays live: `step`
 * copies each parameter and gradient into its block, runs the kernel and copies the parameter
 * back, unless the arrays already are the block's (`adoptParameters`, `gradientBuffers`).
 * Arithmetic is float32 as in torch: within 2.3e-7 of it after 20 steps
 * (test/training/optimizers.test.ts), at 5-10x the speed of plain JavaScript loops.
 */
import { nnsError } from '../../errors.js';
import { resolveParamGroups, type NamedParameters, type ParamGroupSpec } from '../param-groups.js';
import { layoutParamBlocks, type ParamBlock } from './param-blocks.js';

/** What an optimizer is built over: the parameters, optional groups, and frozen names. */
export interface OptimizerParams {
  /** The model's parameters by state_dict name; `step` updates these arrays in place. */
  parameters: NamedParameters;
  /** torch's param groups with names or globs; unnamed parameters form a last group with the defaults. @defaultValue one group of all */
  param_groups?: ParamGroupSpec[];
  /** Names or globs of frozen parameters (requires_grad = False): never updated, need no gradient. @defaultValue [] */
  freeze?: string[];
}

/** Per-parameter state, torch's names: step, exp_avg, momentum_buffer, ... */
export type ParamState = Record<string, number | Float32Array | null>;

/** A param group as the optimizer holds it: options (schedulers change lr, momentum, betas) and parameter names. */
export type ParamGroup<O> = O & {
  params: string[];
  requires_grad: boolean;
  /** Set by an LR scheduler, as torch keeps it on the group. */
  initial_lr?: number;
  [extra: string]: unknown;
};

export interface OptimizerStateDict {
  /** Per parameter name; Float32Array values may come back from JSON as number arrays. */
  state: Record<string, Record<string, number | Float32Array | number[] | null>>;
  param_groups: Record<string, unknown>[];
}

/** How one option is validated; the messages follow torch's checks and name the option. */
export type OptionSpec =
  | { kind: 'number'; min?: number; max?: number; maxExclusive?: boolean; required?: boolean }
  | { kind: 'boolean' }
  | { kind: 'betas' };

export type OptionsSchema<O> = { readonly [K in keyof O]-?: OptionSpec };

/** What an optimizer class declares about itself. */
export interface OptimizerKind<O> {
  /** torch's class name: "SGD", "Adam", ... */
  name: string;
  /** The options torch's constructor defaults to. */
  builtin: O;
  schema: OptionsSchema<O>;
  /** Every per-parameter state array the rule may keep, torch's names (exp_avg, momentum_buffer, ...). */
  stateArrays: readonly string[];
}

const invalid = (message: string) => nnsError('TRAIN_OPTIONS_INVALID', message);

function checkOption(optimizer: string, where: string, key: string, spec: OptionSpec, value: unknown): void {
  const name = `${optimizer} ${where}${key}`;
  switch (spec.kind) {
    case 'boolean':
      if (typeof value !== 'boolean') throw invalid(`${name}: expected true or false, got ${JSON.stringify(value)}`);
      return;
    case 'betas': {
      if (!Array.isArray(value) || value.length !== 2) throw invalid(`${name}: expected [beta1, beta2], got ${JSON.stringify(value)}`);
      value.forEach((b, i) => {
        if (typeof b !== 'number' || !(b >= 0 && b < 1)) throw invalid(`${name}[${i}]: invalid beta parameter ${JSON.stringify(b)}, expected 0 <= beta < 1`);
      });
      return;
    }
    case 'number': {
      if (value === undefined && spec.required) throw invalid(`${name} is required`);
      if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`${name}: expected a finite number, got ${JSON.stringify(value)}`);
      if (spec.min !== undefined && value < spec.min) throw invalid(`${name}: invalid value ${value}, expected >= ${spec.min}`);
      if (spec.max !== undefined && (spec.maxExclusive ? value >= spec.max : value > spec.max)) {
        throw invalid(`${name}: invalid value ${value}, expected ${spec.maxExclusive ? '<' : '<='} ${spec.max}`);
      }
    }
  }
}

export abstract class Optimizer<O extends { lr: number }> {
  /** torch's class name: "SGD", "Adam", ... */
  readonly name: string;
  /** The parameters by state_dict name; `step` updates these arrays in place. */
  readonly parameters: NamedParameters;
  readonly defaults: Readonly<O>;
  readonly param_groups: ParamGroup<O>[];
  readonly state = new Map<string, ParamState>();
  /** Parameters the trainer must compute gradients for, in model order. */
  readonly trainable: readonly string[];
  /** Parameters never updated (requires_grad = False), in model order. */
  readonly frozen: readonly string[];
  private readonly frozenSet: ReadonlySet<string>;
  private readonly schema: OptionsSchema<O>;
  /** Each trainable parameter's block of kernel memory. */
  private readonly blocks: ReadonlyMap<string, ParamBlock>;

  protected constructor(kind: OptimizerKind<O>, params: NamedParameters | OptimizerParams, defaults: Partial<O>) {
    const { name: optimizer, builtin, schema } = kind;
    this.name = optimizer;
    const p: OptimizerParams = params instanceof Map ? { parameters: params } : params;
    if (!(p?.parameters instanceof Map)) throw invalid(`${optimizer}: expected parameters as a Map of state_dict name -> Float32Array`);
    for (const [name, v] of p.parameters) {
      if (!(v instanceof Float32Array)) throw invalid(`${optimizer}: parameter "${name}" must be a Float32Array, got ${Object.prototype.toString.call(v)}`);
    }
    this.parameters = p.parameters;
    this.schema = schema;
    const resolved = resolveParamGroups([...p.parameters.keys()], p.param_groups, p.freeze);
    this.trainable = resolved.trainable;
    this.frozen = resolved.frozen;
    this.frozenSet = new Set(resolved.frozen);

    this.checkKeys(optimizer, '', defaults as Record<string, unknown>);
    const merged = structuredClone(builtin);
    for (const [k, v] of Object.entries(defaults)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
    this.defaults = Object.freeze(merged);
    this.param_groups = resolved.groups.map((g, i) => {
      const where = `param_groups[${i}].`;
      this.checkKeys(optimizer, where, g.options);
      const group = { ...merged, ...g.options, params: g.params, requires_grad: g.requires_grad } as ParamGroup<O>;
      // A bad value the group did not set came from the defaults: name it without the group.
      this.checkGroup(optimizer, (key) => (key in g.options ? where : ''), group);
      return group;
    });
    const sizes = new Map(this.trainable.map((n) => [n, p.parameters.get(n)!.length]));
    this.blocks = layoutParamBlocks(sizes, ['param', 'grad', ...kind.stateArrays]);
  }

  /** Validates each group's options; `where(key)` prefixes the option's name in messages. */
  protected checkGroup(optimizer: string, where: (key: string) => string, group: O): void {
    for (const key of Object.keys(this.schema) as (keyof O & string)[]) {
      checkOption(optimizer, where(key), key, this.schema[key], group[key]);
    }
  }

  private checkKeys(optimizer: string, where: string, options: Record<string, unknown>): void {
    if (options === null || typeof options !== 'object') throw invalid(`${optimizer} ${where}options: expected an object`);
    for (const key of Object.keys(options)) {
      if (!(key in this.schema)) {
        throw invalid(`${optimizer} has no option "${where}${key}"; its options are ${Object.keys(this.schema).join(', ')}`);
      }
    }
  }

  /**
   * Fresh state for a parameter's first step (torch's lazy state initialisation); its arrays
   * are the block's views, (re)filled with their initial values.
   */
  protected abstract initState(group: ParamGroup<O>, block: ParamBlock): ParamState;

  /** One parameter's update of the block's param slot from its grad slot, after torch's `_single_tensor_*` rule. */
  protected abstract update(group: ParamGroup<O>, block: ParamBlock, state: ParamState): void;

  /**
   * Moves every trainable parameter into the kernels' memory, where `step` updates it without
   * copying it in and out, and puts the moved arrays (same values) into `parameters`. Whoever
   * holds the old arrays (ONNX Runtime feeds, a state_dict) must switch to the returned ones.
   */
  adoptParameters(): NamedParameters {
    const moved: NamedParameters = new Map();
    for (const [name, block] of this.blocks) {
      const view = block.views.param!;
      view.set(this.parameters.get(name)!);
      this.parameters.set(name, view);
      moved.set(name, view);
    }
    return moved;
  }

  /** Where `step` reads each trainable parameter's gradient: one passed in this very array is not copied. */
  gradientBuffers(): Map<string, Float32Array> {
    return new Map([...this.blocks].map(([name, b]) => [name, b.views.grad!]));
  }

  /**
   * One optimisation step over fresh gradients (no zero_grad needed). As in torch, a trainable
   * parameter without a gradient is skipped; gradients of frozen parameters are ignored.
   */
  step(grads: ReadonlyMap<string, Float32Array>): void {
    for (const [name, grad] of grads) {
      const param = this.parameters.get(name);
      if (!param) throw nnsError('TRAIN_GRADIENTS_INVALID', `${this.name}.step: gradient for "${name}", which is not a parameter of this optimizer`);
      if (grad.length !== param.length) {
        throw nnsError('TRAIN_GRADIENTS_INVALID', `${this.name}.step: gradient for "${name}" has ${grad.length} elements, the parameter has ${param.length}`);
      }
    }
    for (const group of this.param_groups) {
      if (!group.requires_grad) continue;
      for (const name of group.params) {
        const grad = grads.get(name);
        if (grad === undefined || this.frozenSet.has(name)) continue;
        const param = this.parameters.get(name)!;
        const block = this.blocks.get(name)!;
        const { param: p, grad: g } = block.views;
        if (p !== param) p!.set(param);
        if (g !== grad) g!.set(grad);
        let state = this.state.get(name);
        if (!state) this.state.set(name, (state = this.initState(group, block)));
        this.update(group, block, state);
        if (p !== param) param.set(p!);
      }
    }
  }

  /** torch's optimizer.state_dict(), keyed by parameter name; arrays are copies. */
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict['state'] = {};
    for (const [name, s] of this.state) {
      state[name] = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v instanceof Float32Array ? v.slice() : v]));
    }
    const param_groups = this.param_groups.map((g) =>
      Object.fromEntries(Object.entries(g).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v])),
    );
    return { state, param_groups };
  }

  /** torch's optimizer.load_state_dict(): restores group options (lr included) and per-parameter state. */
  loadStateDict(sd: OptimizerStateDict): void {
    const fail = (message: string) => nnsError('TRAIN_STATE_INVALID', `${this.name}.loadStateDict: ${message}`);
    if (!sd || !Array.isArray(sd.param_groups) || sd.state === null || typeof sd.state !== 'object') {
      throw fail('expected {state, param_groups}');
    }
    if (sd.param_groups.length !== this.param_groups.length) {
      throw fail(`the saved state has ${sd.param_groups.length} param groups, this optimizer ${this.param_groups.length}`);
    }
    const groups = sd.param_groups.map((saved, i) => {
      const names = saved.params;
      const ours = this.param_groups[i].params;
      if (!Array.isArray(names) || names.length !== ours.length || names.some((n, j) => n !== ours[j])) {
        throw fail(`param_groups[${i}] holds other parameters than this optimizer's (${ours.join(', ')})`);
      }
      const group = { ...saved, params: ours, requires_grad: saved.requires_grad ?? true } as ParamGroup<O>;
      this.checkGroup(this.name, () => `(loaded) param_groups[${i}].`, group);
      return group;
    });
    // Checked in full before anything is written: a refused state_dict leaves the optimizer as it was.
    const states = new Map<string, Record<string, number | null | ArrayLike<number>>>();
    for (const [name, saved] of Object.entries(sd.state)) {
      const param = this.parameters.get(name);
      if (!param) throw fail(`state for "${name}", which is not a parameter of this optimizer`);
      const block = this.blocks.get(name);
      if (!block) throw fail(`state for "${name}", which is frozen`);
      for (const [k, v] of Object.entries(saved)) {
        if (v === null || typeof v === 'number') continue;
        if (!(v instanceof Float32Array || Array.isArray(v))) throw fail(`state["${name}"].${k}: expected a number, null or an array`);
        if (!(k in block.views) || k === 'param' || k === 'grad') throw fail(`state["${name}"].${k}: ${this.name} keeps no state named "${k}"`);
        if (v.length !== param.length) throw fail(`state["${name}"].${k} has ${v.length} elements, the parameter has ${param.length}`);
      }
      states.set(name, saved);
    }
    groups.forEach((g, i) => (this.param_groups[i] = g));
    this.state.clear();
    for (const [name, saved] of states) {
      const views = this.blocks.get(name)!.views;
      const s: ParamState = {};
      for (const [k, v] of Object.entries(saved)) {
        if (v === null || typeof v === 'number') s[k] = v;
        else {
          views[k]!.set(v);
          s[k] = views[k]!;
        }
      }
      this.state.set(name, s);
    }
  }
}
