/**
 * Architecture JSON + weights archives served over HTTP: PyTorch model -> tools/torch_export.py
 * (the fixtures' architecture.json) -> nnserve archive -> POST /predictions == PyTorch's output.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildApp, type App } from '../../src/app.js';
import { writeArchive } from '../../src/archive/archiver.js';
import { FIXTURES, GOLDEN, readIo, TOLERANCE } from '../compiler/helpers.js';
import { testConfig } from '../helpers.js';
import { tempDir } from '../fixtures/archives/build-zips.js';
import type { StateDictTensor } from '../../src/weights/index.js';

const CASES = ['seed_my_model', 'seed_neural_net', 'seed_simple_cnn', 'seed_simple_rnn', 'seed_lstm_model', 'seed_char_rnn', 'seed_sequential_batchnorm_dropout', 'gru_bidirectional_2layers', 'conv2d', 'embedding', 'batchnorm2d', 'layernorm'];

function nested(t: StateDictTensor): unknown {
  const flat = Array.from(t.data as Float32Array, (v) => (typeof v === 'bigint' ? Number(v) : v));
  const build = (offset: number, dims: number[]): unknown => {
    if (dims.length === 0) return flat[offset];
    const [n, ...rest] = dims;
    const size = rest.reduce((a, b) => a * b, 1);
    return Array.from({ length: n! }, (_, i) => build(offset + i * size, rest));
  };
  return build(0, t.shape);
}

describe('architecture archives over HTTP equal PyTorch', () => {
  let app: App;
  let store: string;
  before(async () => {
    store = await tempDir('nnserve-arch-store-');
    for (const c of CASES) {
      for (const fmt of ['pth', 'safetensors']) {
        await writeArchive({
          modelName: `${c}_${fmt}`, version: '1.0', architecture: join(GOLDEN, c, 'architecture.json'),
          serializedFile: join(GOLDEN, c, `weights.${fmt}`), exportPath: store, force: true,
        });
      }
    }
    app = await buildApp(testConfig({ model_store: store, default_workers_per_model: 1, enable_model_api: true }));
    assert.deepEqual(app.loadFailures, []);
  });
  after(() => app.close());

  for (const c of CASES) {
    test(`${c}: served output equals PyTorch's from .pth and .safetensors`, async () => {
      const { inputs, outputs } = readIo(join(GOLDEN, c, 'io.safetensors'));
      for (const fmt of ['pth', 'safetensors']) {
        const model = `${c}_${fmt}`;
        const spec = app.registry.get(model).context.inputs;
        const data = spec.length === 1 ? nested(inputs.get(spec[0]!.name)!) : Object.fromEntries(spec.map((s) => [s.name, nested(inputs.get(s.name)!)]));
        const res = await app.inference.inject({ method: 'POST', url: `/predictions/${model}`, payload: { data } as object, headers: { 'content-type': 'application/json' } });
        assert.equal(res.statusCode, 200, `${model}: ${res.body.slice(0, 300)}`);
        const body = res.json();
        const names = [...outputs.keys()];
        for (const name of names) {
          const torch = outputs.get(name)!;
          const got = ((names.length === 1 ? body : body[name]) as unknown[]).flat(Infinity) as number[];
          const want = torch.data as Float32Array;
          assert.equal(got.length, want.length, `${model}.${name} size`);
          let diff = 0;
          let scale = 0;
          for (let i = 0; i < want.length; i++) {
            diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
            scale = Math.max(scale, Math.abs(want[i]!));
          }
          assert.ok(diff <= TOLERANCE * (scale || 1), `${model}.${name}: max|diff| ${diff} > 1e-4 x ${scale}`);
        }
      }
    });
  }

  test('a bad architecture or malicious weights: 400 naming the problem, nothing registered, nothing left in the store', async () => {
    const before = readdirSync(store).sort();
    const h = { authorization: `Bearer ${app.keys.management}` };
    const bad: [string, string, RegExp][] = [
      [join(FIXTURES, 'golden', 'conv2d', 'architecture.json'), join(FIXTURES, 'bad-weights', 'os_system.pth'), /os|system|not allowed|unsafe/i],
      [join(FIXTURES, 'golden', 'conv2d', 'architecture.json'), join(FIXTURES, 'golden', 'linear', 'weights.safetensors'), /missing|unexpected|state_dict/i],
    ];
    const dir = await tempDir();
    const { readFileSync, writeFileSync } = await import('node:fs');
    const unknownLayer = join(dir, 'architecture.json');
    writeFileSync(unknownLayer, readFileSync(join(GOLDEN, 'seed_neural_net', 'architecture.json'), 'utf8').replace('"Linear"', '"Linearr"'));
    bad.push([unknownLayer, join(GOLDEN, 'seed_neural_net', 'weights.safetensors'), /module "fc1".*Linearr/]);
    for (const [i, [arch, weights, message]] of bad.entries()) {
      const name = `bad${i}`;
      await writeArchive({ modelName: name, version: '1.0', architecture: arch, serializedFile: weights, exportPath: dir, force: true });
      const boundary = 'xx' + i;
      const payload = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}.mar"\r\n\r\n`),
        readFileSync(join(dir, `${name}.mar`)),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const res = await app.management.inject({ method: 'POST', url: '/models', payload, headers: { ...h, 'content-type': `multipart/form-data; boundary=${boundary}` } });
      assert.equal(res.statusCode, 400, res.body);
      assert.match(res.json().message, message);
      assert.equal(app.registry.has(name), false);
    }
    assert.deepEqual(readdirSync(store).sort(), before);
  });
});
