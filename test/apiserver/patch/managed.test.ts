// managedFields bookkeeping of ordinary creates, updates and patches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyServerSide, updateManagedFields, updateManagersMax } from '../../../src/apiserver/patch/index.ts';
import { CONFIGMAP, DEPLOYMENT, frozen, POD, throwsStatus } from './helpers.ts';

const T0 = '2026-03-01T10:00:00Z';
const T1 = '2026-03-01T10:01:00Z';
const T2 = '2026-03-01T10:02:00Z';

function update(oldObj: object | null, newObj: object, manager: string, now = T0, kind = POD): any {
  return updateManagedFields(oldObj, newObj, { manager, operation: 'Update', kind, now });
}

function entry(obj: any, manager: string, operation = 'Update'): any {
  return obj.metadata.managedFields?.find((e: any) => e.manager === manager && e.operation === operation);
}

function pod() {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u', resourceVersion: '1', labels: { app: 'web' } },
    spec: { containers: [{ name: 'c', image: 'c:1' }], restartPolicy: 'Always' },
  };
}

test('a create gives every field to its manager; new maps and list items are owned themselves too (".")', () => {
  const out = update(null, frozen(pod()), 'kubectl-create');
  assert.equal(out.metadata.managedFields, [{
    manager: 'kubectl-create',
    operation: 'Update',
    apiVersion: 'v1',
    time: T0,
    fieldsType: 'FieldsV1',
    fieldsV1: {
      'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
      'f:spec': {
        'f:containers': { 'k:{"name":"c"}': { '.': {}, 'f:image': {}, 'f:name': {} } },
        'f:restartPolicy': {},
      },
    },
  }]);
});

test('an update takes the fields it changes from their previous owner', () => {
  const v1 = frozen(update(null, pod(), 'creator'));
  const next = structuredClone(v1);
  next.spec.containers[0].image = 'c:2';
  next.metadata.labels.extra = 'yes';
  const v2 = update(v1, next, 'editor', T1);
  assert.equal(entry(v2, 'editor').fieldsV1, {
    'f:metadata': { 'f:labels': { 'f:extra': {} } },
    'f:spec': { 'f:containers': { 'k:{"name":"c"}': { 'f:image': {} } } },
  });
  const creator = entry(v2, 'creator').fieldsV1;
  assert.equal(creator['f:spec']['f:containers']['k:{"name":"c"}'], { '.': {}, 'f:name': {} });
  assert.is(entry(v2, 'creator').time, T0, 'the other manager keeps its time');
  assert.is(entry(v2, 'editor').time, T1);
});

test('removed fields are taken from every manager', () => {
  const v1 = frozen(update(null, pod(), 'creator'));
  const next = structuredClone(v1);
  delete next.metadata.labels;
  const v2 = update(v1, next, 'editor', T1);
  assert.not.ok('f:metadata' in entry(v2, 'creator').fieldsV1);
  assert.is(entry(v2, 'editor'), undefined, 'removing only gives the editor nothing');
});

test('an update that changes nothing leaves managedFields as they were', () => {
  const v1 = frozen(update(null, pod(), 'creator'));
  const v2 = update(v1, structuredClone(v1), 'other', T2);
  assert.equal(v2.metadata.managedFields, v1.metadata.managedFields);
});

test('the same manager updating again adds to its set and moves its time', () => {
  const v1 = frozen(update(null, pod(), 'ctl'));
  const next = structuredClone(v1);
  next.spec.containers[0].image = 'c:2';
  next.spec.nodeName = 'n1';
  const v2 = update(v1, next, 'ctl', T1);
  assert.is(v2.metadata.managedFields.length, 1);
  assert.is(entry(v2, 'ctl').time, T1);
  assert.ok('f:nodeName' in entry(v2, 'ctl').fieldsV1['f:spec']);
  assert.ok('f:restartPolicy' in entry(v2, 'ctl').fieldsV1['f:spec']);
});

