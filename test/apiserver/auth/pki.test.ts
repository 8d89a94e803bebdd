// PKI generation and reuse, the kubeconfig writer, and both checked against
// kubectl over a real TLS handshake with a node:https server on loopback.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { parse } from 'yaml';
import {
  CertificateAuthenticator, ensurePki, issueClientCertificate, kubeconfigText, tlsServerOptions, writeKubeconfig, type Pki,
} from '../../../src/apiserver/auth/index.ts';
import { isStatusError } from '../../../src/apiserver/errors.ts';

const kubectl = '/usr/bin/kubectl';
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-pki-'));

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000, env: { ...process.env, HOME: os.tmpdir(), KUBECONFIG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

let shared: { dir: string; pki: Pki } | undefined;
async function sharedPki(): Promise<{ dir: string; pki: Pki }> {
  if (!shared) {
    const dir = tempDir();
    shared = { dir, pki: await ensurePki(dir, { hosts: ['keelson.example', '10.1.2.3'] }) };
  }
  return shared;
}

test.after(() => {
  if (shared) fs.rmSync(shared.dir, { recursive: true, force: true });
});

test('first start writes the CA, the serving and the admin certificate; keys are 0600', async () => {
  const { dir, pki } = await sharedPki();
  for (const f of ['ca.crt', 'ca.key', 'apiserver.crt', 'apiserver.key', 'admin.crt', 'admin.key']) {
    assert.ok(fs.existsSync(path.join(dir, 'pki', f)), f);
  }
  for (const f of ['ca.key', 'apiserver.key', 'admin.key']) assert.is(fs.statSync(path.join(dir, 'pki', f)).mode & 0o777, 0o600, f);
  const ca = new crypto.X509Certificate(pki.caCertPem);
  const serving = new crypto.X509Certificate(pki.certPem);
  assert.ok(ca.ca);
  assert.ok(serving.checkIssued(ca) && serving.verify(ca.publicKey));
  assert.ok(!serving.ca);
  for (const h of ['localhost', 'keelson.example', 'kubernetes.default.svc']) assert.is(serving.checkHost(h), h);
  for (const ip of ['127.0.0.1', '10.1.2.3', '::1']) assert.ok(serving.checkIP(ip), ip);
  assert.is(serving.checkHost('other.example'), undefined);
  assert.ok(serving.checkPrivateKey(crypto.createPrivateKey(pki.keyPem)));
  const admin = new crypto.X509Certificate(pki.adminCertPem);
  assert.match(admin.subject, /CN=admin/);
  assert.match(admin.subject, /O=system:masters/);
  assert.ok(admin.keyUsage?.includes('1.3.6.1.5.5.7.3.2'), 'client auth');
});

test('a second start reuses every file; a new host re-issues only the serving certificate', async () => {
  const { dir, pki } = await sharedPki();
  const again = await ensurePki(dir, { hosts: ['keelson.example', '10.1.2.3'] });
  assert.equal(again, pki);
  const more = await ensurePki(dir, { hosts: ['keelson.example', 'new.example'] });
  assert.is(more.caCertPem, pki.caCertPem);
  assert.is(more.caKeyPem, pki.caKeyPem);
  assert.is(more.adminCertPem, pki.adminCertPem);
  assert.is.not(more.certPem, pki.certPem);
  assert.ok(new crypto.X509Certificate(more.certPem).checkHost('new.example'));
  // The certificate for new.example lacks 10.1.2.3, so going back re-issues it again.
  const back = await ensurePki(dir, { hosts: ['keelson.example', '10.1.2.3'] });
  assert.ok(new crypto.X509Certificate(back.certPem).checkIP('10.1.2.3'));
  shared = { dir, pki: back };
});

test('a serving certificate close to expiry is renewed from the same CA', async () => {
  const dir = tempDir();
  try {
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const first = await ensurePki(dir, { hosts: [], now: () => t0 });
    const later = await ensurePki(dir, { hosts: [], now: () => t0 + 340 * 24 * 3600 * 1000 });
    assert.is(later.caCertPem, first.caCertPem);
    assert.is.not(later.certPem, first.certPem);
    assert.is.not(later.adminCertPem, first.adminCertPem);
    const sameYear = await ensurePki(dir, { hosts: [], now: () => t0 + 341 * 24 * 3600 * 1000 });
    assert.is(sameYear.certPem, later.certPem);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('half a CA, a foreign key or a bad host is a clear error', async () => {
  const dir = tempDir();
  try {
    await ensurePki(dir, { hosts: [] });
    fs.rmSync(path.join(dir, 'pki', 'ca.key'));
    await ensurePki(dir, { hosts: [] }).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /ca.crt and ca.key must both exist/));
    fs.writeFileSync(path.join(dir, 'pki', 'ca.key'), crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await ensurePki(dir, { hosts: [] }).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /does not belong to ca.crt/));
    await ensurePki(dir, { hosts: ['bad host!'] }).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /invalid host/));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('wildcard and upper-case hosts are kept across restarts, not re-issued each time', async () => {
  const dir = tempDir();
  try {
    const first = await ensurePki(dir, { hosts: ['*.apps.example', 'API.Example', '[fd00::1]'] });
    const cert = new crypto.X509Certificate(first.certPem);
    assert.match(cert.subjectAltName ?? '', /DNS:\*\.apps\.example/);
    assert.ok(cert.checkHost('x.apps.example'));
    assert.ok(cert.checkIP('fd00::1'));
    const second = await ensurePki(dir, { hosts: ['*.apps.example', 'api.example', 'fd00:0:0:0:0:0:0:1'] });
    assert.is(second.certPem, first.certPem);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kubeconfig: kubectl config view reads it, file mode 0600, bad input refused', async () => {
  const { dir, pki } = await sharedPki();
  const file = path.join(dir, 'admin.kubeconfig');
  writeKubeconfig(file, { server: 'https://127.0.0.1:6443', caCertPem: pki.caCertPem, token: 'tok-123', user: 'admin', cluster: 'keelson' });
  assert.is(fs.statSync(file).mode & 0o777, 0o600);
  const r = await run(kubectl, ['config', 'view', '--raw', '-o', 'json', '--kubeconfig', file]);
  assert.is(r.code, 0, r.stderr);
  const cfg = JSON.parse(r.stdout);
  assert.is(cfg['current-context'], 'admin@keelson');
  assert.is(cfg.clusters[0].cluster.server, 'https://127.0.0.1:6443');
  assert.is(Buffer.from(cfg.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), pki.caCertPem);
  assert.is(cfg.users[0].user.token, 'tok-123');
  assert.throws(() => kubeconfigText({ server: 'not a url', caCertPem: pki.caCertPem }), /not a URL/);
  assert.throws(() => kubeconfigText({ server: 'https://x', caCertPem: pki.caCertPem, clientCertPem: pki.adminCertPem }), /needs its key/);
  assert.throws(() => kubeconfigText({ server: 'https://x', caCertPem: pki.caCertPem, token: 'a b' }), /token/);
  const plain = parse(kubeconfigText({ server: 'http://127.0.0.1:8080', caCertPem: pki.caCertPem, token: 't' }));
  assert.is(plain.clusters[0].cluster['certificate-authority-data'], undefined);
});

interface Seen { authorization?: string; user?: string | null; authError?: string }

async function withServer(pki: Pki, fn: (port: number, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const certs = new CertificateAuthenticator(pki.caCertPem);
  const server = https.createServer(tlsServerOptions(pki), (req, res) => {
    const s: Seen = { authorization: req.headers.authorization };
    try {
      s.user = certs.authenticateCertificate((req.socket as TLSSocket).getPeerX509Certificate())?.username ?? null;
    } catch (e) {
      s.authError = String(e);
    }
    seen.push(s);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ paths: ['/api', '/version'] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await fn((server.address() as AddressInfo).port, seen);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test('kubectl completes the TLS handshake with the generated CA and sends the token', async () => {
  const { dir, pki } = await sharedPki();
  await withServer(pki, async (port, seen) => {
    const file = path.join(dir, 'token.kubeconfig');
    writeKubeconfig(file, { server: `https://127.0.0.1:${port}`, caCertPem: pki.caCertPem, token: 'secret-token' });
    const r = await run(kubectl, ['--kubeconfig', file, 'get', '--raw', '/']);
    assert.is(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), { paths: ['/api', '/version'] });
    assert.is(seen.at(-1)?.authorization, 'Bearer secret-token');
    assert.is(seen.at(-1)?.user, null);
    // By name too: the certificate carries localhost.
    writeKubeconfig(file, { server: `https://localhost:${port}`, caCertPem: pki.caCertPem, token: 'secret-token' });
    assert.is((await run(kubectl, ['--kubeconfig', file, 'get', '--raw', '/'])).code, 0);
  });
});

test('kubectl with the admin client certificate is authenticated as admin in system:masters', async () => {
  const { dir, pki } = await sharedPki();
  await withServer(pki, async (port, seen) => {
    const file = path.join(dir, 'cert.kubeconfig');
    writeKubeconfig(file, { server: `https://127.0.0.1:${port}`, caCertPem: pki.caCertPem, clientCertPem: pki.adminCertPem, clientKeyPem: pki.adminKeyPem });
    const r = await run(kubectl, ['--kubeconfig', file, 'get', '--raw', '/']);
    assert.is(r.code, 0, r.stderr);
    assert.is(seen.at(-1)?.user, 'admin');
    assert.is(seen.at(-1)?.authorization, undefined);
  });
});

test('kubectl refuses a server whose certificate another CA signed', async () => {
  const { pki } = await sharedPki();
  const other = tempDir();
  try {
    const otherPki = await ensurePki(other, { hosts: [] });
    await withServer(otherPki, async (port, seen) => {
      const file = path.join(other, 'wrong.kubeconfig');
      writeKubeconfig(file, { server: `https://127.0.0.1:${port}`, caCertPem: pki.caCertPem, token: 'secret-token' });
      const r = await run(kubectl, ['--kubeconfig', file, 'get', '--raw', '/']);
      assert.is.not(r.code, 0);
      assert.match(r.stderr, /certificate/);
      assert.is(seen.length, 0, 'the token was never sent');
    });
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test('client certificates: CN is the user, O the groups; foreign, expired and server certificates are refused', async () => {
  const { pki } = await sharedPki();
  const auth = new CertificateAuthenticator(pki.caCertPem);
  const issued = await issueClientCertificate(pki, { username: 'system:kube-scheduler', groups: ['g1', 'g2'] });
  assert.equal(auth.authenticateCertificate(new crypto.X509Certificate(issued.certPem)), { username: 'system:kube-scheduler', groups: ['g1', 'g2', 'system:authenticated'] });
  assert.equal(auth.authenticateCertificate({ raw: new crypto.X509Certificate(pki.adminCertPem).raw })?.groups, ['system:masters', 'system:authenticated']);
  assert.is(auth.authenticateCertificate(null), null);
  assert.is(auth.authenticateCertificate({}), null, 'getPeerCertificate() without a client certificate');
  const refused = (peer: crypto.X509Certificate | { raw: Buffer }, a = auth) => {
    try {
      a.authenticateCertificate(peer);
      assert.unreachable('accepted');
    } catch (e) {
      assert.ok(isStatusError(e) && e.code === 401, String(e));
    }
  };
  refused(new crypto.X509Certificate(pki.certPem)); // serverAuth only
  refused(new crypto.X509Certificate(pki.caCertPem));
  refused({ raw: Buffer.from('garbage') });
  const other = tempDir();
  try {
    refused(new crypto.X509Certificate((await ensurePki(other, { hosts: [] })).adminCertPem));
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
  refused(new crypto.X509Certificate(issued.certPem), new CertificateAuthenticator(pki.caCertPem, { now: () => Date.now() + 400 * 24 * 3600 * 1000 }));
});

test.run();
