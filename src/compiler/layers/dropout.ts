/** Dropout layers: in eval mode (the only mode nnserve serves) they are the identity. */
import { defineLayer } from '../layer.js';
import { bool, float } from '../signature.js';

function dropout(type: string) {
  return defineLayer({
    type,
    args: { p: float(0.5), inplace: bool(false) },
    inputs: ['input'],
    validate(a, fail) {
      if (a.p < 0 || a.p > 1) fail(`dropout probability has to be between 0 and 1, but got ${a.p}`);
    },
    params: () => [],
    forward: (m, [input]) => m.tensor(input, 'input'),
    backward: null,
  });
}

export const Dropout = dropout('Dropout');
export const Dropout1d = dropout('Dropout1d');
export const Dropout2d = dropout('Dropout2d');
export const Dropout3d = dropout('Dropout3d');
export const AlphaDropout = dropout('AlphaDropout');
