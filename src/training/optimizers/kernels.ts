/**
 * The optimizers' update rules as WebAssembly SIMD kernels, four float32 lanes at a time, one
 * per torch 1.13 `_single_tensor_*` function and written in its order of operations. The
 * arithmetic is float32 throughout, as in torch's CPU kernels; where torch fuses a multiply-add
 * these round twice, and Adam multiplies by 1 / bias_correction2_sqrt where torch divides by it
 * (20% faster): each moves a result by at most an ulp.
 *
 * A kernel works on one parameter's block (param-blocks.ts): byte addresses of its arrays in
 * the memory the kernels are instantiated over, and the padded byte length (a multiple of 16).
 * The lanes past the parameter's end are computed too, so no scalar tail is needed; nothing
 * reads them back.
 *
 * Options that switch a part of the rule on or off (weight decay, AMSGrad, momentum, maximize)
 * are flags: the module holds one variant of each kernel per combination of its flags, with
 * no branch in the loop, and the optimizer calls the variant its group's options select.
 */
import { encodeModule, f32, f32x4, forLoop, get, i32, set, v128, type Bytes, type ValType, type WasmFunction } from './wasm.js';

type Params = Record<string, typeof i32 | typeof f32>;
/** Local indices by name (wasm.ts `get` refuses a name that is not there). */
type Locals = Record<string, number>;

interface KernelSpec {
  name: string;
  /** Addresses and `bytes` (i32), options (f32). */
  params: Params;
  /** v128 locals for intermediate values. */
  vectors: string[];
  flags: readonly string[];
  /**
   * The loop body at byte offset `l.i`. `l` holds the params' locals, `V` a v128 twin of each
   * f32 param (its value in all four lanes) and the vector locals; `has(flag)` says whether
   * this variant has the flag; `at(array)` loads the four lanes of that array's param at `l.i`.
   */
  body: (l: Locals, V: Locals, has: (flag: string) => boolean, at: (array: number) => Bytes) => Bytes;
}

/** An export's name: the kernel's name and its flags, e.g. `adam_weight_decay_amsgrad`. */
const variantName = (name: string, flags: readonly string[]) => [name, ...flags].join('_');

/** Every variant of a kernel looping over `bytes` in 16-byte steps. */
function variants(k: KernelSpec): WasmFunction[] {
  const names = Object.keys(k.params);
  const l: Locals = {};
  const V: Locals = {};
  names.forEach((n, j) => (l[n] = j));
  l.i = names.length;
  const locals: ValType[] = [i32];
  const splats: Bytes[] = [];
  for (const n of names.filter((n) => k.params[n] === f32)) {
    V[n] = names.length + locals.length;
    locals.push(v128);
    splats.push(set(V[n], f32x4.splat(get(l[n]))));
  }
  for (const v of k.vectors) {
    V[v] = names.length + locals.length;
    locals.push(v128);
  }
  const at = (array: number) => load(get(array), get(l.i));
  const out: WasmFunction[] = [];
  for (let mask = 0; mask < 2 ** k.flags.length; mask++) {
    const on = k.flags.filter((_, j) => mask & (2 ** j));
    const body = k.body(l, V, (flag) => on.includes(flag), at);
    out.push({ name: variantName(k.name, on), params: names.map((n) => k.params[n]!), locals, body: [...splats.flat(), ...forLoop(l.i, l.bytes, 16, body)] });
  }
  return out;
}

const { add, sub, mul, div, sqrt, neg, max, load, store } = f32x4;
const when = (on: boolean, code: Bytes): Bytes => (on ? code : []);

/**
 * How every rule starts: the param into `p`, and into `g` the gradient as torch's rules prepare
 * it: `grad = -grad if maximize`, then `grad = grad.add(param, alpha=weight_decay)` (L2).
 */
function gradient(l: Locals, V: Locals, has: (flag: string) => boolean, g: number, p: number): Bytes {
  const grad = load(get(l.grad), get(l.i));
  return [
    ...set(g, has('maximize') ? neg(grad) : grad),
    ...set(p, load(get(l.param), get(l.i))),
    ...when(has('weight_decay'), set(g, add(get(g), mul(get(V.weight_decay), get(p))))),
  ];
}

