// The shared Store contract suite through RemoteStore (the etcd3 client)
// against a Keelson etcd API server on a local store.
import { storeContract } from '../contract.ts';
import { RemoteStore } from '../../../src/store/client/remote.ts';
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
