// The complete server (startStandalone) in-process: what it publishes from the
// data dir's PKI (kube-root-ca.crt).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import YAML from 'yaml';
import { startStandalone, type Standalone } from '../../src/apiserver/standalone.ts';
import { LocalKeyspaceStore } from '../../src/store/local.ts';
import { ok } from './helpers.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keelson-standalone-'));
let store: LocalKeyspaceStore | null = null;
let server: Standalone | null = null;

test.before(async () => {
  store = new LocalKeyspaceStore({ dir: path.join(dir, 'store'), leaseTickMs: 0 });
  server = await startStandalone({ store, dataDir: path.join(dir, 'data'), port: 0, bookmarkIntervalMs: 0 });
});
test.after(async () => {
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('kube-root-ca.crt carries the cluster CA in every namespace, new ones included', async () => {
  const cfg = YAML.parse(readFileSync(server!.kubeconfig, 'utf8'));
  const ca = Buffer.from(cfg.clusters[0].cluster['certificate-authority-data'], 'base64').toString();
  await ok(server!.kubeconfig, ['create', 'namespace', 'team']);
  for (const ns of ['default', 'kube-system', 'team']) {
    const got = await ok(server!.kubeconfig, ['get', 'configmap', 'kube-root-ca.crt', '-n', ns, '-o', 'jsonpath={.data.ca\\.crt}']);
    assert.is(got.trim(), ca.trim(), ns);
  }
});

test.run();
