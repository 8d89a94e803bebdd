// `keelson store serve` with mutual TLS between members: a 3-member cluster
// with https:// peer URLs replicates writes; bad TLS flags are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, keelsonInProcess as keelson, tempDir, until } from './store-helpers.ts';

const dir = tempDir('keelson-store-tls-');
let cluster: Cluster | null = null;

test.after(async () => {
  await cluster?.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('members with certificates from one CA replicate over TLS peer connections', async () => {
  if (!haveOpenssl()) {
    console.log('skipped: no openssl');
    return;
  }
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=keelson-test-ca');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'peer.key', '-out', 'peer.csr', '-subj', '/CN=peer');
  run('x509', '-req', '-in', 'peer.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'peer.crt', '-days', '1');
  const tlsFlags = [`--peer-cert-file=${path.join(dir, 'peer.crt')}`, `--peer-key-file=${path.join(dir, 'peer.key')}`, `--peer-trusted-ca-file=${path.join(dir, 'ca.crt')}`];

  const plain = await keelson('store', 'serve', '--name=x', '--listen-peer-urls=http://127.0.0.1:1', '--initial-advertise-peer-urls=http://127.0.0.1:1', ...tlsFlags);
  assert.is(plain.code, 2);
  assert.match(plain.stderr, 'use https:// exactly when peer TLS is configured');
  const half = await keelson('store', 'serve', `--peer-cert-file=${path.join(dir, 'peer.crt')}`);
  assert.is(half.code, 2);

  cluster = await Cluster.create(path.join(dir, 'data'), ['a', 'b', 'c'], 'keelson-tls');
  for (const m of cluster.members) m.peerUrl = m.peerUrl.replace('http://', 'https://');
  await Promise.all(cluster.members.map((m) => cluster!.start(m, tlsFlags)));
  const [a, b, c] = cluster.members;
  await until('write through a', async () => (await keelson('store', 'put', 'tls', 'on', `--endpoints=${a!.endpoint}`)).code === 0);
  await until('read on c', async () => (await keelson('store', 'get', 'tls', '--consistency=s', `--endpoints=${c!.endpoint}`)).stdout === 'tls\non\n');
  const status = JSON.parse((await keelson('store', 'endpoint', 'status', '-w', 'json', `--endpoints=${cluster.endpoints()}`)).stdout) as Array<{ Status: { leader: number } }>;
  assert.is(status.length, 3);
  assert.is(new Set(status.map((s) => s.Status.leader)).size, 1, 'all members agree on the leader');
  assert.ok(b);
});

test.run();
