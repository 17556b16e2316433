/**
 * torch.optim.Adam (1.13): bias-corrected moments, AMSGrad, L2 weight decay, maximize.
 * Update rule: `_single_tensor_adam` in torch/optim/adam.py (the non-capturable branch).
 */
import type { NamedParameters } from '../param-groups.js';
import { Optimizer, type OptimizerKind, type OptimizerParams, type OptionsSchema, type ParamGroup, type ParamState } from './optimizer.js';
import type { ParamBlock } from './param-blocks.js';

export interface AdamOptions {
  /** Learning rate. @defaultValue 1e-3 */
  lr: number;
  /** Decay rates of the first and second moment averages, each in [0, 1). @defaultValue [0.9, 0.999] */
  betas: [number, number];
  /** Added to the denominator. @defaultValue 1e-8 */
  eps: number;
  /** Adam: L2 penalty added to the gradient; AdamW: decoupled decay of the weights. @defaultValue 0 (AdamW 1e-2) */
  weight_decay: number;
  /** The AMSGrad variant (keeps the maximum second moment). @defaultValue false */
  amsgrad: boolean;
  /** Maximise the objective instead of minimising. @defaultValue false */
  maximize: boolean;
}

const ADAM_SCHEMA: OptionsSchema<AdamOptions> = {
  lr: { kind: 'number', min: 0 },
  betas: { kind: 'betas' },
  eps: { kind: 'number', min: 0 },
  weight_decay: { kind: 'number', min: 0 },
  amsgrad: { kind: 'boolean' },
  maximize: { kind: 'boolean' },
};

const STATE = ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'];

export const ADAM: OptimizerKind<AdamOptions> = {
  name: 'Adam',
  builtin: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false, maximize: false },
  schema: ADAM_SCHEMA,
  stateArrays: STATE,
};

export function adamState(group: AdamOptions, block: ParamBlock): ParamState {
  const s: ParamState = { step: 0, exp_avg: block.views.exp_avg!.fill(0), exp_avg_sq: block.views.exp_avg_sq!.fill(0) };
  if (group.amsgrad) s.max_exp_avg_sq = block.views.max_exp_avg_sq!.fill(0);
  return s;
}

/**
 * One Adam/AdamW step for one parameter. `decoupled` is AdamW: the weights shrink by
 * lr * weight_decay before the update instead of the decay joining the gradient.
 */
export function adamUpdate(g: AdamOptions, b: ParamBlock, s: ParamState, decoupled: boolean): void {
  const { lr, eps, weight_decay: wd, amsgrad, maximize } = g;
  const [beta1, beta2] = g.betas;
  const step = (s.step as number) + 1;
  s.step = step;
  // AMSGrad turned on after the state was made starts its maximum from zeros.
  if (amsgrad && !s.max_exp_avg_sq) s.max_exp_avg_sq = b.views.max_exp_avg_sq!.fill(0);
  const stepSize = lr / (1 - beta1 ** step);
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const { at } = b;
  const kernel = b.kernels.adam({ maximize, weight_decay: !decoupled && wd !== 0, decoupled: decoupled && wd !== 0, amsgrad });
  kernel(at.param!, at.grad!, at.exp_avg!, at.exp_avg_sq!, at.max_exp_avg_sq!, b.bytes, wd, 1 - lr * wd, beta1, beta2, 1 - beta1, 1 - beta2, -stepSize, 1 / bc2Sqrt, eps);
}

export class Adam extends Optimizer<AdamOptions> {
  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<AdamOptions> = {}) {
    super(ADAM, params, defaults);
  }

  protected initState(group: ParamGroup<AdamOptions>, block: ParamBlock): ParamState {
    return adamState(group, block);
  }

  protected update(g: ParamGroup<AdamOptions>, block: ParamBlock, s: ParamState): void {
    adamUpdate(g, block, s, false);
  }
}
