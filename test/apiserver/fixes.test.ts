// Engine correctness fixes, kubectl-level where cheap: ownership-only changes
// are stored, empty metadata strings are dropped at create, and the objects
// Kubernetes keeps at first start (system PriorityClasses, kube-root-ca.crt).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InProcessClient } from '../../src/client/inprocess.ts';
import { ok, startServer, type TestServer } from './helpers.ts';

let s: TestServer;
let c: InProcessClient;

test.before(async () => {
  s = await startServer();
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

test.run();
