/**
 * torch.optim.Adam (1.13): bias-corrected moments, AMSGrad, L2 weight decay, maximize.
 * Update rule: `_single_tensor_adam` in torch/optim/adam.py (the non-capturable branch).
 */
import type { NamedParameters } from '../param-groups.js';
import { Optimizer, type OptimizerParams, type OptionsSchema, type ParamGroup, type ParamState } from './optimizer.js';

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

export const ADAM_SCHEMA: OptionsSchema<AdamOptions> = {
  lr: { kind: 'number', min: 0 },
  betas: { kind: 'betas' },
  eps: { kind: 'number', min: 0 },
  weight_decay: { kind: 'number', min: 0 },
  amsgrad: { kind: 'boolean' },
  maximize: { kind: 'boolean' },
};

export function adamState(group: AdamOptions, n: number): ParamState {
  const s: ParamState = { step: 0, exp_avg: new Float32Array(n), exp_avg_sq: new Float32Array(n) };
  if (group.amsgrad) s.max_exp_avg_sq = new Float32Array(n);
  return s;
}

/**
 * One Adam/AdamW step for one parameter. `decoupled` is AdamW: the weights shrink by
 * lr * weight_decay before the update instead of the decay joining the gradient.
 */
export function adamUpdate(g: AdamOptions, p: Float32Array, grad: Float32Array, s: ParamState, decoupled: boolean): void {
  const { lr, eps, weight_decay: wd, amsgrad, maximize } = g;
  const [beta1, beta2] = g.betas;
  const step = (s.step as number) + 1;
  s.step = step;
  const m = s.exp_avg as Float32Array;
  const v = s.exp_avg_sq as Float32Array;
  let vmax = s.max_exp_avg_sq as Float32Array | undefined;
  if (amsgrad && !vmax) s.max_exp_avg_sq = vmax = new Float32Array(p.length);
  const stepSize = lr / (1 - beta1 ** step);
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const sign = maximize ? -1 : 1;
  // Adam's L2 term joins the gradient; AdamW instead shrinks the weights first
  // (torch: param.mul_(1 - lr * weight_decay)). Two loops keep the common one branch-free.
  const l2 = decoupled ? 0 : wd;
  const shrink = decoupled ? 1 - lr * wd : 1;
  const n = p.length;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  if (!amsgrad) {
    for (let i = 0; i < n; i++) {
      const x = sign * grad[i] + l2 * p[i];
      m[i] = m[i] * beta1 + c1 * x;
      v[i] = v[i] * beta2 + c2 * x * x;
      p[i] = p[i] * shrink - (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const x = sign * grad[i] + l2 * p[i];
      m[i] = m[i] * beta1 + c1 * x;
      v[i] = v[i] * beta2 + c2 * x * x;
      vmax![i] = Math.max(vmax![i], v[i]);
      p[i] = p[i] * shrink - (stepSize * m[i]) / (Math.sqrt(vmax![i]) / bc2Sqrt + eps);
    }
  }
}

export class Adam extends Optimizer<AdamOptions> {
  readonly name = 'Adam';

  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<AdamOptions> = {}) {
    super('Adam', params, defaults, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false, maximize: false }, ADAM_SCHEMA);
  }

  protected initState(group: ParamGroup<AdamOptions>, param: Float32Array): ParamState {
    return adamState(group, param.length);
  }

  protected update(g: ParamGroup<AdamOptions>, p: Float32Array, grad: Float32Array, s: ParamState): void {
    adamUpdate(g, p, grad, s, false);
  }
}
