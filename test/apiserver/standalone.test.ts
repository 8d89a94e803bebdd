// The complete server (startStandalone) in-process: what it publishes from the
// data dir's PKI (kube-root-ca.crt), and token revocation wired to the store
// (a token bound to a pod stops working once the pod is deleted).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import YAML from 'yaml';
import { startStandalone, type Standalone } from '../../src/apiserver/standalone.ts';
import { LocalKeyspaceStore } from '../../src/store/local.ts';
import { kubectl, ok } from './helpers.ts';

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

test('a token bound to a pod stops authenticating once the pod is deleted', async () => {
  const kc = server!.kubeconfig;
  await ok(kc, ['create', 'serviceaccount', 'bot']);
  await ok(kc, ['apply', '-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  serviceAccountName: bot\n  containers: [{name: c, image: busybox}]\n');
  const uid = await ok(kc, ['get', 'pod', 'p', '-o', 'jsonpath={.metadata.uid}']);
  const token = (await ok(kc, ['create', 'token', 'bot', '--bound-object-kind=Pod', '--bound-object-name=p', `--bound-object-uid=${uid}`])).trim();
  const cfg = YAML.parse(readFileSync(kc, 'utf8'));
  const asBot = path.join(dir, 'bot.kubeconfig');
  writeFileSync(asBot, YAML.stringify({ ...cfg, users: [{ name: cfg.users[0].name, user: { token } }] }));
  assert.match(await ok(asBot, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']), /system:serviceaccount:default:bot/);
  await ok(kc, ['delete', 'pod', 'p', '--grace-period=0', '--force']);
  const after = await kubectl(asBot, ['auth', 'whoami']);
  assert.is.not(after.code, 0);
  assert.match(after.stderr, /Unauthorized|must be logged in/);
});

test.run();
