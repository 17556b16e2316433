import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS, isNnsError } from '../../src/errors.js';
import { handlerFile, validateManifest } from '../../src/archive/manifest.js';

// A manifest as TorchServe's torch-model-archiver 0.12 writes it (model-archiver/model_archiver/manifest_components/).
const TORCHSERVE_MANIFEST = {
  createdOn: '17/03/2025 14:02:51',
  runtime: 'python',
  archiverVersion: '0.12.0',
  model: { modelName: 'densenet161', serializedFile: 'model.onnx', handler: 'image_classifier', modelVersion: '1.0', requirementsFile: 'requirements.txt' },
};

function base(model: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    createdOn: '01/02/2025 03:04:05', runtime: 'onnx', archiverVersion: '0.1.0',
    model: { modelName: 'mlp', modelVersion: '2.0', handler: 'tensor', serializedFile: 'model.onnx', ...model },
    ...top,
  };
}

function invalid(raw: unknown, field: RegExp): void {
  assert.throws(() => validateManifest(raw, 'mlp.mar'), (e: unknown) => {
    assert.ok(isNnsError(e));
    assert.equal(e.code, ERRORS.MANIFEST_INVALID.code);
    assert.match(e.message, /^mlp\.mar: /);
    assert.match(e.message, field);
    return true;
  });
}

test('a TorchServe manifest validates; unknown TorchServe keys are dropped', () => {
  const m = validateManifest(TORCHSERVE_MANIFEST, 'densenet161.mar');
  assert.deepEqual(m, {
    createdOn: '17/03/2025 14:02:51', runtime: 'python', archiverVersion: '0.12.0',
    model: { modelName: 'densenet161', modelVersion: '1.0', handler: 'image_classifier', serializedFile: 'model.onnx' },
  });
});

test('modelVersion defaults to 1.0; optional fields are kept', () => {
  const spec = [{ name: 'x', dtype: 'float32', shape: ['batch', 3, -1] }];
  const m = validateManifest(base({
    modelVersion: undefined, inputs: spec, outputs: [{ name: 'y', dtype: 'int64', shape: [1] }],
    labels: 'index_to_name.json', configFile: 'model-config.yaml', extraFiles: ['vocab.txt'],
    architecture: 'arch.json', serializedFile: 'model.safetensors',
  }), 'mlp.mar');
  assert.equal(m.model.modelVersion, '1.0');
  assert.deepEqual(m.model.inputs, spec);
  assert.equal(m.model.architecture, 'arch.json');
  assert.deepEqual(m.model.extraFiles, ['vocab.txt']);
  assert.equal(m.model.labels, 'index_to_name.json');
});

test('each bad field is named in the error', () => {
  invalid(null, /"\(root\)"/);
  invalid([], /"\(root\)"/);
  invalid(base({}, { createdOn: '2025-03-17' }), /"createdOn".*dd\/mm\/YYYY/);
  invalid(base({}, { runtime: 'LSP' }), /"runtime".*onnx/);
  invalid(base({}, { archiverVersion: 3 }), /"archiverVersion"/);
  invalid(base({}, { model: 'mlp' }), /"model" must be an object/);
  invalid(base({ modelName: '1mlp' }), /"model\.modelName".*start.*letter/);
  invalid(base({ modelName: 'ml p' }), /"model\.modelName"/);
  invalid(base({ modelName: undefined }), /"model\.modelName" must be a non-empty string/);
  invalid(base({ modelVersion: '1.0/../x' }), /"model\.modelVersion"/);
  invalid(base({ modelVersion: 1 }), /"model\.modelVersion"/);
  invalid(base({ handler: '' }), /"model\.handler"/);
  invalid(base({ serializedFile: undefined }), /"model\.serializedFile"/);
  invalid(base({ serializedFile: 'model.pt' }), /"model\.serializedFile".*\.onnx/);
  invalid(base({ extraFiles: 'a,b' }), /"model\.extraFiles"/);
  invalid(base({ extraFiles: ['a', 3] }), /"model\.extraFiles\[1\]"/);
  invalid(base({ labels: 7 }), /"model\.labels"/);
});

test('tensor specs are checked entry by entry', () => {
  invalid(base({ inputs: [] }), /"model\.inputs"/);
  invalid(base({ inputs: [{ name: 'x', dtype: 'float', shape: [1] }] }), /"model\.inputs\[0\]\.dtype".*float32/);
  invalid(base({ inputs: [{ dtype: 'float32', shape: [1] }] }), /"model\.inputs\[0\]\.name"/);
  invalid(base({ outputs: [{ name: 'y', dtype: 'float32', shape: [1, -2] }] }), /"model\.outputs\[0\]\.shape\[1\]"/);
  invalid(base({ outputs: [{ name: 'y', dtype: 'float32', shape: [1.5] }] }), /"model\.outputs\[0\]\.shape\[0\]"/);
  invalid(base({ outputs: [{ name: 'y', dtype: 'float32', shape: 3 }] }), /"model\.outputs\[0\]\.shape"/);
  invalid(base({ inputs: [{ name: 'x', dtype: 'bool', shape: [] }, { name: 'x', dtype: 'bool', shape: [] }] }), /"model\.inputs\[1\]\.name".*unique/);
});

test('handlerFile tells built-in and installed handler names from archive files', () => {
  assert.equal(handlerFile('tensor'), undefined);
  assert.equal(handlerFile('image_classifier'), undefined);
  assert.equal(handlerFile('my_installed_handler'), undefined);
  assert.equal(handlerFile('my_handler.js'), 'my_handler.js');
  assert.equal(handlerFile('handlers/custom.mjs'), 'handlers/custom.mjs');
});
