/** Shape functions and methods: view/reshape, flatten, permute, cat, mean, size, getitem, ... */
import { type Dim, dimDiv, dimEq, dimMul, isStatic, normAxis, numel, showShape } from '../dims.js';
import type { Tensor } from '../graph-builder.js';
import { type FnCtx, defineFunction, params } from '../function.js';
import { THROUGH_OPS } from '../layer.js';
import { flatten, reduce } from '../ops.js';
import { type SymInt, type Value, isSymInt, isTensor } from '../values.js';

/** `view(2, 3)` and `view((2, 3))` both mean shape (2, 3). */
function sizesOf(f: FnCtx, v: Value | undefined, what: string): (number | SymInt)[] {
  const list = Array.isArray(v) && v.length === 1 && Array.isArray(v[0]) ? v[0] : v;
  if (!Array.isArray(list)) f.fail('ARCH_INVALID', `${what} must be a sequence of ints`);
  return (list as Value[]).map((d) => (isSymInt(d) ? d : f.int(d, what)));
}

function intsOf(f: FnCtx, v: Value | undefined, what: string): number[] {
  const list = Array.isArray(v) && v.length === 1 && Array.isArray(v[0]) ? v[0] : v;
  if (typeof list === 'number') return [f.int(list, what)];
  if (!Array.isArray(list)) f.fail('ARCH_INVALID', `${what} must be an int or a sequence of ints`);
  return (list as Value[]).map((d) => f.int(d, what));
}

/** view/reshape semantics, including one -1 and sizes known only at run time (x.size(0)). */
function reshapeTo(f: FnCtx, x: Tensor, sizes: (number | SymInt)[]): Tensor {
  const { g } = f;
  const dims: Dim[] = sizes.map((s) => (isSymInt(s) ? s.dim : s));
  const inferred = dims.indexOf(-1);
  if (dims.filter((d) => d === -1).length > 1) f.fail('ARCH_INVALID', 'only one dimension can be inferred (-1)');
  const total = numel(x.shape);
  const invalid = (): never => f.fail('ARCH_SHAPE_MISMATCH', `shape '${showShape(dims)}' is invalid for input of shape ${showShape(x.shape)} (${total} elements)`);
  if (inferred >= 0) {
    const known = dimMul(...dims.filter((_, i) => i !== inferred));
    dims[inferred] = dimDiv(total, known) ?? (isStatic(total) && isStatic(known) ? invalid() : `${f.where}_inferred`);
  } else if (!dimEq(numel(dims), total) && isStatic(numel(dims)) && isStatic(total)) {
    invalid();
  }
  if (!sizes.some(isSymInt)) return g.op('Reshape', [x, g.constInt64(sizes as number[])], {}, { shape: dims, dtype: x.dtype });
  // Sizes read from x itself at the same position become ONNX's 0 (copy that dimension).
  const parts = sizes.map((s, i) => {
    if (!isSymInt(s)) return s;
    if (s.source.name === x.name && s.axis === i) return 0;
    return g.op('Shape', [s.source], { start: s.axis, end: s.axis + 1 }, { shape: [1], dtype: 'int64' });
  });
  if (parts.every((p) => typeof p === 'number')) return g.op('Reshape', [x, g.constInt64(parts as number[])], {}, { shape: dims, dtype: x.dtype });
  const pieces = parts.map((p) => (typeof p === 'number' ? g.constInt64([p]) : p));
  return g.op('Reshape', [x, g.concat(pieces, 0)], {}, { shape: dims, dtype: x.dtype });
}

export const viewFn = defineFunction({
  targets: ['Tensor.view', 'Tensor.reshape', 'torch.reshape'],
  params: params('input, *shape'),
  forward: (f, a) => reshapeTo(f, f.tensor(a.input, 'input'), sizesOf(f, a.shape, 'shape')),
  backward: THROUGH_OPS,
});

export const flattenFn = defineFunction({
  targets: ['torch.flatten', 'Tensor.flatten'],
  params: params('input, start_dim=0, end_dim=-1'),
  forward: (f, a) => flatten(f.g, f.tensor(a.input, 'input'), f.int(a.start_dim, 'start_dim'), f.int(a.end_dim, 'end_dim')),
  backward: THROUGH_OPS,
});

export const permuteFn = defineFunction({
  targets: ['torch.permute', 'Tensor.permute'],
  params: params('input, *dims'),
  forward(f, a) {
    const x = f.tensor(a.input, 'input');
    const perm = intsOf(f, a.dims, 'dims').map((d) => f.g.axis(x, d));
    if (perm.length !== x.shape.length || new Set(perm).size !== perm.length) f.fail('ARCH_SHAPE_MISMATCH', `dims ${showShape(perm)} is not a permutation of the ${x.shape.length} dims of ${showShape(x.shape)}`);
    return f.g.transpose(x, perm);
  },
  backward: THROUGH_OPS,
});

