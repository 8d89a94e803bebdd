// Engine correctness fixes, kubectl-level where cheap: ownership-only changes
// are stored, empty metadata strings are dropped at create, and the objects
// Kubernetes keeps at first start (system PriorityClasses, kube-root-ca.crt).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseEncryptionConfig } from '../../src/apiserver/encryption/index.ts';
import { ApiServer } from '../../src/apiserver/server.ts';
import { InProcessClient } from '../../src/client/inprocess.ts';
import { ok, startServer, type TestServer } from './helpers.ts';

const caPem = '-----BEGIN CERTIFICATE-----\nTUlJQ2Zha2U=\n-----END CERTIFICATE-----\n';
let s: TestServer;
let c: InProcessClient;

test.before(async () => {
  s = await startServer({ rootCaBundle: caPem });
  c = new InProcessClient(s.api);
});
test.after(async () => { await s?.stop(); });

const managers = (o: any): string[] => (o.metadata.managedFields ?? []).map((m: any) => m.manager).sort();

test('an ownership-only change is stored: a second applier shares a field, [{}] resets managedFields', async () => {
  const doc = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {a: "1"}\n';
  await ok(s.kubeconfig, ['apply', '--server-side', '--field-manager=first', '-f', '-'], doc);
  const before = JSON.parse(await ok(s.kubeconfig, ['get', 'cm', 'shared', '-o', 'json', '--show-managed-fields']));
  await ok(s.kubeconfig, ['apply', '--server-side', '--field-manager=second', '-f', '-'], doc);
  const shared = JSON.parse(await ok(s.kubeconfig, ['get', 'cm', 'shared', '-o', 'json', '--show-managed-fields']));
  assert.equal(managers(shared), ['first', 'second']);
  assert.is.not(shared.metadata.resourceVersion, before.metadata.resourceVersion);
  await ok(s.kubeconfig, ['patch', 'cm', 'shared', '--type=merge', '-p', '{"metadata":{"managedFields":[{}]}}']);
  const reset = JSON.parse(await ok(s.kubeconfig, ['get', 'cm', 'shared', '-o', 'json', '--show-managed-fields']));
  assert.equal(managers(reset), []);
  // Applying the same values again by the same manager, later, is still a no-op (only time would differ).
  const again = await c.patch('/api/v1/namespaces/default/configmaps/shared?fieldManager=first', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'shared' }, data: { a: '1' } }, 'apply');
  assert.is(again.status, 200);
  const twice = await c.patch('/api/v1/namespaces/default/configmaps/shared?fieldManager=first', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'shared' }, data: { a: '1' } }, 'apply');
  assert.is(twice.body.metadata.resourceVersion, again.body.metadata.resourceVersion);
});

test('empty metadata strings are dropped at create (kubectl create configmap sends generateName: "")', async () => {
  await ok(s.kubeconfig, ['create', 'configmap', 'lit', '--from-literal=a=b']);
  const o = JSON.parse(await ok(s.kubeconfig, ['get', 'cm', 'lit', '-o', 'json', '--show-managed-fields']));
  assert.is('generateName' in o.metadata, false);
  assert.is(JSON.stringify(o.metadata.managedFields).includes('generateName'), false);
  const r = await c.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'empties', generateName: '', labels: {}, annotations: {}, finalizers: [] } });
  assert.is(r.status, 201);
  assert.equal(['generateName', 'labels', 'annotations', 'finalizers'].filter((f) => f in r.body.metadata), []);
});

test('managers: apply results are not re-tracked as "unknown"; without ?fieldManager the User-Agent prefix names the manager', async () => {
  const doc = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: nginx}]}\n';
  await ok(s.kubeconfig, ['apply', '--server-side', '--field-manager=ssa', '-f', '-'], doc);
  await ok(s.kubeconfig, ['apply', '--server-side', '--field-manager=ssa', '-f', '-'], doc.replace('image: nginx', 'image: nginx:2'));
  await ok(s.kubeconfig, ['scale', 'deployment', 'web', '--replicas=3']);
  const o = JSON.parse(await ok(s.kubeconfig, ['get', 'deployment', 'web', '-o', 'json', '--show-managed-fields']));
  assert.equal(managers(o).filter((m) => m === 'unknown'), []);
  assert.ok(managers(o).includes('ssa'));
  const viaUa = await c.request('PATCH', '/api/v1/namespaces/default/configmaps/lit', { data: { b: 'c' } }, { 'content-type': 'application/merge-patch+json', 'user-agent': 'mytool/v1.2 (linux/amd64) x/y' });
  assert.is(viaUa.status, 200);
  assert.ok(managers(viaUa.body).includes('mytool'));
});