test('changes take ownership from an applier, whose next apply then conflicts', () => {
  const applied = applyServerSide(null, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: '1', b: '2' } }, { manager: 'deployer', force: false, kind: CONFIGMAP, now: T0 }).object as any;
  const edited = structuredClone(applied);
  edited.data.a = 'edited';
  const v2 = update(applied, edited, 'kubectl-edit', T1, CONFIGMAP);
  assert.equal(entry(v2, 'deployer', 'Apply').fieldsV1, { 'f:data': { 'f:b': {} } });
  assert.equal(entry(v2, 'kubectl-edit').fieldsV1, { 'f:data': { 'f:a': {} } });
  // managedFields are listed Apply first, then Update, each by time.
  assert.equal(v2.metadata.managedFields.map((e: any) => e.operation), ['Apply', 'Update']);
  const e = throwsStatus(() => applyServerSide(v2, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: '1', b: '2' } }, { manager: 'deployer', force: false, kind: CONFIGMAP, now: T2 }), 409, 'Conflict');
  assert.is(e.message, 'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.a');
});

test('client-written managedFields: [{}] resets them, a valid new list is taken, empty or malformed lists keep the stored ones', () => {
  const v1 = frozen(update(null, pod(), 'creator'));
  const reset = update(v1, { ...structuredClone(v1), metadata: { ...structuredClone(v1.metadata), managedFields: [{}] } }, 'x', T1);
  assert.is(reset.metadata.managedFields, undefined);

  const given = [{ manager: 'someone', operation: 'Update', apiVersion: 'v1', time: T0, fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:restartPolicy': {} } } }];
  const taken = update(v1, { ...structuredClone(v1), metadata: { ...structuredClone(v1.metadata), managedFields: given } }, 'x', T1);
  assert.equal(taken.metadata.managedFields, given);

  const empty = update(v1, { ...structuredClone(v1), metadata: { ...structuredClone(v1.metadata), managedFields: [] } }, 'x', T1);
  assert.equal(empty.metadata.managedFields, v1.metadata.managedFields);
  const bad = update(v1, { ...structuredClone(v1), metadata: { ...structuredClone(v1.metadata), managedFields: [{ manager: 'm', operation: 'Bogus' }] } }, 'x', T1);
  assert.equal(bad.metadata.managedFields, v1.metadata.managedFields);
  const noMf = structuredClone(v1);
  delete noMf.metadata.managedFields;
  assert.equal(update(v1, noMf, 'x', T1).metadata.managedFields, v1.metadata.managedFields, 'a client that drops managedFields does not lose them');
});

test(`at most ${updateManagersMax} Update entries are kept; the oldest fold into ancient-changes`, () => {
  let obj: any = frozen(update(null, pod(), 'creator', '2026-03-01T09:00:00Z'));
  for (let i = 0; i < 14; i++) {
    const next = structuredClone(obj);
    next.metadata.labels[`l${i}`] = 'x';
    obj = frozen(update(obj, next, `writer-${i}`, `2026-03-01T10:${String(i).padStart(2, '0')}:00Z`));
  }
  const updates = obj.metadata.managedFields.filter((e: any) => e.operation === 'Update');
  assert.is(updates.length, updateManagersMax);
  const ancient = entry(obj, 'ancient-changes');
  assert.ok(ancient, 'ancient-changes exists');
  assert.ok('f:restartPolicy' in ancient.fieldsV1['f:spec'], 'it holds the oldest owners\' fields');
  assert.ok(entry(obj, 'writer-13'), 'the newest writer keeps its own entry');
});

test('lists a stored object holds in breach of the key rules are tracked as atomic rather than failing the write', () => {
  const bad = pod() as any;
  bad.spec.containers = [{ name: 'c', image: '1' }, { name: 'c', image: '2' }];
  const out = update(null, frozen(bad), 'legacy');
  assert.equal(entry(out, 'legacy').fieldsV1['f:spec']['f:containers'], {});
});

test('status is a reset field of the main resource: a write there owns none of it, and keeps its /status owner', () => {
  const created = update(null, frozen({ ...pod(), status: { phase: 'Pending' } }), 'creator');
  assert.is(entry(created, 'creator').fieldsV1['f:status'], undefined);
  const next = structuredClone(created);
  next.status = { phase: 'Running' };
  const byKubelet: any = frozen(updateManagedFields(created, next, { manager: 'kubelet', operation: 'Update', kind: POD, now: T1, subresource: 'status' }));
  const spec = structuredClone(byKubelet);
  spec.spec.containers[0].image = 'c:2';
  spec.status = { phase: 'Succeeded' };
  const out = update(byKubelet, spec, 'editor', T2);
  assert.is(entry(out, 'editor').fieldsV1['f:status'], undefined);
  assert.equal(out.metadata.managedFields.find((e: any) => e.manager === 'kubelet').fieldsV1, { 'f:status': { 'f:phase': {} } });
  // A ConfigMap has no status to reset: its writer owns what it sent.
  assert.ok(entry(update(null, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: '1' } }, 'w', T0, CONFIGMAP), 'w').fieldsV1['f:data']);
});

