// Bearer-token authentication: the static token file, service-account JWTs
// (expiry, audience, issuer, tampering, revocation by deleting the account),
// and the union of authenticators.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import {
  bearerToken, parseServiceAccountUsername, ServiceAccountTokens, TokenFileAuthenticator, UnionAuthenticator, type Authenticator,
} from '../../../src/apiserver/auth/index.ts';
import { isStatusError } from '../../../src/apiserver/errors.ts';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-tokens-'));
const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const newDir = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function rejects401(p: Promise<unknown>, cause?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isStatusError(e) && e.code === 401, `expected a 401, got ${String(e)}`);
    assert.is(e.message, 'Unauthorized');
    if (cause) assert.match(String((e as { cause?: unknown }).cause), cause);
    return;
  }
  assert.unreachable('accepted');
}

test('bearerToken: no header or another scheme is no credential; an empty bearer is a 401', () => {
  assert.is(bearerToken({}), undefined);
  assert.is(bearerToken({ authorization: 'Basic YTpi' }), undefined);
  assert.is(bearerToken({ authorization: 'Bearer abc' }), 'abc');
  assert.is(bearerToken({ authorization: 'bearer   abc  ' }), 'abc');
  for (const bad of ['Bearer', 'Bearer ', 'Bearer a b', `Bearer ${'x'.repeat(20000)}`]) {
    assert.throws(() => bearerToken({ authorization: bad }), (e: unknown) => isStatusError(e) && e.code === 401);
  }
});

test('token file: users, uids and quoted groups', async () => {
  const a = new TokenFileAuthenticator([
    'tok1,alice,uid-1,"dev,ops"',
    '',
    'tok2,bob,uid-2',
    'tok3,carol,,',
    '"to,k4",dave,uid-4,solo',
  ].join('\n'));
  assert.is(a.size, 4);
  assert.equal(await a.authenticate(bearer('tok1')), { username: 'alice', uid: 'uid-1', groups: ['dev', 'ops'] });
  assert.equal(await a.authenticate(bearer('tok2')), { username: 'bob', uid: 'uid-2', groups: [] });
  assert.equal(await a.authenticate(bearer('tok3')), { username: 'carol', uid: undefined, groups: [] });
  // A quoted token may hold a comma.
  assert.equal(await a.authenticate(bearer('to,k4')), { username: 'dave', uid: 'uid-4', groups: ['solo'] });
});

test('token file: unknown token 401, no token null; returned users are copies', async () => {
  const a = new TokenFileAuthenticator('tok1,alice,uid-1,"dev"\n');
  assert.is(await a.authenticate({}), null);
  await rejects401(a.authenticate(bearer('nope')));
  const u = (await a.authenticate(bearer('tok1')))!;
  u.groups.push('system:masters');
  assert.equal((await a.authenticate(bearer('tok1')))!.groups, ['dev']);
});

test('token file: bad files are clear errors', () => {
  assert.throws(() => new TokenFileAuthenticator('tok,alice\n'), /line 1: needs at least 3 columns/);
  assert.throws(() => new TokenFileAuthenticator('ok,a,1\n,bob,2\n'), /line 2: empty token/);
  assert.throws(() => new TokenFileAuthenticator('t,,1\n'), /empty user name/);
  assert.throws(() => new TokenFileAuthenticator('t,a,1\nt,b,2\n'), /line 2: duplicate token/);
  assert.throws(() => new TokenFileAuthenticator('t,a,1,"g1\n'), /unterminated quoted field/);
  assert.throws(() => new TokenFileAuthenticator('t,a,1,"g1"x\n'), /after a quoted field/);
  assert.throws(() => TokenFileAuthenticator.fromFile('/nonexistent/tokens.csv'), /cannot read token file/);
  const dir = newDir();
  const f = path.join(dir, 'tokens.csv');
  fs.writeFileSync(f, 'abc,admin,admin-uid,system:masters\n');
  return TokenFileAuthenticator.fromFile(f).authenticate(bearer('abc')).then((u) => assert.equal(u?.groups, ['system:masters']));
});

const sa = { namespace: 'team-a', name: 'builder', uid: 'sa-uid-1' };

