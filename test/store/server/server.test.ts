// The Keelson etcd API server at the wire: raw gRPC calls with the project's
// own protos check headers, etcd's error codes and texts, the watch stream
// protocol (ids, created/canceled, batching, compaction, progress,
// backpressure), keep-alive streams, snapshots and 64-bit ids.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { protos } from '../../../src/store/server/codec.ts';
import { framedWritesAvailable } from '../../../src/store/server/framed-writes.ts';
import { startServer, type ServerFixture } from './helpers.ts';

type Wire = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Ctor = new (addr: string, creds: grpc.ChannelCredentials, opts?: object) => grpc.Client & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Clients { kv: any; watch: any; lease: any; cluster: any; maint: any; health: any; close(): void } // eslint-disable-line @typescript-eslint/no-explicit-any

function clients(fx: ServerFixture): Clients {
  const p = protos() as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const addr = `127.0.0.1:${fx.port}`;
  const creds = grpc.credentials.createInsecure();
  const mk = (C: Ctor) => new C(addr, creds, { 'grpc.max_receive_message_length': -1 });
  const c = {
    kv: mk(p.etcdserverpb.KV), watch: mk(p.etcdserverpb.Watch), lease: mk(p.etcdserverpb.Lease),
    cluster: mk(p.etcdserverpb.Cluster), maint: mk(p.etcdserverpb.Maintenance), health: mk(p.grpc.health.v1.Health),
  };
  return { ...c, close: () => { for (const x of Object.values(c)) x.close(); } };
}

function call(client: any, method: string, req: Wire): Promise<Wire> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => client[method](req, { deadline: Date.now() + 10_000 }, (e: Error | null, r: Wire) => (e ? reject(e) : resolve(r))));
}

async function fails(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    return { code: (e as grpc.ServiceError).code, details: (e as grpc.ServiceError).details };
  }
  throw new Error('expected the call to fail');
}

/** A watch stream with a queue of its responses. */
function watchStream(c: Clients) {
  const stream = c.watch.Watch();
  const got: Wire[] = [];
  const waiters: (() => void)[] = [];
  stream.on('data', (r: Wire) => { got.push(r); waiters.splice(0).forEach((w) => w()); });
  stream.on('error', () => {});
  return {
    stream,
    got,
    write: (r: Wire) => stream.write(r),
    async next(timeoutMs = 5000): Promise<Wire> {
      const deadline = Date.now() + timeoutMs;
      while (got.length === 0) {
        if (Date.now() > deadline) throw new Error('no watch response in time');
        await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 50); });
      }
      return got.shift() as Wire;
    },
    end: () => stream.cancel(),
  };
}

const b = (s: string) => Buffer.from(s);
const s = suite<{ fx?: ServerFixture; c?: Clients }>('etcd API server (wire)', {});
s.before.each(async (ctx) => {
  ctx.fx = await startServer({ quotaBackendBytes: 0 });
  ctx.c = clients(ctx.fx);
});
s.after.each(async (ctx) => {
  ctx.c?.close();
  await ctx.fx?.stop();
});
const X = (ctx: { fx?: ServerFixture; c?: Clients }) => ({ fx: ctx.fx as ServerFixture, c: ctx.c as Clients });

s('every response carries the header: cluster id, member id, revision, raft term', async (ctx) => {
  const { fx, c } = X(ctx);
  const put = await call(c.kv, 'Put', { key: b('h'), value: b('1') });
  const want = { cluster_id: String(fx.store.clusterId), member_id: '1', raft_term: '1' };
  const check = (r: Wire, rev?: string) => {
    assert.equal({ cluster_id: r.header.cluster_id, member_id: r.header.member_id, raft_term: r.header.raft_term }, want);
    if (rev) assert.is(r.header.revision, rev);
  };
  check(put, String(fx.store.header().revision));
  check(await call(c.kv, 'Range', { key: b('h') }), put.header.revision);
  check(await call(c.kv, 'Txn', { compare: [], success: [{ request_range: { key: b('h') } }], failure: [] }), put.header.revision);
  check(await call(c.kv, 'DeleteRange', { key: b('none') }));
  check(await call(c.lease, 'LeaseGrant', { TTL: 10 }));
  check(await call(c.lease, 'LeaseLeases', {}));
  check(await call(c.maint, 'Status', {}));
  check(await call(c.maint, 'HashKV', { revision: 0 }));
  check(await call(c.maint, 'Alarm', { action: 0 }));
  check(await call(c.maint, 'Defragment', {}));
  check(await call(c.cluster, 'MemberList', {}));
  const t = await call(c.kv, 'Txn', { compare: [], success: [{ request_put: { key: b('h'), value: b('2') } }], failure: [] });
  // Inner responses carry only the revision, as etcd's do.
  assert.equal(t.responses[0].response_put.header, { cluster_id: '0', member_id: '0', revision: t.header.revision, raft_term: '0' });
  assert.equal(await call(c.health, 'Check', { service: '' }), { status: 1 });
});