test('subresource writes are separate entries', () => {
  const v1 = frozen(update(null, pod(), 'creator'));
  const next = structuredClone(v1);
  next.status = { phase: 'Running' };
  const out = updateManagedFields(v1, next, { manager: 'kubelet', operation: 'Update', kind: POD, now: T1, subresource: 'status' }) as any;
  const e = entry(out, 'kubelet');
  assert.is(e.subresource, 'status');
  assert.equal(e.fieldsV1, { 'f:status': { 'f:phase': {} } });
});

test('workload templates: the struct chain spec.template.spec is never owned itself, maps inside are', () => {
  const d = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 1, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'x', image: 'y' }] } } } };
  const f = entry(update(null, frozen(d), 'm', T0, DEPLOYMENT), 'm').fieldsV1;
  assert.equal(f, {
    'f:spec': {
      'f:replicas': {},
      'f:template': {
        'f:metadata': { 'f:labels': { '.': {}, 'f:a': {} } },
        'f:spec': { 'f:containers': { 'k:{"name":"x"}': { '.': {}, 'f:image': {}, 'f:name': {} } } },
      },
    },
  });
});

test('inputs are not mutated and identity fields are never owned', () => {
  const v1 = frozen(update(null, frozen(pod()), 'creator'));
  const f = entry(v1, 'creator').fieldsV1;
  assert.not.ok('f:apiVersion' in f);
  assert.not.ok('f:kind' in f);
  assert.not.ok('f:name' in f['f:metadata']);
  assert.not.ok('f:uid' in f['f:metadata']);
  const next = structuredClone(v1);
  next.metadata.resourceVersion = '99';
  assert.equal(update(v1, frozen(next), 'x').metadata.managedFields, v1.metadata.managedFields);
});

test('an object without metadata is returned unchanged apart from being copied', () => {
  const out = updateManagedFields(null, { kind: 'Weird', metadata: 'nope' }, { manager: 'x', operation: 'Update', kind: POD, now: T0 }) as any;
  assert.equal(out, { kind: 'Weird', metadata: 'nope' });
});

test('passing an apply result through updateManagedFields leaves the applier owning what it applied', () => {
  const cfg = (replicas: number) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas, template: { spec: { containers: [{ name: 'x', image: 'y' }] } } } });
  const applied = applyServerSide(null, cfg(1), { manager: 'deployer', force: false, kind: DEPLOYMENT, now: T0 }).object as any;
  // A defaulting step adds a field, then the write is tracked as an ordinary update.
  const defaulted = structuredClone(applied);
  defaulted.spec.template.spec.containers[0].imagePullPolicy = 'Always';
  const v1 = frozen(update(null, defaulted, 'writer', T0, DEPLOYMENT));
  assert.ok('f:replicas' in entry(v1, 'deployer', 'Apply').fieldsV1['f:spec']);
  assert.equal(entry(v1, 'writer').fieldsV1, { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"x"}': { 'f:imagePullPolicy': {} } } } } } });
  // The next apply by the same manager changes replicas without a conflict, and again through the tracker.
  const next = applyServerSide(v1, cfg(2), { manager: 'deployer', force: false, kind: DEPLOYMENT, now: T1 }).object as any;
  const v2 = update(v1, next, 'writer', T1, DEPLOYMENT);
  assert.is(v2.spec.replicas, 2);
  assert.ok('f:replicas' in entry(v2, 'deployer', 'Apply').fieldsV1['f:spec']);
  assert.is(entry(v2, 'writer').time, T0, 'the tracker took nothing this time');
});

test('an empty always-present struct (status: {}) is not a change, an empty optional map is', () => {
  const d = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', annotations: {} }, spec: { replicas: 1 }, status: {} };
  const f = entry(update(null, frozen(d), 'm', T0, DEPLOYMENT), 'm').fieldsV1;
  assert.equal(f, { 'f:metadata': { 'f:annotations': {} }, 'f:spec': { 'f:replicas': {} } });
});

test.run();