test('service-account token: issue and verify, user and groups as Kubernetes names them', async () => {
  const dir = newDir();
  const t0 = Date.parse('2030-06-01T00:00:00Z');
  const tokens = ServiceAccountTokens.open({ dataDir: dir, now: () => t0, audiences: ['https://keelson.test'] });
  const jwt = await tokens.issue(sa, { expirationSeconds: 3600, boundObject: { kind: 'Pod', name: 'p1', uid: 'pod-uid' }, node: { name: 'n1', uid: 'node-uid' } });
  const user = (await tokens.authenticate(bearer(jwt)))!;
  assert.is(user.username, 'system:serviceaccount:team-a:builder');
  assert.is(user.uid, 'sa-uid-1');
  assert.equal(user.groups, ['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:authenticated']);
  assert.equal(user.extra?.['authentication.kubernetes.io/pod-name'], ['p1']);
  assert.equal(user.extra?.['authentication.kubernetes.io/pod-uid'], ['pod-uid']);
  assert.equal(user.extra?.['authentication.kubernetes.io/node-name'], ['n1']);
  assert.match(user.extra?.['authentication.kubernetes.io/credential-id']?.[0] ?? '', /^JTI=[0-9a-f-]{36}$/);
  const [h, p] = jwt.split('.').slice(0, 2).map((x) => JSON.parse(Buffer.from(x!, 'base64url').toString()));
  assert.is(h.alg, 'ES256');
  assert.is(h.kid, tokens.keyId);
  assert.is(p.iss, 'https://kubernetes.default.svc.cluster.local');
  assert.equal(p.aud, ['https://keelson.test']);
  assert.is(p.exp - p.iat, 3600);
  assert.equal(p['kubernetes.io'].pod, { name: 'p1', uid: 'pod-uid' });
  assert.equal((await tokens.jwks()).keys[0]?.kid, tokens.keyId);
  assert.equal(parseServiceAccountUsername(user.username), { namespace: 'team-a', name: 'builder' });
  assert.is(parseServiceAccountUsername('system:serviceaccount:a'), undefined);
  assert.is(parseServiceAccountUsername('alice'), undefined);
});

test('service-account token: expiry, audience, issuer and out-of-range lifetimes', async () => {
  const dir = newDir();
  let now = Date.parse('2030-06-01T00:00:00Z');
  const tokens = ServiceAccountTokens.open({ dataDir: dir, now: () => now, audiences: ['api'] });
  const jwt = await tokens.issue(sa, { expirationSeconds: 600 });
  assert.ok(await tokens.authenticate(bearer(jwt)));
  now += 599_000;
  assert.ok(await tokens.authenticate(bearer(jwt)));
  now += 2_000;
  await rejects401(tokens.authenticate(bearer(jwt)), /expired/);
  now -= 10_000;
  await rejects401(tokens.authenticate(bearer(await tokens.issue(sa, { expirationSeconds: 600, audiences: ['vault'] }))), /aud/);
  const other = ServiceAccountTokens.open({ dataDir: dir, now: () => now, audiences: ['api'], issuer: 'https://other' });
  await rejects401(other.authenticate(bearer(await tokens.issue(sa, { expirationSeconds: 600 }))), /iss/);
  for (const bad of [599, 1.5, 2 ** 32 + 1]) {
    await tokens.issue(sa, { expirationSeconds: bad }).then(() => assert.unreachable(), (e) => {
      assert.ok(isStatusError(e) && e.code === 422, String(e));
      assert.match(e.message, /spec.expirationSeconds/);
    });
  }
});

