/**
 * torch.optim.AdamW (1.13): Adam with decoupled weight decay (Loshchilov & Hutter).
 * Update rule: `_single_tensor_adamw` in torch/optim/adamw.py.
 */
import type { NamedParameters } from '../param-groups.js';
import { ADAM_SCHEMA, adamState, adamUpdate, type AdamOptions } from './adam.js';
import { Optimizer, type OptimizerParams, type ParamGroup, type ParamState } from './optimizer.js';

export type AdamWOptions = AdamOptions;

export class AdamW extends Optimizer<AdamWOptions> {
  readonly name = 'AdamW';

  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<AdamWOptions> = {}) {
    super('AdamW', params, defaults, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-2, amsgrad: false, maximize: false }, ADAM_SCHEMA);
  }

  protected initState(group: ParamGroup<AdamWOptions>, param: Float32Array): ParamState {
    return adamState(group, param.length);
  }

  protected update(g: ParamGroup<AdamWOptions>, p: Float32Array, grad: Float32Array, s: ParamState): void {
    adamUpdate(g, p, grad, s, true);
  }
}
