// The admission chain and each default plugin, against an in-memory context.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  admissionPlugins, defaultAdmissionPlugins, defaultTolerationSeconds, namespaceLifecycle, priority, runAdmission, serviceAccount, systemPriorityClasses,
  type AdmissionAttributes, type AdmissionContext, type AdmissionPlugin, type GroupVersionResource,
} from '../../../src/apiserver/admission/index.ts';
import { isStatusError, type StatusError } from '../../../src/apiserver/errors.ts';

class MemoryContext implements AdmissionContext {
  objects = new Map<string, any>();
  created: any[] = [];
  private key(r: GroupVersionResource, ns: string, name: string) {
    return `${r.group}/${r.resource}/${ns}/${name}`;
  }
  put(r: GroupVersionResource, ns: string, obj: any): this {
    this.objects.set(this.key(r, ns, obj.metadata.name), obj);
    return this;
  }
  async get(r: GroupVersionResource, ns: string, name: string) {
    return structuredClone(this.objects.get(this.key(r, ns, name)) ?? null);
  }
  async list(r: GroupVersionResource, ns?: string) {
    const prefix = ns === undefined ? `${r.group}/${r.resource}/` : `${r.group}/${r.resource}/${ns}/`;
    return [...this.objects].filter(([k]) => k.startsWith(prefix)).map(([, v]) => structuredClone(v));
  }
  async create(r: GroupVersionResource, ns: string, obj: any) {
    this.created.push(obj);
    this.put(r, ns, obj);
    return obj;
  }
}

const R = {
  namespaces: { group: '', version: 'v1', resource: 'namespaces' },
  pods: { group: '', version: 'v1', resource: 'pods' },
  configmaps: { group: '', version: 'v1', resource: 'configmaps' },
  serviceaccounts: { group: '', version: 'v1', resource: 'serviceaccounts' },
  nodes: { group: '', version: 'v1', resource: 'nodes' },
  priorityclasses: { group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses' },
  deployments: { group: 'apps', version: 'v1', resource: 'deployments' },
  lsar: { group: 'authorization.k8s.io', version: 'v1', resource: 'localsubjectaccessreviews' },
};
const kinds: Record<string, string> = { namespaces: 'Namespace', pods: 'Pod', configmaps: 'ConfigMap', serviceaccounts: 'ServiceAccount', nodes: 'Node', priorityclasses: 'PriorityClass', deployments: 'Deployment', localsubjectaccessreviews: 'LocalSubjectAccessReview' };

function attrs(operation: AdmissionAttributes['operation'], resource: GroupVersionResource, namespace: string, object: any, o: Partial<AdmissionAttributes> = {}): AdmissionAttributes {
  return {
    operation, resource, kind: { group: resource.group, version: resource.version, kind: kinds[resource.resource]! },
    subresource: '', namespace, name: object?.metadata?.name ?? o.oldObject?.metadata?.name ?? '', object, oldObject: null,
    user: { username: 'alice', groups: ['system:authenticated'] }, dryRun: false, ...o,
  };
}

const ns = (name: string, phase = 'Active') => ({ metadata: { name }, status: { phase } });
const sa = (namespace: string, name: string, extra: any = {}) => ({ metadata: { namespace, name }, ...extra });
const pod = (name: string, spec: any = {}, metadata: any = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, ...metadata }, spec: { containers: [{ name: 'app', image: 'nginx' }], ...spec } });

function world(): MemoryContext {
  return new MemoryContext()
    .put(R.namespaces, '', ns('default'))
    .put(R.namespaces, '', ns('team'))
    .put(R.namespaces, '', ns('doomed', 'Terminating'))
    .put(R.serviceaccounts, 'default', sa('default', 'default'))
    .put(R.serviceaccounts, 'team', sa('team', 'default'))
    .put(R.serviceaccounts, 'team', sa('team', 'robot', { imagePullSecrets: [{ name: 'regcred' }] }))
    .put(R.serviceaccounts, 'team', sa('team', 'quiet', { automountServiceAccountToken: false }));
}

async function rejected(p: Promise<unknown>, code: number, message?: string): Promise<StatusError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isStatusError(e), `a StatusError, got ${String(e)}`);
    assert.is(e.code, code, e.message);
    if (message !== undefined) assert.is(e.message, message);
    return e;
  }
  assert.unreachable('admitted');
  throw new Error('unreachable');
}

