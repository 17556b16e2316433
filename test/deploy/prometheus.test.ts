/**
 * The acceptance test of the metrics: a real Prometheus (Debian's package) scrapes a real nnserve
 * under load; every PromQL query of the Grafana dashboard must return data, and the latency
 * quantiles the dashboard shows must agree with what the load client measured.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NEURALNET, ROOT, makeStore, startServerProcess } from '../helpers.js';
import { parseExposition } from './exposition.js';
import { freePort, requireTool, run, until } from './processes.js';

interface Target { expr: string; legendFormat?: string }
interface Panel { title: string; type: string; targets?: Target[]; panels?: Panel[] }
interface Dashboard { panels: Panel[]; templating: { list: { name: string; definition?: string }[] } }

const DASHBOARD = join(ROOT, 'deploy/grafana/dashboards/nnserve.json');
/**
 * Poisson arrivals at a model with batchSize 16: the wait for a batch to fill (a sum of exponential
 * gaps, ~150 ms for the first request of a batch) spreads latencies smoothly over 1-300 ms, as
 * queueing does in production, well above what the client itself adds. maxBatchDelay (300 ms)
 * only sends off the last, partial batch.
 */
const RATE_PER_S = 100;
const LOAD_MS = 10_000;

function panels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
}

function post(agent: Agent, url: string, body: string): Promise<{ status: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Nearest-rank quantile of the client's latencies, in seconds. */
function quantile(sortedMs: number[], q: number): number {
  return sortedMs[Math.max(0, Math.ceil(q * sortedMs.length) - 1)]! / 1000;
}

test('a real Prometheus scraping nnserve under load answers every dashboard query; its quantiles match the client', async (t) => {
  const prometheus = requireTool('prometheus', 'prometheus');
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  const store = await makeStore([{ ...NEURALNET, modelConfig: 'minWorkers: 1\nbatchSize: 16\nmaxBatchDelay: 300\n' }]);
  const nnserve = await startServerProcess(store, { NNSERVE_DISABLE_TOKEN_AUTHORIZATION: 'true' });
  const promPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'nnserve-prometheus-'));
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global:', '  scrape_interval: 1s',
    'scrape_configs:', '  - job_name: nnserve', '    static_configs:', `      - targets: ["${new URL(nnserve.metrics).host}"]`,
  ].join('\n') + '\n');
  const prom = run(prometheus, [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn',
  ]);
  const api = `http://127.0.0.1:${promPort}/api/v1`;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  try {
    await until('Prometheus ready', async () => (await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok, prom);
    await until('a first scrape of the idle server', async () => {
      const r = (await (await fetch(`${api}/query?query=${encodeURIComponent('ts_inference_requests_total')}`)).json()) as { data: { result: unknown[] } };
      return r.data.result.length > 0;
    }, prom);

    const url = `${nnserve.inference}/predictions/neuralnet`;
    const clientLag = monitorEventLoopDelay({ resolution: 5 });
    clientLag.enable();
    const ok: number[] = [];
    const sent: Promise<void>[] = [];
    const start = performance.now();
    for (let next = start, i = 0; ; i++) {
      next += (-Math.log(1 - Math.random()) * 1000) / RATE_PER_S;
      if (next - start > LOAD_MS) break;
      const wait = next - performance.now();
      if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
      // One request in a hundred is malformed, so the failure panels have something to show.
      const bad = i % 100 === 99;
      sent.push(post(agent, url, bad ? '{"data": [[1.0, 2.0]]}' : `{"data": [[${(i % 10) / 10}]]}`).then((r) => {
        assert.equal(r.status, bad ? 400 : 200);
        if (!bad) ok.push(r.ms);
      }));
    }
    await Promise.all(sent);
    clientLag.disable();
    const loadSeconds = (performance.now() - start) / 1000;
    await new Promise((r) => setTimeout(r, 2500)); // two more scrapes
    ok.sort((a, b) => a - b);

    // Every sample nnserve exposes reached Prometheus (its text parser took TorchServe's trailing commas).
    const exposed = new Set(parseExposition(await (await fetch(`${nnserve.metrics}/metrics`)).text()).samples.map((s) => s.name));
    const stored = (await (await fetch(`${api}/label/__name__/values?match[]=${encodeURIComponent('{job="nnserve"}')}`)).json()) as { data: string[] };
    assert.deepEqual([...exposed].filter((n) => !stored.data.includes(n)), [], 'exposed samples missing from Prometheus');

    // The window covers the whole load and the zeros before it.
    const window = `${Math.ceil(loadSeconds) + 8}s`;
    const promql = (expr: string) => expr.replaceAll('$__rate_interval', window).replaceAll('$model', 'neuralnet').replaceAll('$job', 'nnserve');
    const query = async (expr: string) => {
      const r = (await (await fetch(`${api}/query?query=${encodeURIComponent(promql(expr))}`)).json()) as
        { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      assert.equal(r.status, 'success', `${expr}: ${r.error}`);
      return r.data.result;
    };

    const empty: string[] = [];
    for (const p of panels(dashboard)) {
      for (const target of p.targets ?? []) {
        const result = await query(target.expr);
        if (!result.some((s) => Number.isFinite(Number(s.value[1])))) empty.push(`${p.title} / ${target.legendFormat}: ${promql(target.expr)}`);
      }
    }
    assert.deepEqual(empty, [], 'dashboard queries that returned no data');
    for (const v of dashboard.templating.list.filter((x) => x.definition)) {
      const m = /^label_values\((.+), (\w+)\)$/.exec(v.definition!);
      assert.ok(m, `variable ${v.name}: ${v.definition}`);
      const values = (await (await fetch(`${api}/label/${m[2]}/values?match[]=${encodeURIComponent(promql(m[1]!))}`)).json()) as { data: string[] };
      assert.ok(values.data.includes(v.name === 'job' ? 'nnserve' : 'neuralnet'), `variable ${v.name} lists ${values.data}`);
    }

    const report: string[] = [];
    const far: string[] = [];
    for (const title of ['Request latency p50 / p95 / p99', '$model: latency']) {
      const panel = panels(dashboard).find((p) => p.title === title);
      assert.ok(panel, title);
      for (const target of panel.targets!) {
        const q = Number(target.legendFormat!.slice(1)) / 100;
        const server = Number((await query(target.expr))[0]!.value[1]);
        const client = quantile(ok, q);
        const error = Math.abs(server - client) / client;
        report.push(`${title} ${target.legendFormat}: Prometheus ${(server * 1000).toFixed(2)} ms, client ${(client * 1000).toFixed(2)} ms, ${(error * 100).toFixed(1)}% apart`);
        if (error > 0.2) far.push(report.at(-1)!);
      }
    }
    // Stalls of either side's event loop put time between what the client and nnserve measure.
    const serverLag = Number((await query('max_over_time(nodejs_eventloop_lag_max_seconds{job="nnserve"}[$__rate_interval])'))[0]?.value[1]);
    t.diagnostic(`${ok.length} requests in ${loadSeconds.toFixed(1)} s; ${report.join('; ')}; event-loop lag max: nnserve ${(serverLag * 1000).toFixed(0)} ms, client ${(clientLag.max / 1e6).toFixed(0)} ms`);
    assert.deepEqual(far, [], 'quantiles more than 20% away from the client quantiles');
  } finally {
    agent.destroy();
    await prom.stop();
    await nnserve.kill();
  }
});
