/**
 * torch.optim.SGD (1.13): momentum, dampening, Nesterov, L2 weight decay, maximize.
 * Update rule: `_single_tensor_sgd` in torch/optim/sgd.py.
 */
import { nnsError } from '../../errors.js';
import type { NamedParameters } from '../param-groups.js';
import { Optimizer, type OptimizerKind, type OptimizerParams, type OptionsSchema, type ParamGroup, type ParamState } from './optimizer.js';
import type { ParamBlock } from './param-blocks.js';

export interface SGDOptions {
  /** Learning rate; torch requires it. */
  lr: number;
  /** Momentum factor. @defaultValue 0 */
  momentum: number;
  /** Dampening for momentum. @defaultValue 0 */
  dampening: number;
  /** L2 penalty added to the gradient. @defaultValue 0 */
  weight_decay: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). @defaultValue false */
  nesterov: boolean;
  /** Maximise the objective instead of minimising. @defaultValue false */
  maximize: boolean;
}

const SCHEMA: OptionsSchema<SGDOptions> = {
  lr: { kind: 'number', min: 0, required: true },
  momentum: { kind: 'number', min: 0 },
  dampening: { kind: 'number' },
  weight_decay: { kind: 'number', min: 0 },
  nesterov: { kind: 'boolean' },
  maximize: { kind: 'boolean' },
};

const SGD_KIND: OptimizerKind<SGDOptions> = {
  name: 'SGD',
  builtin: { lr: undefined as unknown as number, momentum: 0, dampening: 0, weight_decay: 0, nesterov: false, maximize: false },
  schema: SCHEMA,
  stateArrays: ['momentum_buffer'],
};

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<SGDOptions> = {}) {
    super(SGD_KIND, params, defaults);
  }

  protected override checkGroup(optimizer: string, where: (key: string) => string, group: SGDOptions): void {
    super.checkGroup(optimizer, where, group);
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw nnsError('TRAIN_OPTIONS_INVALID', `${optimizer} ${where('nesterov')}nesterov: Nesterov momentum requires a momentum and zero dampening`);
    }
  }

  protected initState(): ParamState {
    return { momentum_buffer: null };
  }

  protected update(g: ParamGroup<SGDOptions>, b: ParamBlock, s: ParamState): void {
    const { lr, momentum, dampening, weight_decay: wd, nesterov, maximize } = g;
    // torch keeps no buffer while momentum is 0 and clones d_p into it on its first step.
    const first = momentum !== 0 && s.momentum_buffer === null;
    if (first) s.momentum_buffer = b.views.momentum_buffer!;
    const { at } = b;
    const kernel = b.kernels.sgd({ maximize, weight_decay: wd !== 0, momentum: momentum !== 0, first, nesterov });
    kernel(at.param!, at.grad!, at.momentum_buffer!, b.bytes, wd, momentum, 1 - dampening, -lr);
  }
}
