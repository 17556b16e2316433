/**
 * Dropout layers. Eval mode (serving) is the identity. Train mode multiplies by a mask the
 * training loop feeds as the graph input `mask.<module>`: 0 or 1/(1-p) per element (Dropout)
 * or per channel (Dropout1d/2d/3d, shape [N, C, 1, ...]), exactly torch's `input * mask / (1-p)`;
 * the backward is the same product (THROUGH_OPS over the Mul).
 */
import { binary } from '../ops.js';
import { defineLayer, THROUGH_OPS } from '../layer.js';
import { bool, float } from '../signature.js';

function dropout(type: string, channelwise: boolean) {
  return defineLayer({
    type,
    args: { p: float(0.5), inplace: bool(false) },
    inputs: ['input'],
    validate(a, fail) {
      if (a.p < 0 || a.p > 1) fail(`dropout probability has to be between 0 and 1, but got ${a.p}`);
    },
    params: () => [],
    forward(m, [input]) {
      const x = m.tensor(input, 'input');
      if (!m.training || m.args.p === 0) return x;
      if (type === 'AlphaDropout') m.fail('TRAIN_NOT_DIFFERENTIABLE', 'AlphaDropout is not supported in train mode');
      if (channelwise && x.shape.length < 3) m.fail('ARCH_SHAPE_MISMATCH', `train mode expects a batched input with channels at dim 1, got ${x.shape.length}-D`);
      const shape = channelwise ? x.shape.map((d, i) => (i < 2 ? d : 1)) : x.shape;
      return binary(m.g, 'Mul', x, m.mask(m.args.p, shape));
    },
    backward: THROUGH_OPS,
  });
}

export const Dropout = dropout('Dropout', false);
export const Dropout1d = dropout('Dropout1d', true);
export const Dropout2d = dropout('Dropout2d', true);
export const Dropout3d = dropout('Dropout3d', true);
export const AlphaDropout = dropout('AlphaDropout', false);
