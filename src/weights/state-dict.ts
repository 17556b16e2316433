/**
 * Strict state_dict matching, like `model.load_state_dict(sd, strict=True)`: every missing,
 * unexpected, mis-shaped or mis-typed key is listed in one error.
 */
import { nnsError } from '../errors.js';
import type { StateDict } from './index.js';

export interface ExpectedEntry {
  key: string;
  shape: number[];
  dtype: 'float32' | 'int64';
  /**
   * May be absent: BatchNorm's num_batches_tracked, which PyTorch itself fills in when loading
   * a state_dict without version metadata (BatchNorm._load_from_state_dict).
   */
  optional?: boolean;
}

export function matchStateDict(expected: ExpectedEntry[], sd: StateDict, modelName: string): void {
  const missing: string[] = [];
  const mismatched: string[] = [];
  const keys = new Set<string>();
  for (const e of expected) {
    keys.add(e.key);
    const t = sd.get(e.key);
    if (!t) {
      if (!e.optional) missing.push(`"${e.key}"`);
      continue;
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      mismatched.push(`size mismatch for ${e.key}: copying a param with shape [${t.shape.join(', ')}] from checkpoint, the shape in current model is [${e.shape.join(', ')}]`);
    } else if (t.dtype !== e.dtype) {
      mismatched.push(`dtype mismatch for ${e.key}: the checkpoint holds ${t.dtype}, the model needs ${e.dtype}`);
    }
  }
  const unexpected = [...sd.keys()].filter((k) => !keys.has(k)).map((k) => `"${k}"`);
  if (missing.length === 0 && unexpected.length === 0 && mismatched.length === 0) return;
  const parts: string[] = [];
  if (missing.length) parts.push(`Missing key(s) in state_dict: ${missing.join(', ')}.`);
  if (unexpected.length) parts.push(`Unexpected key(s) in state_dict: ${unexpected.join(', ')}.`);
  parts.push(...mismatched);
  throw nnsError('STATE_DICT_MISMATCH', `Error(s) in loading state_dict for ${modelName}:\n\t${parts.join('\n\t')}`, {
    missing: missing.map((k) => k.slice(1, -1)), unexpected: unexpected.map((k) => k.slice(1, -1)), mismatched,
  });
}
