/**
 * k8s/: `kubectl kustomize` builds it, every object validates against the Kubernetes OpenAPI
 * schemas (kubernetes-models, offline), and the objects fit together and with nnserve.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { CONFIG_KEYS } from '../../src/config.js';
import { Metrics } from '../../src/metrics.js';
import { ROOT } from '../helpers.js';
import { parseExposition } from './exposition.js';
import { requireTool } from './processes.js';

// What the manifests use of the objects; the schema validation checks the rest.
interface Container {
  name: string; image: string; command?: string[];
  ports?: { name: string; containerPort: number }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  env?: { name: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
  livenessProbe?: unknown; readinessProbe?: unknown;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[]; initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  volumes?: { name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }[];
}
interface K8sObject {
  apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>; data?: Record<string, string>; stringData?: Record<string, string>;
}
type Workload = K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };

const SCHEMAS: Record<string, { new (data: never): { validate(): void } }> = {
  'v1/Namespace': Namespace, 'v1/ConfigMap': ConfigMap, 'v1/Secret': Secret, 'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim, 'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

function validate(o: K8sObject): void {
  const Model = SCHEMAS[`${o.apiVersion}/${o.kind}`];
  assert.ok(Model, `no schema here for ${o.apiVersion} ${o.kind}`);
  new Model(o as never).validate();
}

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('k8s/', () => {
  let objects: K8sObject[];
  const find = <T extends K8sObject = K8sObject>(kind: string, name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `${kind}/${name} is in the kustomize build`);
    return o as T;
  };
  const workloads = () => objects.filter((o): o is Workload => o.kind === 'Deployment');

  before(() => {
    const kubectl = requireTool('kubectl', 'kubernetes-client');
    const built = spawnSync(kubectl, ['kustomize', join(ROOT, 'k8s')], { encoding: 'utf8' });
    assert.equal(built.status, 0, `kubectl kustomize k8s/ failed: ${built.stderr}`);
    objects = parseAllDocuments(built.stdout).map((d) => d.toJS() as K8sObject).filter(Boolean);
  });

  test('kustomize builds every object, in the nnserve namespace, valid against the Kubernetes schemas', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      'ConfigMap/nnserve-config', 'Deployment/nnserve', 'Deployment/redis', 'Deployment/trainer',
      'HorizontalPodAutoscaler/nnserve', 'Namespace/nnserve', 'PersistentVolumeClaim/model-store',
      'PodDisruptionBudget/nnserve', 'Secret/nnserve-api-keys', 'Service/nnserve', 'Service/nnserve-management', 'Service/redis',
    ]);
    for (const o of objects) {
      if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'nnserve', `${o.kind}/${o.metadata.name}`);
      validate(o);
    }
    // The validator does reject what the API server would.
    const broken = structuredClone(find<Workload>('Deployment', 'nnserve'));
    (broken.spec.template.spec.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = 'eighty';
    assert.throws(() => validate(broken), /containerPort must be integer/);
  });

  test('every pod runs non-root on a read-only root file system (the restricted pod security standard)', () => {
    for (const w of workloads()) {
      const pod = w.spec.template.spec;
      const where = `Deployment/${w.metadata.name}`;
      assert.equal(pod.securityContext?.runAsNonRoot, true, where);
      assert.ok(pod.securityContext?.runAsUser! > 0, `${where} names a non-root uid`);
      assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', where);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where} ${c.name}`);
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where} ${c.name}`);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${where} ${c.name}`);
        assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.cpu && c.resources.limits.memory, `${where} ${c.name} has requests and limits`);
        assert.doesNotMatch(c.image, /:latest$/, `${where} ${c.name} pins its image`);
      }
      assert.ok(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels), `${where} selects its own pods`);
    }
  });

  test('nnserve: probes, model store, settings and keys are wired to things that exist', () => {
    const d = find<Workload>('Deployment', 'nnserve');
    const pod = d.spec.template.spec;
    const c = pod.containers.find((x) => x.name === 'nnserve')!;
    assert.ok(c.livenessProbe && c.readinessProbe, 'liveness and readiness probes (test/deploy/probes.test.ts runs them)');
    assert.notDeepEqual(c.livenessProbe, c.readinessProbe, 'liveness must not wait for models to load');
    for (const v of pod.volumes ?? []) if (v.persistentVolumeClaim) find('PersistentVolumeClaim', v.persistentVolumeClaim.claimName);
    assert.ok(c.volumeMounts?.some((m) => m.mountPath === '/models' && pod.volumes?.find((v) => v.name === m.name)?.persistentVolumeClaim), 'the model store is the PVC');
    assert.ok(c.volumeMounts?.some((m) => m.mountPath === '/tmp'), 'a writable /tmp for unpacked archives and the key file');
    const pvc = find<K8sObject & { spec: { accessModes: string[] } }>('PersistentVolumeClaim', 'model-store');
    assert.deepEqual(pvc.spec.accessModes, ['ReadWriteMany'], 'every replica and the trainer mount the store');
    for (const e of c.envFrom ?? []) {
      if (e.configMapRef) {
        for (const key of Object.keys(find('ConfigMap', e.configMapRef.name).data ?? {})) {
          assert.ok(CONFIG_KEYS.some((k) => `NNSERVE_${k.toUpperCase()}` === key), `ConfigMap key ${key} is an nnserve setting`);
        }
      }
      if (e.secretRef) {
        const secret = find('Secret', e.secretRef.name);
        assert.equal(secret.data ?? secret.stringData, undefined, 'no API key is committed to git');
      }
    }
    assert.ok(c.envFrom?.some((e) => e.secretRef), 'the API keys come from the Secret');
    for (const e of c.env ?? []) assert.ok(CONFIG_KEYS.some((k) => `NNSERVE_${k.toUpperCase()}` === e.name), `${e.name} is an nnserve setting`);
  });

  test('Services and the PodDisruptionBudget select pods that exist, on ports they expose', () => {
    for (const s of objects.filter((o) => o.kind === 'Service') as (K8sObject & { spec: { selector: Record<string, string>; ports: { targetPort: string }[] } })[]) {
      const target = workloads().find((w) => matches(s.spec.selector, w.spec.template.metadata.labels));
      assert.ok(target, `Service/${s.metadata.name} selects a workload`);
      const ports = target.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => p.name);
      for (const p of s.spec.ports) assert.ok(ports.includes(p.targetPort), `Service/${s.metadata.name} port ${p.targetPort}`);
    }
    const pdb = find<K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget', 'nnserve');
    const covered = workloads().filter((w) => matches(pdb.spec.selector.matchLabels, w.spec.template.metadata.labels)).map((w) => w.metadata.name);
    assert.deepEqual(covered, ['nnserve']);
    find('Service', 'redis');
    const trainer = find<Workload>('Deployment', 'trainer');
    assert.ok(trainer.spec.template.spec.volumes?.some((v) => v.persistentVolumeClaim?.claimName === 'model-store'), 'the trainer writes to the model store');
  });

  test('the HPA scales nnserve on metrics that fall when load falls, served by the prometheus-adapter rules, with CPU as fallback', async () => {
    interface MetricSpec { type: string; pods?: { metric: { name: string } }; resource?: { name: string } }
    const hpa = find<K8sObject & { spec: { scaleTargetRef: { kind: string; name: string }; metrics: MetricSpec[]; behavior?: { scaleDown?: { selectPolicy?: string } } } }>('HorizontalPodAutoscaler', 'nnserve');
    assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
    find('Deployment', hpa.spec.scaleTargetRef.name);
    assert.ok(hpa.spec.metrics.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu'), 'CPU as fallback');
    assert.notEqual(hpa.spec.behavior?.scaleDown?.selectPolicy, 'Disabled');

    const adapter = parse(readFileSync(join(ROOT, 'k8s/prometheus-adapter/values.yaml'), 'utf8')) as {
      rules: { custom: { seriesQuery: string; name: { matches: string; as: string }; metricsQuery: string }[] };
    };
    // The series the rules read, as nnserve exports them.
    const metrics = new Metrics();
    metrics.inference('m', '1', 5, 1, 2, 1, 0.1);
    const served = { modelName: 'm', modelVersion: '1', batcher: { pending: 0 }, pool: { workers: [], targetWorkers: 1 } };
    metrics.attachRegistry({ all: () => [served], get: () => served, loadingCount: 0, ready: () => true });
    const exposed = parseExposition(await metrics.text());
    const custom = hpa.spec.metrics.filter((m) => m.type === 'Pods');
    assert.ok(custom.length > 0, 'a custom per-pod metric');
    for (const m of custom) {
      const rule = adapter.rules.custom.find((r) => r.name.as === m.pods!.metric.name);
      assert.ok(rule, `a prometheus-adapter rule serves ${m.pods!.metric.name}`);
      const series = /^'?([a-zA-Z_:][a-zA-Z0-9_:]*)\{/.exec(rule.seriesQuery)![1]!;
      assert.match(series, new RegExp(rule.name.matches));
      const sample = exposed.samples.find((s) => s.name === series);
      assert.ok(sample, `nnserve exports ${series}`);
      // A counter (or a histogram's _sum/_count) only grows: it must go through rate().
      const type = exposed.types.get(series) ?? exposed.types.get(series.replace(/_(sum|count|bucket)$/, ''));
      if (type !== 'gauge') assert.match(rule.metricsQuery, /rate\(<<\.Series>>/, `${series} is a ${type}: the adapter must rate() it`);
      assert.match(rule.metricsQuery, /by \(<<\.GroupBy>>\)/);
    }
  });
});
