// The request-header authenticator believes X-Remote-* headers only from the
// proxy's client certificate.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensurePki, issueClientCertificate, remoteUserHeaders, RequestHeaderAuthenticator, ServiceAccountTokens } from '../../../src/apiserver/auth/index.ts';

const dirs: string[] = [];
const newDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-rh-'));
  dirs.push(d);
  return d;
};
test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('X-Remote-* from the allowed proxy certificate name the user; from anyone else they are ignored', async () => {
  const pki = await ensurePki(newDir(), { hosts: [] });
  const proxy = new crypto.X509Certificate((await issueClientCertificate(pki, { username: 'front-proxy-client' })).certPem);
  const other = new crypto.X509Certificate((await issueClientCertificate(pki, { username: 'mallory' })).certPem);
  const foreign = new crypto.X509Certificate((await ensurePki(newDir(), { hosts: [] })).adminCertPem);
  const auth = new RequestHeaderAuthenticator({ clientCaPem: pki.caCertPem, allowedNames: ['front-proxy-client'] });
  const headers = remoteUserHeaders({ username: 'alice', groups: ['dev', 'system:authenticated'], extra: { 'example.com/scopes': ['a', 'b'] } });
  assert.equal(headers, { 'x-remote-user': 'alice', 'x-remote-group': ['dev', 'system:authenticated'], 'x-remote-extra-example.com%2Fscopes': ['a', 'b'] });
  assert.equal(await auth.authenticate(headers, proxy), { username: 'alice', groups: ['dev', 'system:authenticated'], extra: { 'example.com/scopes': ['a', 'b'] } });
  assert.equal((await auth.authenticate({ 'x-remote-user': 'bob', 'x-remote-group': 'a, b' }, proxy))?.groups, ['a', 'b']);
  assert.is(await auth.authenticate(headers, other), null, 'a CN not allowed');
  assert.is(await auth.authenticate(headers, foreign), null, 'another CA');
  assert.is(await auth.authenticate(headers, undefined), null, 'no certificate');
  assert.is(await auth.authenticate({}, proxy), null, 'the proxy itself, without a user header');
  const anyName = new RequestHeaderAuthenticator({ clientCaPem: pki.caCertPem });
  assert.is((await anyName.authenticate(headers, other))?.username, 'alice');
});

test('openidConfiguration names the issuer, the JWKS and the algorithm', () => {
  const sa = ServiceAccountTokens.open({ dataDir: newDir(), issuer: 'https://keelson.example' });
  assert.equal(sa.openidConfiguration('https://keelson.example/openid/v1/jwks'), {
    issuer: 'https://keelson.example', jwks_uri: 'https://keelson.example/openid/v1/jwks', response_types_supported: ['id_token'],
    subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['ES256'],
  });
});

test.run();
