/**
 * torch.optim.Adagrad (1.13): lr_decay, initial_accumulator_value, eps, L2 weight decay,
 * maximize (dense gradients). Update rule: `_single_tensor_adagrad` in torch/optim/adagrad.py.
 *
 * One difference: torch 1.13 fills every accumulator from the constructor's
 * initial_accumulator_value and ignores a param group's own; here a group's value is used
 * (torch 2.x does the same). With no per-group value the two agree.
 */
import type { NamedParameters } from '../param-groups.js';
import { Optimizer, type OptimizerKind, type OptimizerParams, type OptionsSchema, type ParamGroup, type ParamState } from './optimizer.js';
import type { ParamBlock } from './param-blocks.js';

export interface AdagradOptions {
  /** Learning rate. @defaultValue 1e-2 */
  lr: number;
  /** The learning rate at step t is lr / (1 + (t - 1) * lr_decay). @defaultValue 0 */
  lr_decay: number;
  /** L2 penalty added to the gradient. @defaultValue 0 */
  weight_decay: number;
  /** Starting value of the sum of squared gradients. @defaultValue 0 */
  initial_accumulator_value: number;
  /** Added to the denominator. @defaultValue 1e-10 */
  eps: number;
  /** Maximise the objective instead of minimising. @defaultValue false */
  maximize: boolean;
}

const SCHEMA: OptionsSchema<AdagradOptions> = {
  lr: { kind: 'number', min: 0 },
  lr_decay: { kind: 'number', min: 0 },
  weight_decay: { kind: 'number', min: 0 },
  initial_accumulator_value: { kind: 'number', min: 0 },
  eps: { kind: 'number', min: 0 },
  maximize: { kind: 'boolean' },
};

const ADAGRAD: OptimizerKind<AdagradOptions> = {
  name: 'Adagrad',
  builtin: { lr: 1e-2, lr_decay: 0, weight_decay: 0, initial_accumulator_value: 0, eps: 1e-10, maximize: false },
  schema: SCHEMA,
  stateArrays: ['sum'],
};

export class Adagrad extends Optimizer<AdagradOptions> {
  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<AdagradOptions> = {}) {
    super(ADAGRAD, params, defaults);
  }

  protected initState(group: ParamGroup<AdagradOptions>, b: ParamBlock): ParamState {
    return { step: 0, sum: b.views.sum!.fill(group.initial_accumulator_value) };
  }

  protected update(g: ParamGroup<AdagradOptions>, b: ParamBlock, s: ParamState): void {
    const { lr, lr_decay, eps, weight_decay: wd, maximize } = g;
    const step = (s.step as number) + 1;
    s.step = step;
    const clr = lr / (1 + (step - 1) * lr_decay);
    const { at } = b;
    b.kernels.adagrad({ maximize, weight_decay: wd !== 0 })(at.param!, at.grad!, at.sum!, b.bytes, wd, eps, -clr);
  }
}
