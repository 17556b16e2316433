/**
 * docker-compose.yml and what it mounts (Prometheus config, Grafana provisioning, the dashboard),
 * checked without Docker: the services fit together, and Prometheus' own promtool accepts its config.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { CONFIG_KEYS } from '../../src/config.js';
import { ROOT } from '../helpers.js';
import { requireTool } from './processes.js';

interface Service {
  build?: string; image?: string; command?: string[]; ports?: string[]; volumes?: string[];
  environment?: Record<string, string>; read_only?: boolean; tmpfs?: string[];
}
const composeText = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const yamlFile = <T>(p: string) => parse(readFileSync(join(ROOT, p), 'utf8')) as T;
/** A bind mount's host path (relative to the compose file) and its container path. */
const mounts = (s: Service) => (s.volumes ?? []).map((v) => v.split(':')).map(([from, to]) => ({ from: from!, to: to! }));

test('compose runs nnserve, the trainer, Redis, Prometheus and Grafana; images pinned, ports on loopback only', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), ['grafana', 'nnserve', 'prometheus', 'redis', 'trainer']);
  for (const [name, s] of Object.entries(compose.services)) {
    assert.ok(s.image, `${name} names its image`);
    if (!s.build) assert.match(s.image!, /^[\w./-]+:(?!latest$)[\w.-]+$/, `${name}: pinned tag`);
    for (const p of s.ports ?? []) assert.match(p, /^127\.0\.0\.1:/, `${name} publishes ${p} on loopback only`);
  }
  assert.match(composeText, /trainer:\n(.*\n)*?\s+# PLACEHOLDER until the training issue lands/, 'the trainer placeholder is marked');
  for (const name of ['nnserve', 'trainer']) {
    const s = compose.services[name]!;
    assert.equal(s.build, '.', `${name} is built from the Dockerfile`);
    assert.ok(mounts(s).some((m) => m.from === 'model-store' && m.to === '/models'), `${name} mounts the shared model store`);
    assert.equal(s.read_only, true);
    assert.deepEqual(s.tmpfs, ['/tmp']);
    for (const key of Object.keys(s.environment ?? {}).filter((k) => k.startsWith('NNSERVE_'))) {
      assert.ok(CONFIG_KEYS.some((k) => `NNSERVE_${k.toUpperCase()}` === key), `${key} is an nnserve setting`);
    }
  }
  assert.ok('model-store' in compose.volumes);
  assert.deepEqual(compose.services.nnserve!.ports, ['127.0.0.1:8080:8080', '127.0.0.1:8081:8081', '127.0.0.1:8082:8082']);
});

test("Prometheus scrapes nnserve's metrics port; promtool accepts the config", () => {
  const promtool = requireTool('promtool', 'prometheus');
  const m = mounts(compose.services.prometheus!).find((x) => x.to === '/etc/prometheus/prometheus.yml')!;
  const file = join(ROOT, m.from);
  const checked = spawnSync(promtool, ['check', 'config', file], { encoding: 'utf8' });
  assert.equal(checked.status, 0, checked.stdout + checked.stderr);
  const config = yamlFile<{ scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] }>(m.from);
  const job = config.scrape_configs.find((j) => j.job_name === 'nnserve')!;
  assert.deepEqual(job.static_configs[0]!.targets, ['nnserve:8082'], "nnserve's metrics port (the image's NNSERVE_METRICS_ADDRESS)");
  assert.equal(job.metrics_path ?? '/metrics', '/metrics');
});

test('Grafana gets the Prometheus datasource and the dashboard provisioned, the dashboard as home page', () => {
  const g = compose.services.grafana!;
  const provisioning = mounts(g).find((x) => x.to === '/etc/grafana/provisioning')!.from;
  const dashboards = mounts(g).find((x) => x.to === '/var/lib/grafana/dashboards')!;
  const ds = yamlFile<{ datasources: { type: string; url: string; uid: string }[] }>(join(provisioning, 'datasources/prometheus.yml')).datasources[0]!;
  assert.equal(ds.type, 'prometheus');
  assert.equal(ds.url, 'http://prometheus:9090', 'the compose service');
  const provider = yamlFile<{ providers: { type: string; options: { path: string } }[] }>(join(provisioning, 'dashboards/nnserve.yml')).providers[0]!;
  assert.equal(provider.options.path, dashboards.to, 'the provider reads the mounted dashboards');
  const home = g.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
  assert.ok(home.startsWith(dashboards.to + '/') && existsSync(join(ROOT, dashboards.from, home.slice(dashboards.to.length))), home);
});

test('the dashboard has the panels SREs asked for, from the histograms, and a panel per model', () => {
  interface Panel { title: string; type: string; repeat?: string; targets?: { expr: string }[]; datasource?: { uid: string } }
  const d = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboards/nnserve.json'), 'utf8')) as {
    uid: string; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] };
  };
  assert.equal(d.uid, 'nnserve');
  const exprs = d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const wanted: [string, RegExp][] = [
    ['requests/s', /rate\(ts_inference_requests_total/],
    ['error rate', /nnserve_requests_failed_total/],
    ['p50', /histogram_quantile\(0\.5, sum by \(le\) \(rate\(nnserve_request_duration_seconds_bucket/],
    ['p95', /histogram_quantile\(0\.95, sum by \(le\) \(rate\(nnserve_request_duration_seconds_bucket/],
    ['p99', /histogram_quantile\(0\.99, sum by \(le\) \(rate\(nnserve_request_duration_seconds_bucket/],
    ['queue depth', /nnserve_queue_depth/],
    ['batch size', /nnserve_batch_size/],
    ['workers', /nnserve_workers/],
    ['CPU', /rate\(process_cpu_seconds_total/],
    ['memory', /process_resident_memory_bytes/],
  ];
  for (const [what, re] of wanted) assert.ok(exprs.some((e) => re.test(e)), `a panel shows ${what}`);
  assert.ok(d.panels.some((p) => p.repeat === 'model'), 'panels repeat per model');
  assert.ok(d.templating.list.some((v) => v.name === 'model'));
  const datasource = d.templating.list.find((v) => v.type === 'datasource');
  assert.equal(datasource?.query, 'prometheus');
  for (const p of d.panels.filter((x) => x.type !== 'row')) assert.equal(p.datasource?.uid, '${datasource}', `${p.title} uses the datasource variable`);
});
