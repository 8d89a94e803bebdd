// The Raft driver through 3-member in-process clusters: failover, restart
// from the WAL, follower catch-up from the log and from a snapshot (lazy
// snapshot copied into the MsgSnap), partitions, and bad inbound input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { EmbeddedCluster, startCluster } from '../../../src/store/embedded/cluster.ts';
import { EmbeddedStore } from '../../../src/store/embedded.ts';
import { MemoryNetwork } from '../../../src/store/raft/memory.ts';
import type { Transport } from '../../../src/store/raft/transport.ts';
import { tempDir } from '../mvcc/helpers.ts';

const b = (s: string) => Buffer.from(s);
const fast = { tickMs: 25, electionTicks: 10, leaseTickMs: 0 };

async function withCluster(opts: Partial<Parameters<typeof startCluster>[0]>, fn: (c: EmbeddedCluster) => Promise<void>): Promise<void> {
  const dir = tempDir('keelson-driver-');
  const c = await startCluster({ size: 3, dir, ...fast, ...opts });
  try {
    await fn(c);
  } finally {
    await c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function sameState(c: EmbeddedCluster): Promise<void> {
  const stores = c.running();
  const rev = Math.max(...stores.map((s) => s.keyspace.revision()));
  await until(() => stores.every((s) => s.keyspace.revision() === rev), `every member at revision ${rev}`);
  const hashes = await Promise.all(stores.map((s) => s.hashKV(rev)));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, 'members hash alike');
}

test('leader failover: a new leader is elected, writes go on, the old leader catches up from the log on restart', async () => {
  await withCluster({}, async (c) => {
    const l = await c.waitForLeader();
    for (let i = 0; i < 50; i++) await l.put(b(`a${i}`), b(`${i}`));
    const i = c.members.indexOf(l);
    await c.stop(i);
    const l2 = await c.waitForLeader();
    assert.is.not(l2, l);
    for (let k = 0; k < 50; k++) await l2.put(b(`b${k}`), b(`${k}`));
    const back = c.restart(i);
    await until(() => back.keyspace.revision() === l2.keyspace.revision(), 'restarted member caught up');
    assert.is((await back.range(b('b'), { rangeEnd: b('c'), countOnly: true, serializable: true })).count, 50);
    await sameState(c);
  });
});

test('a follower that fell behind the compacted log receives a snapshot and catches up', async () => {
  await withCluster({ snapshotEntries: 40, snapshotCatchUpEntries: 10 }, async (c) => {
    const f = await c.follower();
    const fi = c.members.indexOf(f);
    await c.stop(fi);
    const l = await c.waitForLeader();
    const puts = [];
    for (let i = 0; i < 300; i++) puts.push(l.put(b(`s${i}`), b(`${i}`)));
    await Promise.all(puts);
    await until(() => l.driver.snapshotIndex() > 100, 'the leader compacted its log');
    assert.ok(l.driver.status().firstIndex > 100, `log compacted (first index ${l.driver.status().firstIndex})`);
    const back = c.restart(fi);
    await until(() => back.keyspace.revision() === l.keyspace.revision(), 'follower caught up via snapshot');
    assert.is((await back.range(b('s'), { rangeEnd: b('t'), countOnly: true, serializable: true })).count, 300);
    await sameState(c);
    // And it keeps following after the snapshot, and survives its own restart.
    await l.put(b('after'), b('x'));
    await c.stop(fi);
    const again = c.restart(fi);
    await until(async () => (await again.range(b('after'), { serializable: true })).count === 1, 'after restart');
    await sameState(c);
  });
});

test('a partitioned leader steps down; the majority elects a new one; healing reconciles', async () => {
  await withCluster({ requestTimeoutMs: 1500 }, async (c) => {
    const l = await c.waitForLeader();
    await l.put(b('p'), b('0'));
    c.network.isolate(l.memberId);
    // A write on the isolated leader cannot commit.
    const stuck = await l.put(b('p'), b('lost')).then(() => 'ok', (e) => e.code);
    assert.is(stuck, 'timeout');
    const others = c.running().filter((m) => m !== l);
    await until(() => others.some((m) => m.driver.isLeader()), 'majority leader');
    const l2 = others.find((m) => m.driver.isLeader()) as EmbeddedStore;
    await l2.put(b('p'), b('1'));
    c.network.heal();
    await until(() => !l.driver.isLeader() && l.leaderId() !== 0, 'old leader follows');
    await until(() => l.keyspace.revision() === l2.keyspace.revision(), 'old leader caught up');
    assert.is((await l.range(b('p'))).kvs[0].value.toString(), '1');
    await sameState(c);
  });
});

test('linearizable reads on a follower see writes acknowledged by the leader; many reads share a round', async () => {
  await withCluster({}, async (c) => {
    const l = await c.waitForLeader();
    const f = await c.follower();
    for (let i = 0; i < 20; i++) {
      await l.put(b('lin'), b(`${i}`));
      assert.is((await f.range(b('lin'))).kvs[0].value.toString(), `${i}`);
    }
    const readiesBefore = f.driver.readies;
    const reads = await Promise.all(Array.from({ length: 500 }, () => f.range(b('lin'))));
    assert.ok(reads.every((r) => r.kvs[0].value.toString() === '19'));
    assert.ok(f.driver.readies - readiesBefore < 50, `500 reads took ${f.driver.readies - readiesBefore} Readies`);
  });
});

test('malformed inbound batches are refused and counted, nothing changes', async () => {
  await withCluster({}, async (c) => {
    const l = await c.waitForLeader();
    const f = await c.follower();
    const t = c.network.transport(999);
    t.start({ onMessages() {}, onUnreachable() {}, onSnapshotStatus() {} });
    t.send(f.memberId, Buffer.from('garbage that is not a message'));
    t.send(f.memberId, Buffer.alloc(80));
    await until(() => f.driver.badMessages >= 2, 'bad messages counted');
    await l.put(b('ok'), b('1'));
    assert.is((await f.range(b('ok'))).count, 1);
    await t.close();
  });
});

test('transferring leadership (moveLeader) from the leader and from a follower', async () => {
  await withCluster({}, async (c) => {
    const l = await c.waitForLeader();
    const f = await c.follower();
    await l.moveLeader(f.memberId);
    assert.is((await c.waitForLeader()).memberId, f.memberId);
    const other = c.running().find((m) => m !== f && m !== l) as EmbeddedStore;
    await l.moveLeader(other.memberId);
    assert.is((await c.waitForLeader()).memberId, other.memberId);
    await other.put(b('x'), b('y'));
    await sameState(c);
  });
});

test('time is injected: with a manual scheduler nothing is elected until the test ticks', async () => {
  const dir = tempDir('keelson-driver-manual-');
  const ticks: (() => void)[] = [];
  const scheduler = { every: (_ms: number, fn: () => void) => { ticks.push(fn); return () => { ticks.splice(ticks.indexOf(fn), 1); }; } };
  const c = new EmbeddedCluster({ size: 3, dir, tickMs: 100, electionTicks: 10, leaseTickMs: 0, scheduler, seed: 7 });
  try {
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(c.running().every((m) => m.leaderId() === 0), 'no leader without ticks');
    let n = 0;
    while (c.running().some((m) => m.leaderId() === 0) && n < 200) {
      for (const t of [...ticks]) t();
      n++;
      // Let the WAL syncs and deliveries of this tick finish (they take real time).
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(n >= 10 && n < 200, `elected after ${n} ticks (election timeout 10..20)`);
    const l = await c.waitForLeader();
    await l.put(b('manual'), b('1'));
  } finally {
    await c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing fdatasync stops the member: the write is refused, never acknowledged, and nothing is lost on restart', async () => {
  const dir = tempDir('keelson-driver-eio-');
  try {
    let fatal: Error | null = null;
    const s = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0, testingFailFdatasyncAfter: 20, onFatal: (e) => { fatal = e; } });
    const acked: number[] = [];
    let failed = 0;
    for (let i = 0; i < 100; i++) {
      try {
        await s.put(b(`k${i}`), b('v'));
        acked.push(i);
      } catch {
        failed++;
        break;
      }
    }
    assert.ok(failed === 1 && fatal !== null, `the member failed (${String(fatal)})`);
    assert.ok(acked.length > 0 && acked.length < 100);
    await s.close();
    const again = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0 });
    try {
      for (const i of acked) assert.is((await again.range(b(`k${i}`))).count, 1, `acknowledged k${i}`);
    } finally {
      await again.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('5 members: two stopped, the other three go on; removing the leader elects another', async () => {
  await withCluster({ size: 5 }, async (c) => {
    const l = await c.waitForLeader();
    await l.put(b('five'), b('1'));
    const followers = c.running().filter((m) => m !== l);
    await c.stop(c.members.indexOf(followers[0]));
    await c.stop(c.members.indexOf(followers[1]));
    await l.put(b('five'), b('2'));
    // Four voters remain after the removal: three must run.
    c.restart(c.members.indexOf(null));
    const f = followers[2];
    await f.memberRemove(l.memberId);
    await until(() => l.isRemoved(), 'leader removed');
    await until(() => f.leaderId() !== 0 && f.leaderId() !== l.memberId, 'another leader');
    const l2 = c.byId(f.leaderId()) as EmbeddedStore;
    await l2.put(b('five'), b('3'));
    assert.is((await f.range(b('five'))).kvs[0].value.toString(), '3');
  });
});

test('ordering rule: a non-leader sends only when its entries and term/vote are durable', async () => {
  const dir = tempDir('keelson-driver-order-');
  const net = new MemoryNetwork();
  const stores = new Map<number, EmbeddedStore>();
  const violations: string[] = [];
  let checked = 0;
  // A transport that checks, at every send, that a non-leader has no
  // must-sync record (entries, term, vote) appended but not yet durable; the
  // leader may send in parallel with its write (thesis 10.2.1).
  const checking = (id: number): Transport => {
    const inner = net.transport(id);
    return {
      start: (h) => inner.start(h),
      send: (to, data, snap) => {
        const s = stores.get(id);
        if (s && !s.driver.isLeader()) {
          checked++;
          if (s.driver.unsyncedRequired) violations.push(`member ${id} sent before its WAL sync (${JSON.stringify(s.driver.walStats())})`);
        }
        inner.send(to, data, snap);
      },
      addPeer: (i, u) => inner.addPeer(i, u),
      removePeer: (i) => inner.removePeer(i),
      close: () => inner.close(),
    };
  };
  const initial = [0, 1, 2].map((i) => ({ name: `o${i}`, peerUrls: [`memory://o${i}`], id: 100 + i }));
  try {
    for (const m of initial) stores.set(m.id, new EmbeddedStore({ dataDir: `${dir}/${m.name}`, name: m.name, initialCluster: initial, transport: checking(m.id), ...fast }));
    await until(() => [...stores.values()].some((s) => s.driver.isLeader()), 'a leader');
    const any = [...stores.values()];
    await Promise.all(Array.from({ length: 300 }, (_, i) => any[i % 3].put(b(`o${i}`), b('v'))));
    const l = any.find((s) => s.driver.isLeader()) as EmbeddedStore;
    await l.moveLeader(any.find((s) => s !== l)?.memberId as number);
    await Promise.all(Array.from({ length: 100 }, (_, i) => any[i % 3].put(b(`p${i}`), b('v'))));
    assert.ok(checked >= 10, `${checked} sends checked`);
    assert.equal(violations, []);
  } finally {
    await Promise.all([...stores.values()].map((s) => s.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
