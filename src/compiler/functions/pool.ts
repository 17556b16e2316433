/** torch.nn.functional pooling: the same lowering as the modules, called with F's parameters. */
import { nnsError } from '../../errors.js';
import { type FunctionDef, defineFunction, params } from '../function.js';
import { THROUGH_OPS } from '../layer.js';
import { type AnyLayer, makeModuleCtx } from '../layer.js';
import { LAYERS } from '../layers/index.js';
import { bindArgs } from '../signature.js';
import type { Value } from '../values.js';

function functional(target: string, layerType: string, spec: string): FunctionDef {
  const layer = LAYERS.get(layerType) as AnyLayer;
  return defineFunction({
    targets: [`torch.nn.functional.${target}`],
    params: params(`input, ${spec}`),
    forward(f, a) {
      const { input, ...kw } = a;
      const args = bindArgs(layer.args, [], kw as Record<string, unknown>, f.where);
      layer.validate?.(args, (msg: string): never => f.fail('ARCH_INVALID', msg));
      const m = makeModuleCtx(f.g, f.where, layerType, args, () => {
        throw nnsError('INTERNAL', `${f.where}: a functional pool has no parameters`);
      });
      return layer.forward(m, [input as Value]);
    },
    backward: THROUGH_OPS,
  });
}

const maxPool = 'kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False';
const avgPool = 'kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True';

export const maxPool1dFn = functional('max_pool1d', 'MaxPool1d', maxPool);
export const maxPool2dFn = functional('max_pool2d', 'MaxPool2d', maxPool);
export const avgPool1dFn = functional('avg_pool1d', 'AvgPool1d', avgPool);
export const avgPool2dFn = functional('avg_pool2d', 'AvgPool2d', `${avgPool}, divisor_override=None`);
export const adaptiveAvgPool1dFn = functional('adaptive_avg_pool1d', 'AdaptiveAvgPool1d', 'output_size');
export const adaptiveAvgPool2dFn = functional('adaptive_avg_pool2d', 'AdaptiveAvgPool2d', 'output_size');
