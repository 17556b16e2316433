/** Elementwise torch functions, Tensor methods and operators a forward() calls. */
import { type Tensor } from '../graph-builder.js';
import { type FnCtx, type FunctionDef, defineFunction, params } from '../function.js';
import { THROUGH_OPS } from '../layer.js';
import { binary, elu, gelu, leakyRelu, matmul, relu, scalar, silu, softmax } from '../ops.js';
import { type Value, describe, isTensor } from '../values.js';

function unary(targets: string[], lower: (f: FnCtx, x: Tensor) => Tensor, extra = ''): FunctionDef {
  return defineFunction({
    targets,
    params: params(`input${extra ? ', ' + extra : ''}`),
    forward: (f, a) => lower(f, f.tensor(a.input, 'input')),
    backward: THROUGH_OPS,
  });
}

const same = (op: string) => (f: FnCtx, x: Tensor) => f.g.unary(op, x);

export const reluFn = unary(['torch.relu', 'torch.relu_', 'torch.nn.functional.relu', 'Tensor.relu', 'Tensor.relu_'], (f, x) => relu(f.g, x), 'inplace=False');
export const sigmoidFn = unary(['torch.sigmoid', 'torch.nn.functional.sigmoid', 'Tensor.sigmoid'], same('Sigmoid'));
export const tanhFn = unary(['torch.tanh', 'torch.nn.functional.tanh', 'Tensor.tanh'], same('Tanh'));
export const expFn = unary(['torch.exp', 'Tensor.exp'], same('Exp'));
export const logFn = unary(['torch.log', 'Tensor.log'], same('Log'));
export const sqrtFn = unary(['torch.sqrt', 'Tensor.sqrt'], same('Sqrt'));
export const absFn = unary(['torch.abs', 'Tensor.abs'], same('Abs'));
export const negFn = unary(['torch.neg', 'operator.neg', 'Tensor.neg'], same('Neg'));
export const siluFn = unary(['torch.nn.functional.silu'], (f, x) => silu(f.g, x), 'inplace=False');

/**
 * F.dropout(x, p, training): the identity when serving or when the traced call had
 * training=False; in train mode a mask input like nn.Dropout's (layers/dropout.ts).
 */
function dropoutDef(targets: string[], channelwise: boolean): FunctionDef {
  return defineFunction({
    targets,
    params: params('input, p=0.5, training=True, inplace=False'),
    forward(f, a) {
      const x = f.tensor(a.input, 'input');
      const p = a.p as number;
      if (!f.training || a.training !== true || p === 0) return x;
      const shape = channelwise ? x.shape.map((d, i) => (i < 2 ? d : 1)) : x.shape;
      return binary(f.g, 'Mul', x, f.mask(p, shape));
    },
    backward: THROUGH_OPS,
  });
}

export const dropoutFn = dropoutDef(['torch.nn.functional.dropout', 'torch.dropout', 'Tensor.dropout'], false);
export const dropoutNdFn = dropoutDef(['torch.nn.functional.dropout1d', 'torch.nn.functional.dropout2d', 'torch.nn.functional.dropout3d'], true);

/** Copies and detaches a forward makes change no values. */
export const copyFn = unary(['Tensor.contiguous', 'Tensor.detach', 'Tensor.clone', 'torch.clone'], (_f, x) => x, 'memory_format=None');

export const geluFn = defineFunction({
  targets: ['torch.nn.functional.gelu'],
  params: params("input, approximate='none'"),
  forward(f, a) {
    if (a.approximate !== 'none' && a.approximate !== 'tanh') f.fail('ARCH_INVALID', `approximate must be 'none' or 'tanh', got ${JSON.stringify(a.approximate)}`);
    return gelu(f.g, f.tensor(a.input, 'input'), a.approximate as 'none' | 'tanh');
  },
  backward: THROUGH_OPS,
});

export const eluFn = defineFunction({
  targets: ['torch.nn.functional.elu'],
  params: params('input, alpha=1.0, inplace=False'),
  forward: (f, a) => elu(f.g, f.tensor(a.input, 'input'), a.alpha as number),
  backward: THROUGH_OPS,
});

