// The Store contract suite through RemoteStore and the Keelson etcd API
// server on the replicated member: a single EmbeddedStore, and a 3-member
// in-process cluster with one server per member, reached only through a
// follower's server (so writes, lease calls and linearizable reads are
// forwarded by the member, and the server must pass them through intact).
import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RemoteStore } from '../../../src/store/client/remote.ts';
import { EmbeddedStore } from '../../../src/store/embedded.ts';
import { startCluster, type EmbeddedCluster } from '../../../src/store/embedded/cluster.ts';
import type { ClusterStore } from '../../../src/store/cluster.ts';
import { EtcdServer } from '../../../src/store/server/server.ts';
import { storeContract } from '../contract.ts';
import { tempDir } from '../mvcc/helpers.ts';

async function serve(store: ClusterStore): Promise<{ server: EtcdServer; endpoint: string }> {
  const server = new EtcdServer({ store, closeGraceMs: 200 });
  const port = await server.listen('127.0.0.1', 0);
  return { server, endpoint: `http://127.0.0.1:${port}` };
}

storeContract('RemoteStore -> Keelson server -> EmbeddedStore (single member)', async () => {
  const dir = tempDir('keelson-grpc-embedded-');
  const store = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0 });
  let served: { server: EtcdServer; endpoint: string } | undefined;
  let remote: RemoteStore | undefined;
  const cleanup = async () => {
    await remote?.close();
    await served?.server.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    served = await serve(store);
    remote = await RemoteStore.connect({ endpoints: [served.endpoint], requestTimeoutMs: 10_000 });
    return { store: remote, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}).run();

storeContract('RemoteStore -> Keelson server -> EmbeddedStore (3 members, via a follower)', async () => {
  const dir = tempDir('keelson-grpc-cluster-');
  let cluster: EmbeddedCluster | undefined;
  const servers: EtcdServer[] = [];
  let remote: RemoteStore | undefined;
  const cleanup = async () => {
    await remote?.close();
    for (const s of servers) await s.close();
    await cluster?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    cluster = await startCluster({ size: 3, dir, tickMs: 25, electionTicks: 10, leaseTickMs: 0 });
    await cluster.waitForLeader();
    const follower = await cluster.follower();
    let endpoint = '';
    for (const m of cluster.running()) {
      const s = await serve(m);
      servers.push(s.server);
      if (m === follower) endpoint = s.endpoint;
    }
    remote = await RemoteStore.connect({ endpoints: [endpoint], requestTimeoutMs: 10_000 });
    return { store: remote, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}).run();

test('3 members behind 3 servers: a stopped follower, calls and watches fail over', async () => {
  const dir = tempDir('keelson-grpc-failover-');
  let cluster: EmbeddedCluster | undefined;
  const servers: EtcdServer[] = [];
  let remote: RemoteStore | undefined;
  try {
    cluster = await startCluster({ size: 3, dir, tickMs: 25, electionTicks: 10, leaseTickMs: 0 });
    await cluster.waitForLeader();
    const endpoints: string[] = [];
    for (const m of cluster.running()) {
      const s = await serve(m);
      servers.push(s.server);
      endpoints.push(s.endpoint);
    }
    remote = await RemoteStore.connect({ endpoints, requestTimeoutMs: 10_000 });
    const follower = await cluster.follower();
    const i = cluster.members.indexOf(follower);
    await servers[i].close();
    await cluster.stop(i);
    const k = Buffer.from('failover');
    for (let n = 0; n < 20; n++) await remote.put(k, Buffer.from(String(n)));
    assert.is((await remote.range(k)).kvs[0].value.toString(), '19');
    const after = (await remote.put(k, Buffer.from('after'))).header.revision;
    let seen = '';
    for (let attempt = 0; attempt < 5 && seen === ''; attempt++) {
      const w = remote.watch(k, { startRevision: after });
      const r = await w.next();
      w.cancel();
      if (r && !r.canceled && r.events.length > 0) seen = r.events[0].kv.value.toString();
    }
    assert.is(seen, 'after');
  } finally {
    await remote?.close();
    for (const s of servers) await s.close();
    await cluster?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
