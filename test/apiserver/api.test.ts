// The handler chain in-process: registry semantics, list/watch from the
// watch cache, and bad input (each with the Kubernetes status code and
// reason, and nothing written).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultTolerationSeconds } from '../../src/apiserver/admission/default-toleration-seconds.ts';
import { parseEncryptionConfig } from '../../src/apiserver/encryption/index.ts';
import { InProcessClient } from '../../src/client/inprocess.ts';
import { request, startServer, type TestServer } from './helpers.ts';

let s: TestServer;
let c: InProcessClient;

test.before(async () => {
  s = await startServer({ watchCache: { eventWindowMax: 50, watcherBufferEventsMax: 100 } });
  c = new InProcessClient(s.api);
});
test.after(async () => { await s?.stop(); });

const cm = (name: string, data: Record<string, string> = { a: '1' }, labels?: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data });

async function storeRevision(): Promise<number> {
  return (await s.store.range(Buffer.from('/registry/'), { limit: 1 })).header.revision;
}

test('create, get, update with optimistic concurrency, delete', async () => {
  const r = await c.create('/api/v1/namespaces/default/configmaps', cm('one'));
  assert.is(r.status, 201);
  const o = r.body;
  assert.ok(o.metadata.uid);
  assert.match(o.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.is(o.metadata.resourceVersion, String(await storeRevision()));
  const dup = await c.create('/api/v1/namespaces/default/configmaps', cm('one'));
  assert.is(dup.status, 409);
  assert.is(dup.body.reason, 'AlreadyExists');
  const u = await c.update('/api/v1/namespaces/default/configmaps/one', { ...o, data: { a: '2' } });
  assert.is(u.status, 200);
  const stale = await c.update('/api/v1/namespaces/default/configmaps/one', { ...o, data: { a: '3' } });
  assert.is(stale.status, 409);
  assert.is(stale.body.reason, 'Conflict');
  assert.match(stale.body.message, /the object has been modified/);
  assert.is((await c.get('/api/v1/namespaces/default/configmaps/one')).body.data.a, '2');
  const d = await c.delete('/api/v1/namespaces/default/configmaps/one');
  assert.is(d.status, 200);
  const gone = await c.get('/api/v1/namespaces/default/configmaps/one');
  assert.is(gone.status, 404);
  assert.is(gone.body.reason, 'NotFound');
  assert.is(gone.body.message, 'configmaps "one" not found');
});

test('generateName, dryRun writes nothing', async () => {
  const r = await c.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'gen-' } });
  assert.is(r.status, 201);
  assert.match(r.body.metadata.name, /^gen-[a-z0-9]{5}$/);
  const before = await storeRevision();
  const dry = await c.create('/api/v1/namespaces/default/configmaps?dryRun=All', cm('dry'));
  assert.is(dry.status, 201);
  assert.is((await c.get('/api/v1/namespaces/default/configmaps/dry')).status, 404);
  await c.delete(`/api/v1/namespaces/default/configmaps/${r.body.metadata.name}?dryRun=All`);
  assert.is((await c.get(`/api/v1/namespaces/default/configmaps/${r.body.metadata.name}`)).status, 200);
  assert.is(await storeRevision(), before);
});

test('finalizers hold a deletion until removed', async () => {
  await c.create('/api/v1/namespaces/default/configmaps', { ...cm('fin'), metadata: { name: 'fin', finalizers: ['example.com/hold'] } });
  const d = await c.delete('/api/v1/namespaces/default/configmaps/fin');
  assert.is(d.status, 200);
  const held = (await c.get('/api/v1/namespaces/default/configmaps/fin')).body;
  assert.ok(held.metadata.deletionTimestamp);
  const p = await c.patch('/api/v1/namespaces/default/configmaps/fin', { metadata: { finalizers: null } });
  assert.is(p.status, 200);
  assert.is((await c.get('/api/v1/namespaces/default/configmaps/fin')).status, 404);
});