const seq = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

// NamespaceLifecycle

test('NamespaceLifecycle: creates in a missing namespace are 404 namespaces, in a terminating one 403 with the cause', async () => {
  const p = namespaceLifecycle();
  const ctx = world();
  await p.admit!(attrs('CREATE', R.configmaps, 'team', { metadata: { name: 'c' } }), ctx);
  const missing = await rejected(p.admit!(attrs('CREATE', R.configmaps, 'nope', { metadata: { name: 'c' } }), ctx), 404, 'namespaces "nope" not found');
  assert.equal(missing.details, { name: 'nope', group: '', kind: 'namespaces' });
  const term = await rejected(p.admit!(attrs('CREATE', R.configmaps, 'doomed', { metadata: { name: 'c' } }), ctx), 403,
    'configmaps "c" is forbidden: unable to create new content in namespace doomed because it is being terminated');
  assert.equal(term.details?.causes, [{ reason: 'NamespaceTerminating', message: 'namespace doomed is being terminated', field: 'metadata.namespace' }]);
  // generateName stands in for the name.
  await rejected(p.admit!(attrs('CREATE', R.deployments, 'doomed', { metadata: { generateName: 'web-' } }), ctx), 403,
    'deployments.apps "web-" is forbidden: unable to create new content in namespace doomed because it is being terminated');
  // deletionTimestamp alone marks it terminating too.
  ctx.put(R.namespaces, '', { metadata: { name: 'going', deletionTimestamp: '2030-01-01T00:00:00Z' }, status: { phase: 'Active' } });
  await rejected(p.admit!(attrs('CREATE', R.configmaps, 'going', { metadata: { name: 'c' } }), ctx), 403);
});

test('NamespaceLifecycle: updates and deletes in a terminating namespace pass; updates in a missing one are 404', async () => {
  const p = namespaceLifecycle();
  const ctx = world();
  const old = { metadata: { name: 'c' } };
  await p.admit!(attrs('UPDATE', R.configmaps, 'doomed', { metadata: { name: 'c' } }, { oldObject: old }), ctx);
  await p.admit!(attrs('DELETE', R.configmaps, 'doomed', null, { oldObject: old, name: 'c' }), ctx);
  await p.admit!(attrs('DELETE', R.configmaps, 'nope', null, { oldObject: old, name: 'c' }), ctx);
  await rejected(p.admit!(attrs('UPDATE', R.configmaps, 'nope', { metadata: { name: 'c' } }, { oldObject: old }), ctx), 404);
  // Access reviews and cluster-scoped objects are never checked.
  await p.admit!(attrs('CREATE', R.lsar, 'doomed', { metadata: {} }), ctx);
  await p.admit!(attrs('CREATE', R.nodes, '', { metadata: { name: 'n1' } }), ctx);
});

test('NamespaceLifecycle: default, kube-system and kube-public cannot be deleted; others can; namespace creates pass', async () => {
  const p = namespaceLifecycle();
  const ctx = world();
  for (const name of ['default', 'kube-system', 'kube-public']) {
    const e = await rejected(p.admit!(attrs('DELETE', R.namespaces, '', null, { name, oldObject: ns(name) }), ctx), 403, `namespaces "${name}" is forbidden: this namespace may not be deleted`);
    assert.is(e.reason, 'Forbidden');
  }
  await p.admit!(attrs('DELETE', R.namespaces, '', null, { name: 'team', oldObject: ns('team') }), ctx);
  await p.admit!(attrs('CREATE', R.namespaces, '', ns('fresh')), ctx);
  // A namespace object's own updates (status, finalize) are not about its content.
  await p.admit!(attrs('UPDATE', R.namespaces, '', ns('doomed', 'Terminating'), { subresource: 'finalize', oldObject: ns('doomed', 'Terminating') }), ctx);
});

// ServiceAccount

