// The watch cache recovers when its store watch ends (compaction past it, a
// broken stream): it relists, emits the differences as events, and watches
// again, so its watchers miss nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkStream } from '../../src/apiserver/http/stream.ts';
import { WatchCache } from '../../src/apiserver/watchcache/cache.ts';
import { LocalKeyspaceStore } from '../../src/store/local.ts';
import type { WatchStream } from '../../src/store/store.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keelson-wc-'));
const store = new LocalKeyspaceStore({ dir: path.join(dir, 'store'), leaseTickMs: 0 });
const streams: WatchStream[] = [];
// A store whose watches the test can break.
const breakable = new Proxy(store, {
  get(t, p, r) {
    if (p === 'watch') return (key: Buffer, opts: object) => { const s = t.watch(key, opts); streams.push(s); return s; };
    const v = Reflect.get(t, p, r);
    return typeof v === 'function' ? v.bind(t) : v;
  },
});
const decode = (_k: string, v: Buffer, rev: number) => { const o = JSON.parse(v.toString()); o.metadata.resourceVersion = String(rev); return o; };
const put = (name: string, data: string) => store.put(Buffer.from(`/registry/things/ns/${name}`), Buffer.from(JSON.stringify({ metadata: { name, namespace: 'ns' }, data })));

test.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });

test('relist after the store watch ends: changes in the gap arrive once, in order', async () => {
  await put('a', '1');
  const cache = new WatchCache(breakable, '/registry/things/', decode);
  await cache.start();
  assert.is(cache.size, 1);
  const sink = new ChunkStream(100);
  cache.watch(cache.rev, { matches: () => true }, sink, { initialEvents: false, bookmarks: false });
  // Break the store watch, and change things while the cache is not watching.
  streams[0]!.cancel();
  await put('b', '2');
  await store.deleteRange(Buffer.from('/registry/things/ns/a'));
  await put('c', '3');
  await cache.syncToStore();
  assert.ok(streams.length >= 2, 'the cache watched again');
  const lines = sink.drain().map((b) => JSON.parse(b.toString())).map((e) => `${e.type} ${e.object.metadata.name}`);
  assert.equal([...lines].sort(), ['ADDED b', 'ADDED c', 'DELETED a']);
  assert.equal(cache.list().map((c) => c.name), ['b', 'c']);
  // And it keeps following the store afterwards.
  await put('d', '4');
  await cache.syncToStore();
  assert.equal(sink.drain().map((b) => JSON.parse(b.toString()).type), ['ADDED']);
  await cache.stop();
});

test.run();
