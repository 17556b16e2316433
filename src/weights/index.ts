/**
 * Model weights as PyTorch's state_dict: key -> tensor, read from safetensors or from the
 * `torch.save(model.state_dict(), path)` zip format by a restricted unpickler.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { nnsError } from '../errors.js';
import { parsePth } from './pth.js';
import { parseSafetensors } from './safetensors.js';

export interface StateDictTensor {
  dtype: 'float32' | 'int64';
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export type StateDict = Map<string, StateDictTensor>;

/** Weights file formats by extension. */
export const WEIGHT_EXTENSIONS: Record<string, 'safetensors' | 'pth'> = {
  '.safetensors': 'safetensors', '.pth': 'pth', '.pt': 'pth', '.bin': 'pth',
};

export function parseStateDict(bytes: Uint8Array, format: 'safetensors' | 'pth', label: string): StateDict {
  return format === 'safetensors' ? parseSafetensors(bytes, label) : parsePth(bytes, label);
}

export async function readStateDict(path: string): Promise<StateDict> {
  const format = WEIGHT_EXTENSIONS[extname(path).toLowerCase()];
  if (!format) {
    throw nnsError('WEIGHTS_INVALID', `weights file "${path}" must end in .safetensors, .pth, .pt or .bin`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw nnsError('WEIGHTS_INVALID', `cannot read weights file "${path}": ${(e as Error).message}`);
  }
  return parseStateDict(bytes, format, path);
}

export { matchStateDict, type ExpectedEntry } from './state-dict.js';
export { writeSafetensors } from './safetensors.js';
