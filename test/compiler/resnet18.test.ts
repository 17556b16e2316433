/**
 * torchvision's resnet18 from its architecture JSON (written by tools/torch_export.py):
 * - always: with the deterministic synthetic weights, against PyTorch's committed output;
 * - where Debian's torch and torchvision are installed: exported on the fly with random
 *   weights, read back from both model.pth and weights.safetensors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileArchitecture, compileFromFiles, initStateDict } from '../../src/compiler/index.js';
import { FIXTURES, TOLERANCE, readIo, readJson, relativeError, run } from './helpers.js';
import { syntheticStateDict } from './synthetic-weights.js';

const PYTHON = '/usr/bin/python3';

test('resnet18 with synthetic weights matches PyTorch', async () => {
  const arch = readJson(join(FIXTURES, 'resnet18', 'architecture.json'));
  const weights = syntheticStateDict(initStateDict(arch));
  const t0 = performance.now();
  const model = compileArchitecture(arch, weights);
  const compileMs = performance.now() - t0;
  assert.deepEqual(model.inputs, [{ name: 'x', dtype: 'float32', shape: ['batch', 3, 64, 64] }]);
  assert.deepEqual(model.outputs, [{ name: 'output', dtype: 'float32', shape: ['batch', 1000] }]);
  const io = readIo(join(FIXTURES, 'resnet18', 'io.safetensors'));
  const out = await run(model, io.inputs);
  const err = relativeError(out.output!, io.outputs.get('output')!);
  console.log(`resnet18 synthetic weights: relative error ${err.toExponential(2)}, compile ${compileMs.toFixed(0)} ms`);
  assert.ok(err <= TOLERANCE, `relative error ${err}`);
});

function torchvisionAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
}

test('resnet18 exported by tools/torch_export.py round-trips (.pth and safetensors)', { skip: !torchvisionAvailable() && 'needs /usr/bin/python3 with torch and torchvision' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nnserve-resnet18-'));
  try {
    const r = spawnSync(PYTHON, [join(process.cwd(), 'tools', 'torch_export.py'), 'torchvision.models:resnet18', dir,
      '--input-shape', '2,3,96,96', '--example-io', '--save-pth', '--seed', '1'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const io = readIo(join(dir, 'io.safetensors'));
    for (const weights of ['weights.safetensors', 'model.pth']) {
      const model = await compileFromFiles(join(dir, 'architecture.json'), join(dir, weights));
      const out = await run(model, io.inputs);
      const err = relativeError(out.output!, io.outputs.get('output')!);
      console.log(`resnet18 exported (${weights}): relative error ${err.toExponential(2)}`);
      assert.ok(err <= TOLERANCE, `${weights}: relative error ${err}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
