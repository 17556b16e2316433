/** nn.Embedding: a row lookup, ONNX Gather on axis 0. */
import { defineLayer, weight } from '../layer.js';
import { bool, float, nullable, int, positiveInt } from '../signature.js';

export const Embedding = defineLayer({
  type: 'Embedding',
  args: {
    num_embeddings: positiveInt(), embedding_dim: positiveInt(), padding_idx: nullable(int()), max_norm: nullable(float()),
    norm_type: float(2), scale_grad_by_freq: bool(false), sparse: bool(false),
  },
  inputs: ['input'],
  validate(a, fail) {
    const p = a.padding_idx;
    if (p !== null && (p >= a.num_embeddings || p < -a.num_embeddings)) fail(`padding_idx=${p} must be within num_embeddings=${a.num_embeddings}`);
    // max_norm renormalizes the weight rows in place on every lookup; a served graph cannot.
    if (a.max_norm !== null) fail('max_norm is not supported');
  },
  params(a) {
    const p = a.padding_idx;
    const zeroRow = p === null ? undefined : p < 0 ? p + a.num_embeddings : p;
    return [weight('weight', [a.num_embeddings, a.embedding_dim], { normal: 1, zeroRow })];
  },
  forward(m, [input]) {
    const x = m.tensor(input, 'input');
    if (x.dtype !== 'int64') m.fail('ARCH_SHAPE_MISMATCH', `expects int64 indices, got a ${x.dtype} input (declare the input with dtype "int64")`);
    return m.g.op('Gather', [m.param('weight'), x], { axis: 0 }, { shape: [...x.shape, m.args.embedding_dim] });
  },
  backward: null,
});
