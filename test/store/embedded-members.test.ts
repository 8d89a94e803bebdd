// Membership, leases decided by the leader, and the corruption check on a
// 3-member in-process cluster.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { startCluster, type EmbeddedCluster } from '../../src/store/embedded/cluster.ts';
import type { EmbeddedStore } from '../../src/store/embedded.ts';
import { isKeelsonError } from '../../src/store/errors.ts';
import { tempDir } from './mvcc/helpers.ts';

const b = (s: string) => Buffer.from(s);
const fast = { tickMs: 25, electionTicks: 10, leaseTickMs: 0 };

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withCluster(opts: Partial<Parameters<typeof startCluster>[0]>, fn: (c: EmbeddedCluster) => Promise<void>): Promise<void> {
  const dir = tempDir('keelson-members-');
  const c = await startCluster({ size: 3, dir, ...fast, ...opts });
  try {
    await fn(c);
  } finally {
    await c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('memberAdd (learner), join, catch up, promote, move leadership to it, remove an old member; metadata replicated', async () => {
  await withCluster({}, async (c) => {
    const l = await c.waitForLeader();
    for (let i = 0; i < 100; i++) await l.put(b(`k${i}`), b(`${i}`));
    const f = await c.follower();
    // Added through a follower: the ConfChange is forwarded to the leader.
    const add = await f.memberAdd(['memory://new'], { isLearner: true });
    assert.ok(add.member && add.member.isLearner);
    const id = (add.member as { id: number }).id;
    assert.is(add.members.length, 4);
    assert.is(await f.memberAdd(['memory://new']).then(() => 'ok', (e) => e.code), 'peer url exists');
    assert.is(await l.memberAdd([]).then(() => 'ok', (e) => e.code), 'bad request');

    const n = c.join(id, 'newbie', ['memory://new']);
    await until(() => n.keyspace.revision() === l.keyspace.revision(), 'learner caught up');
    assert.is((await n.range(b('k'), { rangeEnd: b('l'), countOnly: true, serializable: true })).count, 100);
    assert.ok((await n.status()).isLearner);
    // It published its name once it knew a leader.
    await until(async () => (await l.members()).members.find((m) => m.id === id)?.name === 'newbie', 'name published');

    await until(async () => (await l.memberPromote(id).then(() => true, (e) => { if (!isKeelsonError(e, 'learner not ready')) throw e; return false; })), 'promotion');
    await until(() => c.running().every((m) => !m.driver.status().confState.learners.includes(id)), 'promotion applied');
    assert.not.ok((await n.status()).isLearner);

    await l.moveLeader(id);
    assert.is((await c.waitForLeader()).memberId, id);
    await n.put(b('by-new-leader'), b('1'));

    const victim = c.running().find((m) => m !== n && m !== l) as EmbeddedStore;
    const rm = await n.memberRemove(victim.memberId);
    assert.is(rm.members.length, 3);
    await until(() => victim.isRemoved(), 'removed member learns it');
    assert.is(await n.memberRemove(victim.memberId).then(() => 'ok', (e) => e.code), 'member not found');

    const upd = await l.memberUpdate(id, ['memory://new2']);
    assert.equal(upd.members.find((m) => m.id === id)?.peerUrls, ['memory://new2']);
    for (const m of [l, n]) {
      await until(async () => (await m.members()).members.find((x) => x.id === id)?.peerUrls[0] === 'memory://new2', 'update replicated');
      assert.equal((await m.members()).members.map((x) => x.id).sort(), rm.members.map((x) => x.id).sort());
    }
    await n.put(b('after-remove'), b('1'));
    assert.is((await l.range(b('after-remove'))).count, 1);
  });
});

test('leases: expiry decided by the leader through the log; TTLs renewed on leader change; keep-alive via a follower', async () => {
  let now = 0;
  await withCluster({ clock: () => now }, async (c) => {
    const l = await c.waitForLeader();
    const f = await c.follower();
    const g = await f.leaseGrant(5);
    await f.put(b('leased'), b('x'), { lease: g.id });
    now += 4000;
    assert.is((await f.leaseKeepAlive(g.id)).ttl, 5);
    now += 4000;
    assert.equal(await l.tickLeases(), [], 'kept alive: not expired');
    assert.equal(await f.tickLeases(), [], 'a follower proposes no expiry');
    // Leader change: the new leader renews every lease to a full TTL from now.
    await l.moveLeader(f.memberId);
    await c.waitForLeader();
    now += 4000;
    assert.equal(await f.tickLeases(), [], 'renewed on leader change');
    now += 2000;
    assert.equal(await f.tickLeases(), [g.id]);
    for (const m of c.running()) {
      await until(async () => (await m.range(b('leased'), { serializable: true })).count === 0, 'key deleted on every member');
    }
    assert.is((await l.leaseTimeToLive(g.id)).ttl, -1);
  });
});

test('a hash mismatch with another member raises the CORRUPT alarm', async () => {
  await withCluster({}, async (c) => {
    const l = await c.waitForLeader();
    await l.put(b('h'), b('1'));
    for (const m of c.running()) await until(() => m.keyspace.revision() === l.keyspace.revision(), 'applied everywhere');
    assert.equal(await l.checkHashes(), []);
    const f = await c.follower();
    const real = f.hashKV.bind(f);
    f.hashKV = async (rev?: number) => ({ ...(await real(rev)), hash: 12345 });
    assert.equal(await l.checkHashes(), [f.memberId]);
    assert.equal((await l.alarm('get', 0)).alarms.map((a) => a.alarm), ['CORRUPT']);
    await until(async () => (await f.status()).errors.includes('CORRUPT'), 'alarm replicated');
    await l.alarm('deactivate', 0, 'CORRUPT');
    assert.equal((await l.alarm('get', 0)).alarms, []);
  });
});

test.run();
