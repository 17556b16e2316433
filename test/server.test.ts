import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { NEURALNET, ROOT, makeStore } from './helpers.js';

test('`nnserve start` serves the three ports on real sockets, from a config file, and stops cleanly on SIGTERM', async () => {
  const store = await makeStore([NEURALNET]);
  const port = 19000 + Math.floor(Math.random() * 900);
  const cfg = join(mkdtempSync(join(tmpdir(), 'nnserve-cfg-')), 'config.properties');
  writeFileSync(cfg, [
    `inference_address=http://127.0.0.1:${port}`,
    `management_address=http://127.0.0.1:${port + 1}`,
    `metrics_address=http://127.0.0.1:${port + 2}`,
    `model_store=${store}`,
    'load_models=neuralnet.mar',
    `key_file=${join(dirname(cfg), 'key_file.json')}`,
  ].join('\n'));
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli.js'), 'start', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const until = Date.now() + 20_000;
    while (!log.includes('nnserve started')) {
      if (Date.now() > until) throw new Error(log);
      await new Promise((r) => setTimeout(r, 50));
    }
    const ping = await fetch(`http://127.0.0.1:${port}/ping`);
    assert.deepEqual(await ping.json(), { status: 'Healthy' });
    assert.ok(ping.headers.get('x-request-id'));
    const pred = await fetch(`http://127.0.0.1:${port}/predictions/neuralnet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data": [[1.0], [2.0]]}' });
    assert.equal(pred.status, 200);
    assert.equal(((await pred.json()) as number[][]).length, 2);
    assert.equal((await fetch(`http://127.0.0.1:${port + 1}/models`)).status, 401, 'management needs the key');
    const key = (JSON.parse(readFileSync(join(dirname(cfg), 'key_file.json'), 'utf8')) as { management: { key: string } }).management.key;
    assert.equal(statSync(join(dirname(cfg), 'key_file.json')).mode & 0o777, 0o600);
    const models = await (await fetch(`http://127.0.0.1:${port + 1}/models`, { headers: { authorization: `Bearer ${key}` } })).json();
    assert.deepEqual(models, { models: [{ modelName: 'neuralnet', modelUrl: 'neuralnet.mar' }] });
    const metrics = await (await fetch(`http://127.0.0.1:${port + 2}/metrics?name[]=ts_inference_requests_total`)).text();
    assert.match(metrics, /ts_inference_requests_total\{model_name="neuralnet",model_version="1.0",hostname="[^"]+",\} 1\.0/);
    assert.doesNotMatch(metrics, /Requests2XX/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, log);
});

test('a bad config value stops start-up with a message naming the key', async () => {
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli.js'), 'start', '--model-store', '/nonexistent'], {
    env: { ...process.env, NNSERVE_JOB_QUEUE_SIZE: '-3' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 1);
  assert.match(err, /job_queue_size/);
});
