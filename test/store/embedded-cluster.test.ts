// The Store contract suite against a 3-member in-process cluster, through the
// leader and through a follower (proposals forwarded by the core, reads by
// ReadIndex, lease keep-alives by the in-process peer lookup).
import fs from 'node:fs';
import { startCluster, type EmbeddedCluster } from '../../src/store/embedded/cluster.ts';
import { storeContract } from './contract.ts';
import { tempDir } from './mvcc/helpers.ts';

const fast = { tickMs: 25, electionTicks: 10, leaseTickMs: 0 };

for (const role of ['leader', 'follower'] as const) {
  storeContract(`EmbeddedStore (3 members, via the ${role})`, async () => {
    const dir = tempDir('keelson-cluster-contract-');
    let cluster: EmbeddedCluster | undefined;
    try {
      cluster = await startCluster({ size: 3, dir, ...fast });
      const store = role === 'leader' ? await cluster.waitForLeader() : await cluster.follower();
      const c = cluster;
      return {
        store,
        async cleanup() {
          await c.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      await cluster?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }).run();
}
