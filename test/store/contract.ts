// The shared contract suite of the Store interface. Every implementation
// (LocalKeyspaceStore, the embedded Raft member, the remote etcd-API client,
// a real etcd behind that client) runs it:
//
//   storeContract('local', async () => ({ store, cleanup })).run();
//
// It uses only the Store interface and etcd v3 semantics. Each test works
// under a fresh key prefix and reasons about revisions relative to the first
// one it sees, so it also runs against a store that already holds data.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isKeelsonError } from '../../src/store/errors.ts';
import { prefixEnd, type Store, type WatchResponse, type WatchStream } from '../../src/store/store.ts';

export interface StoreFixture {
  store: Store;
  cleanup(): Promise<void>;
}

const b = (s: string) => Buffer.from(s);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isKeelsonError(e) ? e.code : `non-store error: ${String(e)}`;
  }
  return 'no error';
}

/** The next response within timeoutMs (watch delivery is asynchronous in some implementations). */
async function nextWithin(w: WatchStream, timeoutMs = 5000): Promise<WatchResponse> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no watch response within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const r = await Promise.race([w.next(), timeout]);
    if (r === null) throw new Error('watch ended');
    return r;
  } finally {
    clearTimeout(timer);
  }
}

/** Collects responses until `count` events arrived. */
async function events(w: WatchStream, count: number): Promise<WatchResponse['events']> {
  const out: WatchResponse['events'] = [];
  while (out.length < count) {
    const r = await nextWithin(w);
    if (r.canceled) throw new Error(`watch canceled: ${r.cancelReason}`);
    out.push(...r.events);
  }
  return out;
}

