import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, readConfigFile } from '../src/config.js';

test('defaults are TorchServe\'s addresses and limits', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.inference_address, 'http://127.0.0.1:8080');
  assert.equal(c.management_address, 'http://127.0.0.1:8081');
  assert.equal(c.metrics_address, 'http://127.0.0.1:8082');
  assert.equal(c.job_queue_size, 100);
  assert.equal(c.max_request_size, 6553500);
  assert.ok(Object.isFrozen(c));
});

test('precedence: environment NNSERVE_<KEY> > command line > config.properties', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nnserve-cfg-'));
  const file = join(dir, 'config.properties');
  writeFileSync(file, '# TorchServe style\ninference_address=http://127.0.0.1:7000\njob_queue_size=5\nvmargs=-Xmx1g\nload_models=a.mar\n');
  const c = loadConfig({
    file: readConfigFile(file),
    overrides: { load_models: 'b.mar' },
    env: { NNSERVE_INFERENCE_ADDRESS: 'http://127.0.0.1:9080' },
  });
  assert.equal(c.inference_address, 'http://127.0.0.1:9080');
  assert.equal(c.load_models, 'b.mar');
  assert.equal(c.job_queue_size, 5);
});

test('invalid values fail at boot naming the key and the source', () => {
  assert.throws(() => loadConfig({ env: { NNSERVE_JOB_QUEUE_SIZE: 'lots' } }), /job_queue_size.*NNSERVE_JOB_QUEUE_SIZE.*integer/);
  assert.throws(() => loadConfig({ env: {}, overrides: { engine: 'cuda' } }), /engine.*"native" or "wasm"/);
  assert.throws(() => loadConfig({ env: { NNSERVE_METRICS_ADDRESS: '8082' } }), /metrics_address/);
  const dir = mkdtempSync(join(tmpdir(), 'nnserve-cfg-'));
  writeFileSync(join(dir, 'bad.properties'), 'just words\n');
  assert.throws(() => readConfigFile(join(dir, 'bad.properties')), /line 1: expected key=value/);
});