/**
 * torch.optim.Adam and AdamW. Flags: maximize, weight_decay (Adam's L2 term), decoupled
 * (AdamW's decay: param.mul_(shrink) with shrink = 1 - lr * weight_decay), amsgrad.
 */
const ADAM = {
  name: 'adam',
  params: { param: i32, grad: i32, exp_avg: i32, exp_avg_sq: i32, max_exp_avg_sq: i32, bytes: i32, weight_decay: f32, shrink: f32, beta1: f32, beta2: f32, one_minus_beta1: f32, one_minus_beta2: f32, neg_step_size: f32, inv_bias_correction2_sqrt: f32, eps: f32 },
  vectors: ['g', 'p', 'm', 'v'],
  flags: ['maximize', 'weight_decay', 'decoupled', 'amsgrad'] as const,
  body: (l, V, has, at) => [
    ...gradient(l, V, has, V.g, V.p),
    // AdamW: param.mul_(1 - lr * weight_decay)
    ...when(has('decoupled'), set(V.p, mul(get(V.p), get(V.shrink)))),
    // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    ...set(V.m, add(mul(at(l.exp_avg), get(V.beta1)), mul(get(V.one_minus_beta1), get(V.g)))),
    ...store(get(l.exp_avg), get(l.i), get(V.m)),
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    ...set(V.v, add(mul(at(l.exp_avg_sq), get(V.beta2)), mul(mul(get(V.one_minus_beta2), get(V.g)), get(V.g)))),
    ...store(get(l.exp_avg_sq), get(l.i), get(V.v)),
    // torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq); the denominator uses it
    ...when(has('amsgrad'), [...set(V.v, max(at(l.max_exp_avg_sq), get(V.v))), ...store(get(l.max_exp_avg_sq), get(l.i), get(V.v))]),
    // param.addcdiv_(exp_avg, (v.sqrt() / bias_correction2_sqrt).add_(eps), value=-step_size)
    ...store(get(l.param), get(l.i), add(get(V.p), div(mul(get(V.neg_step_size), get(V.m)), add(mul(sqrt(get(V.v)), get(V.inv_bias_correction2_sqrt)), get(V.eps))))),
  ],
} satisfies KernelSpec;

/** torch.optim.SGD. Flags: maximize, weight_decay, momentum, first (the buffer's first step: torch clones d_p into it), nesterov. */
const SGD = {
  name: 'sgd',
  params: { param: i32, grad: i32, momentum_buffer: i32, bytes: i32, weight_decay: f32, momentum: f32, one_minus_dampening: f32, neg_lr: f32 },
  vectors: ['d', 'p', 'buf'],
  flags: ['maximize', 'weight_decay', 'momentum', 'first', 'nesterov'] as const,
  body: (l, V, has, at) => [
    ...gradient(l, V, has, V.d, V.p),
    ...when(has('momentum'), [
      // buf = torch.clone(d_p) on its first step, else buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
      ...set(V.buf, has('first') ? get(V.d) : add(mul(at(l.momentum_buffer), get(V.momentum)), mul(get(V.one_minus_dampening), get(V.d)))),
      ...store(get(l.momentum_buffer), get(l.i), get(V.buf)),
      // d_p = d_p.add(buf, alpha=momentum) if nesterov else buf
      ...set(V.d, has('nesterov') ? add(get(V.d), mul(get(V.momentum), get(V.buf))) : get(V.buf)),
    ]),
    // param.add_(d_p, alpha=-lr)
    ...store(get(l.param), get(l.i), add(get(V.p), mul(get(V.neg_lr), get(V.d)))),
  ],
} satisfies KernelSpec;

