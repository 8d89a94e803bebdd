// Server-side apply: field ownership, conflicts, force, removal of fields an
// applier stops applying, shared ownership. The scenarios retell those of the
// Kubernetes "Server-Side Apply" reference with objects of our own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyServerSide, updateManagedFields } from '../../../src/apiserver/patch/index.ts';
import { CONFIGMAP, DEPLOYMENT, frozen, POD, SERVICE, throwsStatus, WIDGET } from './helpers.ts';

const T0 = '2026-03-01T10:00:00Z';
const T1 = '2026-03-01T10:01:00Z';
const T2 = '2026-03-01T10:02:00Z';
const T3 = '2026-03-01T10:03:00Z';

function apply(live: object | null, cfg: object, manager: string, opts: { force?: boolean; now?: string; kind?: typeof POD } = {}): any {
  return applyServerSide(live, cfg, { manager, force: opts.force ?? false, kind: opts.kind ?? DEPLOYMENT, now: opts.now ?? T0 }).object;
}

/** Stands in for the storage layer: what the engine adds when it stores an object. */
function stored(obj: any, rv: number): any {
  return frozen({ ...obj, metadata: { ...obj.metadata, uid: 'uid-1', resourceVersion: String(rv), creationTimestamp: T0 } });
}

function entry(obj: any, manager: string, operation = 'Apply'): any {
  return obj.metadata.managedFields?.find((e: any) => e.manager === manager && e.operation === operation);
}

function cm(data: Record<string, string>, labels?: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default', ...(labels ? { labels } : {}) }, data };
}

function deploy(spec: object) {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' }, spec };
}

const nginx = (extra: object = {}) => ({ name: 'nginx', image: 'nginx:1.27', ...extra });
const template = (containers: object[]) => ({ metadata: { labels: { app: 'web' } }, spec: { containers } });

test('apply creates the object and records what the applier set, in FieldsV1', () => {
  const out = apply(null, cm({ mode: 'fast' }, { team: 'infra' }), 'deployer', { kind: CONFIGMAP });
  assert.equal(out.data, { mode: 'fast' });
  assert.equal(out.metadata.managedFields, [{
    manager: 'deployer',
    operation: 'Apply',
    apiVersion: 'v1',
    time: T0,
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:data': { 'f:mode': {} }, 'f:metadata': { 'f:labels': { 'f:team': {} } } },
  }]);
});

test('associative lists are owned item by item with k: keys (all key fields, defaults filled in), sets with v:', () => {
  const out = apply(null, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'p', finalizers: ['example.com/keep'] },
    spec: { containers: [{ name: 'app', image: 'app:1', ports: [{ containerPort: 8080 }], env: [{ name: 'A', value: '1' }] }] },
  }, 'deployer', { kind: POD });
  const f = entry(out, 'deployer').fieldsV1;
  assert.equal(f['f:metadata'], { 'f:finalizers': { 'v:"example.com/keep"': {} } });
  assert.equal(f['f:spec']['f:containers'], {
    'k:{"name":"app"}': {
      '.': {},
      'f:env': { 'k:{"name":"A"}': { '.': {}, 'f:name': {}, 'f:value': {} } },
      'f:image': {},
      'f:name': {},
      'f:ports': { 'k:{"containerPort":8080,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {} } },
    },
  });
});

test('a second apply by the same manager that omits a field removes it from the object', () => {
  const v1 = stored(apply(null, cm({ a: '1', b: '2' }, { team: 'infra', tier: 'x' }), 'deployer', { kind: CONFIGMAP }), 1);
  const v2 = apply(v1, cm({ a: '1' }, { team: 'infra' }), 'deployer', { kind: CONFIGMAP, now: T1 });
  assert.equal(v2.data, { a: '1' });
  assert.equal(v2.metadata.labels, { team: 'infra' });
  assert.is(v2.metadata.uid, 'uid-1', 'server-set metadata survives');
  assert.equal(entry(v2, 'deployer').fieldsV1, { 'f:data': { 'f:a': {} }, 'f:metadata': { 'f:labels': { 'f:team': {} } } });
  // Dropping every label removes the emptied map too.
  const v3 = apply(stored(v2, 2), cm({ a: '1' }), 'deployer', { kind: CONFIGMAP, now: T2 });
  assert.is(v3.metadata.labels, undefined);
});

