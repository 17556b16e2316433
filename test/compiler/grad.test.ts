/**
 * Gradient checks: for every fixture of tools/make_grad_fixtures.py (a layer, function or loss
 * in PyTorch 1.13, train or eval mode, with torch's own dropout masks), one run of the compiled
 * training graph must give PyTorch's loss, model outputs, parameter gradients and updated
 * buffers within 1e-4 x max|torch| per tensor, and the same set of gradients.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileTraining } from '../../src/compiler/index.js';
import { gradCases, gradError, readGradCase, runTraining } from './grad-helpers.js';

const TOLERANCE = 1e-4;
const report: string[] = [];

for (const name of gradCases()) {
  test(`${name}: loss and gradients match PyTorch`, async () => {
    const c = readGradCase(name);
    const tg = compileTraining(c.arch, c.options);
    const expectedGrads = [...c.expected.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5)).sort();
    assert.deepEqual(tg.params.map((p) => p.name).sort(), expectedGrads, 'the parameters that get a gradient');
    const expectedUpdates = [...c.expected.keys()].filter((k) => k.startsWith('update.')).map((k) => k.slice(7)).sort();
    assert.deepEqual(Object.keys(tg.outputs.updates).sort(), expectedUpdates, 'the updated buffers');
    const out = await runTraining(tg, c.weights, c.feeds);
    let worst = 0;
    let worstKey = '';
    for (const [key, expected] of c.expected) {
      const ours = key === 'loss' ? out[tg.outputs.loss]
        : key.startsWith('grad.') ? out[tg.outputs.grads[key.slice(5)]!]
          : key.startsWith('update.') ? out[tg.outputs.updates[key.slice(7)]!]
            : out[key.slice('output.'.length)];
      const err = gradError(ours, expected);
      if (err > worst) [worst, worstKey] = [err, key];
      assert.ok(err <= TOLERANCE, `${key}: relative error ${err.toExponential(2)} (ours [${ours?.dims}], torch [${expected.shape}])`);
    }
    report.push(`${name.padEnd(40)} ${worst.toExponential(2)} ${worstKey}`);
  });
}

test('the check catches a slightly wrong weight', async () => {
  const c = readGradCase('linear_relu_ce');
  const tg = compileTraining(c.arch, c.options);
  const w = c.weights.get('2.weight')!;
  const data = Float32Array.from(w.data as Float32Array);
  data[1]! += 0.01;
  c.weights.set('2.weight', { ...w, data });
  const out = await runTraining(tg, c.weights, c.feeds);
  assert.ok(gradError(out[tg.outputs.grads['0.weight']!], c.expected.get('grad.0.weight')!) > TOLERANCE);
});

test('report', () => {
  console.log(`max relative error per case (tensor):\n${report.join('\n')}`);
});