test('ServiceAccount: default account, projected token volume and mounts as Kubernetes adds them', async () => {
  const p = serviceAccount({ random: seq(0, 0.1, 0.2, 0.3, 0.99) });
  const ctx = world();
  const obj = pod('web', { initContainers: [{ name: 'init', image: 'busybox' }] });
  await p.admit!(attrs('CREATE', R.pods, 'team', obj), ctx);
  await p.validate!(attrs('CREATE', R.pods, 'team', obj), ctx);
  assert.is(obj.spec.serviceAccountName, 'default');
  assert.is(obj.spec.serviceAccount, 'default');
  assert.is(obj.spec.volumes.length, 1);
  const vol = obj.spec.volumes[0];
  assert.is(vol.name, 'kube-api-access-bdhl9');
  assert.equal(vol.projected, {
    defaultMode: 420,
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
    ],
  });
  const mount = { name: 'kube-api-access-bdhl9', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' };
  assert.equal(obj.spec.containers[0].volumeMounts, [mount]);
  assert.equal(obj.spec.initContainers[0].volumeMounts, [mount]);
});

test('ServiceAccount: a missing account is 403 with the Kubernetes message', async () => {
  const p = serviceAccount();
  const ctx = world();
  await rejected(p.admit!(attrs('CREATE', R.pods, 'team', pod('web', { serviceAccountName: 'ghost' })), ctx), 403,
    'pods "web" is forbidden: error looking up service account team/ghost: serviceaccount "ghost" not found');
  const empty = new MemoryContext().put(R.namespaces, '', ns('bare'));
  await rejected(p.admit!(attrs('CREATE', R.pods, 'bare', pod('web')), empty), 403,
    'pods "web" is forbidden: error looking up service account bare/default: serviceaccount "default" not found');
});

test('ServiceAccount: automount opt-outs, existing mounts, imagePullSecrets', async () => {
  const p = serviceAccount({ random: seq(0.5) });
  const ctx = world();
  const off = pod('a', { automountServiceAccountToken: false });
  await p.admit!(attrs('CREATE', R.pods, 'team', off), ctx);
  assert.is(off.spec.volumes, undefined);
  assert.is((off.spec.containers[0] as any).volumeMounts, undefined);
  const quiet = pod('b', { serviceAccountName: 'quiet' });
  await p.admit!(attrs('CREATE', R.pods, 'team', quiet), ctx);
  assert.is(quiet.spec.volumes, undefined, 'the account opts out');
  const override = pod('c', { serviceAccountName: 'quiet', automountServiceAccountToken: true });
  await p.admit!(attrs('CREATE', R.pods, 'team', override), ctx);
  assert.is(override.spec.volumes.length, 1, 'the pod overrides its account');
  // A container that already mounts something at the token path keeps it; the volume is added only if some container needs it.
  const own = pod('d', { containers: [{ name: 'x', image: 'i', volumeMounts: [{ name: 'mine', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }] }], volumes: [{ name: 'mine', emptyDir: {} }] });
  await p.admit!(attrs('CREATE', R.pods, 'team', own), ctx);
  assert.equal(own.spec.volumes, [{ name: 'mine', emptyDir: {} }]);
  assert.is(own.spec.containers[0].volumeMounts.length, 1);
  // An existing kube-api-access volume is reused, not duplicated.
  const reuse = pod('e', { volumes: [{ name: 'kube-api-access-zzzzz', projected: { sources: [] } }] });
  await p.admit!(attrs('CREATE', R.pods, 'team', reuse), ctx);
  assert.is(reuse.spec.volumes.length, 1);
  assert.is(reuse.spec.containers[0].volumeMounts[0].name, 'kube-api-access-zzzzz');
  const robot = pod('f', { serviceAccountName: 'robot' });
  await p.admit!(attrs('CREATE', R.pods, 'team', robot), ctx);
  assert.equal(robot.spec.imagePullSecrets, [{ name: 'regcred' }]);
  const mine = pod('g', { serviceAccountName: 'robot', imagePullSecrets: [{ name: 'own' }] });
  await p.admit!(attrs('CREATE', R.pods, 'team', mine), ctx);
  assert.equal(mine.spec.imagePullSecrets, [{ name: 'own' }]);
  const noMount = serviceAccount({ mountServiceAccountToken: false });
  const plain = pod('h');
  await noMount.admit!(attrs('CREATE', R.pods, 'team', plain), ctx);
  assert.is(plain.spec.volumes, undefined);
});

