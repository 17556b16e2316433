/**
 * Gradient clipping as torch.nn.utils (1.13): clip_grad_norm_ scales all gradients together
 * when their joint norm exceeds max_norm; clip_grad_value_ clamps each element. Both change
 * the arrays in place. The seed tutorial (6.9, 8.13) uses them against exploding gradients.
 */
import { nnsError } from '../errors.js';

/** Gradients by parameter name, or just the arrays. */
export type Gradients = ReadonlyMap<string, Float32Array> | Iterable<Float32Array>;

function arrays(grads: Gradients): Float32Array[] {
  return grads instanceof Map ? [...grads.values()] : [...(grads as Iterable<Float32Array>)];
}

/**
 * Joint p-norm of all gradients (as if concatenated); when it exceeds max_norm every gradient
 * is multiplied by max_norm / (norm + 1e-6), as torch does. Returns the norm before clipping.
 * norm_type: a p > 0, or Infinity / 'inf' for the largest absolute value.
 */
export function clip_grad_norm_(grads: Gradients, max_norm: number, norm_type: number | 'inf' = 2, error_if_nonfinite = false): number {
  const p = norm_type === 'inf' ? Infinity : norm_type;
  if (typeof max_norm !== 'number' || !(max_norm >= 0) || max_norm === Infinity) {
    throw nnsError('TRAIN_OPTIONS_INVALID', `clip_grad_norm_ max_norm: expected a finite number >= 0, got ${JSON.stringify(max_norm)}`);
  }
  if (typeof p !== 'number' || !(p > 0)) {
    throw nnsError('TRAIN_OPTIONS_INVALID', `clip_grad_norm_ norm_type: expected a number > 0 or "inf", got ${JSON.stringify(norm_type)}`);
  }
  const list = arrays(grads);
  if (list.length === 0) return 0;
  let total = 0;
  if (p === Infinity) {
    for (const g of list) for (let i = 0; i < g.length; i++) total = Math.max(total, Math.abs(g[i]));
    for (const g of list) for (let i = 0; i < g.length; i++) if (Number.isNaN(g[i])) total = NaN;
  } else {
    for (const g of list) {
      let sum = 0;
      if (p === 2) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
      else if (p === 1) for (let i = 0; i < g.length; i++) sum += Math.abs(g[i]);
      else for (let i = 0; i < g.length; i++) sum += Math.abs(g[i]) ** p;
      total += sum;
    }
    total = total ** (1 / p);
  }
  if (!Number.isFinite(total) && error_if_nonfinite) {
    throw nnsError('TRAIN_GRADIENTS_INVALID', `clip_grad_norm_: the total norm of order ${p} of the gradients is non-finite (${total}), so it cannot be clipped`);
  }
  // torch computes the coefficient in float32 and multiplies by it clamped to 1.
  const coef = Math.fround(max_norm / Math.fround(Math.fround(total) + 1e-6));
  if (coef < 1 || Number.isNaN(coef)) for (const g of list) for (let i = 0; i < g.length; i++) g[i] *= coef;
  return total;
}

/** Clamps every gradient element to [-clip_value, clip_value]. */
export function clip_grad_value_(grads: Gradients, clip_value: number): void {
  if (typeof clip_value !== 'number' || !(clip_value >= 0)) {
    throw nnsError('TRAIN_OPTIONS_INVALID', `clip_grad_value_ clip_value: expected a number >= 0, got ${JSON.stringify(clip_value)}`);
  }
  const lo = -clip_value;
  for (const g of arrays(grads)) for (let i = 0; i < g.length; i++) g[i] = g[i] < lo ? lo : g[i] > clip_value ? clip_value : g[i];
}