/** torch.optim.RMSprop. Flags: maximize, weight_decay, centered, momentum. */
const RMSPROP = {
  name: 'rmsprop',
  params: { param: i32, grad: i32, square_avg: i32, grad_avg: i32, momentum_buffer: i32, bytes: i32, weight_decay: f32, alpha: f32, one_minus_alpha: f32, eps: f32, momentum: f32, neg_lr: f32 },
  vectors: ['g', 'p', 'sq', 'ga', 'avg', 'buf'],
  flags: ['maximize', 'weight_decay', 'centered', 'momentum'] as const,
  body: (l, V, has, at) => [
    ...gradient(l, V, has, V.g, V.p),
    // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    ...set(V.sq, add(mul(at(l.square_avg), get(V.alpha)), mul(mul(get(V.one_minus_alpha), get(V.g)), get(V.g)))),
    ...store(get(l.square_avg), get(l.i), get(V.sq)),
    ...(has('centered')
      ? [
        // grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha); avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_().add_(eps)
        ...set(V.ga, add(mul(at(l.grad_avg), get(V.alpha)), mul(get(V.one_minus_alpha), get(V.g)))),
        ...store(get(l.grad_avg), get(l.i), get(V.ga)),
        ...set(V.avg, add(sqrt(sub(get(V.sq), mul(get(V.ga), get(V.ga)))), get(V.eps))),
      ]
      // avg = square_avg.sqrt().add_(eps)
      : set(V.avg, add(sqrt(get(V.sq)), get(V.eps)))),
    ...(has('momentum')
      ? [
        // buf.mul_(momentum).addcdiv_(grad, avg); param.add_(buf, alpha=-lr)
        ...set(V.buf, add(mul(at(l.momentum_buffer), get(V.momentum)), div(get(V.g), get(V.avg)))),
        ...store(get(l.momentum_buffer), get(l.i), get(V.buf)),
        ...store(get(l.param), get(l.i), add(get(V.p), mul(get(V.neg_lr), get(V.buf)))),
      ]
      // param.addcdiv_(grad, avg, value=-lr)
      : store(get(l.param), get(l.i), add(get(V.p), div(mul(get(V.neg_lr), get(V.g)), get(V.avg))))),
  ],
} satisfies KernelSpec;

/** torch.optim.Adagrad; `neg_clr` is -lr / (1 + (step - 1) * lr_decay). Flags: maximize, weight_decay. */
const ADAGRAD = {
  name: 'adagrad',
  params: { param: i32, grad: i32, sum: i32, bytes: i32, weight_decay: f32, eps: f32, neg_clr: f32 },
  vectors: ['g', 'p', 's'],
  flags: ['maximize', 'weight_decay'] as const,
  body: (l, V, has, at) => [
    ...gradient(l, V, has, V.g, V.p),
    // state_sum.addcmul_(grad, grad, value=1)
    ...set(V.s, add(at(l.sum), mul(get(V.g), get(V.g)))),
    ...store(get(l.sum), get(l.i), get(V.s)),
    // param.addcdiv_(grad, state_sum.sqrt().add_(eps), value=-clr)
    ...store(get(l.param), get(l.i), add(get(V.p), div(mul(get(V.neg_clr), get(V.g)), add(sqrt(get(V.s)), get(V.eps))))),
  ],
} satisfies KernelSpec;

type Flags<K extends { flags: readonly string[] }> = Partial<Record<K['flags'][number], boolean>>;
/** A kernel called with its params in order: addresses and bytes, then options. */
type Kernel = (...params: number[]) => void;

/** The variant of each kernel that `flags` select. */
export interface Kernels {
  adam(flags: Flags<typeof ADAM>): Kernel;
  sgd(flags: Flags<typeof SGD>): Kernel;
  rmsprop(flags: Flags<typeof RMSPROP>): Kernel;
  adagrad(flags: Flags<typeof ADAGRAD>): Kernel;
}

const SPECS: KernelSpec[] = [ADAM, SGD, RMSPROP, ADAGRAD];
let compiled: WebAssembly.Module | undefined;

/** The kernels over `memory`; the module is compiled once per thread. */
export function instantiateKernels(memory: WebAssembly.Memory): Kernels {
  compiled ??= new WebAssembly.Module(encodeModule(SPECS.flatMap(variants)));
  const exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as Record<string, Kernel>;
  const pick = (spec: KernelSpec) => (flags: Record<string, boolean | undefined>) =>
    exports[variantName(spec.name, spec.flags.filter((f) => flags[f]))]!;
  return { adam: pick(ADAM), sgd: pick(SGD), rmsprop: pick(RMSPROP), adagrad: pick(ADAGRAD) };
}
