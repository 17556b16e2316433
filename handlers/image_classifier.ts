/**
 * TorchServe's image_classifier: image bytes -> the model's torchvision transform (model-config
 * `image:`, TorchServe's ImageNet defaults otherwise) -> logits -> softmax -> top-k as
 * {label: probability}, labels from index_to_name.json.
 *
 * Inputs: the raw body, multipart fields "data"/"file" (several = a batch), JSON base64
 * {"data": ...}, KServe v1 {"instances": [...]} and v2 BYTES (see src/preprocess/inputs.ts).
 * A JSON body whose "data" is a nested list of numbers is taken as the tensor itself, as
 * TorchServe's vision handler does. `?topk=N` overrides the model's `topk` (default 5).
 */
import { nnsError } from '../src/errors.js';
import { imagePool } from '../src/preprocess/image-pool.js';
import { outputChannels, outputSize, parseImageTransform, type ImageTransform } from '../src/preprocess/image-transform.js';
import { collectInputs, decodeBase64, envelopeResults, type CollectedInputs } from '../src/preprocess/inputs.js';
import type { Handler, HandlerRequest, ModelContext, Preprocessed } from '../src/registry/handler.js';
import type { TensorData } from '../src/runtime/ort.js';
import tensor from './tensor.js';

const DEFAULT_TOPK = 5;
const transforms = new WeakMap<ModelContext, ImageTransform>();

/** The model's transform, parsed once per loaded model version. */
export function imageTransform(ctx: ModelContext): ImageTransform {
  let t = transforms.get(ctx);
  if (!t) {
    t = parseImageTransform(ctx.modelYamlConfig.image, ctx.inputs[0], ctx.modelName);
    transforms.set(ctx, t);
  }
  return t;
}

interface State {
  inputs: CollectedInputs | undefined;
  /** The request was a tensor, handled by the tensor handler. */
  tensorPre?: Preprocessed;
}

function isTensorRequest(body: unknown): boolean {
  if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return false;
  const data = Array.isArray(body) ? body : (body as { data?: unknown }).data;
  return Array.isArray(data) && data.length > 0 && Array.isArray(data[0]);
}

export async function preprocess(req: HandlerRequest, ctx: ModelContext): Promise<Preprocessed> {
  const t = imageTransform(ctx);
  if (isTensorRequest(req.body)) {
    const pre = tensor.preprocess(req, ctx) as Preprocessed;
    return { ...pre, state: { inputs: undefined, tensorPre: pre } satisfies State };
  }
  const inputs = collectInputs(req, ctx.modelName);
  const spec = ctx.inputs[0]!;
  const n = inputs.items.length;
  if (typeof spec.shape[0] === 'number' && spec.shape[0] !== n) {
    throw nnsError('INPUT_SHAPE_MISMATCH', `model "${ctx.modelName}" takes exactly ${spec.shape[0]} image(s) a request (input "${spec.name}" is [${spec.shape}]); got ${n}`);
  }
  const [h, w] = outputSize(t)!;
  const c = outputChannels(t);
  const pool = imagePool();
  const tensors = await Promise.all(inputs.items.map((item) => {
    const bytes = typeof item.value === 'string' ? decodeBase64(item.value, item.what) : item.value;
    return pool.run(bytes, t, item.what);
  }));
  const plane = c * h * w;
  const data = n === 1 ? tensors[0]! : new Float32Array(n * plane);
  if (n > 1) tensors.forEach((x, i) => data.set(x, i * plane));
  return { feeds: { [spec.name]: { dtype: 'float32', dims: [n, c, h, w], data } }, rows: n, state: { inputs } satisfies State };
}

/** ?topk= (an integer >= 1), else the model's `topk`, else 5; never more than the classes. */
export function topkOf(req: HandlerRequest, ctx: ModelContext, classes: number, fallback = DEFAULT_TOPK): number {
  const raw = req.query.topk ?? ctx.modelYamlConfig.topk ?? fallback;
  const k = typeof raw === 'number' ? raw : /^\d+$/.test(String(raw)) ? Number(raw) : NaN;
  if (!Number.isInteger(k) || k < 1) throw nnsError('INPUT_INVALID', `topk must be an integer >= 1, got ${JSON.stringify(raw)}`);
  return Math.min(k, classes);
}

/** Softmax of each row of [n, classes] logits (in float64, max-subtracted). */
export function softmaxRows(t: TensorData): Float64Array[] {
  const classes = t.dims[t.dims.length - 1] ?? 1;
  const rows = t.data.length / classes;
  const out: Float64Array[] = [];
  for (let r = 0; r < rows; r++) {
    const p = new Float64Array(classes);
    let max = -Infinity;
    for (let j = 0; j < classes; j++) max = Math.max(max, Number(t.data[r * classes + j]));
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += p[j] = Math.exp(Number(t.data[r * classes + j]) - max);
    for (let j = 0; j < classes; j++) p[j]! /= sum;
    out.push(p);
  }
  return out;
}

/** The k most probable classes as {label: probability}, most probable first. */
export function topkLabels(p: Float64Array, k: number, labels: Record<string, string> | undefined): Record<string, number> {
  const order = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]!);
  const out: Record<string, number> = {};
  for (const i of order.slice(0, k)) out[labels?.[String(i)] ?? String(i)] = p[i]!;
  return out;
}

export function postprocess(outputs: Record<string, TensorData>, pre: Preprocessed, req: HandlerRequest, ctx: ModelContext): unknown {
  const state = pre.state as State;
  const logits = outputs[ctx.outputs[0]!.name] ?? Object.values(outputs)[0]!;
  const probs = softmaxRows(logits);
  const k = topkOf(req, ctx, logits.dims[logits.dims.length - 1] ?? 1);
  const results = probs.map((p) => topkLabels(p, k, ctx.labels));
  if (state.tensorPre) return state.tensorPre.state === true ? results[0] : results;
  return envelopeResults(results, state.inputs!, ctx.modelName, ctx.modelVersion);
}

const handler: Handler = { name: 'image_classifier', preprocess, postprocess };
export default handler;
