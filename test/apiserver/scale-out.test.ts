// Scale out: two API servers on one store serve the same data; a watch opened
// on one sees writes made through the other, and optimistic concurrency holds
// across them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiServer } from '../../src/apiserver/server.ts';
import { InProcessClient } from '../../src/client/inprocess.ts';
import { LocalKeyspaceStore } from '../../src/store/local.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keelson-scale-'));
const store = new LocalKeyspaceStore({ dir: path.join(dir, 'store'), leaseTickMs: 0 });
const a = new ApiServer({ store, bookmarkIntervalMs: 0 });
const b = new ApiServer({ store, bookmarkIntervalMs: 0 });
const ca = new InProcessClient(a);
const cb = new InProcessClient(b);

test.before(async () => { await a.start(); await b.start(); });
test.after(async () => { await a.stop(); await b.stop(); await store.close(); rmSync(dir, { recursive: true, force: true }); });

test('a watch on one server sees writes through the other', async () => {
  const rv = (await ca.get('/api/v1/namespaces/default/configmaps')).body.metadata.resourceVersion;
  const w = ca.watch(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}`);
  const first = w.next();
  const created = await cb.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: '1' } });
  assert.is(created.status, 201);
  const ev = (await first).value;
  assert.is(ev.type, 'ADDED');
  assert.is(ev.object.metadata.resourceVersion, created.body.metadata.resourceVersion);
  await w.return(undefined);
  // A consistent list on A right after a write through B includes it.
  await cb.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'y' } });
  const names = (await ca.get('/api/v1/namespaces/default/configmaps')).body.items.map((o: any) => o.metadata.name);
  assert.ok(names.includes('y'));
});

test('a stale update through the other server is a conflict', async () => {
  const x = (await ca.get('/api/v1/namespaces/default/configmaps/x')).body;
  assert.is((await cb.update('/api/v1/namespaces/default/configmaps/x', { ...x, data: { a: '2' } })).status, 200);
  const stale = await ca.update('/api/v1/namespaces/default/configmaps/x', { ...x, data: { a: '3' } });
  assert.is(stale.status, 409);
});

test.run();
