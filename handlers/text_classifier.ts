/**
 * TorchServe's text_classifier for token-id models: UTF-8 text -> ids through the archive's
 * vocabulary (model-config `text:`, src/preprocess/text.ts) -> logits -> softmax over every
 * class as {label: probability}, most probable first (`?topk=N` keeps N).
 *
 * Inputs: the raw body as UTF-8 text, multipart fields "data"/"file", JSON {"data": "..."} or
 * {"text": "..."} (a list = a batch), KServe v1 {"instances": [...]} and v2 BYTES. Unlike
 * TorchServe's, requests batch: every text is padded to the same length.
 */
import { nnsError } from '../src/errors.js';
import { collectInputs, envelopeResults, type CollectedInputs } from '../src/preprocess/inputs.js';
import { loadTokenizer, parseTextConfig, type Tokenizer } from '../src/preprocess/text.js';
import type { Handler, HandlerRequest, ModelContext, Preprocessed } from '../src/registry/handler.js';
import type { TensorData } from '../src/runtime/ort.js';
import { softmaxRows, topkLabels, topkOf } from './image_classifier.js';

const tokenizers = new WeakMap<ModelContext, Promise<Tokenizer>>();

function tokenizer(ctx: ModelContext): Promise<Tokenizer> {
  let t = tokenizers.get(ctx);
  if (!t) {
    t = loadTokenizer(parseTextConfig(ctx.modelYamlConfig.text, ctx.inputs[0], ctx.modelName), ctx.archiveDir, ctx.modelName);
    t.catch(() => tokenizers.delete(ctx));
    tokenizers.set(ctx, t);
  }
  return t;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function preprocess(req: HandlerRequest, ctx: ModelContext): Promise<Preprocessed> {
  const tok = await tokenizer(ctx);
  const inputs = collectInputs(req, ctx.modelName);
  const spec = ctx.inputs[0]!;
  const L = tok.config.maxLength;
  const n = inputs.items.length;
  const ids = spec.dtype === 'int32' ? new Int32Array(n * L) : new BigInt64Array(n * L);
  inputs.items.forEach((item, i) => {
    let text: string;
    try {
      text = typeof item.value === 'string' ? item.value : utf8.decode(item.value);
    } catch {
      throw nnsError('INPUT_INVALID', `model "${ctx.modelName}": ${item.what} is not UTF-8 text`);
    }
    const row = tok.encode(text, item.what);
    for (let j = 0; j < L; j++) ids[i * L + j] = (spec.dtype === 'int32' ? row[j]! : BigInt(row[j]!)) as never;
  });
  const t: TensorData = { dtype: spec.dtype, dims: [n, L], data: ids };
  return { feeds: { [spec.name]: t }, rows: n, state: inputs };
}

export function postprocess(outputs: Record<string, TensorData>, pre: Preprocessed, req: HandlerRequest, ctx: ModelContext): unknown {
  const logits = outputs[ctx.outputs[0]!.name] ?? Object.values(outputs)[0]!;
  const classes = logits.dims[logits.dims.length - 1] ?? 1;
  const k = topkOf(req, ctx, classes, classes);
  const results = softmaxRows(logits).map((p) => topkLabels(p, k, ctx.labels));
  return envelopeResults(results, pre.state as CollectedInputs, ctx.modelName, ctx.modelVersion);
}

const handler: Handler = { name: 'text_classifier', preprocess, postprocess };
export default handler;