test('ServiceAccount: updates, subresources, other resources and mirror pods', async () => {
  const p = serviceAccount();
  const ctx = world();
  const upd = pod('a');
  await p.admit!(attrs('UPDATE', R.pods, 'team', upd, { oldObject: pod('a') }), ctx);
  assert.is((upd.spec as any).serviceAccountName, undefined);
  const binding = { metadata: { name: 'a' }, target: { name: 'n1' } };
  await p.admit!(attrs('CREATE', R.pods, 'team', binding, { subresource: 'binding' }), ctx);
  assert.equal(binding, { metadata: { name: 'a' }, target: { name: 'n1' } });
  const mirror = pod('m', {}, { annotations: { 'kubernetes.io/config.mirror': 'abc' } });
  await p.admit!(attrs('CREATE', R.pods, 'team', mirror), ctx);
  assert.is((mirror.spec as any).serviceAccountName, undefined);
  assert.is((mirror.spec as any).volumes, undefined);
  await rejected(p.admit!(attrs('CREATE', R.pods, 'team', pod('m2', { serviceAccountName: 'robot' }, { annotations: { 'kubernetes.io/config.mirror': 'x' } })), ctx), 403,
    'pods "m2" is forbidden: a mirror pod may not reference service accounts');
  await rejected(p.admit!(attrs('CREATE', R.pods, 'team', pod('m3', { volumes: [{ name: 's', secret: { secretName: 's' } }] }, { annotations: { 'kubernetes.io/config.mirror': 'x' } })), ctx), 403);
});

// DefaultTolerationSeconds

test('DefaultTolerationSeconds: adds the not-ready and unreachable NoExecute tolerations of 300 s', async () => {
  const p = defaultTolerationSeconds();
  const obj = pod('a');
  await p.admit!(attrs('CREATE', R.pods, 'team', obj), world());
  assert.equal((obj.spec as any).tolerations, [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  ]);
  // Idempotent: a second run (an update) adds nothing.
  await p.admit!(attrs('UPDATE', R.pods, 'team', obj, { oldObject: structuredClone(obj) }), world());
  assert.is((obj.spec as any).tolerations.length, 2);
});

