// The security pieces wired together as the API server wires them, behind a
// node:https server on loopback, and driven by kubectl: TLS with the generated
// CA, a client certificate, a static token and a service-account token go
// through the union authenticator, RBAC with the bootstrap roles decides, and
// kubectl shows the Kubernetes-worded 401 and 403 answers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { ClusterRoleBinding, RoleBinding } from 'kubernetes-types/rbac/v1.js';
import {
  bootstrapRbac, CertificateAuthenticator, createSecurity, ensurePki, forbiddenError, RbacAuthorizer, ServiceAccountTokens, tlsServerOptions, TokenFileAuthenticator,
  UnionAuthenticator, writeKubeconfig, type RequestAttributes,
} from '../../../src/apiserver/auth/index.ts';
import { errors, isStatusError } from '../../../src/apiserver/errors.ts';

const kubectl = '/usr/bin/kubectl';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(kubectl, args, { timeout: 30_000, env: { ...process.env, HOME: os.tmpdir(), KUBECONFIG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Just enough of the request path grammar for this test: /api/v1[/namespaces/<ns>]/<resource>[/<name>]. */
function attributesOf(method: string, url: string, user: RequestAttributes['user']): RequestAttributes {
  const p = new URL(url, 'https://x').pathname;
  const parts = p.split('/').filter(Boolean);
  const base = { user, apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '', path: p };
  if (parts[0] !== 'api' || parts.length < 3) return { ...base, verb: method.toLowerCase(), resourceRequest: false };
  let rest = parts.slice(2);
  let namespace = '';
  if (rest[0] === 'namespaces' && rest.length > 2) {
    namespace = rest[1]!;
    rest = rest.slice(2);
  }
  const name = rest[1] ?? '';
  const verb = method === 'GET' ? (name ? 'get' : 'list') : method === 'POST' ? 'create' : method === 'DELETE' ? 'delete' : 'update';
  return { ...base, apiVersion: parts[1]!, verb, resourceRequest: true, namespace, resource: rest[0]!, name, subresource: rest[2] ?? '' };
}

const g = 'rbac.authorization.k8s.io';

test('kubectl through TLS, the union authenticator and RBAC', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-https-'));
  const pki = await ensurePki(dir, { hosts: [] });
  const accounts = new Map([['team/robot', 'robot-uid']]);
  const sa = ServiceAccountTokens.open({ dataDir: dir, exists: async (ns, name, uid) => accounts.get(`${ns}/${name}`) === uid });
  const authn = new UnionAuthenticator([
    new CertificateAuthenticator(pki.caCertPem),
    new TokenFileAuthenticator('viewer-token,vera,vera-uid,\nnobody-token,nobody,n-uid,\n'),
    sa,
  ]);
  const boot = bootstrapRbac();
  const crbs: ClusterRoleBinding[] = [...boot.clusterRoleBindings];
  const rbs: RoleBinding[] = [
    { metadata: { namespace: 'team', name: 'vera-view' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'view' }, subjects: [{ apiGroup: g, kind: 'User', name: 'vera' }] },
    { metadata: { namespace: 'team', name: 'robot-edit' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'edit' }, subjects: [{ kind: 'ServiceAccount', name: 'robot' }] },
  ];
  const authz = new RbacAuthorizer({
    clusterRoles: () => boot.clusterRoles,
    clusterRoleBindings: () => crbs,
    roles: () => [],
    roleBindings: (ns) => rbs.filter((b) => b.metadata?.namespace === ns),
  });
  const server = https.createServer(tlsServerOptions(pki), (req, res) => {
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    (async () => {
      const user = await authn.authenticate(req.headers, (req.socket as TLSSocket).getPeerX509Certificate());
      if (!user) throw errors.unauthorized();
      const attrs = attributesOf(req.method!, req.url!, user);
      const d = await authz.authorize(attrs);
      if (!d.allowed) throw forbiddenError(attrs, d.reason);
      reply(200, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [], servedTo: user.username });
    })().catch((e) => {
      const s = isStatusError(e) ? e : errors.internal(String(e));
      reply(s.code, s.toStatus());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const server_ = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const cfg = (name: string, o: { token?: string; cert?: boolean }) => {
    const f = path.join(dir, `${name}.kubeconfig`);
    writeKubeconfig(f, { server: server_, caCertPem: pki.caCertPem, token: o.token, ...(o.cert ? { clientCertPem: pki.adminCertPem, clientKeyPem: pki.adminKeyPem } : {}), user: name });
    return f;
  };
  try {
    const admin = await run(['--kubeconfig', cfg('admin', { cert: true }), 'get', '--raw', '/api/v1/namespaces/kube-system/secrets']);
    assert.is(admin.code, 0, admin.stderr);
    assert.is(JSON.parse(admin.stdout).servedTo, 'admin');

    const vera = cfg('vera', { token: 'viewer-token' });
    const ok = await run(['--kubeconfig', vera, 'get', '--raw', '/api/v1/namespaces/team/pods']);
    assert.is(ok.code, 0, ok.stderr);
    const denied = await run(['--kubeconfig', vera, 'get', '--raw', '/api/v1/namespaces/team/secrets']);
    assert.is.not(denied.code, 0);
    assert.match(denied.stderr, 'Error from server (Forbidden): secrets is forbidden: User "vera" cannot list resource "secrets" in API group "" in the namespace "team"');
    const other = await run(['--kubeconfig', vera, 'get', '--raw', '/api/v1/namespaces/other/pods/web']);
    assert.match(other.stderr, 'pods "web" is forbidden: User "vera" cannot get resource "pods" in API group "" in the namespace "other"');
    const path_ = await run(['--kubeconfig', cfg('nobody', { token: 'nobody-token' }), 'get', '--raw', '/metrics']);
    assert.match(path_.stderr, 'forbidden: User "nobody" cannot get path "/metrics"');
    const version = await run(['--kubeconfig', cfg('nobody2', { token: 'nobody-token' }), 'get', '--raw', '/version']);
    assert.is(version.code, 0, 'public info is open to every authenticated user');

    const bad = await run(['--kubeconfig', cfg('bad', { token: 'wrong' }), 'get', '--raw', '/api/v1/namespaces/team/pods']);
    assert.is.not(bad.code, 0);
    assert.match(bad.stderr, /Unauthorized/);

    const token = await sa.issue({ namespace: 'team', name: 'robot', uid: 'robot-uid' }, { expirationSeconds: 3600 });
    const robot = cfg('robot', { token });
    const secrets = await run(['--kubeconfig', robot, 'get', '--raw', '/api/v1/namespaces/team/secrets']);
    assert.is(secrets.code, 0, secrets.stderr);
    assert.is(JSON.parse(secrets.stdout).servedTo, 'system:serviceaccount:team:robot');
    accounts.delete('team/robot');
    const revoked = await run(['--kubeconfig', robot, 'get', '--raw', '/api/v1/namespaces/team/secrets']);
    assert.match(revoked.stderr, /Unauthorized/);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('createSecurity: config mistakes stop it before the data dir is touched; the admin kubeconfig works with kubectl', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-security-'));
  const boot = bootstrapRbac();
  const rbacSource = { clusterRoles: () => boot.clusterRoles, clusterRoleBindings: () => boot.clusterRoleBindings, roles: () => [], roleBindings: () => [] };
  let server: https.Server | undefined;
  try {
    const badTokens = path.join(dir, 'tokens.csv');
    fs.writeFileSync(badTokens, 'only,two\n');
    await createSecurity({ dataDir: path.join(dir, 'data'), tokenFile: badTokens, rbacSource }).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /needs at least 3 columns/));
    const badEnc = path.join(dir, 'enc.yaml');
    fs.writeFileSync(badEnc, 'kind: Nope\n');
    await createSecurity({ dataDir: path.join(dir, 'data'), encryptionConfig: badEnc, rbacSource }).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /kind must be EncryptionConfiguration/));
    assert.not.ok(fs.existsSync(path.join(dir, 'data')), 'nothing written');

    fs.writeFileSync(badTokens, 'tok,vera,v1\n');
    fs.writeFileSync(badEnc, `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers: [{aesgcm: {keys: [{name: k, secret: ${Buffer.alloc(32, 7).toString('base64')}}]}}, {identity: {}}]\n`);
    const uids = new Map([['serviceaccounts/team/robot', 'r-uid']]);
    const sec = await createSecurity({ dataDir: path.join(dir, 'data'), tokenFile: badTokens, encryptionConfig: badEnc, rbacSource, lookupUid: async (r, ns, name) => uids.get(`${r}/${ns}/${name}`) ?? null });
    assert.is(sec.encryption?.transformerFor('', 'secrets')?.writer, 'aesgcm:k');
    assert.equal(sec.admissionPlugins.map((p) => p.name), ['NamespaceLifecycle', 'ServiceAccount', 'DefaultTolerationSeconds', 'Priority', 'RBACEscalation']);
    assert.is((await sec.authenticator.authenticate({ authorization: 'Bearer tok' }))?.username, 'vera');
    const robot = await sec.serviceAccountTokens.issue({ namespace: 'team', name: 'robot', uid: 'r-uid' }, { expirationSeconds: 3600 });
    assert.is((await sec.authenticator.authenticate({ authorization: `Bearer ${robot}` }))?.username, 'system:serviceaccount:team:robot');
    uids.set('serviceaccounts/team/robot', 'new-uid');
    await sec.authenticator.authenticate({ authorization: `Bearer ${robot}` }).then(() => assert.unreachable(), (e) => assert.ok(isStatusError(e) && e.code === 401));

    server = https.createServer(tlsServerOptions(sec.pki), (req, res) => {
      sec.authenticator.authenticate(req.headers, (req.socket as TLSSocket).getPeerX509Certificate()).then((u) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ user: u }));
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const kc = path.join(dir, 'data', 'admin.kubeconfig');
    sec.writeAdminKubeconfig(kc, `https://localhost:${(server.address() as AddressInfo).port}`);
    const r = await run(['--kubeconfig', kc, 'get', '--raw', '/']);
    assert.is(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).user, { username: 'admin', groups: ['system:masters', 'system:authenticated'] });
  } finally {
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
