/**
 * The optimizers by torch.optim's class names, and a factory for a training job's
 * `{"optimizer": "adam", "lr": ...}`.
 */
import { nnsError } from '../../errors.js';
import type { NamedParameters } from '../param-groups.js';
import { Adagrad } from './adagrad.js';
import { Adam } from './adam.js';
import { AdamW } from './adamw.js';
import type { Optimizer, OptimizerParams } from './optimizer.js';
import { RMSprop } from './rmsprop.js';
import { SGD } from './sgd.js';

export { Adagrad, type AdagradOptions } from './adagrad.js';
export { Adam, type AdamOptions } from './adam.js';
export { AdamW, type AdamWOptions } from './adamw.js';
export { Optimizer, type OptimizerParams, type OptimizerStateDict, type ParamGroup, type ParamState } from './optimizer.js';
export { RMSprop, type RMSpropOptions } from './rmsprop.js';
export { SGD, type SGDOptions } from './sgd.js';

/** An optimizer of any kind; `lr` is always there for schedulers. */
export type AnyOptimizer = Optimizer<{ lr: number }>;

const OPTIMIZERS: Record<string, new (p: NamedParameters | OptimizerParams, o: Record<string, unknown>) => AnyOptimizer> = {
  SGD: SGD as never,
  Adam: Adam as never,
  AdamW: AdamW as never,
  RMSprop: RMSprop as never,
  Adagrad: Adagrad as never,
};

export const OPTIMIZER_NAMES = Object.keys(OPTIMIZERS);

/**
 * `createOptimizer("adamw", {parameters, param_groups, freeze}, {lr: 3e-4})`. Names are torch's
 * class names, matched without regard to case; options are validated as torch does.
 */
export function createOptimizer(name: string, params: NamedParameters | OptimizerParams, options: Record<string, unknown> = {}): AnyOptimizer {
  const key = OPTIMIZER_NAMES.find((k) => k.toLowerCase() === String(name).toLowerCase());
  if (!key) throw nnsError('TRAIN_OPTIONS_INVALID', `unknown optimizer "${name}"; known optimizers are ${OPTIMIZER_NAMES.join(', ')}`);
  return new OPTIMIZERS[key](params, options);
}