export const transposeFn = defineFunction({
  targets: ['torch.transpose', 'Tensor.transpose', 'torch.swapaxes', 'Tensor.swapaxes'],
  params: params('input, dim0, dim1'),
  forward(f, a) {
    const x = f.tensor(a.input, 'input');
    const d0 = f.g.axis(x, f.int(a.dim0, 'dim0'));
    const d1 = f.g.axis(x, f.int(a.dim1, 'dim1'));
    const perm = x.shape.map((_, i) => (i === d0 ? d1 : i === d1 ? d0 : i));
    return f.g.transpose(x, perm);
  },
  backward: THROUGH_OPS,
});

export const tFn = defineFunction({
  targets: ['torch.t', 'Tensor.t'],
  params: params('input'),
  forward(f, a) {
    const x = f.tensor(a.input, 'input');
    return x.shape.length < 2 ? x : f.g.transpose(x, [1, 0]);
  },
  backward: THROUGH_OPS,
});

export const unsqueezeFn = defineFunction({
  targets: ['torch.unsqueeze', 'Tensor.unsqueeze'],
  params: params('input, dim'),
  forward(f, a) {
    const x = f.tensor(a.input, 'input');
    const axis = normAxis(f.int(a.dim, 'dim'), x.shape.length + 1) ?? f.fail('ARCH_SHAPE_MISMATCH', `dim=${a.dim} is out of range for unsqueezing ${showShape(x.shape)}`);
    return f.g.unsqueeze(x, [axis]);
  },
  backward: THROUGH_OPS,
});

export const squeezeFn = defineFunction({
  targets: ['torch.squeeze', 'Tensor.squeeze'],
  params: params('input, dim=None'),
  forward(f, a) {
    const x = f.tensor(a.input, 'input');
    // dim=None drops the dims known to be 1; a dynamic batch of 1 is kept (it would not be in PyTorch).
    const axes = a.dim === null ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : intsOf(f, a.dim, 'dim').map((d) => f.g.axis(x, d)).filter((i) => x.shape[i] === 1);
    return axes.length === 0 ? x : f.g.squeeze(x, axes);
  },
  backward: THROUGH_OPS,
});

function tensorsOf(f: FnCtx, v: Value | undefined): Tensor[] {
  if (!Array.isArray(v) || v.length === 0) f.fail('ARCH_INVALID', 'tensors must be a non-empty sequence of tensors');
  return (v as Value[]).map((t, i) => f.tensor(t, `tensors[${i}]`));
}

export const catFn = defineFunction({
  targets: ['torch.cat', 'torch.concat', 'torch.concatenate'],
  params: params('tensors, dim=0'),
  forward(f, a) {
    const xs = tensorsOf(f, a.tensors);
    const axis = f.g.axis(xs[0]!, f.int(a.dim, 'dim'));
    for (const x of xs) {
      const ok = x.shape.length === xs[0]!.shape.length && x.shape.every((d, i) => i === axis || dimEq(d, xs[0]!.shape[i]!) || !isStatic(d) || !isStatic(xs[0]!.shape[i]!));
      if (!ok) f.fail('ARCH_SHAPE_MISMATCH', `cannot concatenate ${xs.map((t) => showShape(t.shape)).join(' and ')} along dim ${a.dim}`);
    }
    return f.g.concat(xs, axis);
  },
  backward: THROUGH_OPS,
});

export const stackFn = defineFunction({
  targets: ['torch.stack'],
  params: params('tensors, dim=0'),
  forward(f, a) {
    const xs = tensorsOf(f, a.tensors);
    const axis = normAxis(f.int(a.dim, 'dim'), xs[0]!.shape.length + 1) ?? f.fail('ARCH_SHAPE_MISMATCH', `dim=${a.dim} is out of range`);
    for (const x of xs) if (!x.shape.every((d, i) => dimEq(d, xs[0]!.shape[i]!))) f.fail('ARCH_SHAPE_MISMATCH', `stack expects tensors of equal shape, got ${xs.map((t) => showShape(t.shape)).join(' and ')}`);
    return f.g.concat(xs.map((x) => f.g.unsqueeze(x, [axis])), axis);
  },
  backward: THROUGH_OPS,
});

function reduction(targets: string[], op: 'ReduceMean' | 'ReduceSum') {
  return defineFunction({
    targets,
    params: params('input, dim=None, keepdim=False, dtype=None'),
    forward(f, a) {
      if (a.dtype !== null) f.fail('ARCH_INVALID', 'the dtype argument is not supported');
      const x = f.tensor(a.input, 'input');
      return reduce(f.g, op, x, a.dim === null ? null : intsOf(f, a.dim, 'dim'), a.keepdim === true);
    },
    backward: THROUGH_OPS,
  });
}

