/**
 * torch.optim.RMSprop (1.13): smoothing constant alpha, centered variant, momentum, L2 weight
 * decay, maximize. Update rule: `_single_tensor_rmsprop` in torch/optim/rmsprop.py.
 */
import type { NamedParameters } from '../param-groups.js';
import { Optimizer, type OptimizerKind, type OptimizerParams, type OptionsSchema, type ParamGroup, type ParamState } from './optimizer.js';
import type { ParamBlock } from './param-blocks.js';

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

const RMSPROP: OptimizerKind<RMSpropOptions> = {
  name: 'RMSprop',
  builtin: { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0, momentum: 0, centered: false, maximize: false },
  schema: SCHEMA,
  stateArrays: ['square_avg', 'momentum_buffer', 'grad_avg'],
};

export class RMSprop extends Optimizer<RMSpropOptions> {
  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<RMSpropOptions> = {}) {
    super(RMSPROP, params, defaults);
  }

  protected initState(group: ParamGroup<RMSpropOptions>, b: ParamBlock): ParamState {
    const s: ParamState = { step: 0, square_avg: b.views.square_avg!.fill(0) };
    if (group.momentum > 0) s.momentum_buffer = b.views.momentum_buffer!.fill(0);
    if (group.centered) s.grad_avg = b.views.grad_avg!.fill(0);
    return s;
  }

  protected update(g: ParamGroup<RMSpropOptions>, b: ParamBlock, s: ParamState): void {
    const { lr, alpha, eps, weight_decay: wd, momentum, centered, maximize } = g;
    s.step = (s.step as number) + 1;
    // A scheduler (OneCycleLR) may turn momentum on after the state was made.
    if (momentum > 0 && !s.momentum_buffer) s.momentum_buffer = b.views.momentum_buffer!.fill(0);
    if (centered && !s.grad_avg) s.grad_avg = b.views.grad_avg!.fill(0);
    const { at } = b;
    const kernel = b.kernels.rmsprop({ maximize, weight_decay: wd !== 0, centered, momentum: momentum > 0 });
    kernel(at.param!, at.grad!, at.square_avg!, at.grad_avg!, at.momentum_buffer!, b.bytes, wd, alpha, 1 - alpha, eps, momentum, -lr);
  }
}
