// The shared Store contract suite through RemoteStore (the etcd3 client)
// against a Keelson etcd API server on a local store, and a snapshot saved
// through it.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { storeContract } from '../contract.ts';
import { RemoteStore } from '../../../src/store/client/remote.ts';
import { readU64 } from '../../../src/store/mvcc/encoding.ts';
import { LocalClusterStore } from '../../../src/store/server/local-cluster.ts';
import { parseSnapshotFile, saveSnapshotFile } from '../../../src/store/server/snapshot-file.ts';
import { startServer } from '../server/helpers.ts';

storeContract('RemoteStore -> Keelson server (local store)', async () => {
  const fx = await startServer();
  let store: RemoteStore;
  try {
    store = await RemoteStore.connect({ endpoints: [fx.endpoint], requestTimeoutMs: 10_000 });
  } catch (e) {
    await fx.stop();
    throw e;
  }
  return {
    store,
    async cleanup() {
      await store.close();
      await fx.stop();
    },
  };
}).run();

test('snapshot through RemoteStore saved with saveSnapshotFile: the same file etcdctl writes, restorable', async () => {
  const fx = await startServer();
  const remote = await RemoteStore.connect({ endpoints: [fx.endpoint] });
  try {
    for (let i = 0; i < 30; i++) await remote.put(Buffer.from(`snap/${i}`), Buffer.alloc(300, i));
    const snap = await remote.snapshot();
    const file = path.join(fx.dir, 'remote.db');
    const bytes = await saveSnapshotFile(snap.chunks, file);
    assert.is(bytes, fs.statSync(file).size);
    assert.is(bytes % 512, 32);
    const data = parseSnapshotFile(fs.readFileSync(file));
    const dir = fs.mkdtempSync(path.join(fx.dir, 'restore-'));
    const restored = new LocalClusterStore({ dir, leaseTickMs: 0 });
    try {
      await restored.local.keyspace.restore(readU64(data, 8), data);
      assert.is((await restored.hashKV(0)).hash, (await fx.store.hashKV(0)).hash);
    } finally {
      await restored.close();
    }
  } finally {
    await remote.close();
    await fx.stop();
  }
});

test('keep-alives share one stream: many concurrent calls for several leases, and missing ones', async () => {
  const fx = await startServer();
  const remote = await RemoteStore.connect({ endpoints: [fx.endpoint] });
  try {
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await remote.leaseGrant(30)).id);
    const calls: Promise<string>[] = [];
    for (let i = 0; i < 60; i++) calls.push(remote.leaseKeepAlive(ids[i % 3]).then((r) => `${r.id}:${r.ttl}`));
    for (let i = 0; i < 5; i++) calls.push(remote.leaseKeepAlive(424242).then(() => 'found', (e: Error) => (e as { code?: string }).code ?? e.message));
    const got = await Promise.all(calls);
    assert.equal(got.slice(0, 60), Array.from({ length: 60 }, (_, i) => `${ids[i % 3]}:30`));
    assert.equal(got.slice(60), Array(5).fill('lease not found'));
  } finally {
    await remote.close();
    await fx.stop();
  }
});

test.run();
