/**
 * torch.optim.RMSprop (1.13): smoothing constant alpha, centered variant, momentum, L2 weight
 * decay, maximize. Update rule: `_single_tensor_rmsprop` in torch/optim/rmsprop.py.
 */
import type { NamedParameters } from '../param-groups.js';
import { Optimizer, type OptimizerParams, type OptionsSchema, type ParamGroup, type ParamState } from './optimizer.js';

export interface RMSpropOptions {
  /** Learning rate. @defaultValue 1e-2 */
  lr: number;
  /** Smoothing constant of the squared-gradient average. @defaultValue 0.99 */
  alpha: number;
  /** Added to the denominator. @defaultValue 1e-8 */
  eps: number;
  /** L2 penalty added to the gradient. @defaultValue 0 */
  weight_decay: number;
  /** Momentum factor. @defaultValue 0 */
  momentum: number;
  /** Normalise by the estimated variance (subtract the squared mean gradient). @defaultValue false */
  centered: boolean;
  /** Maximise the objective instead of minimising. @defaultValue false */
  maximize: boolean;
}

const SCHEMA: OptionsSchema<RMSpropOptions> = {
  lr: { kind: 'number', min: 0 },
  alpha: { kind: 'number', min: 0 },
  eps: { kind: 'number', min: 0 },
  weight_decay: { kind: 'number', min: 0 },
  momentum: { kind: 'number', min: 0 },
  centered: { kind: 'boolean' },
  maximize: { kind: 'boolean' },
};

export class RMSprop extends Optimizer<RMSpropOptions> {
  readonly name = 'RMSprop';

  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<RMSpropOptions> = {}) {
    super('RMSprop', params, defaults, { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0, momentum: 0, centered: false, maximize: false }, SCHEMA);
  }

  protected initState(group: ParamGroup<RMSpropOptions>, param: Float32Array): ParamState {
    const s: ParamState = { step: 0, square_avg: new Float32Array(param.length) };
    if (group.momentum > 0) s.momentum_buffer = new Float32Array(param.length);
    if (group.centered) s.grad_avg = new Float32Array(param.length);
    return s;
  }

  protected update(g: ParamGroup<RMSpropOptions>, p: Float32Array, grad: Float32Array, s: ParamState): void {
    const { lr, alpha, eps, weight_decay: wd, momentum, centered, maximize } = g;
    const sign = maximize ? -1 : 1;
    s.step = (s.step as number) + 1;
    const sq = s.square_avg as Float32Array;
    // A scheduler (OneCycleLR) may turn momentum on after the state was made.
    const buf = momentum > 0 ? ((s.momentum_buffer as Float32Array | undefined) ?? (s.momentum_buffer = new Float32Array(p.length))) : null;
    const ga = centered ? ((s.grad_avg as Float32Array | undefined) ?? (s.grad_avg = new Float32Array(p.length))) : null;
    const n = p.length;
    for (let i = 0; i < n; i++) {
      let x = sign * grad[i];
      if (wd !== 0) x += wd * p[i];
      sq[i] = sq[i] * alpha + (1 - alpha) * x * x;
      let avg: number;
      if (ga !== null) {
        ga[i] = ga[i] * alpha + (1 - alpha) * x;
        avg = Math.sqrt(sq[i] - ga[i] * ga[i]) + eps;
      } else {
        avg = Math.sqrt(sq[i]) + eps;
      }
      if (buf !== null) {
        buf[i] = buf[i] * momentum + x / avg;
        p[i] -= lr * buf[i];
      } else {
        p[i] -= (lr * x) / avg;
      }
    }
  }
}