export function storeContract(name: string, factory: () => Promise<StoreFixture>) {
  const s = suite<{ fx?: StoreFixture; p: string }>(`Store contract: ${name}`, { p: '' });
  let counter = 0;
  s.before.each(async (ctx) => {
    ctx.fx = await factory();
    ctx.p = `/contract/${process.pid}/${counter++}/`;
  });
  s.after.each(async (ctx) => {
    await ctx.fx?.cleanup();
  });
  const st = (ctx: { fx?: StoreFixture }) => (ctx.fx as StoreFixture).store;

  s('put and range: revisions, versions, prevKv', async (ctx) => {
    const store = st(ctx);
    const k = b(`${ctx.p}a`);
    const r1 = await store.put(k, b('1'));
    const r2 = await store.put(k, b('2'), { prevKv: true });
    assert.is(r2.header.revision, r1.header.revision + 1);
    assert.is(r2.prevKv?.value.toString(), '1');
    const got = await store.range(k);
    assert.is(got.count, 1);
    const kv = got.kvs[0];
    assert.equal([kv.value.toString(), kv.version, kv.createRevision, kv.modRevision], ['2', 2, r1.header.revision, r2.header.revision]);
    const old = await store.range(k, { revision: r1.header.revision });
    assert.is(old.kvs[0].value.toString(), '1');
    assert.is((await store.range(b(`${ctx.p}missing`))).count, 0);
  });

  s('prefix and from-key ranges, limit, count, more, sort, keysOnly, countOnly', async (ctx) => {
    const store = st(ctx);
    for (const n of ['c', 'a', 'b', 'd']) await store.put(b(`${ctx.p}${n}`), b(n.toUpperCase()));
    const p = b(ctx.p);
    const all = await store.range(p, { rangeEnd: prefixEnd(p) });
    assert.equal(all.kvs.map((kv) => kv.key.toString().slice(ctx.p.length)), ['a', 'b', 'c', 'd']);
    const lim = await store.range(p, { rangeEnd: prefixEnd(p), limit: 2 });
    assert.equal([lim.kvs.length, lim.more, lim.count], [2, true, 4]);
    const desc = await store.range(p, { rangeEnd: prefixEnd(p), sortOrder: 'descend', sortTarget: 'key', limit: 1 });
    assert.is(desc.kvs[0].key.toString(), `${ctx.p}d`);
    const byMod = await store.range(p, { rangeEnd: prefixEnd(p), sortTarget: 'mod', sortOrder: 'ascend' });
    assert.equal(byMod.kvs.map((kv) => kv.key.toString().slice(ctx.p.length)), ['c', 'a', 'b', 'd']);
    const keysOnly = await store.range(p, { rangeEnd: prefixEnd(p), keysOnly: true });
    assert.ok(keysOnly.kvs.every((kv) => kv.value.length === 0));
    const countOnly = await store.range(p, { rangeEnd: prefixEnd(p), countOnly: true });
    assert.equal([countOnly.count, countOnly.kvs.length], [4, 0]);
    const fromKey = await store.range(b(`${ctx.p}c`), { rangeEnd: Buffer.from([0]), limit: 2 });
    assert.equal(fromKey.kvs.map((kv) => kv.key.toString().slice(ctx.p.length)), ['c', 'd']);
  });

  s('deleteRange with prevKv; a deleted key can be recreated with a new create revision', async (ctx) => {
    const store = st(ctx);
    const p = b(ctx.p);
    await store.put(b(`${ctx.p}x`), b('1'));
    await store.put(b(`${ctx.p}y`), b('2'));
    const d = await store.deleteRange(p, { rangeEnd: prefixEnd(p), prevKv: true });
    assert.is(d.deleted, 2);
    assert.equal(d.prevKvs.map((kv) => kv.value.toString()), ['1', '2']);
    assert.is((await store.range(p, { rangeEnd: prefixEnd(p) })).count, 0);
    const again = await store.put(b(`${ctx.p}x`), b('3'));
    const kv = (await store.range(b(`${ctx.p}x`))).kvs[0];
    assert.equal([kv.version, kv.createRevision], [1, again.header.revision]);
    assert.is((await store.deleteRange(b(`${ctx.p}none`))).deleted, 0);
  });

  s('txn: compare-and-swap, failure branch, nested txn, duplicate keys refused', async (ctx) => {
    const store = st(ctx);
    const k = b(`${ctx.p}cas`);
    const put = await store.put(k, b('v1'));
    const ok = await store.txn({
      compare: [{ key: k, target: 'mod', result: 'equal', number: put.header.revision }],
      success: [{ op: 'put', key: k, value: b('v2') }, { op: 'range', key: k }],
      failure: [],
    });
    assert.ok(ok.succeeded);
    const rr = ok.responses[1] as Extract<(typeof ok.responses)[number], { op: 'range' }>;
    assert.is(rr.kvs[0].value.toString(), 'v2');
    const stale = await store.txn({
      compare: [{ key: k, target: 'mod', result: 'equal', number: put.header.revision }],
      success: [{ op: 'put', key: k, value: b('v3') }],
      failure: [{ op: 'range', key: k }],
    });
    assert.not.ok(stale.succeeded);
    assert.is((stale.responses[0] as typeof rr).kvs[0].value.toString(), 'v2');
    const create = await store.txn({
      compare: [{ key: b(`${ctx.p}new`), target: 'create', result: 'equal', number: 0 }],
      success: [{ op: 'txn', compare: [{ key: k, target: 'value', result: 'equal', value: b('v2') }], success: [{ op: 'put', key: b(`${ctx.p}new`), value: b('n') }], failure: [] }],
      failure: [],
    });
    assert.ok(create.succeeded);
    assert.is((await store.range(b(`${ctx.p}new`))).count, 1);
    assert.is(await code(store.txn({ compare: [], success: [{ op: 'put', key: k, value: b('a') }, { op: 'put', key: k, value: b('b') }], failure: [] })), 'duplicate key');
    const ops = Array.from({ length: 129 }, (_, i) => ({ op: 'put' as const, key: b(`${ctx.p}m${i}`), value: b('x') }));
    assert.is(await code(store.txn({ compare: [], success: ops, failure: [] })), 'too many operations');
  });

  s('compaction: reads below fail with the compact revision, reads at or above work', async (ctx) => {
    const store = st(ctx);
    const k = b(`${ctx.p}c`);
    const r1 = await store.put(k, b('1'));
    const r2 = await store.put(k, b('2'));
    await store.put(k, b('3'));
    await store.compact(r2.header.revision, { physical: true });
    try {
      await store.range(k, { revision: r1.header.revision });
      assert.unreachable('read below compaction');
    } catch (e) {
      assert.ok(isKeelsonError(e, 'compacted'));
      assert.ok((e as { compactRevision?: number }).compactRevision !== undefined);
    }
    assert.is((await store.range(k, { revision: r2.header.revision })).kvs[0].value.toString(), '2');
    assert.is(await code(store.compact(r1.header.revision)), 'compacted');
    const cur = (await store.range(k)).header.revision;
    assert.is(await code(store.range(k, { revision: cur + 1000 })), 'future revision');
  });

  s('bad input gets a clear error and writes nothing', async (ctx) => {
    const store = st(ctx);
    const before = (await store.range(b(ctx.p))).header.revision;
    assert.is(await code(store.put(Buffer.alloc(0), b('x'))), 'empty key');
    assert.is(await code(store.put(b(`${ctx.p}l`), b('x'), { lease: 123456789 })), 'lease not found');
    assert.is(await code(store.put(b(`${ctx.p}missing`), Buffer.alloc(0), { ignoreValue: true })), 'key not found');
    assert.is(await code(store.put(b(`${ctx.p}big`), Buffer.alloc(2 * 1024 * 1024))), 'request too large');
    assert.is((await store.range(b(ctx.p))).header.revision, before);
  });

  s('watch: live events with prevKv, a txn revision in one response, cancel', async (ctx) => {
    const store = st(ctx);
    const p = b(ctx.p);
    const w = store.watch(p, { rangeEnd: prefixEnd(p), prevKv: true });
    await store.put(b(`${ctx.p}1`), b('a'));
    await store.put(b(`${ctx.p}1`), b('b'));
    await store.txn({ compare: [], success: [{ op: 'put', key: b(`${ctx.p}2`), value: b('x') }, { op: 'deleteRange', key: b(`${ctx.p}1`) }], failure: [] });
    const evs = await events(w, 4);
    assert.equal(evs.map((e) => `${e.type}:${e.kv.key.toString().slice(ctx.p.length)}`), ['put:1', 'put:1', 'put:2', 'delete:1']);
    assert.is(evs[1].prevKv?.value.toString(), 'a');
    assert.is(evs[3].prevKv?.value.toString(), 'b');
    assert.is(evs[2].kv.modRevision, evs[3].kv.modRevision);
    w.cancel();
  });

  s('watch from a past revision replays history in order; below compaction it is canceled with the compact revision', async (ctx) => {
    const store = st(ctx);
    const k = b(`${ctx.p}h`);
    const revs: number[] = [];
    for (let i = 0; i < 5; i++) revs.push((await store.put(k, b(`${i}`))).header.revision);
    const w = store.watch(k, { startRevision: revs[1] });
    const evs = await events(w, 4);
    assert.equal(evs.map((e) => e.kv.value.toString()), ['1', '2', '3', '4']);
    w.cancel();
    await store.compact(revs[3]);
    const old = store.watch(k, { startRevision: revs[1] });
    const r = await nextWithin(old);
    assert.ok(r.canceled);
    assert.ok((r.compactRevision ?? 0) >= revs[3]);
    old.cancel();
  });

  s('watch filters: noPut and noDelete', async (ctx) => {
    const store = st(ctx);
    const k = b(`${ctx.p}f`);
    const dels = store.watch(k, { noPut: true });
    const puts = store.watch(k, { noDelete: true });
    await store.put(k, b('1'));
    await store.deleteRange(k);
    await store.put(k, b('2'));
    assert.equal((await events(dels, 1)).map((e) => e.type), ['delete']);
    assert.equal((await events(puts, 2)).map((e) => e.kv.value.toString()), ['1', '2']);
    dels.cancel();
    puts.cancel();
  });

  s('leases: grant, attach, time-to-live with keys, keep-alive, revoke deletes keys', async (ctx) => {
    const store = st(ctx);
    const g = await store.leaseGrant(30);
    assert.ok(g.id > 0);
    assert.ok(g.ttl >= 30);
    await store.put(b(`${ctx.p}l1`), b('x'), { lease: g.id });
    await store.put(b(`${ctx.p}l2`), b('x'), { lease: g.id });
    const t = await store.leaseTimeToLive(g.id, { keys: true });
    assert.ok(t.ttl > 0 && t.ttl <= g.ttl);
    assert.equal(t.keys.map(String).sort(), [`${ctx.p}l1`, `${ctx.p}l2`]);
    assert.ok((await store.leaseKeepAlive(g.id)).ttl > 0);
    assert.ok((await store.leaseLeases()).leases.some((l) => l.id === g.id));
    const kv = (await store.range(b(`${ctx.p}l1`))).kvs[0];
    assert.is(kv.lease, g.id);
    await store.leaseRevoke(g.id);
    assert.is((await store.range(b(ctx.p), { rangeEnd: prefixEnd(b(ctx.p)) })).count, 0);
    assert.is((await store.leaseTimeToLive(g.id)).ttl, -1);
    assert.is(await code(store.leaseRevoke(g.id)), 'lease not found');
    assert.is(await code(store.leaseKeepAlive(g.id)), 'lease not found');
  });

  s('status, members and hash', async (ctx) => {
    const store = st(ctx);
    await store.put(b(`${ctx.p}s`), b('x'));
    const status = await store.status();
    assert.ok(status.header.revision > 0);
    assert.ok(status.dbSizeInUse > 0);
    assert.ok(status.raftAppliedIndex > 0);
    const members = await store.members();
    assert.ok(members.members.length >= 1);
    const h1 = await store.hashKV(status.header.revision);
    const h2 = await store.hashKV(status.header.revision);
    assert.is(h1.hash, h2.hash);
  });

  return s;
}
