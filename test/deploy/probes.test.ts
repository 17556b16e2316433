/**
 * The Kubernetes probes, on the paths k8s/deployment.yaml gives, against a real nnserve loading a
 * large model: liveness holds from the first second, readiness only once the model can serve
 * (TorchServe answered "Healthy" before a 10 GB model had loaded: its issue #2434).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { writeArchive } from '../../src/archive/archiver.js';
import { encodeModel } from '../../src/compiler/onnx-proto.js';
import { NEURALNET, ROOT, makeStore } from '../helpers.js';
import { parseExposition, value } from './exposition.js';
import { startNnserve, until } from './processes.js';

interface Probe { httpGet: { path: string; port: string | number } }
interface Container { name: string; ports: { name: string; containerPort: number }[]; livenessProbe: Probe; readinessProbe: Probe }

/** y = x W with W of 2048 x 8192 float32: a 64 MB initializer ONNX Runtime must read and place. */
async function addLargeModel(store: string): Promise<void> {
  const [k, n] = [2048, 8192];
  const onnx = encodeModel({
    irVersion: 8, opset: 17, producerName: 'nnserve-test', producerVersion: '1',
    graph: {
      name: 'large', nodes: [{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'matmul', attrs: {} }],
      initializers: [{ name: 'w', dtype: 'float32', dims: [k, n], raw: new Uint8Array(k * n * 4) }],
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', k] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', n] }],
    },
  });
  const file = join(mkdtempSync(join(tmpdir(), 'nnserve-large-')), 'model.onnx');
  writeFileSync(file, onnx);
  await writeArchive({ modelName: 'large', version: '1.0', serializedFile: file, handler: 'tensor', exportPath: store, format: 'no-archive', force: true });
}

test('readiness is false while a large model loads and true after; liveness holds throughout', async () => {
  const deployment = parse(readFileSync(join(ROOT, 'k8s/deployment.yaml'), 'utf8')) as { spec: { template: { spec: { containers: Container[] } } } };
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'nnserve')!;
  const store = await makeStore([NEURALNET]);
  await addLargeModel(store);
  const nnserve = await startNnserve(store, { NNSERVE_DISABLE_TOKEN_AUTHORIZATION: 'true' });
  // The image listens on 8080 (inference), 8081 (management), 8082 (metrics): the Dockerfile's ENV.
  const base: Record<number, string> = { 8080: nnserve.inference, 8081: nnserve.management, 8082: nnserve.metrics };
  const urlOf = (p: Probe) => {
    const port = typeof p.httpGet.port === 'number' ? p.httpGet.port : container.ports.find((x) => x.name === p.httpGet.port)!.containerPort;
    assert.ok(base[port], `probe port ${p.httpGet.port} is not one of nnserve's`);
    return base[port] + p.httpGet.path;
  };
  const live = urlOf(container.livenessProbe);
  const ready = urlOf(container.readinessProbe);
  const metrics = async () => parseExposition(await (await fetch(`${nnserve.metrics}/metrics`)).text());
  try {
    await until('nnserve listens', async () => (await fetch(live)).status > 0, nnserve);
    const seen: { live: number; ready: number; ping: number }[] = [];
    let whileLoading: ReturnType<typeof parseExposition> | undefined;
    for (;;) {
      const [l, r, p] = await Promise.all([fetch(live), fetch(ready), fetch(`${nnserve.inference}/ping`)]);
      seen.push({ live: l.status, ready: r.status, ping: p.status });
      if (r.ok) break;
      whileLoading ??= await metrics();
      assert.ok(seen.length < 3000, `not ready after ${seen.length} polls\n${nnserve.log()}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.deepEqual(seen.filter((s) => s.live !== 200), [], 'liveness failed while loading');
    assert.ok(seen.some((s) => s.ready === 503 && s.ping === 500), `readiness was never false while loading: ${JSON.stringify(seen.slice(0, 3))}`);
    assert.equal(value(whileLoading!, 'nnserve_ready'), 0);
    assert.ok(value(whileLoading!, 'nnserve_models_loading')! >= 1);

    assert.equal((await fetch(live)).status, 200);
    assert.equal((await fetch(`${nnserve.inference}/ping`)).status, 200);
    const after = await metrics();
    assert.equal(value(after, 'nnserve_ready'), 1);
    assert.equal(value(after, 'nnserve_models_loading'), 0);
    assert.equal(value(after, 'nnserve_models_loaded'), 2);
    const res = await fetch(`${nnserve.inference}/predictions/large`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: [new Array(2048).fill(1)] }),
    });
    assert.equal(res.status, 200);
    assert.equal(await nnserve.stop(), 0, `a clean exit on SIGTERM\n${nnserve.log()}`);
  } finally {
    await nnserve.stop();
  }
});
