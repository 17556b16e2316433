/** nn.Linear, nn.Identity, nn.Bilinear-free dense layers. */
import { float } from '../graph-builder.js';
import { defineLayer, fanInBound, weight, THROUGH_OPS } from '../layer.js';
import { matmul } from '../ops.js';
import { bool, positiveInt } from '../signature.js';

/** https://pytorch.org/docs/stable/generated/torch.nn.Linear.html: y = x W^T + b. */
export const Linear = defineLayer({
  type: 'Linear',
  args: { in_features: positiveInt(), out_features: positiveInt(), bias: bool(true) },
  inputs: ['input'],
  params: (a) => [
    weight('weight', [a.out_features, a.in_features], fanInBound(a.in_features)),
    ...(a.bias ? [weight('bias', [a.out_features], fanInBound(a.in_features))] : []),
  ],
  forward(m, [input]) {
    const { g, args: a } = m;
    const x = m.tensor(input, 'input');
    if (x.shape.length === 0) m.fail('ARCH_SHAPE_MISMATCH', 'input must have at least 1 dimension');
    const last = x.shape[x.shape.length - 1]!;
    if (last !== a.in_features) {
      m.fail('ARCH_SHAPE_MISMATCH', `in_features=${a.in_features} but its input has ${last} features (shape [${x.shape.join(', ')}])`);
    }
    const w = m.param('weight');
    const b = a.bias ? m.param('bias') : null;
    const shape = [...x.shape.slice(0, -1), a.out_features];
    if (x.shape.length === 2) return g.op('Gemm', [x, w, b], { transB: 1, alpha: float(1), beta: float(1) }, { shape });
    const y = matmul(g, x, g.transpose(w, [1, 0]));
    return b ? g.op('Add', [y, b], {}, { shape }) : y;
  },
  backward: THROUGH_OPS,
});

/** https://pytorch.org/docs/stable/generated/torch.nn.Identity.html: accepts and ignores any arguments. */
export const Identity = defineLayer({
  type: 'Identity',
  args: {},
  inputs: ['input'],
  params: () => [],
  forward: (m, [input]) => m.tensor(input, 'input'),
  backward: THROUGH_OPS,
});
