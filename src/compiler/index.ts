/**
 * The architecture compiler: architecture JSON (torch.nn module types and arguments, a
 * Sequential list or a torch.fx graph) plus a state_dict -> an ONNX model the runtime serves.
 */
import { readFile } from 'node:fs/promises';
import { nnsError } from '../errors.js';
import type { IoSpec } from '../runtime/ort.js';
import { type StateDict, matchStateDict, readStateDict } from '../weights/index.js';
import { parseArchitecture } from './architecture.js';
import { Rng, initParam } from './init.js';
import { expectedStateDict, instantiate, lower } from './lower.js';
import { encodeModel } from './onnx-proto.js';

export interface CompiledModel {
  /** The .onnx file's bytes. */
  onnx: Uint8Array;
  /** Graph inputs; the batch axis is the symbolic dim "batch" where the architecture declares it. */
  inputs: IoSpec[];
  outputs: IoSpec[];
}

export interface CompileOptions {
  /** Seed of the random initialisation used when there is no state_dict. @defaultValue 0 */
  seed?: number;
  /** ONNX opset. @defaultValue 17 */
  opset?: number;
}

const OPSET = 17;
const PRODUCER_VERSION = '0.1.0';

/**
 * Compiles an architecture with its weights; `stateDict` null initialises every parameter
 * with PyTorch's default rule from a seeded generator. A state_dict is matched strictly, like
 * load_state_dict(strict=True).
 */
export function compileArchitecture(arch: unknown, stateDict: StateDict | null, opts: CompileOptions = {}): CompiledModel {
  const opset = opts.opset ?? OPSET;
  if (opset !== 17 && opset !== 18) throw nnsError('ARCH_INVALID', `opset ${opset} is not supported (17 or 18)`);
  const parsed = parseArchitecture(arch);
  const modules = instantiate(parsed);
  const expected = expectedStateDict(modules);
  let weights: StateDict;
  if (stateDict) {
    matchStateDict(expected, stateDict, parsed.name);
    weights = stateDict;
  } else {
    weights = randomStateDict(modules, opts.seed ?? 0);
  }
  const lowered = lower(parsed, modules, weights, opset, PRODUCER_VERSION);
  return { onnx: encodeModel(lowered.model), inputs: lowered.inputs, outputs: lowered.outputs };
}

/** A state_dict with PyTorch's default initialisation, in PyTorch's key order. */
export function initStateDict(arch: unknown, seed = 0): StateDict {
  return randomStateDict(instantiate(parseArchitecture(arch)), seed);
}

function randomStateDict(modules: ReturnType<typeof instantiate>, seed: number): StateDict {
  const rng = new Rng(seed);
  const sd: StateDict = new Map();
  for (const m of modules.values()) for (const p of m.params) sd.set(`${m.spec.name}.${p.name}`, initParam(p, rng));
  return sd;
}

/** Reads architecture JSON and weights (.safetensors, or .pth/.pt/.bin from torch.save) and compiles them. */
export async function compileFromFiles(archPath: string, weightsPath: string | null, opts: CompileOptions = {}): Promise<CompiledModel> {
  let text: string;
  try {
    text = await readFile(archPath, 'utf8');
  } catch (e) {
    throw nnsError('ARCH_INVALID', `cannot read architecture file "${archPath}": ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw nnsError('ARCH_INVALID', `architecture file "${archPath}" is not valid JSON: ${(e as Error).message}`);
  }
  const sd = weightsPath === null ? null : await readStateDict(weightsPath);
  return compileArchitecture(json, sd, opts);
}

export { layerTypes } from './layers/index.js';
export { type LossSpec, type TrainingGraph, type TrainingGraphOptions, compileEvalWithParamInputs, compileTraining } from './training.js';
export { functionTargets } from './functions/index.js';