test('an item dropped from an associative list is removed; other items stay', () => {
  const v1 = stored(apply(null, deploy({ template: template([nginx(), { name: 'log', image: 'fluent:1' }]) }), 'deployer'), 1);
  const v2 = apply(v1, deploy({ template: template([nginx()]) }), 'deployer', { now: T1 });
  assert.equal(v2.spec.template.spec.containers, [nginx()]);
});

test('a field another manager changed conflicts (409) with a cause per field naming the manager', () => {
  const v1 = stored(apply(null, deploy({ replicas: 3, template: template([nginx()]) }), 'deployer'), 1);
  const scaled = structuredClone(v1);
  scaled.spec.replicas = 5;
  const v2 = stored(updateManagedFields(v1, scaled, { manager: 'autoscaler', operation: 'Update', kind: DEPLOYMENT, now: T1 }), 2);
  const e = throwsStatus(() => apply(v2, deploy({ replicas: 3, template: template([nginx()]) }), 'deployer', { now: T2 }), 409, 'Conflict');
  assert.is(e.message, 'Apply failed with 1 conflict: conflict with "autoscaler" using apps/v1: .spec.replicas');
  assert.equal(e.details?.causes, [{ reason: 'FieldManagerConflict', message: 'conflict with "autoscaler" using apps/v1', field: '.spec.replicas' }]);
  // Applying the value the object already has is no conflict.
  const same = apply(v2, deploy({ replicas: 5, template: template([nginx()]) }), 'deployer', { now: T2 });
  assert.is(same.spec.replicas, 5);
});

test('conflicts with several fields and managers are all listed', () => {
  const v1 = stored(apply(null, deploy({ replicas: 1, paused: false, template: template([nginx()]) }), 'alpha'), 1);
  const e = throwsStatus(() => apply(v1, deploy({ replicas: 2, paused: true, template: template([nginx({ image: 'nginx:2' })]) }), 'beta', { now: T1 }), 409, 'Conflict');
  assert.is(e.details?.causes?.length, 3);
  assert.equal(e.details!.causes!.map((c) => c.field).sort(), ['.spec.paused', '.spec.replicas', '.spec.template.spec.containers[name="nginx"].image']);
  assert.ok(e.message.startsWith('Apply failed with 3 conflicts: conflicts with "alpha"\n- '), e.message);
});

test('force takes ownership of conflicting fields from the other manager', () => {
  const v1 = stored(apply(null, deploy({ replicas: 3, template: template([nginx()]) }), 'deployer'), 1);
  const v2 = stored(apply(v1, deploy({ replicas: 7 }), 'ops', { force: true, now: T1 }), 2);
  assert.is(v2.spec.replicas, 7);
  assert.equal(entry(v2, 'ops').fieldsV1, { 'f:spec': { 'f:replicas': {} } });
  assert.not.ok('f:replicas' in entry(v2, 'deployer').fieldsV1['f:spec'], 'deployer lost replicas');
  assert.ok('f:template' in entry(v2, 'deployer').fieldsV1['f:spec'], 'deployer keeps the rest');
  // Now the deployer conflicts with ops, and dropping replicas from its own config does not remove them.
  throwsStatus(() => apply(v2, deploy({ replicas: 3, template: template([nginx()]) }), 'deployer', { now: T2 }), 409, 'Conflict');
  const v3 = apply(v2, deploy({ template: template([nginx()]) }), 'deployer', { now: T2 });
  assert.is(v3.spec.replicas, 7);
});

