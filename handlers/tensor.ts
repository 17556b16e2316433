/**
 * The default handler: JSON tensors in, JSON tensors out.
 * Request: `{"data": nested}` or a bare nested array — one sample (rank = input rank - 1) or a
 * batch; for a model with several inputs, `{"data": {"x": nested, "idx": nested}}` or the same
 * object at the top level. Response: the output as nested arrays (without the batch axis when
 * the request was one sample); several outputs as `{name: nested}`.
 */
import { nnsError } from '../src/errors.js';
import type { Handler, HandlerRequest, ModelContext, Preprocessed } from '../src/registry/handler.js';
import type { TensorData } from '../src/runtime/ort.js';
import { checkAgainstSpec, fromNested, toNested } from '../src/tensors.js';

function payload(req: HandlerRequest): unknown {
  // multipart/form-data: the JSON is in field "data" (TorchServe's parameter name) or "body".
  const part = req.parts?.find((p) => p.name === 'data' || p.name === 'body');
  if (req.parts && !part) throw nnsError('INPUT_INVALID', `the tensor handler reads multipart field "data" (JSON); got ${req.parts.map((p) => `"${p.name}"`).join(', ') || 'no fields'}`);
  const body = part ? part.value : req.body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    const text = body.toString();
    try {
      return JSON.parse(text);
    } catch {
      throw nnsError('INPUT_INVALID', `the tensor handler takes JSON ({"data": [[...]]} or a nested array); the body is not valid JSON`);
    }
  }
  return body;
}

export function preprocess(req: HandlerRequest, ctx: ModelContext): Preprocessed {
  const body = payload(req);
  const data = body !== null && typeof body === 'object' && !Array.isArray(body) && 'data' in body
    ? (body as { data: unknown }).data
    : body;
  const inputs = ctx.inputs;
  let perInput: Record<string, unknown>;
  if (inputs.length === 1) {
    perInput = { [inputs[0]!.name]: data };
  } else {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw nnsError('INPUT_INVALID', `model "${ctx.modelName}" has inputs ${inputs.map((i) => `"${i.name}"`).join(', ')}: send {"data": {${inputs.map((i) => `"${i.name}": [...]`).join(', ')}}}`);
    }
    perInput = data as Record<string, unknown>;
    const unknown = Object.keys(perInput).filter((k) => !inputs.some((i) => i.name === k));
    if (unknown.length) throw nnsError('INPUT_INVALID', `model "${ctx.modelName}" has no input named ${unknown.map((k) => `"${k}"`).join(', ')}`);
  }
  const feeds: Record<string, TensorData> = {};
  let rows = -1;
  let single = false;
  for (const spec of inputs) {
    const value = perInput[spec.name];
    if (value === undefined) throw nnsError('INPUT_INVALID', `model "${ctx.modelName}" needs input "${spec.name}" (shape [${spec.shape}], ${spec.dtype})`);
    if (!Array.isArray(value) && spec.shape.length > 1) {
      throw nnsError('INPUT_INVALID', `model "${ctx.modelName}" input "${spec.name}": expected a nested array of shape [${spec.shape}]`);
    }
    let t = fromNested(value, spec.dtype, `input "${spec.name}"`);
    // One sample: the request omits the batch axis; add it so the model sees a batch of 1.
    if (t.dims.length === spec.shape.length - 1) {
      t = { ...t, dims: [1, ...t.dims] };
      single = true;
    }
    const r = checkAgainstSpec(t, spec, ctx.modelName);
    if (rows !== -1 && r !== rows) throw nnsError('INPUT_SHAPE_MISMATCH', `model "${ctx.modelName}": inputs disagree on the batch size (${rows} vs ${r} for "${spec.name}")`);
    rows = r;
    feeds[spec.name] = t;
  }
  if (rows === 0) throw nnsError('INPUT_INVALID', `model "${ctx.modelName}": the request holds no samples`);
  return { feeds, rows, state: single };
}

export function postprocess(outputs: Record<string, TensorData>, pre: Preprocessed): unknown {
  const single = pre.state === true;
  const shaped = (t: TensorData) => (single ? toNested({ ...t, dims: t.dims.slice(1) }) : toNested(t));
  const names = Object.keys(outputs);
  if (names.length === 1) return shaped(outputs[names[0]!]!);
  const out: Record<string, unknown> = {};
  for (const n of names) out[n] = shaped(outputs[n]!);
  return out;
}

const handler: Handler = { name: 'tensor', preprocess, postprocess };
export default handler;
