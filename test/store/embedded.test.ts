// The Store contract suite against a single EmbeddedStore member (Raft with
// one voter, WAL, ReadIndex reads), plus single-member behaviour: restart
// from the data dir, quota, snapshot files and restoring a new cluster.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { EmbeddedStore, restoreSnapshot, snapshotFileStatus } from '../../src/store/embedded.ts';
import { EmbeddedCluster, startCluster } from '../../src/store/embedded/cluster.ts';
import { isKeelsonError } from '../../src/store/errors.ts';
import { MemoryNetwork } from '../../src/store/raft/memory.ts';
import { storeContract } from './contract.ts';
import { tempDir } from './mvcc/helpers.ts';

const b = (s: string) => Buffer.from(s);

storeContract('EmbeddedStore (single member)', async () => {
  const dir = tempDir('keelson-embedded-');
  const store = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0 });
  return {
    store,
    async cleanup() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}).run();

test('a single member keeps its data across a restart and replays the WAL', async () => {
  const dir = tempDir('keelson-embedded-restart-');
  try {
    let s = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0 });
    const puts = [];
    for (let i = 0; i < 200; i++) puts.push(s.put(b(`k${i}`), b(`v${i}`)));
    await Promise.all(puts);
    const rev = (await s.range(b('k0'))).header.revision;
    const id = s.memberId;
    await s.close();
    s = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0 });
    try {
      assert.is(s.memberId, id);
      const r = await s.range(b('k'), { rangeEnd: b('l'), countOnly: true });
      assert.is(r.count, 200);
      assert.is(r.header.revision, rev);
      await s.put(b('after'), b('x'));
      assert.is((await s.range(b('after'))).header.revision, rev + 1);
      const m = await s.members();
      assert.is(m.members.length, 1);
      assert.is(m.members[0].id, id);
    } finally {
      await s.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('snapshot file: stream, status, restore into a new cluster; a corrupt file and an existing dir are refused', async () => {
  const dir = tempDir('keelson-embedded-snap-');
  try {
    const s = new EmbeddedStore({ dataDir: path.join(dir, 'a'), leaseTickMs: 0 });
    for (let i = 0; i < 50; i++) await s.put(b(`k${i}`), b(`v${i}`));
    const snap = await s.snapshot();
    const chunks: Buffer[] = [];
    for await (const c of snap.chunks) {
      assert.ok(c.length <= 1024 * 1024, 'chunks of at most 1 MiB');
      chunks.push(c);
    }
    const file = Buffer.concat(chunks);
    assert.is(file.length, snap.sizeBytes);
    assert.equal(fs.readdirSync(path.join(dir, 'a', 'keyspace')).filter((f) => f.startsWith('snapshot-')), [], 'the keyspace copy is removed after the stream');
    const st = snapshotFileStatus(file);
    assert.is(st.revision, snap.revision);
    assert.is(st.revision, (await s.range(b('k0'), { serializable: true })).header.revision);
    await s.close();

    const corrupt = Buffer.from(file);
    corrupt[corrupt.length >> 1] ^= 0xff;
    const err = await restoreSnapshot({ file: corrupt, dataDir: path.join(dir, 'bad'), name: 'n1', initialCluster: [{ name: 'n1', peerUrls: ['memory://n1'] }] }).catch((e) => e);
    assert.match(String(err), /checksum/);
    assert.not.ok(fs.existsSync(path.join(dir, 'bad', 'member.json')));
    const exists = await restoreSnapshot({ file, dataDir: path.join(dir, 'a'), name: 'n1', initialCluster: [{ name: 'n1', peerUrls: ['memory://n1'] }] }).catch((e) => e);
    assert.match(String(exists), /already exists/);

    const r = await restoreSnapshot({ file, dataDir: path.join(dir, 'new'), name: 'n1', initialCluster: [{ name: 'n1', peerUrls: ['memory://n1'] }] });
    assert.is(r.revision, snap.revision);
    const n = new EmbeddedStore({ dataDir: path.join(dir, 'new'), leaseTickMs: 0 });
    try {
      assert.is(n.memberId, r.memberId);
      assert.is((await n.range(b('k'), { rangeEnd: b('l'), countOnly: true })).count, 50);
      const p = await n.put(b('k0'), b('new'));
      assert.is(p.header.revision, snap.revision + 1);
      assert.is((await n.members()).members[0].name, 'n1');
    } finally {
      await n.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('past the quota writes fail with NOSPACE; deletes and compaction free it', async () => {
  const dir = tempDir('keelson-embedded-quota-');
  const store = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0, quotaBackendBytes: 256 * 1024 });
  try {
    let err: unknown;
    let last = 0;
    for (let i = 0; i < 2000 && err === undefined; i++) {
      try {
        last = (await store.put(b(`k${i % 50}`), Buffer.alloc(2000, i))).header.revision;
      } catch (e) {
        err = e;
      }
    }
    assert.ok(isKeelsonError(err, 'NOSPACE'), `NOSPACE, got ${String(err)}`);
    assert.equal((await store.status()).errors, ['NOSPACE']);
    await store.deleteRange(b('k'), { rangeEnd: b('l') });
    await store.compact(last + 1, { physical: true });
    assert.equal((await store.status()).errors, []);
    await store.put(b('after'), b('ok'));
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('automatic compaction (decided by the leader) keeps the last N revisions', async () => {
  const dir = tempDir('keelson-embedded-autocompact-');
  const store = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0, autoCompact: { mode: 'revision', retain: 50 } });
  try {
    for (let i = 0; i < 300; i++) await store.put(b(`k${i % 10}`), b(`${i}`));
    await new Promise((r) => setTimeout(r, 50));
    const st = await store.status();
    assert.ok(st.compactRevision >= 300 - 100 && st.compactRevision <= 300 - 50, `compact revision ${st.compactRevision}`);
    assert.is((await store.range(b('k1'), { revision: 280 })).count, 1);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a snapshot of a 3-member cluster restores into a new 3-member cluster', async () => {
  const dir = tempDir('keelson-embedded-snap3-');
  try {
    const old = await startCluster({ size: 3, dir: path.join(dir, 'old'), tickMs: 25, leaseTickMs: 0 });
    let file: Buffer;
    let rev: number;
    try {
      const l = await old.waitForLeader();
      for (let i = 0; i < 100; i++) await l.put(b(`s${i}`), b(`${i}`));
      const f = await old.follower();
      await f.range(b('s0'));
      const snap = await f.snapshotFile();
      file = snap.file;
      rev = snap.header.revision;
      assert.is(rev, l.keyspace.revision());
    } finally {
      await old.close();
    }
    const initial = [0, 1, 2].map((i) => ({ name: `m${i}`, peerUrls: [`memory://m${i}`] }));
    for (const m of initial) await restoreSnapshot({ file, dataDir: path.join(dir, 'new', m.name), name: m.name, initialCluster: initial });
    const c = new EmbeddedCluster({ size: 3, dir: path.join(dir, 'new'), tickMs: 25, leaseTickMs: 0 });
    try {
      const l = await c.waitForLeader();
      assert.is((await l.range(b('s'), { rangeEnd: b('t'), countOnly: true })).count, 100);
      assert.is((await l.put(b('next'), b('x'))).header.revision, rev + 1);
      const f = await c.follower();
      assert.is((await f.range(b('next'))).count, 1);
      assert.is((await f.members()).members.length, 3);
    } finally {
      await c.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad options get a clear error and leave no member behind', async () => {
  const dir = tempDir('keelson-embedded-opts-');
  try {
    const boom = (o: object) => { try { new EmbeddedStore({ dataDir: path.join(dir, String(Math.random())), leaseTickMs: 0, ...o }); return 'no error'; } catch (e) { return (e as Error).message; } };
    assert.match(boom({ name: 'x', initialCluster: [{ name: 'y', peerUrls: ['memory://y'] }] }), /not in initialCluster/);
    assert.match(boom({ initialClusterState: 'existing', name: 'y', transport: new MemoryNetwork().transport(1), initialCluster: [{ name: 'y', peerUrls: ['memory://y'] }] }), /needs memberId and clusterId/);
    assert.match(boom({ name: 'a', initialCluster: [{ name: 'a', peerUrls: ['memory://a'] }, { name: 'b', peerUrls: ['memory://b'] }] }), /transport is required/);
    assert.match(boom({ initialCluster: [] }), /empty/);
    assert.equal(fs.readdirSync(dir).filter((d) => fs.existsSync(path.join(dir, d, 'member.json'))), [], 'no member.json written');
    const s = new EmbeddedStore({ dataDir: path.join(dir, 'm'), leaseTickMs: 0 });
    await s.close();
    assert.match(boom({ dataDir: path.join(dir, 'm'), memberId: s.memberId + 1 }), /belongs to member/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
