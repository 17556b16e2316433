/**
 * Custom handlers: a module an operator drops into the repository's handlers/ folder is found
 * by name; code shipped inside an archive is refused unless allow_archive_handlers is on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { NEURALNET, ROOT, appWith } from '../helpers.js';

const NAME = `nnserve_test_double_${process.pid}`;
const OPERATOR_FILE = resolve(ROOT, 'handlers', `${NAME}.mjs`);
// A plain ES module, not compiled by tsc: JSON {"x": n} -> {"y": model(n), "handler": name}.
const OPERATOR_SOURCE = `export default {
  name: '${NAME}',
  preprocess(req) {
    const x = Number(req.body.x);
    return { feeds: { input: { dtype: 'float32', dims: [1, 1], data: Float32Array.of(x) } }, rows: 1 };
  },
  postprocess(outputs) {
    return { y: outputs[Object.keys(outputs)[0]].data[0], handler: '${NAME}' };
  },
};
`;

// Code inside an archive (CommonJS: the archive folder has no package.json saying "module").
const ARCHIVE_SOURCE = `module.exports = {
  name: 'shipped',
  preprocess() { return { feeds: { input: { dtype: 'float32', dims: [1, 1], data: Float32Array.of(1) } }, rows: 1 }; },
  postprocess() { return { shipped: true }; },
};
`;

describe('custom handlers', () => {
  after(() => rmSync(OPERATOR_FILE, { force: true }));

  test('an operator-dropped .mjs in handlers/ serves the archive that names it', async () => {
    writeFileSync(OPERATOR_FILE, OPERATOR_SOURCE);
    const app = await appWith([{ ...NEURALNET, handler: NAME }]);
    try {
      assert.deepEqual(app.loadFailures, []);
      const res = await app.inference.inject({ method: 'POST', url: '/predictions/neuralnet', payload: { x: 4 } });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.handler, NAME);
      assert.ok(Math.abs(body.y - 9) < 0.05, `NeuralNet(4) = ${body.y}, about 2*4 + 1`);
    } finally {
      await app.close();
    }
  });

  test('an unknown handler name is refused at load with the places searched', async () => {
    const app = await appWith([{ ...NEURALNET, handler: 'no_such_handler' }]);
    try {
      assert.equal(app.loadFailures.length, 1);
      assert.match(app.loadFailures[0]!.reason, /handler "no_such_handler" is neither built in \(tensor, image_classifier, text_classifier, regression\) nor a module in .*handlers \(\.js, \.mjs\)/);
    } finally {
      await app.close();
    }
  });

  test('handler code inside an archive is refused unless allow_archive_handlers=true', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnserve-handler-'));
    const file = join(dir, 'shipped_handler.js');
    writeFileSync(file, ARCHIVE_SOURCE);
    const refused = await appWith([{ ...NEURALNET, handler: file }]);
    try {
      assert.equal(refused.loadFailures.length, 1);
      assert.match(refused.loadFailures[0]!.reason, /code inside the archive; archives may not carry code unless the operator sets allow_archive_handlers=true/);
    } finally {
      await refused.close();
    }
    const allowed = await appWith([{ ...NEURALNET, handler: file }], { allow_archive_handlers: true });
    try {
      assert.deepEqual(allowed.loadFailures, []);
      const res = await allowed.inference.inject({ method: 'POST', url: '/predictions/neuralnet', payload: {} });
      assert.deepEqual(res.json(), { shipped: true });
    } finally {
      await allowed.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
