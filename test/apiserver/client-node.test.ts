// @kubernetes/client-node 1.4.0 against the API server: typed calls, an
// informer (list, then watch; add/update/delete; relist after 410 Gone) and a
// raw watch with bookmarks.
import * as k8s from '@kubernetes/client-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InProcessClient } from '../../src/client/inprocess.ts';
import { startServer, type TestServer } from './helpers.ts';

let s: TestServer;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;

test.before(async () => {
  // Short watches and a small event window, so that a re-watch can fall out of the window.
  s = await startServer({ watchTimeoutSecondsMax: 1, watchCache: { eventWindowMax: 20 }, bookmarkIntervalMs: 100 });
  kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 't', server: s.url, skipTLSVerify: true }],
    users: [{ name: 't', token: 'x' }],
    contexts: [{ name: 't', cluster: 't', user: 't' }],
    currentContext: 't',
  });
  core = kc.makeApiClient(k8s.CoreV1Api);
});
test.after(async () => { await s?.stop(); });

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('typed calls: create, read, list, replace, delete', async () => {
  const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'typed' }, data: { a: '1' } } });
  assert.ok(created.metadata?.uid);
  const read = await core.readNamespacedConfigMap({ namespace: 'default', name: 'typed' });
  assert.is(read.data?.a, '1');
  read.data = { a: '2' };
  const replaced = await core.replaceNamespacedConfigMap({ namespace: 'default', name: 'typed', body: read });
  assert.is(replaced.data?.a, '2');
  const list = await core.listNamespacedConfigMap({ namespace: 'default' });
  assert.ok(list.items.some((c) => c.metadata?.name === 'typed'));
  await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'typed' });
  try {
    await core.readNamespacedConfigMap({ namespace: 'default', name: 'typed' });
    assert.unreachable('read after delete');
  } catch (e) {
    assert.is((e as { code?: number }).code, 404);
  }
});

test('informer: list, watch, add/update/delete, relist after 410', async () => {
  let lists = 0;
  const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/configmaps', () => { lists++; return core.listNamespacedConfigMap({ namespace: 'default' }); });
  const seen: string[] = [];
  informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
  informer.on('update', (o) => seen.push(`update ${o.metadata?.name} ${o.data?.v}`));
  informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
  const errs: unknown[] = [];
  informer.on('error', (e) => errs.push(e));
  const c = new InProcessClient(s.api);
  await c.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pre' } });
  await informer.start();
  try {
    await until('initial list', () => seen.includes('add pre'));
    await c.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'inf' }, data: { v: '1' } });
    await until('add', () => seen.includes('add inf'));
    await c.patch('/api/v1/namespaces/default/configmaps/inf', { data: { v: '2' } });
    await until('update', () => seen.includes('update inf 2'));
    await c.delete('/api/v1/namespaces/default/configmaps/inf');
    await until('delete', () => seen.includes('delete inf'));
    // Writes elsewhere push the informer's last resourceVersion out of the window; its next re-watch gets 410 and it relists.
    const listsBefore = lists;
    await c.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'elsewhere' } });
    for (let i = 0; i < 30; i++) await c.create('/api/v1/namespaces/elsewhere/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `e${i}` } });
    await until('relist', () => lists > listsBefore);
    await c.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after' } });
    await until('add after relist', () => seen.includes('add after'));
    assert.equal(informer.list().map((o) => o.metadata?.name).sort(), ['after', 'pre']);
    assert.equal(errs, []);
  } finally {
    await informer.stop();
  }
});

test('watch with bookmarks', async () => {
  const list = await core.listNamespacedConfigMap({ namespace: 'default' });
  const types: string[] = [];
  let bookmarkRv = '';
  const w = new k8s.Watch(kc);
  const req = await w.watch('/api/v1/namespaces/default/configmaps', { allowWatchBookmarks: true, resourceVersion: list.metadata?.resourceVersion }, (type, obj) => {
    types.push(type);
    if (type === 'BOOKMARK') bookmarkRv = obj.metadata.resourceVersion;
  }, () => {});
  try {
    await until('a bookmark', () => types.includes('BOOKMARK'));
    assert.ok(Number(bookmarkRv) >= Number(list.metadata?.resourceVersion));
  } finally {
    req.abort();
  }
});

test.run();
