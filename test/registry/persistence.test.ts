import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { writeArchive } from '../../src/archive/archiver.js';
import { FASHION_MLP, NEURALNET, makeStore, startServerProcess, type ServerProcess } from '../helpers.js';

async function addVersion(store: string, version: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nnserve-v-'));
  await writeArchive({ modelName: 'neuralnet', version, serializedFile: NEURALNET.onnx, exportPath: dir, force: true });
  const name = `neuralnet-v${version}.mar`;
  copyFileSync(join(dir, 'neuralnet.mar'), join(store, name));
  return name;
}

type Described = { modelVersion: string; minWorkers: number; workers: unknown[]; isDefault: boolean }[];
async function state(s: ServerProcess) {
  const list = (await (await s.manage('/models')).json()) as { models: { modelName: string }[] };
  const out: Record<string, { version: string; minWorkers: number; workers: number; isDefault: boolean }[]> = {};
  for (const { modelName } of list.models) {
    const d = (await (await s.manage(`/models/${modelName}/all`)).json()) as Described;
    out[modelName] = d.map((v) => ({ version: v.modelVersion, minWorkers: v.minWorkers, workers: v.workers.length, isDefault: v.isDefault })).sort((a, b) => a.version.localeCompare(b.version));
  }
  return out;
}

async function until(what: string, cond: () => Promise<boolean>, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
}

describe('snapshots', () => {
  test('register two versions, scale, set default, kill -9, start: the same state', async () => {
    const store = await makeStore([FASHION_MLP]);
    const v1 = await addVersion(store, '1.0');
    const v2 = await addVersion(store, '2.0');
    const env = { NNSERVE_LOAD_MODELS: 'fashion_mlp.mar' };
    const first = await startServerProcess(store, env);
    let expected;
    try {
      assert.equal((await first.manage(`/models?url=${v1}&initial_workers=1`, { method: 'POST' })).status, 200);
      assert.equal((await first.manage(`/models?url=${v2}&initial_workers=1`, { method: 'POST' })).status, 200);
      assert.equal((await first.manage('/models/neuralnet/2.0?min_worker=2&synchronous=true', { method: 'PUT' })).status, 200);
      assert.equal((await first.manage('/models/neuralnet/2.0/set-default', { method: 'PUT' })).status, 200);
      assert.equal((await first.manage('/models/fashion_mlp', { method: 'DELETE' })).status, 200);
      expected = await state(first);
      assert.deepEqual(expected, { neuralnet: [
        { version: '1.0', minWorkers: 1, workers: 1, isDefault: false },
        { version: '2.0', minWorkers: 2, workers: 2, isDefault: true },
      ] });
      const snap = join(store, '.nnserve/snapshot.json');
      assert.equal(statSync(snap).mode & 0o777, 0o600);
      assert.ok(JSON.parse(readFileSync(snap, 'utf8')).models.neuralnet);
    } finally {
      assert.equal(await first.kill('SIGKILL'), -1);
    }
    const second = await startServerProcess(store, env);
    try {
      assert.deepEqual(await state(second), expected, 'restored from the snapshot, not from load_models');
      const pred = await fetch(`${second.inference}/predictions/neuralnet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[[1]]' });
      assert.equal(pred.status, 200);
    } finally {
      await second.kill();
    }
  });

  test('a corrupt snapshot stops start-up with a message naming the file, and is left untouched', async () => {
    const store = await makeStore([NEURALNET]);
    const snap = join(store, '.nnserve');
    execFileSync('mkdir', ['-p', snap]);
    writeFileSync(join(snap, 'snapshot.json'), '{"models": {"x": 5}}');
    const proc = await startServerProcess(store).catch((e: Error) => e);
    assert.ok(proc instanceof Error);
    assert.match(proc.message, /snapshot.*snapshot\.json/);
    assert.equal(readFileSync(join(snap, 'snapshot.json'), 'utf8'), '{"models": {"x": 5}}');
  });
});

describe('replicas sharing a model store and Redis', () => {
  test('register / set-default / unregister on one replica reach the other within 1 s; a restarted replica catches up', async () => {
    const redisOk = (() => {
      try {
        return execFileSync('redis-cli', ['-h', '127.0.0.1', 'ping']).toString().trim() === 'PONG';
      } catch {
        return false;
      }
    })();
    assert.ok(redisOk, 'Redis must run at 127.0.0.1:6379 (.ci/run starts it)');
    const store = await makeStore([FASHION_MLP]);
    const v1 = await addVersion(store, '1.0');
    const v2 = await addVersion(store, '2.0');
    const db = String(1 + (process.pid % 14)); // a database of its own, flushed first
    execFileSync('redis-cli', ['-n', db, 'flushdb']);
    const env = { REDIS_URL: `redis://127.0.0.1:6379/${db}`, NNSERVE_LOAD_MODELS: 'fashion_mlp.mar' };
    const a = await startServerProcess(store, env);
    let b = await startServerProcess(store, env);
    try {
      assert.deepEqual(Object.keys(await state(b)), ['fashion_mlp']);
      const has = (s: ServerProcess, pred: (st: Awaited<ReturnType<typeof state>>) => boolean) => async () => pred(await state(s));

      assert.equal((await a.manage(`/models?url=${v1}&initial_workers=1`, { method: 'POST' })).status, 200);
      const t1 = await until('register to reach b', has(b, (s) => s.neuralnet?.length === 1 && s.neuralnet[0]!.workers === 1), 1000);
      assert.equal((await b.manage(`/models?url=${v2}&initial_workers=1`, { method: 'POST' })).status, 200);
      assert.equal((await b.manage('/models/neuralnet/2.0/set-default', { method: 'PUT' })).status, 200);
      const t2 = await until('set-default to reach a', has(a, (s) => s.neuralnet?.find((v) => v.version === '2.0')?.isDefault === true), 1000);
      const pred = await fetch(`${a.inference}/predictions/neuralnet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[[1]]' });
      assert.equal(pred.status, 200);

      await b.kill();
      assert.equal((await a.manage('/models/neuralnet/1.0', { method: 'DELETE' })).status, 200);
      assert.equal((await a.manage('/models/fashion_mlp?min_worker=2&synchronous=true', { method: 'PUT' })).status, 200);
      b = await startServerProcess(store, env);
      const expected = await state(a);
      assert.deepEqual(await state(b), expected, 'the restarted replica caught up from Redis');
      assert.equal((await b.manage('/models/fashion_mlp', { method: 'DELETE' })).status, 200);
      const t3 = await until('unregister to reach a', has(a, (s) => !('fashion_mlp' in s)), 1000);
      console.log(`# replica propagation: register ${t1} ms, set-default ${t2} ms, unregister ${t3} ms`);
    } finally {
      await a.kill();
      await b.kill();
      execFileSync('redis-cli', ['-n', db, 'flushdb']);
    }
  });
});

