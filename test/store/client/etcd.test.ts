// The shared Store contract suite through RemoteStore against a real
// 3-member etcd 3.4 cluster (Debian's etcd-server), started once for the
// file, then RemoteStore's cluster calls (membership, leadership, alarms,
// snapshot, compact revision, hashes) against the same cluster. Each test
// gets a fresh RemoteStore; the contract suite works under fresh key
// prefixes, so the tests share the cluster.
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { RemoteStore } from '../../../src/store/client/remote.ts';
import { storeContract } from '../contract.ts';
import { etcdAvailable, freePort, startEtcdCluster, type EtcdCluster } from './etcd-cluster.ts';

/** How long a fresh cluster may take to elect a leader and answer (loaded CI machine). */
const readyTimeoutMs = 30_000;

async function waitReady(endpoints: string[]): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const s = new RemoteStore({ endpoints, requestTimeoutMs: 2000 });
    try {
      await s.put(Buffer.from('/ready'), Buffer.from('1'));
      const st = await s.status();
      if (st.leader !== 0) return;
    } catch (e) {
      last = e;
    } finally {
      await s.close();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`etcd cluster not ready within ${readyTimeoutMs} ms: ${String(last)}`);
}

let cluster: EtcdCluster | undefined;
async function theCluster(): Promise<EtcdCluster> {
  if (!cluster) {
    const c = await startEtcdCluster(3);
    try {
      await waitReady(c.endpoints);
    } catch (e) {
      const logs = c.logs().slice(-4000);
      await c.stop();
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
    cluster = c;
  }
  return cluster;
}

if (!etcdAvailable()) {
  test('real etcd (skipped: /usr/bin/etcd is not installed)', () => {});
  test.run();
} else {
  storeContract('RemoteStore -> etcd 3.4 (3 members)', async () => {
    const c = await theCluster();
    const store = await RemoteStore.connect({ endpoints: c.endpoints, requestTimeoutMs: 10_000 });
    return { store, cleanup: () => store.close() };
  }).run();

  const s = suite<{ store?: RemoteStore }>('RemoteStore cluster calls -> etcd 3.4', {});
  s.before.each(async (ctx) => {
    ctx.store = await RemoteStore.connect({ endpoints: (await theCluster()).endpoints, requestTimeoutMs: 10_000 });
  });
  s.after.each(async (ctx) => {
    await ctx.store?.close();
  });
  s.after(async () => {
    await cluster?.stop();
  });
  const S = (ctx: { store?: RemoteStore }) => ctx.store as RemoteStore;

  s('members: 64-bit ids survive the round trip (update, add a learner, promote refused, remove)', async (ctx) => {
    const store = S(ctx);
    const { members } = await store.members();
    assert.is(members.length, 3);
    const m = members[0];
    const upd = await store.memberUpdate(m.id, m.peerUrls);
    assert.is(upd.members.length, 3);
    // etcd refuses membership changes until every voter has been connected
    // for its health interval (5 s), which a fresh cluster has not: retry.
    const peer = `http://127.0.0.1:${await freePort()}`;
    let add: Awaited<ReturnType<RemoteStore['memberAdd']>> | undefined;
    for (const deadline = Date.now() + 20_000; !add;) {
      try {
        add = await store.memberAdd([peer], { isLearner: true });
      } catch (e) {
        if (!/unhealthy cluster/.test((e as Error).message) || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    assert.ok(add.member?.isLearner);
    const learner = add.member?.id ?? 0;
    const promote = await store.memberPromote(learner).then(() => 'promoted', (e: Error) => e.message);
    assert.match(promote, /can only promote a learner member which is in sync with leader/);
    const rm = await store.memberRemove(learner);
    assert.is(rm.members.length, 3);
  });

  s('moveLeader hands leadership to a follower', async (ctx) => {
    const store = S(ctx);
    const before = (await store.status()).leader;
    const target = (await store.members()).members.find((m) => m.id !== before);
    assert.ok(target);
    await store.moveLeader((target as { id: number }).id);
    const deadline = Date.now() + 10_000;
    let leader = 0;
    while (Date.now() < deadline && leader !== (target as { id: number }).id) {
      leader = (await store.status()).leader;
      if (leader !== (target as { id: number }).id) await new Promise((r) => setTimeout(r, 100));
    }
    assert.is(leader, (target as { id: number }).id);
  });

  s('alarms, compact revision in status, equal hashes on every member, snapshot with its checksum', async (ctx) => {
    const store = S(ctx);
    assert.equal((await store.alarm('get', 0)).alarms, []);
    const k = Buffer.from('/extra/c');
    await store.put(k, Buffer.from('1'));
    const r2 = await store.put(k, Buffer.from('2'));
    await store.compact(r2.header.revision, { physical: true });
    assert.is((await store.status()).compactRevision, r2.header.revision);
    // etcd hashes only revisions above the compaction point.
    const rev = (await store.put(k, Buffer.from('3'))).header.revision;
    const hashes = [];
    for (const ep of store.endpoints) {
      const one = await RemoteStore.connect({ endpoints: [ep] });
      try {
        hashes.push((await one.hashKV(rev)).hash);
      } finally {
        await one.close();
      }
    }
    assert.is(new Set(hashes).size, 1);
    const snap = await store.snapshot();
    let got = 0;
    for await (const chunk of snap.chunks) got += chunk.length;
    assert.is(got, snap.sizeBytes);
    assert.ok(snap.sizeBytes > 0 && snap.sizeBytes % 512 === 0);
  });

  // Last: it leaves the cluster with two of its three members.
  s('a killed member: calls fail over to the other endpoints', async (ctx) => {
    const store = S(ctx);
    const c = await theCluster();
    // Kill a follower: losing the leader is a different story (requests
    // time out until a new one is elected, and are not retried).
    let victim = -1;
    for (let i = 0; i < c.endpoints.length && victim < 0; i++) {
      const one = await RemoteStore.connect({ endpoints: [c.endpoints[i]] });
      try {
        const st = await one.status();
        if (st.leader !== one.memberId) victim = i;
      } finally {
        await one.close();
      }
    }
    assert.ok(victim >= 0);
    await c.kill(victim);
    const k = Buffer.from('/extra/failover');
    for (let i = 0; i < 20; i++) await store.put(k, Buffer.from(String(i)));
    assert.is((await store.range(k)).kvs[0].value.toString(), '19');
    const after = (await store.put(k, Buffer.from('after'))).header.revision;
    // A watch stream that went to the dead member ends canceled; a new one
    // goes elsewhere (a bounded number of tries).
    let seen = '';
    for (let attempt = 0; attempt < 5 && seen === ''; attempt++) {
      const w = store.watch(k, { startRevision: after });
      const r = await w.next();
      w.cancel();
      if (r && !r.canceled && r.events.length > 0) seen = r.events[0].kv.value.toString();
    }
    assert.is(seen, 'after');
  });

  s.run();
}
