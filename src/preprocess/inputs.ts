/**
 * The request shapes TorchServe's handlers accept for binary and text inputs, reduced to a
 * list of items (one per sample) and the envelope the answer goes back in:
 * - the raw body (an image's bytes, or text);
 * - multipart/form-data: fields "data" or "file" (TorchServe's vision handler reads "data" or
 *   "body"; the seed's Flask API reads "file"); several of them make a batch;
 * - JSON {"data": "<base64 or text>"} (a list of them makes a batch);
 * - KServe v1 {"instances": [{"data"|"b64": ...} | "..."]}, answered {"predictions": [...]};
 * - KServe v2 {"inputs": [{"datatype": "BYTES", "data": [...]}]}, answered as a v2 response.
 */
import { nnsError } from '../errors.js';
import type { FormPart, HandlerRequest } from '../registry/handler.js';

export type Envelope = 'plain' | 'kserve' | 'kservev2';

export interface InputItem {
  /** Raw bytes (body, multipart file) or a JSON string (base64 for images, text for text). */
  value: Buffer | string;
  /** How a message names it: 'the request body', 'multipart field "file" (cat.jpg)', 'instances[1].b64'. */
  what: string;
}

export interface CollectedInputs {
  items: InputItem[];
  envelope: Envelope;
  /** The request held one sample not wrapped in a list: answer with one result, not a list. */
  single: boolean;
  /** v2 request id, echoed back. */
  id?: string;
}

/** Multipart field names that carry a sample. */
export const FORM_FIELDS = ['data', 'file'] as const;

export function collectInputs(req: HandlerRequest, model: string): CollectedInputs {
  if (req.parts) return fromParts(req.parts, model);
  const body = req.body;
  if (Buffer.isBuffer(body)) return { items: [{ value: body, what: 'the request body' }], envelope: 'plain', single: true };
  if (typeof body === 'string') return { items: [{ value: body, what: 'the request body' }], envelope: 'plain', single: true };
  if (body === null || typeof body !== 'object') {
    throw nnsError('INPUT_INVALID', `model "${model}": send the input as the raw body, as multipart field "data" or "file", or as JSON {"data": ...}; got JSON ${JSON.stringify(body)}`);
  }
  const o = body as Record<string, unknown>;
  if (Array.isArray(o.instances)) return fromInstances(o.instances, model);
  if (Array.isArray(o.inputs)) return fromV2(o.inputs, o.id, model);
  if (Array.isArray(body)) return fromList(body, 'the JSON body', model);
  const data = o.data ?? o.body ?? o.b64 ?? o.text;
  if (typeof data === 'string') return { items: [{ value: data, what: 'field "data"' }], envelope: 'plain', single: true };
  if (Array.isArray(data)) return fromList(data, 'field "data"', model);
  throw nnsError('INPUT_INVALID', `model "${model}": the JSON body needs "data" (a string, or a list of them), "instances" (KServe v1) or "inputs" (KServe v2); got keys ${JSON.stringify(Object.keys(o))}`);
}

function fromParts(parts: FormPart[], model: string): CollectedInputs {
  const mine = parts.filter((p) => (FORM_FIELDS as readonly string[]).includes(p.name));
  if (mine.length === 0) {
    const got = parts.length === 0 ? 'no fields' : parts.map((p) => `"${p.name}"${p.filename ? ` (${p.filename})` : ''}`).join(', ');
    throw nnsError('INPUT_INVALID', `model "${model}": multipart/form-data needs the input in a field named "data" or "file"; got ${got}`);
  }
  const items = mine.map((p) => ({ value: p.value, what: `multipart field "${p.name}"${p.filename ? ` (${p.filename})` : ''}` }));
  return { items, envelope: 'plain', single: items.length === 1 };
}

