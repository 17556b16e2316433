/** The committed JSON Schema is the one generated from the layer table; the examples compile. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileArchitecture, layerTypes } from '../../src/compiler/index.js';
import { architectureSchema } from '../../src/compiler/schema.js';
import { readJson } from './helpers.js';

test('src/compiler/architecture.schema.json is up to date with the layer table', () => {
  const committed = readJson(join(process.cwd(), 'src', 'compiler', 'architecture.schema.json'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(architectureSchema())), 'regenerate it: see src/compiler/schema.ts');
});

test('every layer the issue lists is in the table', () => {
  const required = ['Linear', 'Identity', 'Flatten', 'Unflatten', 'ReLU', 'LeakyReLU', 'Sigmoid', 'Tanh', 'GELU', 'ELU', 'SiLU', 'Softmax',
    'LogSoftmax', 'Dropout', 'Dropout2d', 'BatchNorm1d', 'BatchNorm2d', 'LayerNorm', 'Conv1d', 'Conv2d', 'ConvTranspose2d', 'MaxPool2d',
    'AvgPool2d', 'AdaptiveAvgPool2d', 'Embedding', 'RNN', 'LSTM', 'GRU', 'Sequential'];
  for (const t of required) assert.ok(layerTypes().includes(t), t);
});

test('docs/architecture.md documents every layer and every example compiles', () => {
  const doc = readFileSync(join(process.cwd(), 'docs', 'architecture.md'), 'utf8');
  for (const t of layerTypes()) assert.match(doc, new RegExp(`\\b${t}\\b`), `docs/architecture.md should mention ${t}`);
  const dir = join(process.cwd(), 'examples', 'architectures');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 7);
  for (const f of files) {
    const model = compileArchitecture(readJson(join(dir, f)), null);
    assert.ok(model.onnx.length > 0, f);
  }
});
