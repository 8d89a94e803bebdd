import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { isKeelsonError } from '../../../src/store/errors.ts';
import { Lessor } from '../../../src/store/lease/lessor.ts';
import { LocalKeyspaceStore } from '../../../src/store/local.ts';
import { b, tempDir } from '../mvcc/helpers.ts';

function env() {
  const dir = tempDir('keelson-lease-');
  let now = 1_000_000;
  let nextId = 100;
  const store = new LocalKeyspaceStore({ dir, clock: () => now, leaseId: () => nextId++, leaseTickMs: 0, minLeaseTtlSeconds: 2 });
  return {
    store,
    advance(ms: number) {
      now += ms;
    },
    async close() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('grant, attach, time-to-live with keys, list, revoke', async () => {
  const e = env();
  try {
    const s = e.store;
    const g = await s.leaseGrant(10);
    assert.equal([g.id, g.ttl], [100, 10]);
    assert.is((await s.leaseGrant(1)).ttl, 2, 'raised to the minimum TTL');
    await s.put(b('a'), b('1'), { lease: g.id });
    await s.put(b('b'), b('1'), { lease: g.id });
    e.advance(3500);
    const t = await s.leaseTimeToLive(g.id, { keys: true });
    assert.equal([t.ttl, t.grantedTtl, t.keys.map(String)], [7, 10, ['a', 'b']]);
    assert.equal((await s.leaseLeases()).leases, [{ id: 100 }, { id: 101 }]);
    await s.leaseRevoke(g.id);
    assert.is((await s.range(b('a'), { rangeEnd: b('c') })).count, 0);
    assert.is((await s.leaseTimeToLive(g.id)).ttl, -1);
    let code = '';
    try {
      await s.leaseRevoke(g.id);
    } catch (err) {
      code = isKeelsonError(err) ? err.code : '';
    }
    assert.is(code, 'lease not found');
  } finally {
    await e.close();
  }
});

test('expiry is decided on the clock, applied through the log, and delays with keep-alives', async () => {
  const e = env();
  try {
    const s = e.store;
    const short = await s.leaseGrant(5);
    const long = await s.leaseGrant(20);
    await s.put(b('s'), b('1'), { lease: short.id });
    await s.put(b('l'), b('1'), { lease: long.id });
    e.advance(4000);
    assert.equal(await s.tickLeases(), []);
    assert.is((await s.leaseKeepAlive(short.id)).ttl, 5);
    e.advance(4000);
    assert.equal(await s.tickLeases(), [], 'kept alive');
    e.advance(1001);
    const rev = s.keyspace.revision();
    assert.equal(await s.tickLeases(), [short.id]);
    assert.is(s.keyspace.revision(), rev + 1, 'the expiry deleted the key in one revision');
    assert.is((await s.range(b('s'))).count, 0);
    assert.is((await s.range(b('l'))).count, 1);
    let code = '';
    try {
      await s.leaseKeepAlive(short.id);
    } catch (err) {
      code = isKeelsonError(err) ? err.code : '';
    }
    assert.is(code, 'lease not found');
    e.advance(20_000);
    assert.equal(await s.tickLeases(), [long.id]);
    assert.equal(await s.tickLeases(), []);
  } finally {
    await e.close();
  }
});

test('a new primary renews every lease (no mass expiry on failover); followers expire nothing', async () => {
  const e = env();
  try {
    const s = e.store;
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await s.leaseGrant(10)).id);
    e.advance(9000);
    s.lessor.demote();
    assert.equal(s.lessor.expired(), []);
    let code = '';
    try {
      s.lessor.keepAlive(ids[0]);
    } catch (err) {
      code = isKeelsonError(err) ? err.code : '';
    }
    assert.is(code, 'not leader');
    e.advance(60_000);
    s.lessor.promote();
    assert.equal(await s.tickLeases(), []);
    assert.is((await s.leaseTimeToLive(ids[0])).ttl, 10);
    e.advance(10_001);
    assert.equal((await s.tickLeases()).sort(), [...ids].sort());
  } finally {
    await e.close();
  }
});

test('expired() is bounded per call, names a lease once, and retry() makes it eligible again', () => {
  let now = 0;
  const leases = Array.from({ length: 10 }, (_, i) => ({ id: i + 1, ttl: 1 + (i % 3) }));
  const l = new Lessor({ leases: () => leases, lease: () => null }, { clock: () => now, expireBatchMax: 4 });
  l.promote();
  for (let i = 0; i < 50; i++) l.keepAlive(1 + (i % 10)); // stale heap entries
  now = 10_000;
  const a = l.expired();
  const c = l.expired();
  const d = l.expired();
  assert.equal([a.length, c.length, d.length], [4, 4, 2]);
  assert.equal([...a, ...c, ...d].sort((x, y) => x - y), leases.map((x) => x.id));
  assert.equal(l.expired(), []);
  l.retry([3]);
  assert.equal(l.expired(), [3]);
  // Earliest deadlines first.
  now = 0;
  const m = new Lessor({ leases: () => [{ id: 1, ttl: 30 }, { id: 2, ttl: 10 }, { id: 3, ttl: 20 }], lease: () => null }, { clock: () => now, expireBatchMax: 1 });
  m.promote();
  now = 100_000;
  assert.equal([m.expired(), m.expired(), m.expired()], [[2], [3], [1]]);
});

test.run();
