// Differential test: the same raw gRPC requests (Keelson's own protos) go to
// a real etcd 3.4 member and to the Keelson server, and the answers must
// agree: gRPC codes and exact messages of every error a client can provoke,
// the special answers of the lease calls, and the watch stream's sequence of
// created / canceled responses. Revisions differ between the two (an empty
// etcd is at 1, Keelson at 0), so scenarios reason relative to what each
// system answered.
import * as grpc from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { protos } from '../../../src/store/server/codec.ts';
import { etcdAvailable, startEtcdCluster, type EtcdCluster } from '../client/etcd-cluster.ts';
import { startServer, type ServerFixture } from './helpers.ts';

type Wire = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Target { name: string; kv: any; lease: any; watch: any; cluster: any; close(): void } // eslint-disable-line @typescript-eslint/no-explicit-any

function target(name: string, addr: string): Target {
  const p = protos() as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const creds = grpc.credentials.createInsecure();
  const c = { kv: new p.etcdserverpb.KV(addr, creds), lease: new p.etcdserverpb.Lease(addr, creds), watch: new p.etcdserverpb.Watch(addr, creds), cluster: new p.etcdserverpb.Cluster(addr, creds) };
  return { name, ...c, close: () => { for (const x of Object.values(c)) x.close(); } };
}

function call(client: any, method: string, req: Wire): Promise<Wire> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => client[method](req, { deadline: Date.now() + 10_000 }, (e: Error | null, r: Wire) => (e ? reject(e) : resolve(r))));
}

/** The outcome of a call in a comparable form: 'ok' or the error's code and text. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return `${grpc.status[(e as grpc.ServiceError).code]}: ${(e as grpc.ServiceError).details}`;
  }
}

const b = (s: string) => Buffer.from(s);
let n = 0;
const fresh = () => `/diff/${process.pid}/${n++}/`;

/** Runs the scenario on both systems and returns both results for comparison. */
type Scenario = (t: Target, p: string) => Promise<unknown>;

const s = suite<{ etcd?: EtcdCluster; fx?: ServerFixture; targets?: Target[] }>('differential: Keelson server vs etcd 3.4', {});