function fromList(list: unknown[], what: string, model: string): CollectedInputs {
  if (list.length === 0) throw nnsError('INPUT_INVALID', `model "${model}": ${what} is an empty list`);
  const items = list.map((v, i) => {
    if (typeof v !== 'string') throw nnsError('INPUT_INVALID', `model "${model}": ${what}[${i}] must be a string, got ${typeName(v)}`);
    return { value: v, what: `${what}[${i}]` };
  });
  return { items, envelope: 'plain', single: false };
}

function fromInstances(instances: unknown[], model: string): CollectedInputs {
  if (instances.length === 0) throw nnsError('INPUT_INVALID', `model "${model}": "instances" is empty`);
  const items = instances.map((inst, i) => {
    if (typeof inst === 'string') return { value: inst, what: `instances[${i}]` };
    const o = inst as Record<string, unknown> | null;
    for (const key of ['data', 'b64', 'body', 'text']) {
      if (o && typeof o[key] === 'string') return { value: o[key] as string, what: `instances[${i}].${key}` };
    }
    throw nnsError('INPUT_INVALID', `model "${model}": instances[${i}] must be a string or {"data": ...} / {"b64": ...}, got ${typeName(inst)}`);
  });
  return { items, envelope: 'kserve', single: false };
}

function fromV2(inputs: unknown[], id: unknown, model: string): CollectedInputs {
  const first = inputs[0] as { name?: unknown; datatype?: unknown; data?: unknown } | undefined;
  if (inputs.length !== 1 || !first || first.datatype !== 'BYTES' || !Array.isArray(first.data)) {
    throw nnsError('INPUT_INVALID', `model "${model}": a KServe v2 request needs one input of datatype "BYTES" whose "data" lists the samples`);
  }
  const items = first.data.flat().map((v: unknown, i: number) => {
    if (typeof v !== 'string') throw nnsError('INPUT_INVALID', `model "${model}": inputs[0].data[${i}] must be a string, got ${typeName(v)}`);
    return { value: v, what: `inputs[0].data[${i}]` };
  });
  if (items.length === 0) throw nnsError('INPUT_INVALID', `model "${model}": inputs[0].data is empty`);
  return { items, envelope: 'kservev2', single: false, id: typeof id === 'string' ? id : undefined };
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v;
}

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

/** Strict base64 (standard or URL-safe, padding optional, an optional data: URL prefix). */
export function decodeBase64(s: string, what: string): Buffer {
  const comma = s.startsWith('data:') ? s.indexOf(',') : -1;
  if (s.startsWith('data:') && (comma < 0 || !s.slice(0, comma).endsWith(';base64'))) {
    throw nnsError('INPUT_INVALID', `${what} is a data: URL without ";base64,"`);
  }
  const text = (comma >= 0 ? s.slice(comma + 1) : s).replace(/\s+/g, '');
  if (!BASE64.test(text) || text.length % 4 === 1) {
    const bad = [...text].findIndex((c) => !/[A-Za-z0-9+/\-_=]/.test(c));
    const where = bad >= 0 ? ` (character ${JSON.stringify(text[bad])} at ${bad})` : '';
    throw nnsError('INPUT_INVALID', `${what} is not valid base64${where}; send images base64-encoded in JSON, or as the raw body or a multipart file`);
  }
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}

/** A v2 response for a handler's per-sample results (KServe's kservev2 envelope). */
export function v2Response(results: unknown[], model: string, version: string, id?: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    model_name: model,
    model_version: version,
    outputs: [{ name: 'predictions', shape: [results.length], datatype: 'BYTES', data: results.map((r) => JSON.stringify(r)) }],
  };
  if (id !== undefined) out.id = id;
  return out;
}

/** Wrap per-sample results in the envelope the request came in. */
export function envelopeResults(results: unknown[], c: Pick<CollectedInputs, 'envelope' | 'single' | 'id'>, model: string, version: string): unknown {
  if (c.envelope === 'kserve') return { predictions: results };
  if (c.envelope === 'kservev2') return v2Response(results, model, version, c.id);
  return c.single ? results[0] : results;
}
