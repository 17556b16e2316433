/** nn.Embedding: a row lookup, ONNX Gather on axis 0. */
import type { Tensor } from '../graph-builder.js';
import { defineLayer, weight } from '../layer.js';
import { scatterAdd } from '../op-grads/shape.js';
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
  /** embedding_backward: each looked-up row's gradient is added into its row; padding_idx's row gets none. */
  backward(m, saved, dy) {
    const { g, args: a } = m;
    if (a.scale_grad_by_freq) m.fail('TRAIN_NOT_DIFFERENTIABLE', 'scale_grad_by_freq=True has no gradient rule');
    const w = m.param('weight');
    let dw = scatterAdd(g, w, saved.inputs[0] as Tensor, dy, 0);
    if (a.padding_idx !== null) {
      const keep = new Float32Array(a.num_embeddings).fill(1);
      keep[a.padding_idx < 0 ? a.padding_idx + a.num_embeddings : a.padding_idx] = 0;
      dw = g.op('Mul', [dw, g.constFloat(keep, [a.num_embeddings, 1])], {}, { shape: w.shape });
    }
    return { inputs: [null], params: { weight: dw } };
  },
});
