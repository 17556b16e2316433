/**
 * text_classifier over HTTP with the bundled char_rnn (the seed's Embedding -> RNN -> Linear,
 * trained by tools/models/char_rnn/train.py): its answers equal PyTorch's softmax.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { multipart } from '../preprocess/http.js';
import { ROOT, appWith, fixture } from '../helpers.js';

const DIR = resolve(ROOT, 'tools/models/char_rnn');
interface TextCase { text: string; language: string; softmax: number[] }
const GOLDEN = JSON.parse(readFileSync(fixture('golden/images/char_rnn.json'), 'utf8')) as { classes: string[]; heldout_accuracy: number; cases: TextCase[] };

function assertProbs(body: unknown, c: TextCase): void {
  const got = body as Record<string, number>;
  assert.deepEqual(Object.keys(got).sort(), [...GOLDEN.classes].sort());
  GOLDEN.classes.forEach((label, i) => assert.ok(Math.abs(got[label]! - c.softmax[i]!) < 1e-5, `${c.text}: ${label} ${got[label]} vs torch ${c.softmax[i]}`));
  const order = Object.values(got);
  assert.deepEqual(order, [...order].sort((a, b) => b - a), 'most probable first');
}

describe('text_classifier (char_rnn) over HTTP', () => {
  let app: App;
  before(async () => {
    app = await appWith([{
      name: 'char_rnn', onnx: resolve(DIR, 'model.onnx'), handler: 'text_classifier',
      modelConfig: readFileSync(resolve(DIR, 'model-config.yaml'), 'utf8'),
      extraFiles: [resolve(DIR, 'vocab.json'), resolve(DIR, 'index_to_name.json')],
    }]);
    assert.deepEqual(app.loadFailures, []);
  });
  after(() => app?.close());

  const post = (payload: Buffer | string | object, headers: Record<string, string> = {}, query = '') =>
    app.inference.inject({ method: 'POST', url: `/predictions/char_rnn${query}`, payload: payload as string, headers });

  test('held-out sentences: probabilities equal PyTorch\'s, as plain text, JSON and multipart', async () => {
    let correct = 0;
    for (const c of GOLDEN.cases) {
      const res = await post(c.text, { 'content-type': 'text/plain; charset=utf-8' });
      assert.equal(res.statusCode, 200, res.body);
      assertProbs(res.json(), c);
      if (Object.keys(res.json())[0] === c.language) correct++;
    }
    assert.equal(correct / GOLDEN.cases.length, GOLDEN.heldout_accuracy);
    const c = GOLDEN.cases[0]!;
    assertProbs((await post({ data: c.text }, { 'content-type': 'application/json' })).json(), c);
    const form = multipart([{ name: 'data', data: c.text }]);
    assertProbs((await post(form.payload, form.headers)).json(), c);
  });

  test('a batch (JSON list, KServe v1) answers each text in order', async () => {
    const texts = GOLDEN.cases.slice(0, 5);
    const list = (await post({ data: texts.map((c) => c.text) }, { 'content-type': 'application/json' })).json() as unknown[];
    texts.forEach((c, i) => assertProbs(list[i], c));
    const v1 = (await post({ instances: texts.map((c) => ({ data: c.text })) }, { 'content-type': 'application/json' })).json();
    texts.forEach((c, i) => assertProbs(v1.predictions[i], c));
    const top1 = (await post(texts[0]!.text, { 'content-type': 'text/plain' }, '?topk=1')).json();
    assert.equal(Object.keys(top1).length, 1);
  });

  test('over-long, empty and non-UTF-8 text -> 400 naming the limit; then it serves again', async () => {
    const long = await post('a'.repeat(65), { 'content-type': 'text/plain' });
    assert.equal(long.statusCode, 400);
    assert.match(long.json().message, /has 65 characters; this model reads at most 64 \(text\.maxLength\)/);
    const huge = await post('b'.repeat(1_000_000), { 'content-type': 'text/plain' });
    assert.equal(huge.statusCode, 400);
    const empty = await post({ data: '' }, { 'content-type': 'application/json' });
    assert.equal(empty.statusCode, 400);
    assert.match(empty.json().message, /is empty/);
    const latin1 = await post(Buffer.from([0x63, 0x61, 0x66, 0xe9]), { 'content-type': 'text/plain' });
    assert.equal(latin1.statusCode, 400);
    assert.match(latin1.json().message, /not UTF-8 text/);
    assertProbs((await post(GOLDEN.cases[1]!.text, { 'content-type': 'text/plain' })).json(), GOLDEN.cases[1]!);
  });
});