test('first start stores the system PriorityClasses and kube-root-ca.crt in every namespace', async () => {
  const pcs = await ok(s.kubeconfig, ['get', 'priorityclasses', '-o', 'name']);
  assert.ok(pcs.includes('priorityclass.scheduling.k8s.io/system-node-critical'), pcs);
  assert.ok(pcs.includes('priorityclass.scheduling.k8s.io/system-cluster-critical'), pcs);
  for (const ns of ['default', 'kube-system']) {
    const cm = await c.get(`/api/v1/namespaces/${ns}/configmaps/kube-root-ca.crt`);
    assert.is(cm.status, 200);
    assert.is(cm.body.data['ca.crt'], caPem);
  }
  await ok(s.kubeconfig, ['create', 'namespace', 'fresh']);
  const fresh = await c.get('/api/v1/namespaces/fresh/configmaps/kube-root-ca.crt');
  assert.is(fresh.status, 200);
  assert.is(fresh.body.data['ca.crt'], caPem);
});

test('kube-root-ca.crt: namespaces created by apply get it, and a start with a new CA refreshes it everywhere', async () => {
  await ok(s.kubeconfig, ['apply', '--server-side', '-f', '-'], 'apiVersion: v1\nkind: Namespace\nmetadata: {name: applied}\n');
  assert.is((await c.get('/api/v1/namespaces/applied/configmaps/kube-root-ca.crt')).body.data['ca.crt'], caPem);
  assert.is((await c.get('/api/v1/namespaces/applied/serviceaccounts/default')).status, 200);
  const newCa = caPem.replace('TUlJQ2Zha2U=', 'TmV3Q0E=');
  const again = new ApiServer({ store: s.store, rootCaBundle: newCa, bookmarkIntervalMs: 0, apiServiceCheckIntervalMs: 0 });
  try {
    await again.start();
    for (const ns of ['default', 'fresh', 'applied']) {
      assert.is((await c.get(`/api/v1/namespaces/${ns}/configmaps/kube-root-ca.crt`)).body.data['ca.crt'], newCa, ns);
    }
  } finally {
    await again.stop();
  }
});

test('a Secret ciphertext copied to another Secret key does not decrypt: a clear error, the server keeps serving', async () => {
  const config = parseEncryptionConfig(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: k1
              secret: ${Buffer.alloc(32, 9).toString('base64')}
`);
  const enc = await startServer({ transformerFor: (g, r) => config.transformerFor(g, r) });
  try {
    const cl = new InProcessClient(enc.api);
    const secret = (name: string, v: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, data: { k: Buffer.from(v).toString('base64') } });
    assert.is((await cl.create('/api/v1/namespaces/default/secrets', secret('a', 'alpha'))).status, 201);
    assert.is((await cl.create('/api/v1/namespaces/default/secrets', secret('b', 'beta'))).status, 201);
    const raw = (await enc.store.range(Buffer.from('/registry/secrets/default/a'))).kvs[0]!.value;
    await enc.store.put(Buffer.from('/registry/secrets/default/b'), raw);
    const got = await cl.get('/api/v1/namespaces/default/secrets/b');
    assert.is(got.status, 500);
    assert.not.ok(JSON.stringify(got.body).includes(Buffer.from('alpha').toString('base64')));
    // The watch cache skipped the undecryptable write; everything else is still served.
    assert.is((await cl.create('/api/v1/namespaces/default/secrets', secret('c', 'gamma'))).status, 201);
    const names = (await cl.get('/api/v1/namespaces/default/secrets')).body.items.map((o: any) => o.metadata.name);
    assert.ok(names.includes('a') && names.includes('c'), String(names));
  } finally {
    await enc.stop();
  }
});

test.run();
