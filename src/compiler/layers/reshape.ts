/** nn.Flatten and nn.Unflatten. */
import { dimEq, dimMul, showShape } from '../dims.js';
import { defineLayer, THROUGH_OPS } from '../layer.js';
import { flatten } from '../ops.js';
import { int, intList } from '../signature.js';

export const Flatten = defineLayer({
  type: 'Flatten',
  args: { start_dim: int(1), end_dim: int(-1) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => flatten(m.g, m.tensor(x, 'input'), m.args.start_dim, m.args.end_dim),
  backward: THROUGH_OPS,
});

export const Unflatten = defineLayer({
  type: 'Unflatten',
  args: { dim: int(), unflattened_size: intList() },
  inputs: ['input'],
  params: () => [],
  forward(m, [input]) {
    const { g, args: a } = m;
    const x = m.tensor(input, 'input');
    const axis = g.axis(x, a.dim);
    const len = x.shape[axis]!;
    const sizes = [...a.unflattened_size];
    const inferred = sizes.indexOf(-1);
    const known = sizes.filter((s) => s !== -1).reduce((p, s) => p * s, 1);
    if (inferred >= 0) {
      if (typeof len !== 'number' || len % known !== 0) m.fail('ARCH_SHAPE_MISMATCH', `unflattened_size ${showShape(sizes)} cannot split a dimension of size ${len}`);
      sizes[inferred] = (len as number) / known;
    }
    if (!dimEq(dimMul(...sizes), len)) {
      m.fail('ARCH_SHAPE_MISMATCH', `unflattened_size ${showShape(sizes)} does not multiply to the size ${len} of dim ${a.dim} (input shape ${showShape(x.shape)})`);
    }
    return g.reshape(x, [...x.shape.slice(0, axis), ...sizes, ...x.shape.slice(axis + 1)]);
  },
  backward: THROUGH_OPS,
});
