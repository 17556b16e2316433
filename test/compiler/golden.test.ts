/**
 * Golden tests: every fixture made by tools/make_compiler_fixtures.py (PyTorch's outputs for a
 * layer, a function, a seed-tutorial model) must come out of the compiled ONNX model within
 * 1e-4 x max|output|, with the weights read from safetensors and from torch.save's .pth.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileArchitecture } from '../../src/compiler/index.js';
import { readStateDict } from '../../src/weights/index.js';
import { GOLDEN, TOLERANCE, goldenCases, readIo, readJson, relativeError, run } from './helpers.js';

const results: string[] = [];

for (const name of goldenCases()) {
  for (const file of ['weights.safetensors', 'weights.pth']) {
    const weights = join(GOLDEN, name, file);
    if (!existsSync(weights)) continue;
    test(`${name} (${file}) matches PyTorch`, async () => {
      const arch = readJson(join(GOLDEN, name, 'architecture.json'));
      const model = compileArchitecture(arch, await readStateDict(weights));
      const io = readIo(join(GOLDEN, name, 'io.safetensors'));
      const out = await run(model, io.inputs);
      assert.deepEqual(Object.keys(out).sort(), [...io.outputs.keys()].sort());
      let worst = 0;
      for (const [k, expected] of io.outputs) {
        const err = relativeError(out[k]!, expected);
        worst = Math.max(worst, err);
        assert.ok(err <= TOLERANCE, `${k}: relative error ${err.toExponential(2)} (shape ours [${out[k]!.dims}], torch [${expected.shape}])`);
      }
      results.push(`${name.padEnd(36)} ${file.padEnd(20)} ${worst.toExponential(2)}`);
    });
  }
}

test('the comparison catches a slightly wrong weight', async () => {
  const name = 'seed_simple_cnn';
  const sd = await readStateDict(join(GOLDEN, name, 'weights.safetensors'));
  const bias = sd.get('fc2.bias')!;
  const data = Float32Array.from(bias.data as Float32Array);
  data[3]! += 0.01;
  sd.set('fc2.bias', { ...bias, data });
  const io = readIo(join(GOLDEN, name, 'io.safetensors'));
  const out = await run(compileArchitecture(readJson(join(GOLDEN, name, 'architecture.json')), sd), io.inputs);
  assert.ok(relativeError(out.output!, io.outputs.get('output')!) > TOLERANCE);
});

test('report', () => {
  console.log(`max relative error per case:\n${results.join('\n')}`);
});