test('two managers applying the same value share the field; it stays until neither applies it', () => {
  const v1 = stored(apply(null, cm({ shared: 'x', mine: '1' }), 'alpha', { kind: CONFIGMAP }), 1);
  const v2 = stored(apply(v1, cm({ shared: 'x' }), 'beta', { kind: CONFIGMAP, now: T1 }), 2);
  assert.ok('f:shared' in entry(v2, 'alpha').fieldsV1['f:data']);
  assert.ok('f:shared' in entry(v2, 'beta').fieldsV1['f:data']);
  // alpha stops applying it: beta still owns it, so it stays.
  const v3 = stored(apply(v2, cm({ mine: '1' }), 'alpha', { kind: CONFIGMAP, now: T2 }), 3);
  assert.equal(v3.data, { shared: 'x', mine: '1' });
  // beta changing it now conflicts with nobody.
  const v4 = stored(apply(v3, cm({ shared: 'y' }), 'beta', { kind: CONFIGMAP, now: T3 }), 4);
  assert.equal(v4.data, { shared: 'y', mine: '1' });
  // beta drops it: nobody owns it any more, so it goes.
  const v5 = apply(v4, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' } }, 'beta', { kind: CONFIGMAP, now: T3 });
  assert.equal(v5.data, { mine: '1' });
  assert.is(entry(v5, 'beta'), undefined, 'an entry owning nothing is dropped');
});

test('apply merges associative lists by key with the live object and keeps fields others set', () => {
  const v1 = stored(apply(null, deploy({ template: template([nginx()]) }), 'deployer'), 1);
  // A defaulting step or controller adds a field to the container.
  const defaulted = structuredClone(v1);
  defaulted.spec.template.spec.containers[0].imagePullPolicy = 'IfNotPresent';
  defaulted.spec.template.spec.containers[0].ports = [{ containerPort: 80, protocol: 'TCP' }];
  const v2 = stored(updateManagedFields(v1, defaulted, { manager: 'defaulter', operation: 'Update', kind: DEPLOYMENT, now: T1 }), 2);
  const v3 = apply(v2, deploy({ template: template([nginx({ image: 'nginx:1.28', ports: [{ containerPort: 80 }] }), { name: 'side', image: 's:1' }]) }), 'deployer', { now: T2 });
  assert.equal(v3.spec.template.spec.containers, [
    { name: 'nginx', image: 'nginx:1.28', imagePullPolicy: 'IfNotPresent', ports: [{ containerPort: 80, protocol: 'TCP' }] },
    { name: 'side', image: 's:1' },
  ]);
  // The port item matched by containerPort + defaulted protocol: the deployer now co-owns it.
  const ports = entry(v3, 'deployer').fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"nginx"}']['f:ports'];
  assert.ok('k:{"containerPort":80,"protocol":"TCP"}' in ports);
});

test('fields owned by others below a dropped list item keep the item alive with its key', () => {
  const v1 = stored(apply(null, deploy({ template: template([nginx(), { name: 'side', image: 's:1' }]) }), 'deployer'), 1);
  const patched = structuredClone(v1);
  patched.spec.template.spec.containers[1].resources = { limits: { cpu: '1' } };
  const v2 = stored(updateManagedFields(v1, patched, { manager: 'tuner', operation: 'Update', kind: DEPLOYMENT, now: T1 }), 2);
  const v3 = apply(v2, deploy({ template: template([nginx()]) }), 'deployer', { now: T2 });
  // The deployer's image is gone; the tuner's resources and the key remain.
  assert.equal(v3.spec.template.spec.containers, [nginx(), { name: 'side', resources: { limits: { cpu: '1' } } }]);
});

