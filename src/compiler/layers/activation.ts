/**
 * Activation modules (torch.nn.modules.activation). Formulas follow each class's PyTorch docs
 * page; ONNX ops are used where they compute exactly the same function.
 */
import { float } from '../graph-builder.js';
import { defineLayer, weight, THROUGH_OPS } from '../layer.js';
import { elu, gelu, leakyRelu, relu, silu, softmax } from '../ops.js';
import { bool, float as floatArg, nullable, int, oneOf, positiveInt } from '../signature.js';

export const ReLU = defineLayer({
  type: 'ReLU',
  args: { inplace: bool(false) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => relu(m.g, m.tensor(x, 'input')),
  backward: THROUGH_OPS,
});

export const LeakyReLU = defineLayer({
  type: 'LeakyReLU',
  args: { negative_slope: floatArg(0.01), inplace: bool(false) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => leakyRelu(m.g, m.tensor(x, 'input'), m.args.negative_slope),
  backward: THROUGH_OPS,
});

export const Sigmoid = defineLayer({
  type: 'Sigmoid',
  args: {},
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => m.g.unary('Sigmoid', m.tensor(x, 'input')),
  backward: THROUGH_OPS,
});

export const Tanh = defineLayer({
  type: 'Tanh',
  args: {},
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => m.g.unary('Tanh', m.tensor(x, 'input')),
  backward: THROUGH_OPS,
});

export const GELU = defineLayer({
  type: 'GELU',
  args: { approximate: oneOf(['none', 'tanh'] as const, 'none') },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => gelu(m.g, m.tensor(x, 'input'), m.args.approximate),
  backward: THROUGH_OPS,
});

export const ELU = defineLayer({
  type: 'ELU',
  args: { alpha: floatArg(1.0), inplace: bool(false) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => elu(m.g, m.tensor(x, 'input'), m.args.alpha),
  backward: THROUGH_OPS,
});

export const SiLU = defineLayer({
  type: 'SiLU',
  args: { inplace: bool(false) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => silu(m.g, m.tensor(x, 'input')),
  backward: THROUGH_OPS,
});

export const Softmax = defineLayer({
  type: 'Softmax',
  args: { dim: nullable(int()) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => softmax(m.g, m.tensor(x, 'input'), m.args.dim),
  backward: THROUGH_OPS,
});

export const LogSoftmax = defineLayer({
  type: 'LogSoftmax',
  args: { dim: nullable(int()) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => softmax(m.g, m.tensor(x, 'input'), m.args.dim, true),
  backward: THROUGH_OPS,
});

/** ReLU6 = Hardtanh(0, 6). */
export const ReLU6 = defineLayer({
  type: 'ReLU6',
  args: { inplace: bool(false) },
  inputs: ['input'],
  params: () => [],
  forward(m, [x]) {
    const t = m.tensor(x, 'input');
    return m.g.op('Clip', [t, m.g.constFloat([0], []), m.g.constFloat([6], [])], {}, { shape: t.shape });
  },
  backward: THROUGH_OPS,
});

export const Hardtanh = defineLayer({
  type: 'Hardtanh',
  args: { min_val: floatArg(-1), max_val: floatArg(1), inplace: bool(false) },
  inputs: ['input'],
  validate(a, fail) {
    if (a.max_val <= a.min_val) fail(`max_val=${a.max_val} must be greater than min_val=${a.min_val}`);
  },
  params: () => [],
  forward(m, [x]) {
    const t = m.tensor(x, 'input');
    return m.g.op('Clip', [t, m.g.constFloat([m.args.min_val], []), m.g.constFloat([m.args.max_val], [])], {}, { shape: t.shape });
  },
  backward: THROUGH_OPS,
});

/** Softplus(x) = log(1 + exp(beta x)) / beta, and x itself where beta x > threshold. */
export const Softplus = defineLayer({
  type: 'Softplus',
  args: { beta: floatArg(1), threshold: floatArg(20) },
  inputs: ['input'],
  params: () => [],
  forward(m, [x]) {
    const { g, args: a } = m;
    const t = m.tensor(x, 'input');
    const bx = a.beta === 1 ? t : g.op('Mul', [t, g.constFloat([a.beta], [])], {}, { shape: t.shape });
    let sp = g.unary('Softplus', bx);
    if (a.beta !== 1) sp = g.op('Div', [sp, g.constFloat([a.beta], [])], {}, { shape: t.shape });
    const linear = g.op('Greater', [bx, g.constFloat([a.threshold], [])], {}, { shape: t.shape, dtype: 'bool' });
    return g.op('Where', [linear, t, sp], {}, { shape: t.shape });
  },
  backward: THROUGH_OPS,
});

/** Hardswish(x) = x * relu6(x + 3) / 6: ONNX HardSwish is the same function. */
export const Hardswish = defineLayer({
  type: 'Hardswish',
  args: { inplace: bool(false) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => m.g.unary('HardSwish', m.tensor(x, 'input')),
  backward: THROUGH_OPS,
});

/** Hardsigmoid(x) = relu6(x + 3) / 6 = ONNX HardSigmoid(alpha=1/6, beta=1/2). */
export const Hardsigmoid = defineLayer({
  type: 'Hardsigmoid',
  args: { inplace: bool(false) },
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => m.g.unary('HardSigmoid', m.tensor(x, 'input'), { alpha: float(1 / 6), beta: float(0.5) }),
  backward: THROUGH_OPS,
});

/** Mish(x) = x * tanh(softplus(x)); ONNX Mish needs opset 18. */
export const Mish = defineLayer({
  type: 'Mish',
  args: { inplace: bool(false) },
  inputs: ['input'],
  params: () => [],
  forward(m, [x]) {
    const t = m.tensor(x, 'input');
    return m.g.op('Mul', [t, m.g.unary('Tanh', m.g.unary('Softplus', t))], {}, { shape: t.shape });
  },
  backward: THROUGH_OPS,
});

export const Softsign = defineLayer({
  type: 'Softsign',
  args: {},
  inputs: ['input'],
  params: () => [],
  forward: (m, [x]) => m.g.unary('Softsign', m.tensor(x, 'input')),
  backward: THROUGH_OPS,
});

/** PReLU: one learnable slope, or one per channel (dim 1). */
export const PReLU = defineLayer({
  type: 'PReLU',
  args: { num_parameters: positiveInt(1), init: floatArg(0.25) },
  inputs: ['input'],
  params: (a) => [weight('weight', [a.num_parameters], { fill: a.init })],
  forward(m, [x]) {
    const { g, args: a } = m;
    const t = m.tensor(x, 'input');
    let slope = m.param('weight');
    if (a.num_parameters > 1) {
      if (t.shape.length < 2 || t.shape[1] !== a.num_parameters) {
        m.fail('ARCH_SHAPE_MISMATCH', `num_parameters=${a.num_parameters} but its input has ${t.shape[1] ?? 'no'} channels`);
      }
      slope = g.reshape(slope, [a.num_parameters, ...Array(t.shape.length - 2).fill(1)]);
    }
    return g.op('PRelu', [t, slope], {}, { shape: t.shape });
  },
  backward: THROUGH_OPS,
});