test('pods: graceful deletion once bound, status subresource, binding', async () => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
  assert.is((await c.create('/api/v1/namespaces/default/pods', pod)).status, 201);
  const b = await c.create('/api/v1/namespaces/default/pods/p/binding', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p' }, target: { kind: 'Node', name: 'n1' } });
  assert.is(b.status, 201);
  const again = await c.create('/api/v1/namespaces/default/pods/p/binding', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p' }, target: { kind: 'Node', name: 'n2' } });
  assert.is(again.status, 409);
  const cur = (await c.get('/api/v1/namespaces/default/pods/p')).body;
  assert.is(cur.spec.nodeName, 'n1');
  // A PUT of the main resource cannot change status; /status can.
  const put = await c.update('/api/v1/namespaces/default/pods/p', { ...cur, status: { phase: 'Running' } });
  assert.is(put.body.status.phase, 'Pending');
  const st = await c.request('PUT', '/api/v1/namespaces/default/pods/p/status?fieldManager=kubelet', { ...put.body, status: { phase: 'Running' } });
  assert.is(st.status, 200);
  assert.is(st.body.status.phase, 'Running');
  const entry = st.body.metadata.managedFields.find((m: any) => m.manager === 'kubelet');
  assert.is(entry.subresource, 'status');
  assert.ok(entry.fieldsV1['f:status']);
  const del = await c.delete('/api/v1/namespaces/default/pods/p');
  assert.is(del.status, 200);
  assert.ok(del.body.metadata.deletionTimestamp);
  assert.is(del.body.metadata.deletionGracePeriodSeconds, 30);
  assert.is((await c.delete('/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0')).status, 200);
  assert.is((await c.get('/api/v1/namespaces/default/pods/p')).status, 404);
});

test('scale subresource', async () => {
  const dep = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' },
    spec: { selector: { matchLabels: { app: 'd' } }, template: { metadata: { labels: { app: 'd' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } },
  };
  const r = await c.create('/apis/apps/v1/namespaces/default/deployments', dep);
  assert.is(r.status, 201);
  assert.is(r.body.spec.replicas, 1);
  const sc = await c.get('/apis/apps/v1/namespaces/default/deployments/d/scale');
  assert.is(sc.body.kind, 'Scale');
  assert.is(sc.body.spec.replicas, 1);
  assert.is(sc.body.status.selector, 'app=d');
  const up = await c.patch('/apis/apps/v1/namespaces/default/deployments/d/scale', { spec: { replicas: 4 } });
  assert.is(up.body.spec.replicas, 4);
  const d = (await c.get('/apis/apps/v1/namespaces/default/deployments/d')).body;
  assert.is(d.spec.replicas, 4);
  assert.is(d.metadata.generation, 2);
});

test('list: selectors, limit/continue, resourceVersion semantics', async () => {
  for (let i = 0; i < 7; i++) await c.create('/api/v1/namespaces/default/configmaps', cm(`page-${i}`, { i: String(i) }, { group: i % 2 ? 'odd' : 'even' }));
  const odd = await c.get('/api/v1/namespaces/default/configmaps?labelSelector=group%3Dodd');
  assert.equal(odd.body.items.map((o: any) => o.metadata.name), ['page-1', 'page-3', 'page-5']);
  const notin = await c.get('/api/v1/namespaces/default/configmaps?labelSelector=' + encodeURIComponent('group notin (odd),group'));
  assert.is(notin.body.items.length, 4);
  const first = await c.get('/api/v1/namespaces/default/configmaps?labelSelector=group&limit=3');
  assert.is(first.body.items.length, 3);
  assert.ok(first.body.metadata.continue);
  const rv = first.body.metadata.resourceVersion;
  // A write after the first page does not show in later pages (they read the store at the first page's revision).
  await c.create('/api/v1/namespaces/default/configmaps', cm('page-9', {}, { group: 'odd' }));
  const names = first.body.items.map((o: any) => o.metadata.name);
  let cont = first.body.metadata.continue;
  while (cont) {
    const next = await c.get(`/api/v1/namespaces/default/configmaps?labelSelector=group&limit=3&continue=${encodeURIComponent(cont)}`);
    assert.is(next.status, 200);
    assert.is(next.body.metadata.resourceVersion, rv);
    names.push(...next.body.items.map((o: any) => o.metadata.name));
    cont = next.body.metadata.continue;
  }
  assert.equal(names, ['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'page-5', 'page-6']);
  // Exact reads the store at that revision: page-9 did not exist yet.
  const exact = await c.get(`/api/v1/namespaces/default/configmaps?resourceVersion=${rv}&resourceVersionMatch=Exact&labelSelector=group`);
  assert.is(exact.body.items.length, 7);
  const now = await c.get('/api/v1/namespaces/default/configmaps?labelSelector=group');
  assert.is(now.body.items.length, 8);
  assert.is(now.body.metadata.resourceVersion, String(await storeRevision()));
  const badCont = await c.get('/api/v1/namespaces/default/configmaps?limit=1&continue=garbage');
  assert.is(badCont.status, 400);
  // After compaction past the token's revision, the token has expired.
  const tok = (await c.get('/api/v1/namespaces/default/configmaps?limit=1')).body.metadata.continue;
  await c.create('/api/v1/namespaces/default/configmaps', cm('bump'));
  await s.store.compact(await storeRevision());
  const expired = await c.get(`/api/v1/namespaces/default/configmaps?limit=1&continue=${encodeURIComponent(tok)}`);
  assert.is(expired.status, 410);
  assert.is(expired.body.reason, 'Expired');
});

test('field selectors on pods and cluster-wide lists', async () => {
  const pod = (name: string, node?: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName: node, containers: [{ name: 'c', image: 'x' }] } });
  await c.create('/api/v1/namespaces/default/pods', pod('fa', 'n1'));
  await c.create('/api/v1/namespaces/kube-system/pods', pod('fb', 'n2'));
  const onN1 = await c.get('/api/v1/pods?fieldSelector=spec.nodeName%3Dn1');
  assert.equal(onN1.body.items.map((o: any) => o.metadata.name), ['fa']);
  const notDefault = await c.get('/api/v1/pods?fieldSelector=metadata.namespace!%3Ddefault');
  assert.equal(notDefault.body.items.map((o: any) => o.metadata.name), ['fb']);
  const bad = await c.get('/api/v1/pods?fieldSelector=spec.nope%3Dx');
  assert.is(bad.status, 400);
});

test('watch: from a resourceVersion, selectors turn modifications into ADDED/DELETED, bookmarks, 410 when too old', async () => {
  const rv = (await c.get('/api/v1/namespaces/default/configmaps')).body.metadata.resourceVersion;
  const events: any[] = [];
  const w = c.watch(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}&labelSelector=w%3Dyes`);
  const done = (async () => { for await (const e of w) { events.push(e); if (events.length === 3) break; } })();
  await c.create('/api/v1/namespaces/default/configmaps', cm('w1', {}, { w: 'yes' }));
  await c.patch('/api/v1/namespaces/default/configmaps/w1', { metadata: { labels: { w: 'no' } } });
  await c.patch('/api/v1/namespaces/default/configmaps/w1', { metadata: { labels: { w: 'yes' } } });
  await done;
  assert.equal(events.map((e) => e.type), ['ADDED', 'DELETED', 'ADDED']);
  assert.is(events[0].object.metadata.name, 'w1');
  // Bookmarks carry the cache's revision.
  const bw = c.watch(`/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=${await storeRevision()}`);
  const first = bw.next();
  s.api.registry('', 'configmaps')!.cache.bookmark({ kind: 'ConfigMap', apiVersion: 'v1' });
  const bm = (await first).value;
  assert.is(bm.type, 'BOOKMARK');
  assert.is(bm.object.metadata.resourceVersion, String(await storeRevision()));
  await bw.return(undefined);
  // The window holds 50 events; push past it, then a watch from the old revision gets 410 Expired as an ERROR event.
  for (let i = 0; i < 60; i++) await c.patch('/api/v1/namespaces/default/configmaps/w1', { data: { i: String(i) } });
  const old = c.watch(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}`);
  const e = (await old.next()).value;
  assert.is(e.type, 'ERROR');
  assert.is(e.object.code, 410);
  assert.is(e.object.reason, 'Expired');
  await old.return(undefined);
});

test('watch without resourceVersion starts with the current objects; timeoutSeconds ends it', async () => {
  const evs: any[] = [];
  for await (const e of c.watch('/api/v1/namespaces/kube-system/pods?watch=true&timeoutSeconds=1')) evs.push(e);
  assert.equal(evs.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED fb']);
});

test('a slow watcher is cut off at its buffer bound', async () => {
  const reg = s.api.registry('', 'configmaps')!;
  const before = reg.cache.watcherCount;
  const r = await s.api.handle({ method: 'GET', url: `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${await storeRevision()}`, headers: {} });
  assert.is(reg.cache.watcherCount, before + 1);
  // Nobody reads r.stream: after watcherBufferEventsMax (100 here) queued events it is closed.
  const many = Array.from({ length: 101 }, (_, i) => i);
  const big = cm('slow');
  await c.create('/api/v1/namespaces/default/configmaps', big);
  for (const i of many) {
    await s.store.put(Buffer.from('/registry/configmaps/default/slow'), Buffer.from(JSON.stringify({ ...big, metadata: { name: 'slow', namespace: 'default' }, data: { i: String(i) } })));
    if (r.stream!.closed) break;
  }
  assert.ok(r.stream!.closed);
  assert.ok(r.stream!.overflowed);
  assert.is(reg.cache.watcherCount, before);
});

test('Table output with kubectl columns', async () => {
  const r = await c.request('GET', '/api/v1/namespaces/kube-system/pods', undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
  assert.is(r.body.kind, 'Table');
  assert.equal(r.body.columnDefinitions.slice(0, 5).map((x: any) => x.name), ['Name', 'Ready', 'Status', 'Restarts', 'Age']);
  assert.equal(r.body.rows[0].cells.slice(0, 4), ['fb', '0/1', 'Pending', '0']);
  assert.is(r.body.rows[0].object.kind, 'PartialObjectMetadata');
});

test('discovery: legacy and aggregated, version, health, metrics, openapi', async () => {
  const api = await c.get('/api');
  assert.equal(api.body.versions, ['v1']);
  const agg = await c.request('GET', '/apis', undefined, { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' });
  assert.is(agg.headers['content-type'], 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
  const apps = agg.body.items.find((g: any) => g.metadata.name === 'apps');
  const deps = apps.versions[0].resources.find((r: any) => r.resource === 'deployments');
  assert.equal(deps.subresources.map((x: any) => x.subresource).sort(), ['scale', 'status']);
  const rl = await c.get('/apis/apps/v1');
  assert.ok(rl.body.resources.some((r: any) => r.name === 'deployments/scale'));
  assert.is((await c.get('/version')).body.major, '1');
  assert.is((await c.get('/healthz')).status, 200);
  assert.is((await c.get('/readyz')).status, 200);
  const m = await c.get('/metrics');
  assert.match(String(m.body), /apiserver_request_total\{/);
  const v3 = await c.get('/openapi/v3');
  assert.ok(v3.body.paths['apis/apps/v1'].serverRelativeURL.startsWith('/openapi/v3/apis/apps/v1?hash='));
  const doc = await c.get('/openapi/v3/api/v1');
  assert.equal(doc.body.components.schemas['io.k8s.api.core.v1.Pod']['x-kubernetes-group-version-kind'], [{ group: '', version: 'v1', kind: 'Pod' }]);
  assert.is((await c.get('/nope')).status, 404);
});

// ---- bad input: the right status, and nothing written ----

async function nothingWritten(fn: () => Promise<void>): Promise<void> {
  const before = await storeRevision();
  await fn();
  assert.is(await storeRevision(), before, 'a refused request must not write');
}

test('malformed JSON and YAML bodies: 400', async () => {
  await nothingWritten(async () => {
    const j = await c.request('POST', '/api/v1/namespaces/default/configmaps', '{"apiVersion": "v1", "kind": ');
    assert.is(j.status, 400);
    assert.is(j.body.reason, 'BadRequest');
    const y = await c.request('POST', '/api/v1/namespaces/default/configmaps', 'kind: [unclosed', { 'content-type': 'application/yaml' });
    assert.is(y.status, 400);
    const ct = await c.request('POST', '/api/v1/namespaces/default/configmaps', 'x', { 'content-type': 'text/plain' });
    assert.is(ct.status, 415);
    assert.is(ct.body.reason, 'UnsupportedMediaType');
    const patch = await c.request('PATCH', '/api/v1/namespaces/default/configmaps/page-1', '{"data":', { 'content-type': 'application/merge-patch+json' });
    assert.is(patch.status, 400);
  });
});

test('YAML bodies are accepted', async () => {
  const r = await c.request('POST', '/api/v1/namespaces/default/configmaps', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n', { 'content-type': 'application/yaml' });
  assert.is(r.status, 201);
  assert.is(r.body.data.k, 'v');
});

test('unknown kind, version or resource', async () => {
  await nothingWritten(async () => {
    const kind = await c.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } });
    assert.is(kind.status, 400);
    const ver = await c.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v2', kind: 'ConfigMap', metadata: { name: 'x' } });
    assert.is(ver.status, 400);
    const res = await c.create('/api/v1/namespaces/default/widgets', { apiVersion: 'v1', kind: 'Widget', metadata: { name: 'x' } });
    assert.is(res.status, 404);
    assert.is(res.body.reason, 'NotFound');
    const gv = await c.get('/apis/apps/v9/deployments');
    assert.is(gv.status, 404);
  });
});

test('invalid names and fields: 422 Invalid with causes', async () => {
  await nothingWritten(async () => {
    const name = await c.create('/api/v1/namespaces/default/configmaps', cm('Bad_Name'));
    assert.is(name.status, 422);
    assert.is(name.body.reason, 'Invalid');
    assert.is(name.body.details.causes[0].field, 'metadata.name');
    const noName = await c.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: {} });
    assert.is(noName.status, 422);
    const pod = await c.create('/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'nocontainers' }, spec: { containers: [] } });
    assert.is(pod.status, 422);
    assert.match(pod.body.message, /spec.containers: Required value/);
    const ns = await c.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a.b' } });
    assert.is(ns.status, 422);
    const label = await c.create('/api/v1/namespaces/default/configmaps', cm('lbl', {}, { 'bad key!': 'x' }));
    assert.is(label.status, 422);
    const wrongNs = await c.create('/api/v1/namespaces/default/configmaps', { ...cm('x'), metadata: { name: 'x', namespace: 'other' } });
    assert.is(wrongNs.status, 400);
  });
});

test('unknown fields: Strict refuses, Warn warns, Ignore ignores', async () => {
  const obj = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'strict' }, spec: { containers: [{ name: 'c', image: 'x', imagee: 'typo' }] } };
  await nothingWritten(async () => {
    const r = await c.create('/api/v1/namespaces/default/pods?fieldValidation=Strict', obj);
    assert.is(r.status, 400);
    assert.is(r.body.reason, 'BadRequest');
    assert.is(r.body.message, 'strict decoding error: unknown field "spec.containers[0].imagee"');
    const bad = await c.create('/api/v1/namespaces/default/pods?fieldValidation=Sometimes', obj);
    assert.is(bad.status, 400);
  });
  const w = await c.create('/api/v1/namespaces/default/pods?fieldValidation=Warn', obj);
  assert.is(w.status, 201);
  assert.match(String(w.headers.warning), /unknown field \\"spec.containers\[0\].imagee\\"/);
  const i = await c.create('/api/v1/namespaces/default/pods?fieldValidation=Ignore', { ...obj, metadata: { name: 'ignored' } });
  assert.is(i.status, 201);
  assert.is(i.headers.warning, undefined);
});

test('oversized bodies: 413 over HTTP, nothing written', async () => {
  await nothingWritten(async () => {
    const big = JSON.stringify(cm('big', { blob: 'x'.repeat(3 * 1024 * 1024 + 10) }));
    const r = await request(s.url, 'POST', '/api/v1/namespaces/default/configmaps', big);
    assert.is(r.status, 413);
    assert.is(r.json.reason, 'RequestEntityTooLarge');
  });
});

test('pods/eviction deletes the pod', async () => {
  await c.create('/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'evictme' }, spec: { containers: [{ name: 'c', image: 'x' }] } });
  const r = await c.create('/api/v1/namespaces/default/pods/evictme/eviction', { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'evictme', namespace: 'default' } });
  assert.is(r.status, 201);
  assert.is((await c.get('/api/v1/namespaces/default/pods/evictme')).status, 404);
});

test('secrets are encrypted at rest with an encryption config', async () => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const config = parseEncryptionConfig(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: k1
              secret: ${key}
      - identity: {}
`);
  const enc = await startServer({ transformerFor: (g, r) => config.transformerFor(g, r) });
  try {
    const cl = new InProcessClient(enc.api);
    const plain = Buffer.from('top-secret-value').toString('base64');
    assert.is((await cl.create('/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: plain } })).status, 201);
    const raw = (await enc.store.range(Buffer.from('/registry/secrets/default/s'))).kvs[0]!.value;
    assert.ok(raw.toString('latin1').startsWith('k8s:enc:aesgcm:v1:k1:'));
    assert.not.ok(raw.toString('latin1').includes(plain));
    assert.is((await cl.get('/api/v1/namespaces/default/secrets/s')).body.data.k, plain);
    const listed = (await cl.get('/api/v1/namespaces/default/secrets')).body.items.find((x: any) => x.metadata.name === 's');
    assert.is(listed.data.k, plain);
    // Config maps are not in the config: stored as plain JSON.
    await cl.create('/api/v1/namespaces/default/configmaps', cm('plain'));
    assert.is(JSON.parse((await enc.store.range(Buffer.from('/registry/configmaps/default/plain'))).kvs[0]!.value.toString()).metadata.name, 'plain');
  } finally {
    await enc.stop();
  }
});

test('per-client concurrency limit: 429 with Retry-After', async () => {
  const small = await startServer({ inflightPerClientMax: 2 });
  try {
    const cl = new InProcessClient(small.api);
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => cl.create('/api/v1/namespaces/default/configmaps', cm(`c${i}`))));
    const codes = rs.map((r) => r.status);
    assert.ok(codes.includes(201));
    const limited = rs.find((r) => r.status === 429);
    assert.ok(limited, `expected a 429 among ${codes}`);
    assert.is(limited!.body.reason, 'TooManyRequests');
    assert.is(limited!.headers['retry-after'], '1');
  } finally {
    await small.stop();
  }
});

test('a create owns the defaulted object it sent, not what the strategy or admission added', async () => {
  const own = await startServer({ admissionPlugins: [defaultTolerationSeconds()] });
  try {
    await createdOwnership(new InProcessClient(own.api));
  } finally {
    await own.stop();
  }
});

async function createdOwnership(c: InProcessClient): Promise<void> {
  const r = await c.create('/api/v1/namespaces/default/pods?fieldManager=maker', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'owned', labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] }, status: { phase: 'Running' } });
  assert.is(r.status, 201);
  const pod = r.body;
  // Added after tracking: status by the strategy, tolerations by DefaultTolerationSeconds.
  assert.is(pod.status.phase, 'Pending');
  assert.ok(pod.spec.tolerations?.length > 0);
  const [entry, ...more] = pod.metadata.managedFields;
  assert.is(more.length, 0);
  assert.is(entry.manager, 'maker');
  const f = entry.fieldsV1;
  assert.equal(f['f:metadata'], { 'f:labels': { '.': {}, 'f:app': {} } });
  const container = f['f:spec']['f:containers']['k:{"name":"c"}'];
  assert.ok(container['f:image'] && container['f:imagePullPolicy'] && container['f:terminationMessagePath'], 'defaulted container fields are owned');
  assert.ok(f['f:spec']['f:restartPolicy'] && f['f:spec']['f:dnsPolicy'], 'defaulted pod fields are owned');
  assert.is(f['f:status'], undefined, 'the reset status is owned by nobody');
  assert.is(f['f:spec']['f:tolerations'], undefined, 'admission-added fields are owned by nobody');
  assert.equal((await c.get('/api/v1/namespaces/default/pods/owned')).body.metadata.managedFields, pod.metadata.managedFields);
  // A Service's allocated clusterIP is the server's, not the writer's.
  const svc = await c.create('/api/v1/namespaces/default/services?fieldManager=maker', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'owned' }, spec: { ports: [{ port: 80 }] } });
  assert.is(svc.status, 201);
  assert.ok(svc.body.spec.clusterIP);
  const sf = svc.body.metadata.managedFields[0].fieldsV1['f:spec'];
  assert.is(sf['f:clusterIP'], undefined);
  assert.ok(sf['f:ports'] && sf['f:type']);
  // A kind without status: everything sent is owned.
  const made = await c.create('/api/v1/namespaces/default/configmaps?fieldManager=maker', cm('owned'));
  assert.ok(made.body.metadata.managedFields[0].fieldsV1['f:data']['f:a']);
}

test.run();