test('Service ports are keyed by port and protocol for apply', () => {
  const svc = (ports: object[]) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { selector: { app: 'a' }, ports } });
  const v1 = stored(apply(null, svc([{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }]), 'dns', { kind: SERVICE }), 1);
  assert.equal(Object.keys(entry(v1, 'dns').fieldsV1['f:spec']['f:ports']).sort(), ['k:{"port":53,"protocol":"TCP"}', 'k:{"port":53,"protocol":"UDP"}']);
  const v2 = apply(v1, svc([{ port: 53, protocol: 'UDP', name: 'dns' }]), 'dns', { kind: SERVICE, now: T1 });
  assert.equal(v2.spec.ports, [{ port: 53, protocol: 'UDP', name: 'dns' }]);
  // The selector is an atomic map: owned whole and replaced whole.
  assert.equal(entry(v2, 'dns').fieldsV1['f:spec']['f:selector'], {});
});

test('a null in the applied configuration removes the field and the applier keeps owning it', () => {
  const v1 = stored(apply(null, cm({ a: '1', b: '2' }), 'alpha', { kind: CONFIGMAP }), 1);
  const v2 = apply(v1, cm({ a: '1', b: null as unknown as string }), 'alpha', { kind: CONFIGMAP, now: T1 });
  assert.equal(v2.data, { a: '1' });
  assert.ok('f:b' in entry(v2, 'alpha').fieldsV1['f:data']);
});

test('an apply that changes nothing keeps the entry time', () => {
  const v1 = stored(apply(null, cm({ a: '1' }), 'alpha', { kind: CONFIGMAP }), 1);
  const v2 = apply(v1, cm({ a: '1' }), 'alpha', { kind: CONFIGMAP, now: T2 });
  assert.is(entry(v2, 'alpha').time, T0);
  const v3 = apply(v1, cm({ a: '2' }), 'alpha', { kind: CONFIGMAP, now: T2 });
  assert.is(entry(v3, 'alpha').time, T2);
});

test('an object without managedFields is owned by before-first-apply, so a first apply cannot silently override it', () => {
  const legacy = frozen({ ...cm({ a: '1' }), metadata: { name: 'settings', namespace: 'default', uid: 'u' } });
  const e = throwsStatus(() => apply(legacy, cm({ a: '2' }), 'alpha', { kind: CONFIGMAP }), 409, 'Conflict');
  assert.match(e.message, /before-first-apply/);
  const ok = apply(legacy, cm({ a: '1', b: '2' }), 'alpha', { kind: CONFIGMAP });
  assert.equal(ok.data, { a: '1', b: '2' });
  assert.ok(entry(ok, 'before-first-apply', 'Update'));
});

test('custom kinds are applied with the default schema: maps granular, lists atomic', () => {
  const w = (spec: object) => ({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec });
  const v1 = stored(apply(null, w({ size: 1, tags: ['a', 'b'], nested: { x: 1 } }), 'alpha', { kind: WIDGET }), 1);
  assert.equal(entry(v1, 'alpha').fieldsV1, { 'f:spec': { 'f:nested': { 'f:x': {} }, 'f:size': {}, 'f:tags': {} } });
  const v2 = apply(v1, w({ tags: ['c'], nested: { y: 2 } }), 'beta', { kind: WIDGET, force: true, now: T1 });
  assert.equal(v2.spec, { size: 1, tags: ['c'], nested: { x: 1, y: 2 } });
});

