/**
 * The batch axis is symbolic ("batch"): one compiled model serves any batch size, and a row's
 * result does not depend on the rows batched with it (dynamic batching concatenates on axis 0).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileArchitecture } from '../../src/compiler/index.js';
import { readStateDict } from '../../src/weights/index.js';
import { GOLDEN, TOLERANCE, readIo, readJson, relativeError, run } from './helpers.js';

for (const name of ['seed_simple_cnn', 'seed_lstm_model', 'functional', 'seed_sequential_batchnorm_dropout']) {
  test(`${name}: each row alone gives the batched result`, async () => {
    const model = compileArchitecture(readJson(join(GOLDEN, name, 'architecture.json')), await readStateDict(join(GOLDEN, name, 'weights.safetensors')));
    assert.equal(model.inputs[0]!.shape[0], 'batch');
    for (const o of model.outputs) assert.equal(o.shape[0], 'batch', o.name);
    const io = readIo(join(GOLDEN, name, 'io.safetensors'));
    const [inputName, x] = [...io.inputs][0]!;
    const rows = x.shape[0]!;
    const rowSize = x.data.length / rows;
    for (let r = 0; r < rows; r++) {
      const one = new Map([[inputName, { ...x, shape: [1, ...x.shape.slice(1)], data: (x.data as Float32Array).slice(r * rowSize, (r + 1) * rowSize) }]]);
      const out = await run(model, one);
      for (const [k, expected] of io.outputs) {
        const per = expected.data.length / rows;
        const row = { ...expected, shape: [1, ...expected.shape.slice(1)], data: (expected.data as Float32Array).slice(r * per, (r + 1) * per) };
        assert.ok(relativeError(out[k]!, row) <= TOLERANCE, `${k} row ${r}`);
      }
    }
  });
}
