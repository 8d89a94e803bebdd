// The etcd API server over TLS with client-certificate authentication:
// etcdctl and RemoteStore (the etcd3 client) connect with the CA and a
// client certificate; without one the handshake is refused.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensurePki } from '../../../src/apiserver/auth/pki.ts';
import { RemoteStore } from '../../../src/store/client/remote.ts';
import { LocalClusterStore } from '../../../src/store/server/local-cluster.ts';
import { EtcdServer } from '../../../src/store/server/server.ts';
import { tempDir } from '../mvcc/helpers.ts';

const etcdctlBin = process.env.KEELSON_ETCDCTL_BIN ?? '/usr/bin/etcdctl';

function ctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(etcdctlBin, args, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? 1 : 0, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

test('TLS with client-certificate auth: etcdctl and RemoteStore with a certificate, refused without', async () => {
  const dir = tempDir('keelson-grpc-tls-');
  const store = new LocalClusterStore({ dir: path.join(dir, 'data'), leaseTickMs: 0 });
  const server = new EtcdServer({ store, closeGraceMs: 200 });
  let remote: RemoteStore | undefined;
  try {
    const pki = await ensurePki(path.join(dir, 'pki-home'), { hosts: ['127.0.0.1'] });
    const port = await server.listen('127.0.0.1', 0, { tls: { cert: pki.certPem, key: pki.keyPem, ca: pki.caCertPem, clientCertAuth: true } });
    const files = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'client.crt'), key: path.join(dir, 'client.key') };
    fs.writeFileSync(files.ca, pki.caCertPem);
    fs.writeFileSync(files.cert, pki.adminCertPem);
    fs.writeFileSync(files.key, pki.adminKeyPem, { mode: 0o600 });

    remote = await RemoteStore.connect({
      endpoints: [`https://127.0.0.1:${port}`],
      requestTimeoutMs: 10_000,
      etcd3: { credentials: { rootCertificate: Buffer.from(pki.caCertPem), certChain: Buffer.from(pki.adminCertPem), privateKey: Buffer.from(pki.adminKeyPem) } },
    });
    await remote.put(Buffer.from('secure'), Buffer.from('yes'));

    if (fs.existsSync(etcdctlBin)) {
      const base = [`--endpoints=https://127.0.0.1:${port}`, `--cacert=${files.ca}`, '--command-timeout=5s', '--dial-timeout=3s'];
      const got = await ctl([...base, `--cert=${files.cert}`, `--key=${files.key}`, 'get', 'secure', '--print-value-only']);
      assert.is(got.code, 0, got.stderr);
      assert.is(got.stdout, 'yes\n');
      const refused = await ctl([...base, 'get', 'secure']);
      assert.is.not(refused.code, 0);
    } else {
      console.log('etcdctl part skipped: /usr/bin/etcdctl is not installed');
    }
    const plain = new RemoteStore({ endpoints: [`127.0.0.1:${port}`], requestTimeoutMs: 2000 });
    try {
      await plain.put(Buffer.from('x'), Buffer.from('y')).then(() => assert.unreachable('plaintext accepted'), () => {});
    } finally {
      await plain.close();
    }
  } finally {
    await remote?.close();
    await server.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