test('service-account token: tampered payload, foreign key, alg none and garbage are refused', async () => {
  const dir = newDir();
  const tokens = ServiceAccountTokens.open({ dataDir: dir });
  const jwt = await tokens.issue(sa, { expirationSeconds: 3600 });
  const [h, p, s] = jwt.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  claims['kubernetes.io'].serviceaccount.name = 'admin';
  claims.sub = 'system:serviceaccount:team-a:admin';
  await rejects401(tokens.authenticate(bearer(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`)));
  const flipped = s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1);
  await rejects401(tokens.authenticate(bearer(`${h}.${p}.${flipped}`)));
  const none = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
  await rejects401(tokens.authenticate(bearer(`${none}.${p}.`)));
  const foreign = ServiceAccountTokens.open({ dataDir: newDir() });
  await rejects401(tokens.authenticate(bearer(await foreign.issue(sa, { expirationSeconds: 3600 }))));
  await rejects401(tokens.authenticate(bearer('not-a-jwt')));
  await rejects401(tokens.authenticate(bearer('a.b.c')));
  // Signed with our key but inconsistent claims.
  const key = crypto.createPrivateKey(fs.readFileSync(path.join(dir, 'pki', 'sa.key')));
  const iat = Math.floor(Date.now() / 1000);
  const forged = await new SignJWT({ 'kubernetes.io': { namespace: 'team-a', serviceaccount: { name: 'builder', uid: 'x' } } })
    .setProtectedHeader({ alg: 'ES256' }).setIssuer(tokens.issuer).setAudience(tokens.audiences).setSubject('system:serviceaccount:kube-system:root')
    .setIssuedAt(iat).setExpirationTime(iat + 600).sign(key);
  await rejects401(tokens.authenticate(bearer(forged)), /subject/);
  const noClaims = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(tokens.issuer).setAudience(tokens.audiences).setSubject('system:serviceaccount:a:b')
    .setIssuedAt(iat).setExpirationTime(iat + 600).sign(key);
  await rejects401(tokens.authenticate(bearer(noClaims)), /kubernetes.io/);
});

test('service-account token: the key is generated once and reused; tokens survive a restart', async () => {
  const dir = newDir();
  const first = ServiceAccountTokens.open({ dataDir: dir });
  const jwt = await first.issue(sa, { expirationSeconds: 3600 });
  assert.is(fs.statSync(path.join(dir, 'pki', 'sa.key')).mode & 0o777, 0o600);
  const second = ServiceAccountTokens.open({ dataDir: dir });
  assert.is(second.keyId, first.keyId);
  assert.ok(await second.authenticate(bearer(jwt)));
  assert.throws(() => ServiceAccountTokens.open({ dataDir: dir, algorithm: 'RS256' }), /is for ES256/);
  const rsa = ServiceAccountTokens.open({ dataDir: newDir(), algorithm: 'RS256' });
  assert.is(rsa.algorithm, 'RS256');
  assert.ok(await rsa.authenticate(bearer(await rsa.issue(sa, { expirationSeconds: 3600 }))));
  const broken = newDir();
  fs.mkdirSync(path.join(broken, 'pki'));
  fs.writeFileSync(path.join(broken, 'pki', 'sa.key'), 'not a key');
  assert.throws(() => ServiceAccountTokens.open({ dataDir: broken }), /cannot be read/);
});

test('service-account token: deleting the account or the bound pod revokes it', async () => {
  const accounts = new Map([['team-a/builder', 'sa-uid-1']]);
  const pods = new Map([['team-a/p1', 'pod-uid']]);
  const tokens = ServiceAccountTokens.open({
    dataDir: newDir(),
    exists: async (ns, name, uid) => accounts.get(`${ns}/${name}`) === uid,
    boundObjectExists: async (ns, ref) => ref.kind === 'Pod' && pods.get(`${ns}/${ref.name}`) === ref.uid,
  });
  const plain = await tokens.issue(sa, { expirationSeconds: 3600 });
  const bound = await tokens.issue(sa, { expirationSeconds: 3600, boundObject: { kind: 'Pod', name: 'p1', uid: 'pod-uid' } });
  assert.ok(await tokens.authenticate(bearer(plain)));
  assert.ok(await tokens.authenticate(bearer(bound)));
  pods.set('team-a/p1', 'recreated-uid');
  await rejects401(tokens.authenticate(bearer(bound)), /bound/);
  assert.ok(await tokens.authenticate(bearer(plain)));
  accounts.set('team-a/builder', 'sa-uid-2'); // deleted and re-created under the same name
  await rejects401(tokens.authenticate(bearer(plain)), /no longer exists/);
});

test('union: first user wins, a token nobody knows is a 401, no credentials is null; system:authenticated is added', async () => {
  const tokens = ServiceAccountTokens.open({ dataDir: newDir() });
  const file = new TokenFileAuthenticator('static-tok,alice,a1,dev\n');
  const union = new UnionAuthenticator([file, tokens]);
  assert.equal(await union.authenticate(bearer('static-tok')), { username: 'alice', uid: 'a1', groups: ['dev', 'system:authenticated'] });
  const sau = (await union.authenticate(bearer(await tokens.issue(sa, { expirationSeconds: 3600 }))))!;
  assert.is(sau.username, 'system:serviceaccount:team-a:builder');
  assert.is(sau.groups.filter((g) => g === 'system:authenticated').length, 1);
  await rejects401(union.authenticate(bearer('unknown')));
  assert.is(await union.authenticate({}), null);
  assert.is(await union.authenticate({ authorization: 'Basic eDp5' }), null);
  const boom: Authenticator = { authenticate: async () => { throw new Error('backend down'); } };
  await new UnionAuthenticator([boom]).authenticate({}).then(() => assert.unreachable(), (e) => assert.match(String(e), /backend down/));
  const noGroup = new UnionAuthenticator([file], { addAuthenticatedGroup: false });
  assert.equal((await noGroup.authenticate(bearer('static-tok')))?.groups, ['dev']);
});

test('issueTokenRequest: defaults to an hour, checks the spec, reports the expiry', async () => {
  const t0 = Date.parse('2030-06-01T00:00:00Z');
  const tokens = ServiceAccountTokens.open({ dataDir: newDir(), now: () => t0 });
  const r = await tokens.issueTokenRequest(sa, {});
  assert.is(r.expirationTimestamp, '2030-06-01T01:00:00Z');
  assert.ok(await tokens.authenticate(bearer(r.token)));
  const bound = await tokens.issueTokenRequest(sa, { audiences: ['a', 'b'], expirationSeconds: 7200, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p', uid: 'u' } });
  assert.is(bound.expirationTimestamp, '2030-06-01T02:00:00Z');
  const claims = JSON.parse(Buffer.from(bound.token.split('.')[1]!, 'base64url').toString());
  assert.equal(claims.aud, ['a', 'b']);
  assert.equal(claims['kubernetes.io'].pod, { name: 'p', uid: 'u' });
  const invalid = async (spec: Record<string, unknown>, re: RegExp) => {
    await tokens.issueTokenRequest(sa, spec).then(() => assert.unreachable(), (e) => {
      assert.ok(isStatusError(e) && e.code === 422, String(e));
      assert.match(e.message, re);
    });
  };
  await invalid({ expirationSeconds: '600' }, /spec.expirationSeconds/);
  await invalid({ expirationSeconds: 60 }, /less than 10 minutes/);
  await invalid({ audiences: 'api' }, /spec.audiences/);
  await invalid({ audiences: [''] }, /spec.audiences/);
  await invalid({ boundObjectRef: { kind: 'Deployment', name: 'd' } }, /spec.boundObjectRef.kind: Unsupported value: "Deployment"/);
  await invalid({ boundObjectRef: { kind: 'Pod' } }, /spec.boundObjectRef.name: Required value/);
});

test('union with client certificates: a valid certificate wins, a foreign one does not block a good token', async () => {
  const { ensurePki, CertificateAuthenticator } = await import('../../../src/apiserver/auth/index.ts');
  const ours = await ensurePki(newDir(), { hosts: [] });
  const theirs = await ensurePki(newDir(), { hosts: [] });
  const union = new UnionAuthenticator([new CertificateAuthenticator(ours.caCertPem), new TokenFileAuthenticator('tok,alice,a1\n')]);
  const cert = (pem: string) => new crypto.X509Certificate(pem);
  assert.is((await union.authenticate({}, cert(ours.adminCertPem)))?.username, 'admin');
  assert.is((await union.authenticate(bearer('tok'), cert(theirs.adminCertPem)))?.username, 'alice');
  await rejects401(union.authenticate({}, cert(theirs.adminCertPem)));
  assert.is(await union.authenticate({}, undefined), null);
});

test.run();