s.before(async (ctx) => {
  ctx.etcd = await startEtcdCluster(1);
  ctx.fx = await startServer({ quotaBackendBytes: 0 });
  ctx.targets = [target('etcd', ctx.etcd.endpoints[0].replace('http://', '')), target('keelson', `127.0.0.1:${ctx.fx.port}`)];
  // Wait until etcd answers.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await call(ctx.targets[0].kv, 'Put', { key: b('/ready'), value: b('1') });
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`etcd not ready: ${String(e)}\n${ctx.etcd.logs().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
});
s.after(async (ctx) => {
  for (const t of ctx.targets ?? []) t.close();
  await ctx.fx?.stop();
  await ctx.etcd?.stop();
});

async function both(ctx: { targets?: Target[] }, sc: Scenario): Promise<void> {
  const [etcd, keelson] = ctx.targets as Target[];
  const want = await sc(etcd, fresh());
  const got = await sc(keelson, fresh());
  assert.equal(got, want);
}

s('KV errors: codes and exact messages', async (ctx) => {
  await both(ctx, async (t, p) => {
    const r1 = await call(t.kv, 'Put', { key: b(`${p}k`), value: b('1') });
    const r2 = await call(t.kv, 'Put', { key: b(`${p}k`), value: b('2') });
    const rev1 = Number(r1.header.revision);
    const rev2 = Number(r2.header.revision);
    const out: Record<string, string> = {};
    out.compactFuture = await outcome(call(t.kv, 'Compact', { revision: rev2 + 1000 }));
    await call(t.kv, 'Compact', { revision: rev2, physical: true });
    out.rangeCompacted = await outcome(call(t.kv, 'Range', { key: b(`${p}k`), revision: rev1 }));
    out.rangeAtCompact = await outcome(call(t.kv, 'Range', { key: b(`${p}k`), revision: rev2 }));
    out.rangeFuture = await outcome(call(t.kv, 'Range', { key: b(`${p}k`), revision: rev2 + 1000 }));
    out.compactAgain = await outcome(call(t.kv, 'Compact', { revision: rev1 }));
    out.emptyKeyPut = await outcome(call(t.kv, 'Put', { key: b(''), value: b('x') }));
    out.emptyKeyRange = await outcome(call(t.kv, 'Range', { key: b('') }));
    out.emptyKeyDelete = await outcome(call(t.kv, 'DeleteRange', { key: b('') }));
    out.leaseMissing = await outcome(call(t.kv, 'Put', { key: b(`${p}l`), value: b('x'), lease: 987654321 }));
    out.ignoreValueMissing = await outcome(call(t.kv, 'Put', { key: b(`${p}missing`), ignore_value: true }));
    out.ignoreValueWithValue = await outcome(call(t.kv, 'Put', { key: b(`${p}k`), value: b('v'), ignore_value: true }));
    out.ignoreLeaseWithLease = await outcome(call(t.kv, 'Put', { key: b(`${p}k`), value: b('v'), lease: 5, ignore_lease: true }));
    out.ignoreValueOk = await outcome(call(t.kv, 'Put', { key: b(`${p}k`), ignore_value: true }));
    out.tooLarge = await outcome(call(t.kv, 'Put', { key: b(`${p}big`), value: Buffer.alloc(1600 * 1024) }));
    const dup = { compare: [], success: [{ request_put: { key: b(`${p}d`), value: b('1') } }, { request_put: { key: b(`${p}d`), value: b('2') } }], failure: [] };
    out.txnDuplicate = await outcome(call(t.kv, 'Txn', dup));
    const delPut = { compare: [], success: [{ request_delete_range: { key: b(`${p}a`), range_end: b(`${p}z`) } }, { request_put: { key: b(`${p}d`), value: b('2') } }], failure: [] };
    out.txnDeleteThenPut = await outcome(call(t.kv, 'Txn', delPut));
    const many = { compare: [], success: Array.from({ length: 129 }, (_, i) => ({ request_put: { key: b(`${p}m${i}`), value: b('x') } })), failure: [] };
    out.txnTooMany = await outcome(call(t.kv, 'Txn', many));
    const exactly = { compare: [], success: Array.from({ length: 128 }, (_, i) => ({ request_put: { key: b(`${p}m${i}`), value: b('x') } })), failure: [] };
    out.txn128 = await outcome(call(t.kv, 'Txn', exactly));
    return out;
  });
});

s('range results: limit, more, count, sort, from-key; delete counts', async (ctx) => {
  await both(ctx, async (t, p) => {
    for (const k of ['c', 'a', 'b', 'd', 'e']) await call(t.kv, 'Put', { key: b(`${p}${k}`), value: b(k) });
    const end = b(`${p.slice(0, -1)}0`);
    const shape = (r: Wire) => ({ keys: r.kvs.map((kv: Wire) => kv.key.toString().slice(p.length)), more: r.more, count: r.count });
    return {
      limit: shape(await call(t.kv, 'Range', { key: b(p), range_end: end, limit: 2 })),
      desc: shape(await call(t.kv, 'Range', { key: b(p), range_end: end, sort_order: 2, sort_target: 0, limit: 3 })),
      byValueNoOrder: shape(await call(t.kv, 'Range', { key: b(p), range_end: end, sort_target: 4 })),
      countOnly: shape(await call(t.kv, 'Range', { key: b(p), range_end: end, count_only: true })),
      fromKey: shape(await call(t.kv, 'Range', { key: b(`${p}d`), range_end: b('\0'), limit: 2 })).keys,
      deleted: (await call(t.kv, 'DeleteRange', { key: b(`${p}b`), range_end: b(`${p}d`), prev_kv: true })).deleted,
    };
  });
});

s('lease calls: missing leases, existing ids, TTL bounds, keep-alive of a missing lease', async (ctx) => {
  await both(ctx, async (t) => {
    const id = 4_000_000_000 + n;
    const out: Record<string, unknown> = {};
    const g = await call(t.lease, 'LeaseGrant', { TTL: 30, ID: id });
    out.grant = [g.ID === String(id), g.TTL];
    out.grantAgain = await outcome(call(t.lease, 'LeaseGrant', { TTL: 30, ID: id }));
    out.grantHuge = await outcome(call(t.lease, 'LeaseGrant', { TTL: '9000000001', ID: id + 1 }));
    out.revokeMissing = await outcome(call(t.lease, 'LeaseRevoke', { ID: id + 2 }));
    const ttl = await call(t.lease, 'LeaseTimeToLive', { ID: id + 2, keys: true });
    out.ttlMissing = [ttl.TTL, ttl.grantedTTL, ttl.keys.length];
    const ka = t.lease.LeaseKeepAlive();
    ka.on('error', () => {});
    const first = new Promise<Wire>((resolve) => ka.once('data', resolve));
    ka.write({ ID: id + 2 });
    const r = await first;
    ka.end();
    out.keepAliveMissing = [r.ID === String(id + 2), r.TTL];
    await call(t.lease, 'LeaseRevoke', { ID: id });
    return out;
  });
});

s('watch stream: compacted start, cancel, created header', async (ctx) => {
  await both(ctx, async (t, p) => {
    const k = b(`${p}w`);
    const revs: number[] = [];
    for (let i = 0; i < 4; i++) revs.push(Number((await call(t.kv, 'Put', { key: k, value: b(`${i}`) })).header.revision));
    await call(t.kv, 'Compact', { revision: revs[2], physical: true });
    const w = t.watch.Watch();
    const got: Wire[] = [];
    w.on('error', () => {});
    w.on('data', (r: Wire) => got.push(r));
    const waitFor = async (count: number) => {
      const deadline = Date.now() + 10_000;
      while (got.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    w.write({ create_request: { key: k, start_revision: revs[0] } });
    await waitFor(2);
    w.write({ create_request: { key: k, start_revision: revs[3] } });
    await waitFor(4);
    w.write({ cancel_request: { watch_id: got[2]?.watch_id } });
    await waitFor(5);
    w.cancel();
    return got.map((r) => ({
      watch_id: r.watch_id, created: r.created, canceled: r.canceled,
      compacted: r.compact_revision === '0' ? 0 : Number(r.compact_revision) - revs[2],
      reason: r.cancel_reason, events: r.events.map((e: Wire) => e.kv.value.toString()),
    }));
  });
});

s('txn semantics: compares on missing keys and ranges, nested txns, responses; put/delete prev_kv', async (ctx) => {
  await both(ctx, async (t, p) => {
    const k = (x: string) => b(`${p}${x}`);
    const out: Record<string, unknown> = {};
    const newPut = await call(t.kv, 'Put', { key: k('a'), value: b('1'), prev_kv: true });
    out.prevOfNew = newPut.prev_kv;
    await call(t.kv, 'Put', { key: k('b'), value: b('2') });
    const cmp = async (compare: Wire[]) => (await call(t.kv, 'Txn', { compare, success: [], failure: [] })).succeeded;
    out.missingVersion0 = await cmp([{ key: k('zz'), target: 0, result: 0, version: 0 }]);
    out.missingValueEqualEmpty = await cmp([{ key: k('zz'), target: 3, result: 0, value: b('') }]);
    out.missingValueNotEqual = await cmp([{ key: k('zz'), target: 3, result: 3, value: b('x') }]);
    out.missingCreateLess = await cmp([{ key: k('zz'), target: 1, result: 2, create_revision: 5 }]);
    out.rangeAllGreater = await cmp([{ key: k('a'), range_end: k('c'), target: 0, result: 1, version: 0 }]);
    out.rangeValueEqual = await cmp([{ key: k('a'), range_end: k('c'), target: 3, result: 0, value: b('1') }]);
    out.leaseEqual0 = await cmp([{ key: k('a'), target: 4, result: 0, lease: 0 }]);
    out.valueGreater = await cmp([{ key: k('a'), target: 3, result: 1, value: b('0') }]);
    const nested = await call(t.kv, 'Txn', {
      compare: [{ key: k('a'), target: 3, result: 0, value: b('1') }],
      success: [
        { request_range: { key: k('a'), range_end: k('c') } },
        { request_txn: { compare: [{ key: k('b'), target: 3, result: 0, value: b('nope') }], success: [], failure: [{ request_put: { key: k('c'), value: b('3'), prev_kv: true } }, { request_delete_range: { key: k('b'), prev_kv: true } }] } },
      ],
      failure: [],
    });
    const shapeOp = (r: Wire): unknown => {
      if (r.response_range) return { range: r.response_range.kvs.map((kv: Wire) => [kv.key.toString().slice(p.length), kv.value.toString(), kv.version]), count: r.response_range.count };
      if (r.response_put) return { put: r.response_put.prev_kv ? 'prev' : null };
      if (r.response_delete_range) return { del: r.response_delete_range.deleted, prev: r.response_delete_range.prev_kvs.map((kv: Wire) => kv.value.toString()) };
      if (r.response_txn) return { txn: r.response_txn.succeeded, responses: r.response_txn.responses.map(shapeOp) };
      return 'empty';
    };
    out.nested = [nested.succeeded, nested.responses.map(shapeOp)];
    // Inner headers: only the revision is set, a nested txn's is empty. (The
    // inner revisions themselves differ: etcd gives an op that runs before
    // the txn's first write the revision before the txn; docs/etcd-api.md.)
    const rel = (h: Wire) => ({ ...h, revision: Number(h.revision) === 0 ? 'zero' : 'set' });
    out.innerHeaders = [rel(nested.responses[0].response_range.header), rel(nested.responses[1].response_txn.header), rel(nested.responses[1].response_txn.responses[0].response_put.header)];
    const del = await call(t.kv, 'DeleteRange', { key: k('a'), range_end: k('z'), prev_kv: true });
    out.delete = [del.deleted, del.prev_kvs.map((kv: Wire) => kv.value.toString())];
    return out;
  });
});

s('range filters: min/max mod and create revisions with count and limit', async (ctx) => {
  await both(ctx, async (t, p) => {
    const revs: number[] = [];
    for (const x of ['a', 'b', 'c', 'd']) revs.push(Number((await call(t.kv, 'Put', { key: b(`${p}${x}`), value: b(x) })).header.revision));
    await call(t.kv, 'Put', { key: b(`${p}a`), value: b('a2') });
    const end = b(`${p.slice(0, -1)}0`);
    const shape = (r: Wire) => ({ keys: r.kvs.map((kv: Wire) => kv.key.toString().slice(p.length)), more: r.more, count: r.count });
    return {
      minMod: shape(await call(t.kv, 'Range', { key: b(p), range_end: end, min_mod_revision: revs[2] })),
      maxCreateLimit: shape(await call(t.kv, 'Range', { key: b(p), range_end: end, max_create_revision: revs[1], limit: 1 })),
      minCreateCountOnly: shape(await call(t.kv, 'Range', { key: b(p), range_end: end, min_create_revision: revs[2], count_only: true })),
      sortModDescLimit: shape(await call(t.kv, 'Range', { key: b(p), range_end: end, sort_target: 3, sort_order: 2, limit: 2 })),
      keysOnly: (await call(t.kv, 'Range', { key: b(p), range_end: end, keys_only: true, limit: 1 })).kvs.map((kv: Wire) => [kv.value.length, kv.version]),
    };
  });
});

s('watch events: one response per revision, prev_kv on delete, filters, progress of an idle stream', async (ctx) => {
  await both(ctx, async (t, p) => {
    const w = t.watch.Watch();
    const got: Wire[] = [];
    w.on('error', () => {});
    w.on('data', (r: Wire) => got.push(r));
    const waitFor = async (count: number) => {
      const deadline = Date.now() + 10_000;
      while (got.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    w.write({ create_request: { key: b(p), range_end: b(`${p.slice(0, -1)}0`), prev_kv: true } });
    await waitFor(1);
    w.write({ create_request: { key: b(`${p}x`), filters: [1] } });
    await waitFor(2);
    await call(t.kv, 'Put', { key: b(`${p}x`), value: b('1') });
    await call(t.kv, 'Txn', { compare: [], success: [{ request_put: { key: b(`${p}y`), value: b('2') } }, { request_delete_range: { key: b(`${p}x`) } }], failure: [] });
    await waitFor(5);
    w.cancel();
    const byWatch = (id: string) => got.filter((r) => r.watch_id === id && !r.created).map((r) => r.events.map((e: Wire) => ({
      type: e.type, key: e.kv.key.toString().slice(p.length), value: e.kv.value.toString(), version: e.kv.version,
      prev: e.prev_kv ? e.prev_kv.value.toString() : null,
    })));
    return { all: byWatch('0'), noDelete: byWatch('1'), created: got.filter((r) => r.created).map((r) => r.watch_id) };
  });
});

s('top-level header revisions: writes, no-op deletes, read-only txns, compaction, leases, watch created', async (ctx) => {
  await both(ctx, async (t, p) => {
    const base = Number((await call(t.kv, 'Put', { key: b(`${p}a`), value: b('1') })).header.revision);
    const rel = (r: Wire) => Number(r.header.revision) - base;
    const out: Record<string, number> = {};
    out.deleteNothing = rel(await call(t.kv, 'DeleteRange', { key: b(`${p}none`) }));
    out.readTxn = rel(await call(t.kv, 'Txn', { compare: [], success: [{ request_range: { key: b(`${p}a`) } }], failure: [] }));
    out.failedCompareTxn = rel(await call(t.kv, 'Txn', { compare: [{ key: b(`${p}a`), target: 3, result: 0, value: b('no') }], success: [{ request_put: { key: b(`${p}a`), value: b('x') } }], failure: [] }));
    out.deleteOnlyNothingTxn = rel(await call(t.kv, 'Txn', { compare: [], success: [{ request_delete_range: { key: b(`${p}none`) } }], failure: [] }));
    out.writeTxn = rel(await call(t.kv, 'Txn', { compare: [], success: [{ request_put: { key: b(`${p}b`), value: b('1') } }, { request_put: { key: b(`${p}c`), value: b('1') } }], failure: [] }));
    out.compact = rel(await call(t.kv, 'Compact', { revision: base }));
    const id = 5_000_000_000 + n;
    out.grant = rel(await call(t.lease, 'LeaseGrant', { TTL: 30, ID: id }));
    await call(t.kv, 'Put', { key: b(`${p}l1`), value: b('1'), lease: id });
    await call(t.kv, 'Put', { key: b(`${p}l2`), value: b('1'), lease: id });
    out.revokeWithKeys = rel(await call(t.lease, 'LeaseRevoke', { ID: id }));
    out.afterRevoke = rel(await call(t.kv, 'Range', { key: b(`${p}l1`) }));
    const w = t.watch.Watch();
    w.on('error', () => {});
    const created = await new Promise<Wire>((resolve) => { w.once('data', resolve); w.write({ create_request: { key: b(`${p}a`) } }); });
    w.cancel();
    out.watchCreated = rel(created);
    return out;
  });
});

s('cluster errors', async (ctx) => {
  await both(ctx, async (t) => ({
    removeMissing: await outcome(call(t.cluster, 'MemberRemove', { ID: 12345 })),
    promoteMissing: await outcome(call(t.cluster, 'MemberPromote', { ID: 12345 })),
    updateMissing: await outcome(call(t.cluster, 'MemberUpdate', { ID: 12345, peerURLs: ['http://127.0.0.1:9'] })),
  }));
});

if (etcdAvailable()) s.run();
else {
  const skip = suite('differential (skipped: /usr/bin/etcd is not installed)');
  skip('nothing to run', () => {});
  skip.run();
}
