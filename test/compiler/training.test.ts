/**
 * The training-graph contract besides the gradient values (grad.test.ts): one session serves
 * every batch size, the eval graph with parameter inputs reproduces PyTorch's outputs, the
 * inputs and outputs are listed as documented, and bad options are refused with their codes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileEvalWithParamInputs, compileTraining } from '../../src/compiler/index.js';
import { type TensorData, createSession } from '../../src/runtime/ort.js';
import { readStateDict } from '../../src/weights/index.js';
import { gradError, readGradCase } from './grad-helpers.js';
import { GOLDEN, TOLERANCE, readIo, readJson, relativeError } from './helpers.js';

function rowsOf(t: { dtype: 'float32' | 'int64'; shape: number[]; data: Float32Array | BigInt64Array }, start: number, end: number) {
  const per = t.data.length / t.shape[0]!;
  return { dtype: t.dtype, dims: [end - start, ...t.shape.slice(1)], data: t.data.slice(start * per, end * per) } as TensorData;
}

for (const name of ['fashion_cnn', 'seed_lstm_model', 'seed_char_rnn']) {
  test(`${name}: one training session runs every batch size; the mean of per-row gradients is the batch gradient`, async () => {
    const c = readGradCase(name);
    const tg = compileTraining(c.arch, c.options);
    assert.deepEqual(tg.inputs.map((i) => i.shape[0]), ['batch', 'batch']);
    const session = await createSession(tg.onnx, { engine: 'native', intraOpThreads: 1 });
    try {
      const weights: Record<string, TensorData> = {};
      for (const p of [...tg.params, ...tg.constants]) {
        const w = c.weights.get(p.name)!;
        weights[p.name] = { dtype: w.dtype, dims: w.shape, data: w.data };
      }
      const [xName, x] = [...c.feeds].find(([k]) => k !== 'target')!;
      const target = c.feeds.get('target')!;
      const n = x.shape[0]!;
      const sums = new Map<string, Float32Array>();
      for (let r = 0; r < n; r++) {
        const out = await session.run({ ...weights, [xName]: rowsOf(x, r, r + 1), target: rowsOf(target, r, r + 1) });
        for (const [key, gname] of Object.entries(tg.outputs.grads)) {
          const g = out[gname]!.data as Float32Array;
          const acc = sums.get(key) ?? new Float32Array(g.length);
          g.forEach((v, i) => { acc[i]! += v / n; });
          sums.set(key, acc);
        }
      }
      const part = await session.run({ ...weights, [xName]: rowsOf(x, 0, n - 1), target: rowsOf(target, 0, n - 1) });
      assert.equal(part[tg.outputs.predictions[0]!]!.dims[0], n - 1);
      for (const [key, acc] of sums) {
        const expected = c.expected.get(`grad.${key}`)!;
        const err = gradError({ dtype: 'float32', dims: expected.shape, data: acc }, expected);
        assert.ok(err <= 1e-4, `${key}: ${err}`);
      }
    } finally {
      await session.release();
    }
  });
}

test('an LSTM training graph runs every sequence length (Scan over a symbolic seq)', async () => {
  const c = readGradCase('seed_lstm_model');
  const tg = compileTraining(c.arch, c.options);
  assert.deepEqual(tg.inputs[0]!.shape, ['batch', 'seq', 1]);
  const session = await createSession(tg.onnx, { engine: 'native', intraOpThreads: 1 });
  try {
    const feeds: Record<string, TensorData> = {};
    for (const p of tg.params) {
      const w = c.weights.get(p.name)!;
      feeds[p.name] = { dtype: w.dtype, dims: w.shape, data: w.data };
    }
    for (const seq of [1, 3, 12]) {
      const data = Float32Array.from({ length: 2 * seq }, (_, i) => Math.sin(i));
      const out = await session.run({ ...feeds, x: { dtype: 'float32', dims: [2, seq, 1], data }, target: { dtype: 'float32', dims: [2, seq, 1], data: data.map((v) => v / 2) } });
      assert.deepEqual(out.output!.dims, [2, seq, 1]);
      for (const name of Object.values(tg.outputs.grads)) assert.ok((out[name]!.data as Float32Array).every(Number.isFinite), name);
    }
  } finally {
    await session.release();
  }
});

for (const name of ['seed_simple_cnn', 'batchnorm2d', 'lstm_bidirectional_2layers', 'functional', 'embedding', 'dropout']) {
  test(`${name}: the eval graph with parameter inputs gives PyTorch's eval outputs`, async () => {
    const arch = readJson(join(GOLDEN, name, 'architecture.json'));
    const sd = await readStateDict(join(GOLDEN, name, 'weights.safetensors'));
    const ev = compileEvalWithParamInputs(arch);
    assert.deepEqual([...ev.params, ...ev.constants].sort(), [...sd.keys()].filter((k) => !k.endsWith('num_batches_tracked')).sort());
    const io = readIo(join(GOLDEN, name, 'io.safetensors'));
    const session = await createSession(ev.onnx, { engine: 'native', intraOpThreads: 1 });
    try {
      const feeds: Record<string, TensorData> = {};
      for (const k of [...ev.params, ...ev.constants]) {
        const w = sd.get(k)!;
        feeds[k] = { dtype: w.dtype, dims: w.shape, data: w.data };
      }
      for (const [k, t] of io.inputs) feeds[k] = { dtype: t.dtype, dims: t.shape, data: t.data };
      const out = await session.run(feeds);
      for (const [k, expected] of io.outputs) assert.ok(relativeError(out[k]!, expected) <= TOLERANCE, k);
    } finally {
      await session.release();
    }
  });
}

test('inputs, outputs, masks and frozen parameters are listed as documented', () => {
  const drop = readGradCase('dropout_train');
  const tg = compileTraining(drop.arch, drop.options);
  assert.deepEqual(tg.masks, [{ name: 'mask.2', module: '2', p: 0.5, shape: ['batch', 8] }]);
  assert.deepEqual(tg.inputs.map((i) => i.name), ['input', 'target', 'mask.2']);
  assert.equal(tg.inputs[1]!.dtype, 'int64');
  assert.deepEqual(tg.outputs.predictions, ['output']);
  assert.equal(compileTraining(drop.arch, { ...drop.options, train: false }).masks.length, 0);

  const frozen = compileTraining(drop.arch, { loss: { type: 'CrossEntropyLoss' }, frozen: ['0.weight', '3.*'] });
  assert.deepEqual(frozen.params.map((p) => p.name), ['0.bias']);
  assert.deepEqual(frozen.constants.map((p) => p.name), ['0.weight', '3.weight', '3.bias']);
  assert.deepEqual(Object.keys(frozen.outputs.grads), ['0.bias']);

  const bn = readGradCase('batchnorm2d_train');
  const bg = compileTraining(bn.arch, bn.options);
  assert.deepEqual(Object.keys(bg.outputs.updates).sort(), ['1.num_batches_tracked', '1.running_mean', '1.running_var']);
  assert.deepEqual(bg.constants.find((c) => c.name === '1.num_batches_tracked'), { name: '1.num_batches_tracked', shape: [], dtype: 'int64' });
  assert.deepEqual(compileTraining(bn.arch, { ...bn.options, train: false }).outputs.updates, {});
});

test('bad options are refused with their error codes', () => {
  const arch = readGradCase('linear_relu_ce').arch;
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return 'no error';
  };
  const train = (opts: object) => () => compileTraining(arch, opts as never);
  assert.equal(code(train({ loss: { type: 'HingeLoss' } })), 'NNS_ERR_TRAIN_LOSS_INVALID');
  assert.equal(code(train({ loss: { type: 'MSELoss', reduction: 'none' } })), 'NNS_ERR_TRAIN_LOSS_INVALID');
  assert.equal(code(train({ loss: { type: 'BCELoss', pos_weight: [1] } })), 'NNS_ERR_TRAIN_LOSS_INVALID');
  assert.equal(code(train({ loss: { type: 'CrossEntropyLoss', weight: [1, 2] } })), 'NNS_ERR_TRAIN_LOSS_INVALID');
  assert.equal(code(train({ loss: { type: 'CrossEntropyLoss', label_smoothing: 2 } })), 'NNS_ERR_TRAIN_LOSS_INVALID');
  assert.equal(code(train({ loss: { type: 'MSELoss' }, output: 'nope' })), 'NNS_ERR_TRAIN_LOSS_INVALID');
  assert.equal(code(train({ loss: { type: 'MSELoss' }, frozen: ['fc.*'] })), 'NNS_ERR_TRAIN_OPTIONS_INVALID');
  const oneDim = { name: 'M', inputs: [{ name: 'x', shape: ['batch'] }], sequential: [{ type: 'Tanh' }] };
  assert.equal(code(() => compileTraining(oneDim, { loss: { type: 'CrossEntropyLoss' } })), 'NNS_ERR_TRAIN_LOSS_INVALID');
  const alpha = { name: 'M', inputs: [{ name: 'x', shape: ['batch', 3] }], sequential: [{ type: 'Linear', in_features: 3, out_features: 2 }, { type: 'AlphaDropout' }] };
  assert.equal(code(() => compileTraining(alpha, { loss: { type: 'MSELoss' } })), 'NNS_ERR_TRAIN_NOT_DIFFERENTIABLE');
  assert.equal(code(() => compileTraining(alpha, { loss: { type: 'MSELoss' }, train: false })), 'no error');
  const reflect = { name: 'M', inputs: [{ name: 'x', shape: ['batch', 1, 5, 5] }], sequential: [{ type: 'Conv2d', in_channels: 1, out_channels: 1, kernel_size: 1 }, { type: 'Conv2d', in_channels: 1, out_channels: 2, kernel_size: 3, padding: 1, padding_mode: 'reflect' }] };
  assert.equal(code(() => compileTraining(reflect, { loss: { type: 'MSELoss' } })), 'NNS_ERR_TRAIN_NOT_DIFFERENTIABLE');
});

test('F.dropout(training=True) in a traced forward takes a mask input named after its node', async () => {
  const arch = {
    name: 'F',
    inputs: [{ name: 'x', shape: ['batch', 3] }],
    modules: { fc: { type: 'Linear', in_features: 3, out_features: 2 } },
    graph: [
      { op: 'placeholder', name: 'x' },
      { op: 'call_module', name: 'fc', target: 'fc', args: ['x'] },
      { op: 'call_function', name: 'dropout', target: 'torch.nn.functional.dropout', args: ['fc', 0.25], kwargs: { training: true } },
      { op: 'output', name: 'output', args: ['dropout'] },
    ],
  };
  const tg = compileTraining(arch, { loss: { type: 'MSELoss', reduction: 'sum' } });
  assert.deepEqual(tg.masks, [{ name: 'mask.dropout', module: 'dropout', p: 0.25, shape: ['batch', 2] }]);
  const session = await createSession(tg.onnx, { engine: 'native', intraOpThreads: 1 });
  try {
    const f = (dims: number[], v: number[]): TensorData => ({ dtype: 'float32', dims, data: Float32Array.from(v) });
    const out = await session.run({
      'fc.weight': f([2, 3], [1, 0, 0, 0, 1, 0]), 'fc.bias': f([2], [0, 0]), x: f([1, 3], [2, 3, 4]),
      target: f([1, 2], [0, 0]), 'mask.dropout': f([1, 2], [0, 4 / 3]),
    });
    assert.deepEqual(Array.from(out.output!.data as Float32Array), [0, Math.fround(3 * Math.fround(4 / 3))]);
    // d/dW of sum((mask * W x)^2) = 2 mask^2 (W x) x^T: zero for the dropped row.
    const dw = Array.from(out['grad.fc.weight']!.data as Float32Array);
    assert.deepEqual(dw.slice(0, 3), [0, 0, 0]);
    assert.ok(Math.abs(dw[4]! - 2 * (16 / 9) * 3 * 3) < 1e-4);
  } finally {
    await session.release();
  }
});