test('bad applied configurations: 400 for a wrong or missing kind/apiVersion, managedFields, no manager; 422 for unkeyable lists', () => {
  const good = cm({ a: '1' });
  throwsStatus(() => apply(null, { ...good, kind: 'Secret' }, 'a', { kind: CONFIGMAP }), 400, 'BadRequest');
  throwsStatus(() => apply(null, { ...good, apiVersion: 'v2' }, 'a', { kind: CONFIGMAP }), 400, 'BadRequest');
  throwsStatus(() => apply(null, { kind: 'ConfigMap', metadata: { name: 'x' } }, 'a', { kind: CONFIGMAP }), 400, 'BadRequest');
  throwsStatus(() => apply(null, { ...good, metadata: { name: 'x', managedFields: [] } }, 'a', { kind: CONFIGMAP }), 400, 'BadRequest');
  throwsStatus(() => apply(null, good, '', { kind: CONFIGMAP }), 400, 'BadRequest');
  throwsStatus(() => apply(null, [good] as unknown as object, 'a', { kind: CONFIGMAP }), 400, 'BadRequest');
  const dup = throwsStatus(() => apply(null, deploy({ template: template([nginx(), nginx()]) }), 'a'), 422, 'Invalid');
  assert.is(dup.details?.causes?.[0]?.field, '.spec.template.spec.containers[1]');
  const noKey = throwsStatus(() => apply(null, deploy({ template: template([{ image: 'x' }]) }), 'a'), 422, 'Invalid');
  assert.match(noKey.message, /omits key field "name"/);
  throwsStatus(() => apply(null, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', finalizers: [{ a: 1 }] } }, 'a', { kind: POD }), 422, 'Invalid');
});

test('apply never mutates its inputs', () => {
  const live = stored(apply(null, deploy({ replicas: 1, template: template([nginx()]) }), 'alpha'), 1);
  const cfg = frozen(deploy({ replicas: 2, template: template([nginx({ image: 'x' })]) }));
  apply(live, cfg, 'alpha', { now: T1 });
  apply(live, cfg, 'beta', { now: T1, force: true });
});

test('apply through a subresource is a separate entry', () => {
  const v1 = stored(apply(null, deploy({ replicas: 1 }), 'alpha'), 1);
  const out = applyServerSide(v1, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, status: { replicas: 1 } }, { manager: 'alpha', force: false, kind: DEPLOYMENT, now: T1, subresource: 'status' }).object as any;
  const entries = out.metadata.managedFields.filter((e: any) => e.manager === 'alpha');
  assert.is(entries.length, 2);
  assert.is(entries.find((e: any) => e.subresource === 'status').fieldsV1['f:status']['f:replicas'] !== undefined, true);
  assert.is(out.spec.replicas, 1, 'the main entry is untouched');
});

test('status is not owned through the main resource, and a /status apply owns only status', () => {
  const withStatus = { ...deploy({ replicas: 1 }), status: { replicas: 9 } };
  const main = apply(null, withStatus, 'alpha');
  assert.equal(entry(main, 'alpha').fieldsV1, { 'f:spec': { 'f:replicas': {} } });
  const st = applyServerSide(null, { ...withStatus, spec: { replicas: 5 } }, { manager: 'ctl', force: false, kind: DEPLOYMENT, now: T0, subresource: 'status' }).object as any;
  assert.equal(entry(st, 'ctl').fieldsV1, { 'f:status': { 'f:replicas': {} } });
  // Status in a main-resource apply is neither merged nor a conflict with the status writer.
  const running = stored(updateManagedFields(main, { ...main, status: { replicas: 2 } }, { manager: 'controller', operation: 'Update', kind: DEPLOYMENT, now: T1 }), 2);
  const again = apply(running, withStatus, 'alpha', { now: T2 });
  assert.equal(again.status, { replicas: 2 });
  // Kinds without a status subresource own whatever they apply.
  const cmOut = apply(null, { ...cm({ a: '1' }), status: { x: 1 } }, 'alpha', { kind: CONFIGMAP });
  assert.ok('f:status' in entry(cmOut, 'alpha').fieldsV1);
});

test('kubectl moving from client-side to server-side apply takes over the fields its last client-side apply set', () => {
  const lastApplied = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 3 } };
  const csa = { ...deploy({ replicas: 3, paused: false }), metadata: { name: 'web', namespace: 'default', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(lastApplied) } } };
  const v1 = stored(updateManagedFields(null, csa, { manager: 'kubectl-client-side-apply', operation: 'Update', kind: DEPLOYMENT, now: T0 }), 1);
  // replicas was in the last client-side apply: no conflict for kubectl; paused was not: still a conflict.
  const e = throwsStatus(() => apply(v1, deploy({ replicas: 4, paused: true }), 'kubectl', { now: T1 }), 409, 'Conflict');
  assert.equal(e.details?.causes?.map((c) => c.field), ['.spec.paused']);
  const v2 = apply(v1, deploy({ replicas: 4 }), 'kubectl', { now: T1 });
  assert.is(v2.spec.replicas, 4);
  assert.ok('f:replicas' in entry(v2, 'kubectl').fieldsV1['f:spec']);
  // The annotation now records what kubectl applied, so a later client-side apply diffs against it.
  assert.equal(JSON.parse(v2.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']), deploy({ replicas: 4 }));
  // Other managers get no such allowance.
  throwsStatus(() => apply(v1, deploy({ replicas: 4 }), 'helm', { now: T1 }), 409, 'Conflict');
});

