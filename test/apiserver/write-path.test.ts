// The create/update path's shortcuts give exactly what the long way gives:
// the answer to a write is the JSON of the written object (made from the
// stored text, not a second serialization), and the watch cache's object for
// a write made through this server (the writer's object, not a decode of the
// stored bytes) equals the decoded stored value; a write by
// anyone else, or one that failed, is decoded as before.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type TestServer } from './helpers.ts';

let s: TestServer;
test.before(async () => { s = await startServer({ clock: () => Date.parse('2026-01-02T03:04:05Z') }); });
test.after(async () => { await s.stop(); });

const call = async (method: string, url: string, body?: unknown, contentType = 'application/json') => {
  const r = await s.api.handle({ method, url, headers: { 'content-type': contentType }, body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)) });
  return { status: r.status, text: r.body!.toString(), obj: JSON.parse(r.body!.toString()) };
};
const pod = (name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'img:1' }] } });

/** The stored value of a key, decoded the way the registry decodes (resourceVersion = modRevision). */
async function stored(key: string): Promise<any> {
  const r = await s.store.range(Buffer.from(key));
  const kv = r.kvs[0]!;
  const o = JSON.parse(kv.value.toString());
  o.metadata.resourceVersion = String(kv.modRevision);
  return o;
}

test('create: the answer is JSON.stringify of the stored object with its resourceVersion, and the cache holds an equal copy', async () => {
  const r = await call('POST', '/api/v1/namespaces/default/pods', pod('a'));
  assert.is(r.status, 201);
  const want = await stored('/registry/pods/default/a');
  assert.equal(r.obj, want);
  assert.is(r.text, JSON.stringify(r.obj), 'the text is what JSON.stringify gives, resourceVersion last in metadata');
  assert.is(Object.keys(r.obj.metadata).at(-1), 'resourceVersion');
  const reg = s.api.registry('', 'pods')!;
  await reg.cache.syncToStore();
  const c = reg.cache.get('/registry/pods/default/a')!;
  assert.equal(c.obj, want);
  assert.is(c.rev, Number(want.metadata.resourceVersion));
});

test('update and patch: answer and cache equal the stored object', async () => {
  const cur = (await call('GET', '/api/v1/namespaces/default/pods/a')).obj;
  cur.metadata.labels.app = 'y';
  const u = await call('PUT', '/api/v1/namespaces/default/pods/a', cur);
  assert.is(u.status, 200);
  assert.equal(u.obj, await stored('/registry/pods/default/a'));
  assert.is(u.text, JSON.stringify(u.obj));
  const p = await call('PATCH', '/api/v1/namespaces/default/pods/a', { metadata: { labels: { more: '1' } } }, 'application/merge-patch+json');
  assert.is(p.status, 200);
  const want = await stored('/registry/pods/default/a');
  assert.equal(p.obj, want);
  const reg = s.api.registry('', 'pods')!;
  await reg.cache.syncToStore();
  assert.equal(reg.cache.get('/registry/pods/default/a')!.obj, want);
});

test('a failed create (AlreadyExists) leaves the cache on the stored object; a write straight to the store is decoded', async () => {
  const before = await stored('/registry/pods/default/a');
  const r = await call('POST', '/api/v1/namespaces/default/pods', pod('a'));
  assert.is(r.status, 409);
  // Another writer puts different bytes at the key: the cache must show them, not anything this server built.
  const other = { ...before, metadata: { ...before.metadata, labels: { app: 'other' } } };
  delete other.metadata.resourceVersion;
  await s.store.put(Buffer.from('/registry/pods/default/a'), Buffer.from(JSON.stringify(other)));
  const reg = s.api.registry('', 'pods')!;
  await reg.cache.syncToStore();
  const c = reg.cache.get('/registry/pods/default/a')!;
  assert.equal(c.obj.metadata!.labels, { app: 'other' });
  assert.equal(c.obj, await stored('/registry/pods/default/a'));
});

test('the cache takes the written object itself, and the body given to create is not changed', async () => {
  const reg = s.api.registry('', 'pods')!;
  const ctx = { user: { username: 'u', groups: [] }, now: Date.parse('2026-01-02T03:04:05Z'), dryRun: false, fieldValidation: 'Ignore' as const, warnings: [], fieldManager: 'm' };
  const body = pod('b');
  const before = JSON.stringify(body);
  const out = await reg.create('default', body as any, ctx);
  assert.is(JSON.stringify(body), before, 'without bodyOwned the body is copied');
  await reg.cache.syncToStore();
  const c = reg.cache.get('/registry/pods/default/b')!;
  assert.ok(c.obj === out, 'shared: objects a write returns are never changed afterwards');
  assert.is(c.obj.metadata!.resourceVersion, String(c.rev));
  assert.equal(c.obj, await stored('/registry/pods/default/b'));
});

test('WatchCache hints: used only for the very bytes noted, consumed by any event of the key, dropped on failure', async () => {
  const { WatchCache } = await import('../../src/apiserver/watchcache/cache.ts');
  const decoded: string[] = [];
  const decode = (k: string, v: Buffer, rev: number) => { decoded.push(k); const o = JSON.parse(v.toString()); o.metadata.resourceVersion = String(rev); return o; };
  const cache = new WatchCache(s.store, '/registry/hinted/', decode);
  await cache.start();
  const mine = { metadata: { name: 'a' }, v: 1 };
  const bytes = Buffer.from(JSON.stringify(mine));
  cache.noteWritten('/registry/hinted/a', { value: bytes, object: (rev) => { (mine.metadata as any).resourceVersion = String(rev); return { obj: mine }; } });
  await s.store.put(Buffer.from('/registry/hinted/a'), Buffer.from(bytes));
  await cache.syncToStore();
  assert.ok(cache.get('/registry/hinted/a')!.obj === mine, 'the noted object for the noted bytes');
  assert.equal(decoded, []);
  // Noted bytes that are not what the store then holds: decoded, and the hint is gone.
  cache.noteWritten('/registry/hinted/b', { value: Buffer.from('{"metadata":{"name":"b"},"v":1}'), object: () => { throw new Error('must not be used'); } });
  await s.store.put(Buffer.from('/registry/hinted/b'), Buffer.from('{"metadata":{"name":"b"},"v":2}'));
  await cache.syncToStore();
  assert.is(cache.get('/registry/hinted/b')!.obj.v, 2);
  assert.equal(decoded, ['/registry/hinted/b']);
  // A dropped hint (failed txn) is not used even when the same bytes are written later by someone else.
  const value = Buffer.from('{"metadata":{"name":"c"},"v":3}');
  cache.noteWritten('/registry/hinted/c', { value, object: () => { throw new Error('must not be used'); } });
  cache.dropWritten('/registry/hinted/c', value);
  await s.store.put(Buffer.from('/registry/hinted/c'), Buffer.from(value));
  await cache.syncToStore();
  assert.is(cache.get('/registry/hinted/c')!.obj.v, 3);
  assert.equal(decoded, ['/registry/hinted/b', '/registry/hinted/c']);
  await cache.stop();
});

test.run();
