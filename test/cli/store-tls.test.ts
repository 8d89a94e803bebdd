// `keelson store serve` with mutual TLS between members: a 3-member cluster
// with https:// peer URLs replicates writes; client TLS with client
// certificates (etcd's --cert-file, --key-file, --trusted-ca-file,
// --client-cert-auth) for etcdctl and `keelson store`; bad TLS flags are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, etcdctlBin, keelsonInProcess as keelson, run as runCmd, tempDir, until } from './store-helpers.ts';

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
  // On a loaded machine an election may be under way at any one moment: the
  // members must come to agree on one leader, not agree at the first look.
  await until('all members agree on the leader', async () => {
    const status = JSON.parse((await keelson('store', 'endpoint', 'status', '-w', 'json', `--endpoints=${cluster!.endpoints()}`)).stdout) as Array<{ Status: { leader: number } }>;
    return status.length === 3 && new Set(status.map((s) => s.Status.leader)).size === 1;
  });
  assert.ok(b);
});

test('client TLS: etcdctl and keelson store with a client certificate; refused without one; bad flags exit 2', async () => {
  if (!haveOpenssl()) {
    console.log('skipped: no openssl');
    return;
  }
  const d = path.join(dir, 'client-tls');
  fs.mkdirSync(d, { recursive: true });
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: d, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=keelson-client-ca');
  fs.writeFileSync(path.join(d, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  fs.writeFileSync(path.join(d, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, ext] of [['server', 'server.ext'], ['client', 'client.ext']] as const) {
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', ext);
  }
  const f = (n: string) => path.join(d, n);
  const serverTls = [`--cert-file=${f('server.crt')}`, `--key-file=${f('server.key')}`, `--trusted-ca-file=${f('ca.crt')}`, '--client-cert-auth'];

  const noHttps = await keelson('store', 'serve', '--name=x', '--listen-client-urls=http://127.0.0.1:1', ...serverTls);
  assert.is(noHttps.code, 2);
  assert.match(noHttps.stderr, 'use https:// exactly when --cert-file and --key-file are given');
  const noCert = await keelson('store', 'serve', '--name=x', '--listen-client-urls=https://127.0.0.1:1');
  assert.is(noCert.code, 2);
  const noCa = await keelson('store', 'serve', '--name=x', '--listen-client-urls=https://127.0.0.1:1', `--cert-file=${f('server.crt')}`, `--key-file=${f('server.key')}`, '--client-cert-auth');
  assert.is(noCa.code, 2);
  assert.match(noCa.stderr, '--client-cert-auth needs --trusted-ca-file');

  const single = await Cluster.create(path.join(d, 'data'), ['s'], 'keelson-client-tls');
  try {
    const m = single.members[0]!;
    await single.start(m, serverTls, undefined, 'https');
    const endpoint = `https://127.0.0.1:${m.clientPort}`;
    const certs = [`--cacert=${f('ca.crt')}`, `--cert=${f('client.crt')}`, `--key=${f('client.key')}`];
    await until('a write over TLS', async () => (await keelson('store', 'put', 'secure', 'yes', `--endpoints=${endpoint}`, ...certs)).code === 0);
    const got = await keelson('store', 'get', 'secure', `--endpoints=${endpoint}`, ...certs);
    assert.is(got.stdout, 'secure\nyes\n', got.stderr);
    const refused = await keelson('store', 'get', 'secure', `--endpoints=${endpoint}`, `--cacert=${f('ca.crt')}`, '--command-timeout=3s', '--dial-timeout=2s');
    assert.is.not(refused.code, 0, 'a client without a certificate is refused');
    if (fs.existsSync(etcdctlBin)) {
      const ctl = (...a: string[]) => runCmd(etcdctlBin, [`--endpoints=${endpoint}`, '--command-timeout=5s', '--dial-timeout=3s', ...a]);
      const put = await ctl(...certs, 'put', 'from-etcdctl', '1');
      assert.is(put.code, 0, put.stderr);
      const value = await ctl(...certs, 'get', 'secure', '--print-value-only');
      assert.is(value.stdout, 'yes\n', value.stderr);
      assert.is.not((await ctl(`--cacert=${f('ca.crt')}`, 'get', 'secure')).code, 0, 'etcdctl without a certificate is refused');
    }
  } finally {
    await single.stopAll();
  }
});

test.run();