test('DefaultTolerationSeconds: existing tolerations of the key, of every key or of every effect are kept alone', async () => {
  const p = defaultTolerationSeconds({ notReadySeconds: 60, unreachableSeconds: 120 });
  const own = pod('a', { tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 }] });
  await p.admit!(attrs('CREATE', R.pods, 'team', own), world());
  assert.equal(own.spec.tolerations, [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 120 },
  ]);
  const all = pod('b', { tolerations: [{ operator: 'Exists' }] });
  await p.admit!(attrs('CREATE', R.pods, 'team', all), world());
  assert.equal(all.spec.tolerations, [{ operator: 'Exists' }]);
  const anyEffect = pod('c', { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists' }] });
  await p.admit!(attrs('CREATE', R.pods, 'team', anyEffect), world());
  assert.is(anyEffect.spec.tolerations.length, 2);
  const noSchedule = pod('d', { tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoSchedule' }] });
  await p.admit!(attrs('CREATE', R.pods, 'team', noSchedule), world());
  assert.is(noSchedule.spec.tolerations.length, 3, 'NoSchedule does not tolerate NoExecute');
  const status = pod('e');
  await p.admit!(attrs('UPDATE', R.pods, 'team', status, { subresource: 'status' }), world());
  assert.is((status.spec as any).tolerations, undefined);
});

// Priority

function withClasses(): MemoryContext {
  return world()
    .put(R.priorityclasses, '', { metadata: { name: 'high' }, value: 1000, preemptionPolicy: 'Never' })
    .put(R.priorityclasses, '', { metadata: { name: 'low' }, value: -10 });
}

test('Priority: a named class resolves to its value and preemption policy; system classes are built in', async () => {
  const p = priority();
  const ctx = withClasses();
  const hi = pod('a', { priorityClassName: 'high' });
  await p.admit!(attrs('CREATE', R.pods, 'team', hi), ctx);
  assert.is(hi.spec.priority, 1000);
  assert.is(hi.spec.preemptionPolicy, 'Never');
  const lo = pod('b', { priorityClassName: 'low' });
  await p.admit!(attrs('CREATE', R.pods, 'team', lo), ctx);
  assert.is(lo.spec.priority, -10);
  assert.is(lo.spec.preemptionPolicy, 'PreemptLowerPriority');
  const node = pod('c', { priorityClassName: 'system-node-critical' });
  await p.admit!(attrs('CREATE', R.pods, 'kube-system', node), ctx);
  assert.is(node.spec.priority, 2000001000);
  const cluster = pod('d', { priorityClassName: 'system-cluster-critical' });
  await p.admit!(attrs('CREATE', R.pods, 'kube-system', cluster), ctx);
  assert.is(cluster.spec.priority, 2000000000);
  assert.equal(systemPriorityClasses().map((c) => c.value), [2000001000, 2000000000]);
});

test('Priority: no class gives the global default, or 0 without one', async () => {
  const p = priority();
  const none = pod('a');
  await p.admit!(attrs('CREATE', R.pods, 'team', none), withClasses());
  assert.is((none.spec as any).priority, 0);
  assert.is((none.spec as any).priorityClassName, undefined);
  assert.is((none.spec as any).preemptionPolicy, 'PreemptLowerPriority');
  const ctx = withClasses().put(R.priorityclasses, '', { metadata: { name: 'standard' }, value: 100, globalDefault: true });
  const def = pod('b');
  await p.admit!(attrs('CREATE', R.pods, 'team', def), ctx);
  assert.is((def.spec as any).priorityClassName, 'standard');
  assert.is((def.spec as any).priority, 100);
  // Two defaults (a race between writers): the lowest value wins, as in Kubernetes.
  ctx.put(R.priorityclasses, '', { metadata: { name: 'cheap' }, value: 5, globalDefault: true });
  const two = pod('c');
  await p.admit!(attrs('CREATE', R.pods, 'team', two), ctx);
  assert.is((two.spec as any).priorityClassName, 'cheap');
});

test('Priority: unknown class and contradicting spec.priority / preemptionPolicy are 403', async () => {
  const p = priority();
  const ctx = withClasses();
  await rejected(p.admit!(attrs('CREATE', R.pods, 'team', pod('a', { priorityClassName: 'ghost' })), ctx), 403,
    'pods "a" is forbidden: no PriorityClass with name ghost was found');
  await rejected(p.admit!(attrs('CREATE', R.pods, 'team', pod('b', { priorityClassName: 'high', priority: 5 })), ctx), 403,
    'pods "b" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name');
  await rejected(p.admit!(attrs('CREATE', R.pods, 'team', pod('c', { priorityClassName: 'high', preemptionPolicy: 'PreemptLowerPriority' })), ctx), 403,
    'pods "c" is forbidden: the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name');
  const same = pod('d', { priorityClassName: 'high', priority: 1000, preemptionPolicy: 'Never' });
  await p.admit!(attrs('CREATE', R.pods, 'team', same), ctx);
  await rejected(p.admit!(attrs('CREATE', R.pods, 'team', pod('e', { priority: 7 })), ctx), 403);
});

test('Priority: only one global default PriorityClass; system classes cannot be deleted', async () => {
  const p = priority();
  const ctx = withClasses();
  const first = { metadata: { name: 'standard' }, value: 100, globalDefault: true };
  await p.validate!(attrs('CREATE', R.priorityclasses, '', first), ctx);
  ctx.put(R.priorityclasses, '', first);
  await rejected(p.validate!(attrs('CREATE', R.priorityclasses, '', { metadata: { name: 'other' }, value: 1, globalDefault: true }), ctx), 403,
    'priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass standard is marked as default. Only one default can exist');
  await rejected(p.validate!(attrs('UPDATE', R.priorityclasses, '', { metadata: { name: 'high' }, value: 1000, globalDefault: true }, { oldObject: { metadata: { name: 'high' } } }), ctx), 403);
  await p.validate!(attrs('UPDATE', R.priorityclasses, '', { ...first, description: 'x' }, { oldObject: first }), ctx);
  await p.validate!(attrs('CREATE', R.priorityclasses, '', { metadata: { name: 'plain' }, value: 1 }), ctx);
  await rejected(p.validate!(attrs('DELETE', R.priorityclasses, '', null, { name: 'system-node-critical' }), ctx), 403,
    'priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a system priority class and cannot be deleted');
  await p.validate!(attrs('DELETE', R.priorityclasses, '', null, { name: 'high' }), ctx);
});

test('Priority: an update keeps the priority and preemption policy set at create', async () => {
  const p = priority();
  const old = pod('a', { priorityClassName: 'high', priority: 1000, preemptionPolicy: 'Never' });
  const next = pod('a', { priorityClassName: 'high' });
  await p.admit!(attrs('UPDATE', R.pods, 'team', next, { oldObject: old }), withClasses());
  assert.is(next.spec.priority, 1000);
  assert.is(next.spec.preemptionPolicy, 'Never');
  const changed = pod('a', { priorityClassName: 'high', priority: 5 });
  await p.admit!(attrs('UPDATE', R.pods, 'team', changed, { oldObject: old }), withClasses());
  assert.is(changed.spec.priority, 5, 'a changed value is left for validation to refuse');
});

test('ServiceAccount: the deprecated spec.serviceAccount names the account when serviceAccountName is empty', async () => {
  const p = serviceAccount();
  const obj = pod('a', { serviceAccount: 'robot' });
  await p.admit!(attrs('CREATE', R.pods, 'team', obj), world());
  assert.is(obj.spec.serviceAccountName, 'robot');
  assert.equal(obj.spec.imagePullSecrets, [{ name: 'regcred' }]);
});

// The chain

test('runAdmission: all mutating phases, then all validating phases, in plugin order; a rejection stops the chain', async () => {
  const log: string[] = [];
  const plugin = (name: string, fail?: 'admit' | 'validate'): AdmissionPlugin => ({
    name,
    async admit(a) {
      log.push(`${name}.admit`);
      a.object.seen = [...(a.object.seen ?? []), name];
      if (fail === 'admit') throw new Error(`${name} says no`);
    },
    async validate(a) {
      log.push(`${name}.validate:${a.object.seen.join(',')}`);
      if (fail === 'validate') throw new Error(`${name} says no`);
    },
  });
  const obj: any = { metadata: { name: 'x' } };
  await runAdmission([plugin('A'), { name: 'V', validate: async () => { log.push('V.validate'); } }, plugin('B')], attrs('CREATE', R.configmaps, 'team', obj), world());
  assert.equal(log, ['A.admit', 'B.admit', 'A.validate:A,B', 'V.validate', 'B.validate:A,B']);
  log.length = 0;
  await runAdmission([plugin('A', 'admit'), plugin('B')], attrs('CREATE', R.configmaps, 'team', { metadata: {} }), world()).then(() => assert.unreachable(), () => {});
  assert.equal(log, ['A.admit']);
});

test('default plugins on a pod create: all four mutate, nothing is created, dryRun changes nothing about that', async () => {
  const plugins = defaultAdmissionPlugins({ serviceAccount: { random: seq(0) } });
  assert.equal(plugins.map((p) => p.name), ['NamespaceLifecycle', 'ServiceAccount', 'DefaultTolerationSeconds', 'Priority']);
  for (const dryRun of [false, true]) {
    const ctx = withClasses();
    const obj = pod('web', { priorityClassName: 'high' });
    await runAdmission(plugins, attrs('CREATE', R.pods, 'team', obj, { dryRun }), ctx);
    assert.is(obj.spec.serviceAccountName, 'default');
    assert.is(obj.spec.volumes[0].name, 'kube-api-access-bbbbb');
    assert.is(obj.spec.tolerations.length, 2);
    assert.is(obj.spec.priority, 1000);
    assert.is(ctx.created.length, 0);
  }
  await rejected(runAdmission(plugins, attrs('CREATE', R.pods, 'doomed', pod('x')), withClasses()), 403);
  await rejected(runAdmission(plugins, attrs('CREATE', R.pods, 'nowhere', pod('x')), withClasses()), 404);
});

test('admissionPlugins picks by name in canonical order; unknown names are an error', () => {
  assert.equal(admissionPlugins(['Priority', ' NamespaceLifecycle', '']).map((p) => p.name), ['NamespaceLifecycle', 'Priority']);
  assert.throws(() => admissionPlugins(['AlwaysPullImages']), /unknown admission plugin "AlwaysPullImages" \(known: NamespaceLifecycle, ServiceAccount, DefaultTolerationSeconds, Priority\)/);
});

test.run();
