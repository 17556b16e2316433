/**
 * Regression: JSON numbers in, one prediction per sample out. The request is the tensor
 * handler's ({"data": [[x1, ...], ...]} or one sample without the batch axis) or KServe v1's
 * {"instances": [[...], ...]}; a sample whose output has one value answers a number
 * (the seed's NeuralNet(1, 8, 1): {"data": [[1.0], [4.0]]} -> [3.01, 9.05]), otherwise a list.
 * KServe v1 requests are answered {"predictions": [...]}.
 */
import type { Handler, HandlerRequest, ModelContext, Preprocessed } from '../src/registry/handler.js';
import type { TensorData } from '../src/runtime/ort.js';
import { toNested } from '../src/tensors.js';
import tensor from './tensor.js';

interface State { single: boolean; kserve: boolean }

export function preprocess(req: HandlerRequest, ctx: ModelContext): Preprocessed {
  const body = req.body as { instances?: unknown } | null;
  const kserve = body !== null && typeof body === 'object' && !Array.isArray(body) && !Buffer.isBuffer(body) && Array.isArray(body.instances);
  const pre = tensor.preprocess(kserve ? { ...req, body: { data: body!.instances } } : req, ctx) as Preprocessed;
  return { ...pre, state: { single: pre.state === true, kserve } satisfies State };
}

export function postprocess(outputs: Record<string, TensorData>, pre: Preprocessed, _req: HandlerRequest, ctx: ModelContext): unknown {
  const state = pre.state as State;
  const out = outputs[ctx.outputs[0]!.name] ?? Object.values(outputs)[0]!;
  const rows = out.dims[0] ?? 1;
  const per = out.data.length / Math.max(1, rows);
  const results: unknown[] = [];
  for (let r = 0; r < rows; r++) {
    const sample: TensorData = { ...out, dims: out.dims.slice(1), data: out.data.slice(r * per, (r + 1) * per) as TensorData['data'] };
    results.push(per === 1 ? toNested({ ...sample, dims: [] }) : toNested(sample));
  }
  if (state.kserve) return { predictions: results };
  return state.single ? results[0] : results;
}

const handler: Handler = { name: 'regression', preprocess, postprocess };
export default handler;
