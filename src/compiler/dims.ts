/**
 * Shapes with symbolic dimensions. A dimension is a number, or a product of symbols and a
 * number written the way ONNX's dim_param shows it: "batch", "batch*64". Enough algebra for
 * view(-1, n), flatten and broadcasting over a dynamic batch axis.
 */
export type Dim = number | string;
export type Shape = Dim[];

interface Product {
  coef: number;
  syms: string[];
}

function parse(d: Dim): Product {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const f of d.split('*')) {
    if (/^\d+$/.test(f)) coef *= Number(f);
    else syms.push(f);
  }
  return { coef, syms: syms.sort() };
}

function format(p: Product): Dim {
  if (p.syms.length === 0) return p.coef;
  const s = p.syms.join('*');
  return p.coef === 1 ? s : `${s}*${p.coef}`;
}

export function isStatic(d: Dim): d is number {
  return typeof d === 'number';
}

export function dimEq(a: Dim, b: Dim): boolean {
  return String(format(parse(a))) === String(format(parse(b)));
}

export function dimMul(...ds: Dim[]): Dim {
  const p: Product = { coef: 1, syms: [] };
  for (const d of ds) {
    const q = parse(d);
    p.coef *= q.coef;
    p.syms.push(...q.syms);
  }
  p.syms.sort();
  return format(p);
}

/** a / b when it divides exactly, else undefined. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  const p = parse(a);
  const q = parse(b);
  if (q.coef === 0 || p.coef % q.coef !== 0) return undefined;
  const syms = [...p.syms];
  for (const s of q.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  return format({ coef: p.coef / q.coef, syms });
}

export function numel(shape: Shape): Dim {
  return dimMul(...shape);
}

export function showShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Normalizes a possibly negative axis (PyTorch's `dim`) against a rank; undefined when out of range. */
export function normAxis(dim: number, rank: number): number | undefined {
  const a = dim < 0 ? dim + rank : dim;
  return a >= 0 && a < rank ? a : undefined;
}

/** NumPy/PyTorch broadcasting; undefined when the shapes do not broadcast. */
export function broadcast(a: Shape, b: Shape): Shape | undefined {
  const n = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1 || dimEq(x, y)) out.push(x);
    else if (!isStatic(x) || !isStatic(y)) out.push(isStatic(x) ? y : x); // checked at run time
    else return undefined;
  }
  return out;
}