s('errors carry etcd\'s gRPC codes and exact messages', async (ctx) => {
  const { fx, c } = X(ctx);
  const r1 = await call(c.kv, 'Put', { key: b('e'), value: b('1') });
  const r2 = await call(c.kv, 'Put', { key: b('e'), value: b('2') });
  await call(c.kv, 'Compact', { revision: r2.header.revision, physical: true });
  const S = grpc.status;
  assert.equal(await fails(call(c.kv, 'Range', { key: b('e'), revision: r1.header.revision })), { code: S.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision has been compacted' });
  assert.equal(await fails(call(c.kv, 'Range', { key: b('e'), revision: 1_000_000 })), { code: S.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision is a future revision' });
  assert.equal(await fails(call(c.kv, 'Compact', { revision: r1.header.revision })), { code: S.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision has been compacted' });
  assert.equal(await fails(call(c.kv, 'Put', { key: b('e'), value: b('x'), lease: 12345 })), { code: S.NOT_FOUND, details: 'etcdserver: requested lease not found' });
  assert.equal(await fails(call(c.kv, 'Put', { key: b('e'), value: b('x'), lease: '9223372036854775807' })), { code: S.NOT_FOUND, details: 'etcdserver: requested lease not found' });
  assert.equal(await fails(call(c.kv, 'Put', { key: b(''), value: b('x') })), { code: S.INVALID_ARGUMENT, details: 'etcdserver: key is not provided' });
  assert.equal(await fails(call(c.kv, 'Put', { key: b('nope'), ignore_value: true })), { code: S.INVALID_ARGUMENT, details: 'etcdserver: key not found' });
  const dup = { compare: [], success: [{ request_put: { key: b('d'), value: b('1') } }, { request_put: { key: b('d'), value: b('2') } }], failure: [] };
  assert.equal(await fails(call(c.kv, 'Txn', dup)), { code: S.INVALID_ARGUMENT, details: 'etcdserver: duplicate key given in txn request' });
  const many = { compare: [], success: Array.from({ length: 129 }, (_, i) => ({ request_put: { key: b(`m${i}`), value: b('x') } })), failure: [] };
  assert.equal(await fails(call(c.kv, 'Txn', many)), { code: S.INVALID_ARGUMENT, details: 'etcdserver: too many operations in txn request' });
  assert.equal(await fails(call(c.kv, 'Put', { key: b('big'), value: Buffer.alloc(1600 * 1024) })), { code: S.INVALID_ARGUMENT, details: 'etcdserver: request is too large' });
  // Past the message limit (request limit + 512 KiB, as etcd) gRPC itself refuses it.
  assert.is((await fails(call(c.kv, 'Put', { key: b('big'), value: Buffer.alloc(3 * 1024 * 1024) }))).code, S.RESOURCE_EXHAUSTED);
  assert.equal(await fails(call(c.lease, 'LeaseRevoke', { ID: 777 })), { code: S.NOT_FOUND, details: 'etcdserver: requested lease not found' });
  assert.is((await fails(call(c.lease, 'LeaseGrant', { TTL: 10, ID: '9223372036854775807' }))).code, S.INVALID_ARGUMENT);
  assert.equal(await fails(call(c.cluster, 'MemberRemove', { ID: 42 })), { code: S.NOT_FOUND, details: 'etcdserver: member not found' });
  assert.equal(await fails(call(c.maint, 'MoveLeader', { targetID: 42 })), { code: S.NOT_FOUND, details: 'etcdserver: member not found' });
  // Nothing above wrote anything.
  assert.is((await call(c.kv, 'Range', { key: b('e') })).header.revision, r2.header.revision);
  assert.is(fx.store.header().revision, Number(r2.header.revision));
});

s('NOSPACE: RESOURCE_EXHAUSTED with etcd\'s text, and the alarm is listed', async () => {
  const fx = await startServer({ quotaBackendBytes: 128 * 1024 });
  const c = clients(fx);
  try {
    let err: { code: number; details: string } | undefined;
    for (let i = 0; i < 1000 && !err; i++) {
      try {
        await call(c.kv, 'Put', { key: b(`q${i % 20}`), value: Buffer.alloc(2000, i) });
      } catch (e) {
        err = { code: (e as grpc.ServiceError).code, details: (e as grpc.ServiceError).details };
      }
    }
    assert.equal(err, { code: grpc.status.RESOURCE_EXHAUSTED, details: 'etcdserver: mvcc: database space exceeded' });
    const alarms = await call(c.maint, 'Alarm', { action: 0 });
    assert.equal(alarms.alarms, [{ memberID: '1', alarm: 1 }]);
    const st = await call(c.maint, 'Status', {});
    assert.equal(st.errors, ['memberID:1 alarm:NOSPACE ']);
  } finally {
    c.close();
    await fx.stop();
  }
});

s('watch stream: ids from 0, created first, one response per revision, filters, cancel', async (ctx) => {
  const { fx, c } = X(ctx);
  const w = watchStream(c);
  try {
    w.write({ create_request: { key: b('p/'), range_end: b('p0') } });
    w.write({ create_request: { key: b('p/a'), filters: [0] } }); // NOPUT
    const c0 = await w.next();
    const c1 = await w.next();
    assert.equal([c0.watch_id, c0.created, c1.watch_id, c1.created], ['0', true, '1', true]);
    const t = await fx.store.txn({ compare: [], success: [{ op: 'put', key: b('p/a'), value: b('1') }, { op: 'put', key: b('p/b'), value: b('2') }], failure: [] });
    const ev = await w.next();
    assert.is(ev.watch_id, '0');
    assert.is(ev.header.revision, String(t.header.revision));
    assert.equal(ev.events.map((e: Wire) => `${e.type}:${e.kv.key}:${e.kv.mod_revision}`), [`0:p/a:${t.header.revision}`, `0:p/b:${t.header.revision}`]);
    await fx.store.deleteRange(b('p/a'));
    const d0 = await w.next();
    const d1 = await w.next();
    const byId = new Map([[d0.watch_id, d0], [d1.watch_id, d1]]);
    assert.is(byId.get('1')?.events[0].type, 1);
    assert.is(byId.get('0')?.events[0].type, 1);
    w.write({ cancel_request: { watch_id: 1 } });
    const canceled = await w.next();
    assert.equal([canceled.watch_id, canceled.canceled], ['1', true]);
    // A client-chosen id; a taken one is refused as created + canceled.
    w.write({ create_request: { key: b('z'), watch_id: 7 } });
    assert.equal([(await w.next()).watch_id], ['7']);
    w.write({ create_request: { key: b('z'), watch_id: 7 } });
    const dup = await w.next();
    assert.equal([dup.watch_id, dup.created, dup.canceled], ['7', true, true]);
  } finally {
    w.end();
  }
});

s('watch: from a compacted revision it is canceled with compact_revision; progress requests answer with the revision', async (ctx) => {
  const { fx, c } = X(ctx);
  for (let i = 0; i < 5; i++) await fx.store.put(b('k'), b(`${i}`));
  await fx.store.compact(4, { physical: true });
  const w = watchStream(c);
  try {
    w.write({ create_request: { key: b('k'), start_revision: 2 } });
    assert.ok((await w.next()).created);
    const r = await w.next();
    assert.equal([r.canceled, r.compact_revision, r.cancel_reason], [true, '4', '']);
    w.write({ create_request: { key: b('k'), start_revision: 4, prev_kv: true } });
    assert.ok((await w.next()).created);
    const hist = await w.next();
    assert.equal(hist.events.map((e: Wire) => e.kv.value.toString()), ['3', '4']);
    assert.is(hist.events[1].prev_kv.value.toString(), '3');
    w.write({ progress_request: {} });
    const p = await w.next();
    assert.equal([p.events.length, p.header.revision, p.canceled], [0, String(fx.store.header().revision), false]);
  } finally {
    w.end();
  }
});

s('watch progress_notify: an idle watch that asked for it gets empty responses with the current revision', async () => {
  const fx = await startServer({ progressNotifyMs: 50 });
  const c = clients(fx);
  const w = watchStream(c);
  try {
    await fx.store.put(b('pn'), b('1'));
    w.write({ create_request: { key: b('pn'), progress_notify: true } });
    w.write({ create_request: { key: b('quiet') } });
    assert.ok((await w.next()).created);
    assert.ok((await w.next()).created);
    const p = await w.next();
    assert.equal([p.watch_id, p.events.length, p.canceled, p.header.revision], ['0', 0, false, String(fx.store.header().revision)]);
    // Only the watch that asked gets them.
    const more = await w.next();
    assert.is(more.watch_id, '0');
  } finally {
    w.end();
    c.close();
    await fx.stop();
  }
});

s('watch backpressure: a reader that stops reading still gets every event in order after it resumes', async (ctx) => {
  const { fx, c } = X(ctx);
  const w = watchStream(c);
  try {
    w.write({ create_request: { key: b('bp/'), range_end: b('bp0') } });
    assert.ok((await w.next()).created);
    w.stream.pause();
    // More events than the store's per-watcher buffer (1,000) and more bytes
    // than the HTTP/2 windows, so both bounds are hit while the reader sleeps.
    const value = Buffer.alloc(2048, 1);
    const total = 1500;
    const first = (await fx.store.put(b('bp/0'), value)).header.revision;
    for (let i = 1; i < total; i++) await fx.store.put(b(`bp/${i % 100}`), value);
    w.stream.resume();
    const revs: number[] = [];
    while (revs.length < total) {
      const r = await w.next(10_000);
      for (const e of r.events) revs.push(Number(e.kv.mod_revision));
    }
    assert.equal(revs, Array.from({ length: total }, (_, i) => first + i));
  } finally {
    w.end();
  }
});

s('framed watch writes: 300 watches on one stream, a cancel and a progress request between events; every response whole, per watch in order', async (ctx) => {
  const { fx, c } = X(ctx);
  // The fast path must be in place with the pinned grpc-js, or fan-out
  // silently falls back to one write per message.
  assert.ok(framedWritesAvailable);
  const w = watchStream(c);
  const watches = 300;
  try {
    for (let i = 0; i < watches; i++) w.write({ create_request: { key: b('fw/'), range_end: b('fw0'), prev_kv: i % 2 === 0 } });
    const created = new Set<string>();
    while (created.size < watches) {
      const r = await w.next();
      assert.ok(r.created);
      created.add(r.watch_id);
    }
    const revs = new Map<string, number[]>();
    const first = (await fx.store.put(b('fw/a'), b('1'))).header.revision;
    // 300 copies of a 4,000-byte event pass the 1 MiB a framed write gathers
    // (watchWriteBytesMax), so this event leaves in more than one write.
    await fx.store.put(b('fw/b'), Buffer.alloc(4000, 2));
    w.write({ cancel_request: { watch_id: '7' } });
    w.write({ progress_request: {} });
    await fx.store.put(b('fw/a'), b('3'));
    // Watch 7 is canceled while the writes go on: it gets a prefix of them.
    const expected = (id: string) => (id === '7' ? 0 : 3);
    let canceled = false;
    let progress = 0;
    const done = () => [...created].every((id) => (revs.get(id)?.length ?? 0) >= expected(id)) && canceled && progress >= watches - 1;
    while (!done()) {
      const r = await w.next();
      if (r.canceled) {
        assert.is(r.watch_id, '7');
        canceled = true;
        continue;
      }
      if (r.events.length === 0) { progress++; continue; }
      const list = revs.get(r.watch_id) ?? [];
      for (const e of r.events) {
        list.push(Number(e.kv.mod_revision));
        if (Number(e.kv.mod_revision) === first + 2) assert.is(Number(r.watch_id) % 2 === 0, e.prev_kv?.value?.toString() === '1');
      }
      revs.set(r.watch_id, list);
    }
    for (const id of created) {
      const got = revs.get(id) ?? [];
      if (id === '7') assert.equal(got, [first, first + 1, first + 2].slice(0, got.length), 'watch 7');
      else assert.equal(got, [first, first + 1, first + 2], `watch ${id}`);
    }
  } finally {
    w.end();
  }
});

s('lease keep-alive stream answers in order, TTL 0 for a missing lease; time-to-live -1; 64-bit ids exact', async (ctx) => {
  const { c } = X(ctx);
  const g = await call(c.lease, 'LeaseGrant', { TTL: 30, ID: '9007199254740990' });
  assert.equal([g.ID, g.TTL], ['9007199254740990', '30']);
  const ka = c.lease.LeaseKeepAlive();
  const got: Wire[] = [];
  const done = new Promise<void>((resolve) => ka.on('data', (r: Wire) => { got.push(r); if (got.length === 3) resolve(); }));
  ka.on('error', () => {});
  ka.write({ ID: '9007199254740990' });
  ka.write({ ID: 5 });
  ka.write({ ID: '9223372036854775807' });
  await done;
  ka.end();
  assert.equal(got.map((r) => [r.ID, r.TTL]), [['9007199254740990', '30'], ['5', '0'], ['9223372036854775807', '0']]);
  const ttl = await call(c.lease, 'LeaseTimeToLive', { ID: 5, keys: true });
  assert.equal([ttl.ID, ttl.TTL], ['5', '-1']);
  const leases = await call(c.lease, 'LeaseLeases', {});
  assert.equal(leases.leases.map((l: Wire) => l.ID), ['9007199254740990']);
});

s('snapshot stream: remaining_bytes counts down, body 512-aligned, last message is its SHA-256', async (ctx) => {
  const { fx, c } = X(ctx);
  for (let i = 0; i < 20; i++) await fx.store.put(b(`s${i}`), Buffer.alloc(5000, i));
  const msgs: Wire[] = await new Promise((resolve, reject) => {
    const out: Wire[] = [];
    const st = c.maint.Snapshot({});
    st.on('data', (m: Wire) => out.push(m));
    st.on('end', () => resolve(out));
    st.on('error', reject);
  });
  const last = msgs[msgs.length - 1];
  const body = Buffer.concat(msgs.slice(0, -1).map((m) => m.blob));
  assert.is(body.length % 512, 0);
  assert.is(Number(msgs[0].remaining_bytes) + msgs[0].blob.length, body.length);
  assert.is(last.remaining_bytes, '0');
  assert.ok(createHash('sha256').update(body).digest().equals(last.blob));
});

s('cluster: add a learner, promote refused (never in sync), update, remove', async (ctx) => {
  const { c } = X(ctx);
  const add = await call(c.cluster, 'MemberAdd', { peerURLs: ['http://127.0.0.1:1'], isLearner: true });
  assert.ok(add.member.isLearner);
  assert.is(add.members.length, 2);
  const dupe = await fails(call(c.cluster, 'MemberAdd', { peerURLs: ['http://127.0.0.1:1'] }));
  assert.equal(dupe, { code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: Peer URLs already exists' });
  const promote = await fails(call(c.cluster, 'MemberPromote', { ID: add.member.ID }));
  assert.equal(promote, { code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: can only promote a learner member which is in sync with leader' });
  const upd = await call(c.cluster, 'MemberUpdate', { ID: add.member.ID, peerURLs: ['http://127.0.0.1:2'] });
  assert.ok(upd.members.some((m: Wire) => m.peerURLs[0] === 'http://127.0.0.1:2'));
  const rm = await call(c.cluster, 'MemberRemove', { ID: add.member.ID });
  assert.is(rm.members.length, 1);
});

s('clients that require a leader (metadata hasleader) are told "etcdserver: no leader"', async () => {
  const fx = await startServer({}, { leaderCheckMs: 20 });
  const c = clients(fx);
  let leader = fx.store.memberId;
  fx.store.leaderId = () => leader;
  try {
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    const w = c.watch.Watch(md);
    const status = new Promise<grpc.StatusObject>((resolve) => w.on('status', resolve));
    w.on('error', () => {});
    w.on('data', () => {});
    w.write({ create_request: { key: b('k') } });
    await new Promise((r) => setTimeout(r, 100));
    leader = 0;
    const st = await status;
    assert.equal([st.code, st.details], [grpc.status.UNAVAILABLE, 'etcdserver: no leader']);
    const unary = await new Promise<grpc.ServiceError>((resolve) => c.kv.Range({ key: b('k') }, md, (e: grpc.ServiceError) => resolve(e)));
    assert.equal([unary.code, unary.details], [grpc.status.UNAVAILABLE, 'etcdserver: no leader']);
    // Without the metadata the member still serves what it can.
    assert.ok((await call(c.kv, 'Range', { key: b('k') })).header);
  } finally {
    c.close();
    await fx.stop();
  }
});

s.run();
