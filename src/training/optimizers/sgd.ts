/**
 * torch.optim.SGD (1.13): momentum, dampening, Nesterov, L2 weight decay, maximize.
 * Update rule: `_single_tensor_sgd` in torch/optim/sgd.py.
 */
import { nnsError } from '../../errors.js';
import type { NamedParameters } from '../param-groups.js';
import { Optimizer, type OptimizerParams, type OptionsSchema, type ParamGroup, type ParamState } from './optimizer.js';

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

const BUILTIN = { lr: undefined as unknown as number, momentum: 0, dampening: 0, weight_decay: 0, nesterov: false, maximize: false };

export class SGD extends Optimizer<SGDOptions> {
  readonly name = 'SGD';

  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<SGDOptions> = {}) {
    super('SGD', params, defaults, BUILTIN, SCHEMA);
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

  protected update(g: ParamGroup<SGDOptions>, p: Float32Array, grad: Float32Array, s: ParamState): void {
    const { lr, momentum, dampening, weight_decay: wd, nesterov, maximize } = g;
    const sign = maximize ? -1 : 1;
    let buf = s.momentum_buffer as Float32Array | null;
    const first = buf === null;
    if (momentum !== 0 && buf === null) s.momentum_buffer = buf = new Float32Array(p.length);
    const n = p.length;
    for (let i = 0; i < n; i++) {
      let d = sign * grad[i];
      if (wd !== 0) d += wd * p[i];
      if (buf !== null) {
        // The first step copies d into the buffer (torch.clone), later ones decay it.
        buf[i] = first ? d : buf[i] * momentum + (1 - dampening) * d;
        d = nesterov ? d + momentum * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }
}