test('associative list order after apply: shared items follow the applied order, live-only items keep their place', () => {
  const c = (names: string[]) => deploy({ template: template(names.map((name) => ({ name, image: name }))) });
  const names = (o: any) => o.spec.template.spec.containers.map((x: any) => x.name);
  const live = stored(apply(null, c(['a', 'b', 'c']), 'alpha'), 1);
  assert.equal(names(apply(live, c(['c', 'a']), 'beta', { now: T1 })), ['b', 'c', 'a']);
  assert.equal(names(apply(live, c(['a', 'x']), 'beta', { now: T1 })), ['a', 'b', 'c', 'x']);
});

test('handing a field over to a controller: a second applier co-owns it, then the first drops it without removing it', () => {
  const full = (replicas?: number) => deploy({ ...(replicas === undefined ? {} : { replicas }), template: template([nginx()]) });
  const v1 = stored(apply(null, full(3), 'deployer'), 1);
  // The hand-over manager applies only the field, with its current value: no conflict, shared ownership.
  const v2 = stored(apply(v1, deploy({ replicas: 3 }), 'handover', { now: T1 }), 2);
  // The main configuration stops naming replicas: the value stays because the hand-over manager owns it.
  const v3 = stored(apply(v2, full(), 'deployer', { now: T2 }), 3);
  assert.is(v3.spec.replicas, 3);
  assert.not.ok('f:replicas' in entry(v3, 'deployer').fieldsV1['f:spec']);
  // A controller scaling through ordinary updates now takes the field from the hand-over manager alone.
  const scaled = structuredClone(v3);
  scaled.spec.replicas = 8;
  const v4 = updateManagedFields(v3, scaled, { manager: 'autoscaler', operation: 'Update', kind: DEPLOYMENT, now: T3 }) as any;
  assert.is(entry(v4, 'handover'), undefined);
  assert.ok('f:replicas' in entry(v4, 'autoscaler', 'Update').fieldsV1['f:spec']);
  // And the deployer's next apply no longer fights the controller.
  assert.is(apply(stored(v4, 4), full(), 'deployer', { now: T3 }).spec.replicas, 8);
});

test('sets (finalizers) merge by value: an applier drops only its own values', () => {
  const withFin = (finalizers: string[]) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', finalizers }, data: { a: '1' } });
  const v1 = stored(apply(null, withFin(['example.com/a', 'example.com/b']), 'alpha', { kind: CONFIGMAP }), 1);
  const added = structuredClone(v1);
  added.metadata.finalizers.push('example.com/c');
  const v2 = stored(updateManagedFields(v1, added, { manager: 'controller', operation: 'Update', kind: CONFIGMAP, now: T1 }), 2);
  assert.equal(entry(v2, 'controller', 'Update').fieldsV1, { 'f:metadata': { 'f:finalizers': { 'v:"example.com/c"': {} } } });
  const v3 = apply(v2, withFin(['example.com/a']), 'alpha', { kind: CONFIGMAP, now: T2 });
  assert.equal(v3.metadata.finalizers, ['example.com/a', 'example.com/c']);
});

test.run();
