import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { FASHION_MLP, NEURALNET, appWith, fixture, golden } from '../helpers.js';

describe('KServe Open Inference Protocol v2', () => {
  let app: App;
  before(async () => {
    app = await appWith([
      NEURALNET,
      FASHION_MLP,
      { name: 'two_inputs', onnx: fixture('models/two_inputs/model.onnx') },
      { name: 'double_input', onnx: fixture('models/double_input/model.onnx') },
    ]);
  });
  after(() => app.close());

  const get = (url: string) => app.inference.inject({ method: 'GET', url });
  const infer = (model: string, body: unknown, headers: Record<string, string> = {}) =>
    app.inference.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: body as string, headers: { 'content-type': 'application/json', ...headers } });

  test('server and model metadata, health', async () => {
    assert.deepEqual((await get('/v2')).json().extensions, ['binary_tensor_data']);
    assert.deepEqual((await get('/v2/health/live')).json(), { live: true });
    assert.deepEqual((await get('/v2/health/ready')).json(), { ready: true });
    const meta = (await get('/v2/models/two_inputs')).json();
    assert.deepEqual(meta.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }, { name: 'idx', datatype: 'INT64', shape: [-1] }]);
    assert.deepEqual(meta.outputs.map((o: { name: string }) => o.name), ['y', 's']);
    assert.equal(meta.platform, 'onnxruntime_onnx');
    assert.deepEqual((await get('/v2/models/neuralnet/versions/1.0')).json().versions, ['1.0']);
    assert.deepEqual((await get('/v2/models/neuralnet/ready')).json(), { name: 'neuralnet', ready: true });
  });

  test('JSON infer: FP32 + INT64 inputs, flat data, id echoed, outputs as PyTorch', async () => {
    const c = golden('two_inputs')[0]!;
    const res = await infer('two_inputs', {
      id: 'req-7',
      inputs: [
        { name: 'x', shape: c.inputs.x!.shape, datatype: 'FP32', data: c.inputs.x!.data },
        { name: 'idx', shape: c.inputs.idx!.shape, datatype: 'INT64', data: c.inputs.idx!.data },
      ],
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.id, 'req-7');
    assert.equal(body.model_name, 'two_inputs');
    assert.equal(body.model_version, '1.0');
    for (const o of body.outputs) {
      assert.deepEqual(o.shape, c.outputs[o.name]!.shape);
      assert.equal(o.datatype, 'FP32');
      assert.deepEqual(o.data, c.outputs[o.name]!.data);
    }
  });

  test('FP64 tensors and a requested subset of outputs', async () => {
    const c = golden('double_input')[0]!;
    const res = await infer('double_input', { inputs: [{ name: 'x', shape: c.inputs.x!.shape, datatype: 'FP64', data: c.inputs.x!.data }] });
    assert.deepEqual(res.json().outputs[0].data, c.outputs.output!.data);
    assert.equal(res.json().outputs[0].datatype, 'FP64');
    const two = golden('two_inputs')[0]!;
    const only = await infer('two_inputs', {
      inputs: [
        { name: 'x', shape: two.inputs.x!.shape, datatype: 'FP32', data: two.inputs.x!.data },
        { name: 'idx', shape: two.inputs.idx!.shape, datatype: 'INT64', data: two.inputs.idx!.data },
      ],
      outputs: [{ name: 's' }],
    });
    assert.deepEqual(only.json().outputs.map((o: { name: string }) => o.name), ['s']);
  });

  test('binary tensor extension round trip: binary input, binary output', async () => {
    const c = golden('fashion_mlp')[0]!;
    const input = Float32Array.from(c.inputs.input!.data);
    const header = Buffer.from(JSON.stringify({
      inputs: [{ name: 'input', shape: c.inputs.input!.shape, datatype: 'FP32', parameters: { binary_data_size: input.byteLength } }],
      parameters: { binary_data_output: true },
    }));
    const res = await app.inference.inject({
      method: 'POST', url: '/v2/models/fashion_mlp/infer',
      payload: Buffer.concat([header, Buffer.from(input.buffer)]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    });
    assert.equal(res.statusCode, 200, res.body);
    const hlen = Number(res.headers['inference-header-content-length']);
    const raw = res.rawPayload;
    const json = JSON.parse(raw.subarray(0, hlen).toString());
    const out = json.outputs[0];
    assert.deepEqual(out.shape, c.outputs.output!.shape);
    assert.equal(out.parameters.binary_data_size, raw.length - hlen);
    const bytes = raw.subarray(hlen);
    const got = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    const scale = Math.max(...c.outputs.output!.data.map(Math.abs));
    got.forEach((v, i) => assert.ok(Math.abs(v - c.outputs.output!.data[i]!) <= 1e-5 * scale));
  });

  test('binary bodies (borrowed from a pool, given back after the answer) never mix between concurrent requests', async () => {
    // 17000 rows of neuralnet's [batch, 1] input: 68 kB bodies, large enough to be pooled.
    const rows = 17_000;
    const xs = Array.from({ length: 16 }, (_, i) => Float32Array.from({ length: rows }, (_, k) => i - 8 + k / rows));
    const send = async (x: Float32Array, idLength: number) => {
      const header = Buffer.from(JSON.stringify({ id: 'w'.repeat(idLength), inputs: [{ name: 'input', shape: [rows, 1], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], parameters: { binary_data_output: true } }));
      const res = await app.inference.inject({
        method: 'POST', url: '/v2/models/neuralnet/infer', payload: Buffer.concat([header, Buffer.from(x.buffer)]),
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      });
      assert.equal(res.statusCode, 200, res.body);
      return res.rawPayload.subarray(Number(res.headers['inference-header-content-length'])).toString('base64');
    };
    const expected: string[] = [];
    for (const x of xs) expected.push(await send(x, 0));
    // Requests start a few event-loop turns apart, so each is read while earlier ones still wait
    // in the queue (their bodies must not be lent again yet) and after earlier answers have given
    // theirs back. Three waves; header lengths vary, so a buffer comes back with another padding.
    const turns = (n: number) => new Promise<void>((resolve) => {
      const step = (k: number) => (k === 0 ? resolve() : setImmediate(() => step(k - 1)));
      step(n);
    });
    for (let wave = 0; wave < 3; wave++) {
      const answers = await Promise.all(xs.map(async (x, i) => {
        await turns(4 * i);
        return send(x, (i * 5 + wave) % 11);
      }));
      answers.forEach((a, i) => assert.ok(a === expected[i], `wave ${wave}, request ${i}: another request's output`));
    }
  });

  test('binary input with JSON output, and raw binary (Inference-Header-Content-Length: 0)', async () => {
    const x = Float32Array.from([1, 2, 3]);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [3, 1], datatype: 'FP32', parameters: { binary_data_size: 12 } }] }));
    const res = await app.inference.inject({
      method: 'POST', url: '/v2/models/neuralnet/infer', payload: Buffer.concat([header, Buffer.from(x.buffer)]),
      headers: { 'content-type': 'application/json', 'inference-header-content-length': String(header.length) },
    });
    assert.equal(res.statusCode, 200, res.body);
    const g = golden('neuralnet')[0]!;
    assert.deepEqual(res.json().outputs[0].data.slice(0, 3), g.outputs.output!.data.slice(0, 3));
    const raw = await app.inference.inject({
      method: 'POST', url: '/v2/models/neuralnet/infer', payload: Buffer.from(x.buffer),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' },
    });
    assert.equal(raw.statusCode, 200);
    const h = Number(raw.headers['inference-header-content-length']);
    assert.deepEqual(JSON.parse(raw.rawPayload.subarray(0, h).toString()).outputs[0].shape, [3, 1]);
  });

  test('errors are {"error": msg} with 400/404', async () => {
    const cases: [string, unknown, Record<string, string>, number, RegExp][] = [
      ['nope', { inputs: [] }, {}, 404, /not found/i],
      ['neuralnet', { inputs: [] }, {}, 400, /non-empty "inputs"/],
      ['neuralnet', { inputs: [{ name: 'input', shape: [2, 1], datatype: 'FP32', data: [1] }] }, {}, 400, /needs 2 elements, got 1/],
      ['neuralnet', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'INT32', data: [1] }] }, {}, 400, /expects datatype FP32, received INT32/],
      ['neuralnet', { inputs: [{ name: 'wrong', shape: [1, 1], datatype: 'FP32', data: [1] }] }, {}, 400, /no input "wrong"/],
      ['neuralnet', { inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }, {}, 400, /expects shape \[batch,1\], received \[1,2\]/],
      ['neuralnet', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'FP32', parameters: { binary_data_size: 4 } }] }, { 'inference-header-content-length': '999' }, 400, /Inference-Header-Content-Length/],
      ['neuralnet', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'FP32', data: [1] }], outputs: [{ name: 'zzz' }] }, {}, 400, /no output "zzz"/],
    ];
    for (const [model, body, headers, status, message] of cases) {
      const res = await infer(model, JSON.stringify(body), headers);
      assert.equal(res.statusCode, status, `${JSON.stringify(body)} -> ${res.body}`);
      assert.deepEqual(Object.keys(res.json()), ['error']);
      assert.match(res.json().error, message);
    }
    assert.equal((await get('/v2/models/nope')).statusCode, 404);
    assert.deepEqual(Object.keys((await get('/v2/models/nope')).json()), ['error']);
  });
});
