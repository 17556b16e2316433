/**
 * The layer table: one entry per torch.nn class, keyed by its exact class name. Sequential is
 * not here: it is a container the architecture reader expands into its children.
 */
import type { AnyLayer } from '../layer.js';
import * as activation from './activation.js';
import * as conv from './conv.js';
import * as dropout from './dropout.js';
import * as embedding from './embedding.js';
import * as linear from './linear.js';
import * as norm from './norm.js';
import * as pool from './pool.js';
import * as recurrent from './recurrent.js';
import * as reshape from './reshape.js';

const families: Record<string, unknown>[] = [linear, activation, dropout, norm, conv, pool, embedding, recurrent, reshape];

function isLayer(v: unknown): v is AnyLayer {
  return typeof v === 'object' && v !== null && typeof (v as AnyLayer).type === 'string' && typeof (v as AnyLayer).forward === 'function';
}

export const LAYERS: ReadonlyMap<string, AnyLayer> = new Map(
  families.flatMap((f) => Object.values(f)).filter(isLayer).map((l) => [l.type, l] as const),
);

export function layerTypes(): string[] {
  return [...LAYERS.keys(), 'Sequential'].sort();
}
