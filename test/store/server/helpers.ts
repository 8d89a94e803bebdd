// Test helpers: a Keelson etcd API server on a LocalClusterStore in a temp
// dir, on a free loopback port, always torn down by stop().
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalClusterStore, type LocalClusterStoreOptions } from '../../../src/store/server/local-cluster.ts';
import { EtcdServer, type EtcdServerOptions } from '../../../src/store/server/server.ts';

export interface ServerFixture {
  store: LocalClusterStore;
  server: EtcdServer;
  port: number;
  endpoint: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startServer(storeOpts: Partial<LocalClusterStoreOptions> = {}, serverOpts: Partial<EtcdServerOptions> = {}): Promise<ServerFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-grpc-'));
  const store = new LocalClusterStore({ dir, leaseTickMs: 0, ...storeOpts });
  const server = new EtcdServer({ store, closeGraceMs: 200, ...serverOpts });
  let port: number;
  try {
    port = await server.listen('127.0.0.1', 0);
  } catch (e) {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  store.setClientUrls([endpoint]);
  return {
    store, server, port, endpoint, dir,
    async stop() {
      await server.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
