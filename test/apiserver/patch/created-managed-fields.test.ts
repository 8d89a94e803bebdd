// A create's managedFields come from a direct walk of the new object
// (addedFieldsV1) rather than the general compare-and-render path. The two
// must agree: updateManagedFields(null, obj) takes the direct walk,
// updateManagedFields({}, obj) the general path over the same empty "old".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { updateManagedFields } from '../../../src/apiserver/patch/managed.ts';

const kinds: [string, string, string, Record<string, unknown>][] = [
  ['', 'v1', 'Pod', {
    metadata: { name: 'p', namespace: 'ns', labels: { app: 'x', 'a.b/c': 'd' }, annotations: {}, finalizers: ['f1', 'f2'], ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1', controller: true }] },
    spec: {
      containers: [
        { name: 'c', image: 'img:1', ports: [{ containerPort: 80, protocol: 'TCP', name: 'http' }, { containerPort: 53, protocol: 'UDP' }], env: [{ name: 'A', value: '1' }, { name: 'B', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }], resources: {}, volumeMounts: [{ name: 'v', mountPath: '/v' }], args: ['a', 'b'] },
        { name: 'd', image: 'img:2', command: [], securityContext: { runAsUser: 1 } },
      ],
      initContainers: [], volumes: [{ name: 'v', projected: { sources: [{ serviceAccountToken: { path: 'token' } }, { configMap: { name: 'x', items: [{ key: 'k', path: 'p' }] } }] } }],
      tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
      nodeSelector: { zone: 'a' }, affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'k', operator: 'In', values: ['a', 'b'] }] }] } } },
      securityContext: {}, hostNetwork: false, priority: 0, dnsConfig: null, imagePullSecrets: [{ name: 's' }],
    },
    status: { phase: 'Pending', conditions: [{ type: 'Ready', status: 'False' }] },
  }],
  ['apps', 'v1', 'Deployment', {
    metadata: { name: 'd', namespace: 'ns', generateName: 'd-' },
    spec: { replicas: 3, selector: { matchLabels: { app: 'x' } }, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 1 } },
      template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'img' }] } } },
  }],
  ['', 'v1', 'Service', { metadata: { name: 's', namespace: 'ns' }, spec: { ports: [{ port: 80, protocol: 'TCP', targetPort: 8080 }, { port: 80, protocol: 'UDP' }], selector: { app: 'x' }, type: 'ClusterIP', clusterIPs: ['10.0.0.1'] } }],
  ['', 'v1', 'ConfigMap', { metadata: { name: 'c', namespace: 'ns' }, data: { a: '1', 'b.txt': 'x' }, binaryData: {} }],
  ['', 'v1', 'Secret', { metadata: { name: 's', namespace: 'ns' }, type: 'Opaque', data: { k: 'dg==' } }],
  ['', 'v1', 'Namespace', { metadata: { name: 'n' }, spec: { finalizers: ['kubernetes'] } }],
  ['', 'v1', 'Node', { metadata: { name: 'n' }, spec: { taints: [{ key: 'k', effect: 'NoSchedule' }], podCIDRs: ['10.0.0.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '1.2.3.4' }], capacity: { cpu: '2' } } }],
  ['rbac.authorization.k8s.io', 'v1', 'ClusterRole', { metadata: { name: 'r' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }], aggregationRule: { clusterRoleSelectors: [{ matchLabels: { a: 'b' } }] } }],
  ['discovery.k8s.io', 'v1', 'EndpointSlice', { metadata: { name: 'e', namespace: 'ns' }, addressType: 'IPv4', endpoints: [{ addresses: ['1.1.1.1'], conditions: { ready: true } }], ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }],
  ['coordination.k8s.io', 'v1', 'Lease', { metadata: { name: 'l', namespace: 'ns' }, spec: { holderIdentity: 'h', leaseDurationSeconds: 15 } }],
  ['example.com', 'v1', 'Unknown', { metadata: { name: 'u' }, spec: { list: [{ a: 1 }, { a: 2 }], map: { x: { y: [] } }, empty: {} } }],
  ['', 'v1', 'ConfigMap', {}],
  ['', 'v1', 'ConfigMap', { metadata: { name: 'only-identity', uid: 'x', resourceVersion: '5', creationTimestamp: 't' } }],
];

const opts = (group: string, version: string, kind: string, subresource?: string) => ({
  manager: 'kubectl-create', operation: 'Update' as const, kind: { group, version, kind }, now: '2026-01-02T03:04:05Z', ...(subresource ? { subresource } : {}),
});

test('a create\'s managedFields from the direct walk equal the general path\'s, for every kind here', () => {
  for (const [group, version, kind, body] of kinds) {
    const obj = { apiVersion: group ? `${group}/${version}` : version, kind, ...body };
    for (const sub of [undefined, 'status']) {
      const fast = updateManagedFields(null, obj, opts(group, version, kind, sub));
      const general = updateManagedFields({}, obj, opts(group, version, kind, sub));
      assert.equal(fast, general, `${kind} ${sub ?? ''}`);
      assert.is(JSON.stringify(fast), JSON.stringify(general), `${kind}: same key order`);
    }
  }
});

test('the direct walk leaves the input alone unless owned, and takes managedFields: [] as none', () => {
  const obj = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', managedFields: [] }, data: { a: '1' } };
  const before = JSON.stringify(obj);
  const out = updateManagedFields(null, obj, opts('', 'v1', 'ConfigMap')) as any;
  assert.is(JSON.stringify(obj), before);
  assert.equal(out, updateManagedFields({}, obj, opts('', 'v1', 'ConfigMap')));
  assert.equal(out.metadata.managedFields[0].fieldsV1, { 'f:data': { '.': {}, 'f:a': {} } });
  const owned = updateManagedFields(null, obj, { ...opts('', 'v1', 'ConfigMap'), owned: true });
  assert.ok(owned === obj);
});

// Seeded random objects: maps, lists, scalars, nulls, and keyed lists with good, missing and duplicate keys.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
function value(r: () => number, depth: number): unknown {
  const k = r();
  if (depth > 3 || k < 0.4) return pick(r, [1, 'a', true, null, 0, '']);
  if (k < 0.6) return Array.from({ length: Math.floor(r() * 3) }, () => value(r, depth + 1));
  return map(r, depth + 1);
}
function map(r: () => number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['a', 'b', 'name', 'x.y']) if (r() < 0.4) out[k] = value(r, depth);
  return out;
}
const container = (r: () => number) => ({ ...(r() < 0.9 ? { name: pick(r, ['c', 'd', 'e']) } : {}), image: 'i', ...(r() < 0.5 ? { ports: [{ containerPort: pick(r, [80, 81]), protocol: pick(r, ['TCP', 'UDP']) }] } : {}), ...(r() < 0.4 ? { extra: map(r, 1) } : {}) });

test('random pods and config maps: the direct walk equals the general path', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', ...(r() < 0.5 ? { labels: map(r, 1) } : {}) },
      spec: { containers: Array.from({ length: Math.floor(r() * 3) }, () => container(r)), ...map(r, 0), ...(r() < 0.3 ? { tolerations: [map(r, 1)] } : {}) } };
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: map(r, 0), ...(r() < 0.3 ? { other: value(r, 0) } : {}) };
    for (const [obj, kind] of [[pod, 'Pod'], [cm, 'ConfigMap']] as const) {
      const fast = updateManagedFields(null, obj, opts('', 'v1', kind));
      const general = updateManagedFields({}, obj, opts('', 'v1', kind));
      assert.is(JSON.stringify(fast), JSON.stringify(general), `seed ${seed} ${kind}`);
    }
  }
});

test.run();
