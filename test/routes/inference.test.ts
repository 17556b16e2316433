import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { FASHION_MLP, NEURALNET, appWith, fixture, golden, maxAbsDiff, nest } from '../helpers.js';

describe('inference API (TorchServe compatible)', () => {
  let app: App;
  before(async () => {
    app = await appWith([
      { ...NEURALNET, modelConfig: 'minWorkers: 1\nbatchSize: 8\nmaxBatchDelay: 5\n' },
      { ...FASHION_MLP, extraFiles: [fixture('../../tools/models/fashion_mlp/index_to_name.json')] },
      { name: 'two_inputs', onnx: fixture('models/two_inputs/model.onnx') },
      { name: 'double_input', onnx: fixture('models/double_input/model.onnx') },
      { name: 'fixed_batch_mlp', onnx: fixture('models/fixed_batch_mlp/model.onnx') },
    ]);
  });
  after(() => app.close());

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    app.inference.inject({ method: 'POST', url, payload: payload as string, headers: { 'content-type': 'application/json', ...headers } });

  for (const model of ['neuralnet', 'fashion_mlp', 'fixed_batch_mlp', 'two_inputs', 'double_input']) {
    test(`${model}: outputs equal PyTorch's golden outputs`, async () => {
      for (const c of golden(model)) {
        const names = Object.keys(c.inputs);
        const data = names.length === 1
          ? nest(c.inputs[names[0]!]!.data, c.inputs[names[0]!]!.shape)
          : Object.fromEntries(names.map((n) => [n, nest(c.inputs[n]!.data, c.inputs[n]!.shape)]));
        const res = await post(`/predictions/${model}`, { data });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json();
        const outNames = Object.keys(c.outputs);
        for (const o of outNames) {
          const expected = c.outputs[o]!;
          const got = outNames.length === 1 ? body : body[o];
          const scale = Math.max(...expected.data.map(Math.abs), 1e-30);
          assert.ok(maxAbsDiff(got, expected.data) <= 1e-5 * scale, `${model}.${o}: ${maxAbsDiff(got, expected.data)}`);
          assert.deepEqual(shapeOf(got), expected.shape);
        }
      }
    });
  }

  test('fashion_mlp predicts the true Fashion-MNIST labels PyTorch predicted', async () => {
    const c = golden('fashion_mlp')[0]!;
    const res = await post('/predictions/fashion_mlp', nest(c.inputs.input!.data, c.inputs.input!.shape));
    const logits = res.json() as number[][];
    const argmax = logits.map((row) => row.indexOf(Math.max(...row)));
    const torchArgmax = nest(c.outputs.output!.data, c.outputs.output!.shape) as number[][];
    assert.deepEqual(argmax, torchArgmax.map((row) => row.indexOf(Math.max(...row))));
  });

  test('one sample (no batch axis) in, one sample out; bare arrays and {"data"} both work', async () => {
    const a = await post('/predictions/neuralnet', { data: [4] });
    const b = await post('/predictions/neuralnet', [4]);
    assert.equal(a.statusCode, 200);
    assert.deepEqual(a.json(), b.json());
    assert.equal((a.json() as number[]).length, 1);
    assert.ok(Math.abs((a.json() as number[])[0]! - 9) < 0.05, 'NeuralNet learned y = 2x + 1');
  });

  test('shape and dtype mismatches give 400 naming expected and received', async () => {
    const res = await post('/predictions/neuralnet', { data: [[1, 2]] });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assert.equal(body.code, 400);
    assert.equal(body.type, 'BadRequestException');
    assert.match(body.message, /expects shape \[batch,1\], received \[1,2\]/);
    const dtype = await post('/predictions/two_inputs', { data: { x: [[1, 2, 3]], idx: [1.5] } });
    assert.equal(dtype.statusCode, 400);
    assert.match(dtype.json().message, /integer \(int64\)/);
    const fixed = await post('/predictions/fixed_batch_mlp', { data: [new Array(784).fill(0), new Array(784).fill(0)] });
    assert.equal(fixed.statusCode, 400);
    assert.match(fixed.json().message, /expects shape \[1,784\], received \[2,784\]/);
  });

  test('bad bodies -> 400 and the server keeps serving', async () => {
    for (const payload of ['{not json', '"a string"', '{"data": [[1], [2, 3]]}', '{"data": [["x"]]}', '{"data": []}', '{}', 'null']) {
      const res = await post('/predictions/neuralnet', payload);
      assert.equal(res.statusCode, 400, `${payload} -> ${res.statusCode} ${res.body}`);
      assert.ok(res.json().message.length > 10);
    }
    const missing = await post('/predictions/two_inputs', { data: { x: [[1, 2, 3]] } });
    assert.equal(missing.statusCode, 400);
    assert.match(missing.json().message, /needs input "idx"/);
    const ok = await post('/predictions/neuralnet', [[1]]);
    assert.equal(ok.statusCode, 200);
  });

  test('unknown model or version -> 404 in TorchServe form; version routes work', async () => {
    const m = await post('/predictions/nope', [[1]]);
    assert.equal(m.statusCode, 404);
    assert.deepEqual(Object.keys(m.json()).sort(), ['code', 'message', 'type']);
    assert.equal(m.json().type, 'ModelNotFoundException');
    const v = await post('/predictions/neuralnet/9.9', [[1]]);
    assert.equal(v.statusCode, 404);
    const ok = await post('/predictions/neuralnet/1.0', [[1]]);
    assert.equal(ok.statusCode, 200);
  });

  test('every response carries x-request-id; /ping is Healthy; OPTIONS / is OpenAPI', async () => {
    const ping = await app.inference.inject({ method: 'GET', url: '/ping' });
    assert.deepEqual(ping.json(), { status: 'Healthy' });
    assert.match(String(ping.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    const err = await post('/predictions/nope', [[1]]);
    assert.ok(err.headers['x-request-id']);
    const api = await app.inference.inject({ method: 'OPTIONS', url: '/' });
    assert.equal(api.json().openapi, '3.0.1');
    assert.ok(api.json().paths['/predictions/{model_name}']);
  });

  test('a body over max_request_size is refused with 413', async () => {
    const res = await post('/predictions/fashion_mlp', JSON.stringify({ data: new Array(20000).fill(new Array(784).fill(0.5)) }));
    assert.equal(res.statusCode, 413);
  });
});

function shapeOf(v: unknown): number[] {
  const s: number[] = [];
  while (Array.isArray(v)) {
    s.push(v.length);
    v = v[0];
  }
  return s;
}
