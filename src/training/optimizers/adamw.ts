/**
 * torch.optim.AdamW (1.13): Adam with decoupled weight decay (Loshchilov & Hutter).
 * Update rule: `_single_tensor_adamw` in torch/optim/adamw.py.
 */
import type { NamedParameters } from '../param-groups.js';
import { ADAM, adamState, adamUpdate, type AdamOptions } from './adam.js';
import { Optimizer, type OptimizerParams, type ParamGroup, type ParamState } from './optimizer.js';
import type { ParamBlock } from './param-blocks.js';

export type AdamWOptions = AdamOptions;

export class AdamW extends Optimizer<AdamWOptions> {
  constructor(params: NamedParameters | OptimizerParams, defaults: Partial<AdamWOptions> = {}) {
    super({ ...ADAM, name: 'AdamW', builtin: { ...ADAM.builtin, weight_decay: 1e-2 } }, params, defaults);
  }

  protected initState(group: ParamGroup<AdamWOptions>, block: ParamBlock): ParamState {
    return adamState(group, block);
  }

  protected update(g: ParamGroup<AdamWOptions>, block: ParamBlock, s: ParamState): void {
    adamUpdate(g, block, s, true);
  }
}
