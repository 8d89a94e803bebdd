// The shared Store contract suite through RemoteStore against a real
// 3-member etcd 3.4 cluster (Debian's etcd-server), started once for the
// file. Each test gets a fresh RemoteStore; the suite works under fresh key
// prefixes, so the tests share the cluster.
import { test } from 'uvu';
import { RemoteStore } from '../../../src/store/client/remote.ts';
import { storeContract } from '../contract.ts';
import { etcdAvailable, startEtcdCluster, type EtcdCluster } from './etcd-cluster.ts';

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

if (!etcdAvailable()) {
  test('real etcd (skipped: /usr/bin/etcd is not installed)', () => {});
  test.run();
} else {
  let cluster: EtcdCluster | undefined;
  const s = storeContract('RemoteStore -> etcd 3.4 (3 members)', async () => {
    if (!cluster) {
      cluster = await startEtcdCluster(3);
      try {
        await waitReady(cluster.endpoints);
      } catch (e) {
        const logs = cluster.logs().slice(-4000);
        await cluster.stop();
        cluster = undefined;
        throw new Error(`${(e as Error).message}\n${logs}`);
      }
    }
    const store = await RemoteStore.connect({ endpoints: cluster.endpoints, requestTimeoutMs: 10_000 });
    return { store, cleanup: () => store.close() };
  });
  s.after(async () => {
    await cluster?.stop();
  });
  s.run();
}
