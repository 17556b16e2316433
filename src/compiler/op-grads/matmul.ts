/** Gradients of the matrix products: MatMul (torch.matmul, batched and 1-D) and Gemm (nn.Linear). */
import { isStatic } from '../dims.js';
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import { matmul } from '../ops.js';
import type { OpGradRule } from './index.js';
import { attrs, mul, reshapeLike, scalarF, unbroadcast } from './util.js';

function mT(g: GraphBuilder, x: Tensor): Tensor {
  const r = x.shape.length;
  return g.transpose(x, x.shape.map((_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i)));
}

/** torch.matmul's backward, with 1-D operands promoted the way matmul promotes them. */
const matMul: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const [a, b] = c.inputs as Tensor[];
  if (!dy) return [null, null];
  const a2 = a!.shape.length === 1 ? g.unsqueeze(a!, [0]) : a!;
  const b2 = b!.shape.length === 1 ? g.unsqueeze(b!, [1]) : b!;
  let dy2 = dy;
  if (a!.shape.length === 1 && b!.shape.length === 1) dy2 = g.reshape(dy, [1, 1]);
  else if (a!.shape.length === 1) dy2 = g.unsqueeze(dy, [dy.shape.length - 1]);
  else if (b!.shape.length === 1) dy2 = g.unsqueeze(dy, [dy.shape.length]);
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  if (c.needs(0)) da = reshapeLike(g, unbroadcast(g, matmul(g, dy2, mT(g, b2)), a2), a!);
  if (c.needs(1)) {
    const k = a2.shape[a2.shape.length - 1]!;
    const n = dy2.shape[dy2.shape.length - 1]!;
    if (b2.shape.length === 2 && a2.shape.length > 2 && isStatic(k) && isStatic(n)) {
      // x [..., M, K] @ W [K, N]: one Gemm over the flattened rows instead of a batched product summed.
      const flatA = g.op('Reshape', [a2, g.constInt64([-1, k])], {}, { shape: ['rows', k] });
      const flatDy = g.op('Reshape', [dy2, g.constInt64([-1, n])], {}, { shape: ['rows', n] });
      db = reshapeLike(g, gemm(g, flatA, flatDy, 1, 0), b!);
    } else {
      db = reshapeLike(g, unbroadcast(g, matmul(g, mT(g, a2), dy2), b2), b!);
    }
  }
  return [da, db];
};

function gemm(g: GraphBuilder, a: Tensor, b: Tensor, transA: number, transB: number, alpha = 1): Tensor {
  const m = transA ? a.shape[1]! : a.shape[0]!;
  const n = transB ? b.shape[0]! : b.shape[1]!;
  const attr: Record<string, number | { type: 'float'; value: number }> = { transA, transB };
  if (alpha !== 1) attr.alpha = { type: 'float', value: alpha };
  return g.op('Gemm', [a, b], attr, { shape: [m, n] });
}

/** Y = alpha op(A) op(B) + beta C. */
const gemmRule: OpGradRule = (c, [dy]) => {
  const { g } = c;
  const [a, b, cc] = c.inputs;
  if (!dy) return [null, null, null];
  const at = attrs(c.node);
  const transA = at.int('transA', 0);
  const transB = at.int('transB', 0);
  const alpha = at.float('alpha', 1);
  const beta = at.float('beta', 1);
  const da = c.needs(0) ? (transA ? gemm(g, b!, dy, transB, 1, alpha) : gemm(g, dy, b!, 0, transB ? 0 : 1, alpha)) : null;
  const db = c.needs(1) ? (transB ? gemm(g, dy, a!, 1, transA, alpha) : gemm(g, a!, dy, transA ? 0 : 1, 0, alpha)) : null;
  let dc: Tensor | null = null;
  if (cc && c.needs(2)) dc = unbroadcast(g, beta === 1 ? dy : mul(g, dy, scalarF(g, beta)), cc);
  return [da, db, dc];
};

export const rules: Record<string, OpGradRule> = {
  MatMul: matMul,
  Gemm: gemmRule,
};