export const meanFn = reduction(['torch.mean', 'Tensor.mean'], 'ReduceMean');
export const sumFn = reduction(['torch.sum', 'Tensor.sum'], 'ReduceSum');

/** x.size() / x.shape: static dims as ints, dynamic ones as run-time ints. */
function sizes(x: Tensor): (number | SymInt)[] {
  return x.shape.map((d, axis) => (isStatic(d) ? d : { kind: 'symint', dim: d, source: x, axis }));
}

export const sizeFn = defineFunction({
  targets: ['Tensor.size'],
  params: params('input, dim=None'),
  forward(f, a) {
    const x = f.tensor(a.input, 'input');
    const all = sizes(x);
    return a.dim === null ? all : all[f.g.axis(x, f.int(a.dim, 'dim'))]!;
  },
  backward: THROUGH_OPS,
});

export const dimFn = defineFunction({
  targets: ['Tensor.dim'],
  params: params('input'),
  forward: (f, a) => f.tensor(a.input, 'input').shape.length,
  backward: THROUGH_OPS,
});

export const getattrFn = defineFunction({
  targets: ['builtins.getattr'],
  params: params('obj, name', ['name']),
  forward(f, a) {
    const x = f.tensor(a.obj, 'obj');
    if (a.name === 'shape') return sizes(x);
    if (a.name === 'ndim') return x.shape.length;
    return f.fail('ARCH_INVALID', `attribute "${String(a.name)}" of a tensor is not supported (only shape and ndim)`);
  },
  backward: THROUGH_OPS,
});

/** x[index] on a tensor: ints, slices (step > 0), None and one Ellipsis. */
function indexTensor(f: FnCtx, x: Tensor, index: Value): Tensor {
  const { g } = f;
  let entries = Array.isArray(index) ? index : [index];
  const consumes = (e: Value) => e !== null && !(typeof e === 'object' && !Array.isArray(e) && e.kind === 'ellipsis');
  const used = entries.filter(consumes).length;
  if (used > x.shape.length) f.fail('ARCH_SHAPE_MISMATCH', `too many indices for a tensor of shape ${showShape(x.shape)}`);
  const ellipsis = entries.findIndex((e) => typeof e === 'object' && e !== null && !Array.isArray(e) && e.kind === 'ellipsis');
  const full = { kind: 'slice' as const, start: null, stop: null, step: null };
  const fill = Array<Value>(x.shape.length - used).fill(full);
  entries = ellipsis >= 0 ? [...entries.slice(0, ellipsis), ...fill, ...entries.slice(ellipsis + 1)] : [...entries, ...fill];
  let out = x;
  let axis = 0;
  for (const e of entries) {
    if (e === null) {
      out = g.unsqueeze(out, [axis]);
      axis++;
    } else if (typeof e === 'number') {
      const len = out.shape[axis]!;
      if (isStatic(len) && (e >= len || e < -len)) f.fail('ARCH_SHAPE_MISMATCH', `index ${e} is out of bounds for dimension ${axis} with size ${len}`);
      out = g.op('Gather', [out, g.constInt64([e], [])], { axis }, { shape: out.shape.filter((_, i) => i !== axis), dtype: out.dtype });
    } else if (typeof e === 'object' && !Array.isArray(e) && e.kind === 'slice') {
      const step = e.step ?? 1;
      if (step <= 0) f.fail('ARCH_INVALID', 'slice steps must be positive');
      if (!(e.start === null && e.stop === null && step === 1)) out = g.slice(out, axis, e.start ?? 0, e.stop ?? Number.MAX_SAFE_INTEGER, step);
      axis++;
    } else {
      f.fail('ARCH_INVALID', 'indexing a tensor with a tensor (advanced indexing) is not supported; use ints, slices, None and ...');
    }
  }
  return out;
}

export const getitemFn = defineFunction({
  targets: ['operator.getitem'],
  params: params('a, b'),
  forward(f, a) {
    const obj = a.a!;
    const idx = a.b!;
    if (isTensor(obj)) return indexTensor(f, obj, idx);
    if (Array.isArray(obj)) {
      if (typeof idx === 'number') {
        const v = obj[idx < 0 ? idx + obj.length : idx];
        if (v === undefined) f.fail('ARCH_INVALID', `tuple index ${idx} is out of range for a tuple of ${obj.length}`);
        return v;
      }
      if (typeof idx === 'object' && idx !== null && !Array.isArray(idx) && idx.kind === 'slice') {
        if ((idx.step ?? 1) !== 1) f.fail('ARCH_INVALID', 'tuple slices with a step are not supported');
        return obj.slice(idx.start ?? 0, idx.stop ?? obj.length);
      }
    }
    return f.fail('ARCH_INVALID', 'getitem supports tensors and tuples indexed by ints and slices');
  },
  backward: THROUGH_OPS,
});