export const leakyReluFn = defineFunction({
  targets: ['torch.nn.functional.leaky_relu'],
  params: params('input, negative_slope=0.01, inplace=False'),
  forward: (f, a) => leakyRelu(f.g, f.tensor(a.input, 'input'), a.negative_slope as number),
  backward: THROUGH_OPS,
});

function softmaxDef(targets: string[], log: boolean): FunctionDef {
  return defineFunction({
    targets,
    params: params('input, dim=None, _stacklevel=3, dtype=None'),
    forward(f, a) {
      if (a.dtype !== null) f.fail('ARCH_INVALID', 'the dtype argument is not supported');
      return softmax(f.g, f.tensor(a.input, 'input'), a.dim === null ? null : f.int(a.dim, 'dim'), log);
    },
    backward: THROUGH_OPS,
  });
}

export const softmaxFn = softmaxDef(['torch.softmax', 'torch.nn.functional.softmax', 'Tensor.softmax'], false);
export const logSoftmaxFn = softmaxDef(['torch.log_softmax', 'torch.nn.functional.log_softmax', 'Tensor.log_softmax'], true);

const PY: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y, Sub: (x, y) => x - y, Mul: (x, y) => x * y, Div: (x, y) => x / y, Pow: (x, y) => x ** y,
};

/** a (op) b where either side may be a Python number; PyTorch's `alpha` scales `other`. */
function arithmetic(f: FnCtx, op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow', a: Value, b: Value, alpha: Value = 1): Value {
  if (typeof a === 'number' && typeof b === 'number') return PY[op]!(a, alpha === 1 ? b : b * (alpha as number));
  if (!isTensor(a) && !isTensor(b)) f.fail('ARCH_INVALID', `arithmetic needs a tensor or two constant numbers, got ${describe(a)} and ${describe(b)} (arithmetic on run-time sizes is not supported)`);
  const like = (isTensor(a) ? a : b) as Tensor;
  const asTensor = (v: Value, what: string): Tensor => (typeof v === 'number' ? scalar(f.g, v, like) : f.tensor(v, what));
  let y = asTensor(b, 'other');
  if (alpha !== 1) y = binary(f.g, 'Mul', y, scalar(f.g, alpha as number, y));
  return binary(f.g, op, asTensor(a, 'input'), y);
}

function arith(targets: string[], op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow', withAlpha: boolean): FunctionDef {
  return defineFunction({
    targets,
    params: params(withAlpha ? 'input, other, alpha=1' : 'input, other, rounding_mode=None'),
    forward(f, a) {
      if (a.rounding_mode !== undefined && a.rounding_mode !== null) f.fail('ARCH_INVALID', 'rounding_mode is not supported');
      return arithmetic(f, op, a.input!, a.other!, withAlpha ? a.alpha! : 1);
    },
    backward: THROUGH_OPS,
  });
}

export const addFn = arith(['operator.add', 'operator.iadd', 'torch.add', 'Tensor.add', 'Tensor.add_'], 'Add', true);
export const subFn = arith(['operator.sub', 'operator.isub', 'torch.sub', 'Tensor.sub', 'Tensor.sub_'], 'Sub', true);
export const mulFn = arith(['operator.mul', 'operator.imul', 'torch.mul', 'Tensor.mul', 'Tensor.mul_'], 'Mul', false);
export const divFn = arith(['operator.truediv', 'operator.itruediv', 'torch.div', 'torch.true_divide', 'Tensor.div', 'Tensor.div_'], 'Div', false);
export const powFn = arith(['operator.pow', 'torch.pow', 'Tensor.pow'], 'Pow', false);

export const matmulFn = defineFunction({
  targets: ['operator.matmul', 'torch.matmul', 'torch.mm', 'torch.bmm', 'Tensor.matmul', 'Tensor.mm', 'Tensor.bmm'],
  params: params('input, other'),
  forward: (f, a) => matmul(f.g, f.tensor(a.input, 'input'), f.tensor(a.other, 'other')),
  backward: THROUGH_OPS,
});
