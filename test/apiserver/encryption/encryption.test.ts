// Encryption at rest: round trips, key rotation and migration (stale reads),
// binding to the storage key, tampering, resource matching and bad configs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EncryptionError, generateKeySecret, loadEncryptionConfig, parseEncryptionConfig } from '../../../src/apiserver/encryption/index.ts';

const k1 = Buffer.alloc(32, 1).toString('base64');
const k2 = Buffer.alloc(32, 2).toString('base64');
const k16 = Buffer.alloc(16, 3).toString('base64');

function config(providers: string, resources = '[secrets]'): string {
  return `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ${resources}
    providers:
${providers}`;
}
const gcm = (...keys: [string, string][]) => `      - aesgcm:\n          keys:\n${keys.map(([n, s]) => `            - name: ${n}\n              secret: ${s}\n`).join('')}`;
const identity = '      - identity: {}\n';
const cbc = (n: string, s: string) => `      - aescbc:\n          keys:\n            - name: ${n}\n              secret: ${s}\n`;

const key = '/registry/secrets/default/db';
const plain = Buffer.from(JSON.stringify({ kind: 'Secret', data: { password: 'aHVudGVyMg==' } }));

test('aesgcm round trip: prefixed, nonce random, plaintext not visible', () => {
  const t = parseEncryptionConfig(config(gcm(['key1', k1]) + identity)).transformerFor('', 'secrets')!;
  assert.is(t.writer, 'aesgcm:key1');
  const a = t.encrypt(plain, key);
  const b = t.encrypt(plain, key);
  assert.is(a.subarray(0, 23).toString(), 'k8s:enc:aesgcm:v1:key1:');
  assert.is(a.length, 'k8s:enc:aesgcm:v1:key1:'.length + 12 + plain.length + 16);
  assert.not.ok(a.equals(b), 'a fresh nonce each time');
  assert.not.ok(a.includes(Buffer.from('aHVudGVyMg')));
  assert.ok(t.decrypt(a, key).equals(plain));
  assert.equal(t.read(b, key), { data: plain, stale: false });
  const empty = t.encrypt(Buffer.alloc(0), key);
  assert.is(t.decrypt(empty, key).length, 0);
  // 16-byte keys (AES-128) are accepted as in Kubernetes.
  const t16 = parseEncryptionConfig(config(gcm(['short', k16]))).transformerFor('', 'secrets')!;
  assert.ok(t16.decrypt(t16.encrypt(plain, key), key).equals(plain));
});

test('a known nonce gives the AES-GCM of the reference implementation (node:crypto), with the key as AAD', () => {
  const nonce = Buffer.alloc(12, 9);
  const t = parseEncryptionConfig(config(gcm(['key1', k1])), 'cfg', { randomBytes: () => Buffer.from(nonce) }).transformerFor('', 'secrets')!;
  const c = crypto.createCipheriv('aes-256-gcm', Buffer.alloc(32, 1), nonce);
  c.setAAD(Buffer.from(key));
  const expected = Buffer.concat([Buffer.from('k8s:enc:aesgcm:v1:key1:'), nonce, c.update(plain), c.final(), c.getAuthTag()]);
  assert.ok(t.encrypt(plain, key).equals(expected));
});

test('the value is bound to its storage key: copied elsewhere it fails with a clear error', () => {
  const t = parseEncryptionConfig(config(gcm(['key1', k1]))).transformerFor('', 'secrets')!;
  const stored = t.encrypt(plain, key);
  assert.throws(() => t.decrypt(stored, '/registry/secrets/default/other'), (e: unknown) => e instanceof EncryptionError && /does not decrypt with aesgcm key "key1"/.test(e.message) && e.message.includes('/registry/secrets/default/other'));
  const tampered = Buffer.from(stored);
  tampered[tampered.length - 20]! ^= 1;
  assert.throws(() => t.decrypt(tampered, key), (e: unknown) => e instanceof EncryptionError);
  assert.throws(() => t.decrypt(stored.subarray(0, 30), key), /too short/);
});

test('rotation: a new first key writes, the old key still reads (stale), removing it makes old data unreadable', () => {
  const before = parseEncryptionConfig(config(gcm(['key1', k1]))).transformerFor('', 'secrets')!;
  const old = before.encrypt(plain, key);
  const during = parseEncryptionConfig(config(gcm(['key2', k2], ['key1', k1]))).transformerFor('', 'secrets')!;
  assert.equal(during.read(old, key), { data: plain, stale: true });
  const fresh = during.encrypt(plain, key);
  assert.is(fresh.subarray(0, 23).toString(), 'k8s:enc:aesgcm:v1:key2:');
  assert.equal(during.read(fresh, key), { data: plain, stale: false });
  const after = parseEncryptionConfig(config(gcm(['key2', k2]))).transformerFor('', 'secrets')!;
  assert.ok(after.decrypt(fresh, key).equals(plain));
  assert.throws(() => after.decrypt(old, key), /matches no configured provider.*k8s:enc:aesgcm:v1:key1:/);
  // A key of the same name but other bytes is detected, not silently wrong.
  const impostor = parseEncryptionConfig(config(gcm(['key1', k2]))).transformerFor('', 'secrets')!;
  assert.throws(() => impostor.decrypt(old, key), /does not decrypt/);
});

test('turning encryption on and off: identity reads plain data; identity first decrypts old data but writes plain', () => {
  const on = parseEncryptionConfig(config(gcm(['key1', k1]) + identity)).transformerFor('', 'secrets')!;
  assert.equal(on.read(plain, key), { data: plain, stale: true }, 'data stored before encryption was enabled');
  const onOnly = parseEncryptionConfig(config(gcm(['key1', k1]))).transformerFor('', 'secrets')!;
  assert.throws(() => onOnly.decrypt(plain, key), /matches no configured provider/);
  const off = parseEncryptionConfig(config(identity + gcm(['key1', k1]))).transformerFor('', 'secrets')!;
  assert.is(off.writer, 'identity');
  assert.ok(off.encrypt(plain, key).equals(plain));
  assert.equal(off.read(on.encrypt(plain, key), key), { data: plain, stale: true });
  const plainOnly = parseEncryptionConfig(config(identity)).transformerFor('', 'secrets')!;
  assert.throws(() => plainOnly.decrypt(on.encrypt(plain, key), key), /encrypted but no configured key matches/);
});

test('aescbc is read and written for compatibility', () => {
  const t = parseEncryptionConfig(config(cbc('old', k1) + gcm(['key1', k2]))).transformerFor('', 'secrets')!;
  const stored = t.encrypt(plain, key);
  assert.is(stored.subarray(0, 22).toString(), 'k8s:enc:aescbc:v1:old:');
  assert.ok(t.decrypt(stored, key).equals(plain));
  const gcmFirst = parseEncryptionConfig(config(gcm(['key1', k2]) + cbc('old', k1))).transformerFor('', 'secrets')!;
  assert.equal(gcmFirst.read(stored, key), { data: plain, stale: true });
  assert.throws(() => gcmFirst.decrypt(Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:old:'), Buffer.alloc(5)]), key), /not aescbc data/);
});

test('resource matching: core names, group-qualified names, wildcards, first rule wins, others stored as is', () => {
  const text = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, configmaps]
    providers: [{aesgcm: {keys: [{name: a, secret: ${k1}}]}}]
  - resources: [deployments.apps, widgets.example.com]
    providers: [{aesgcm: {keys: [{name: b, secret: ${k1}}]}}]
  - resources: ['*.batch']
    providers: [{aesgcm: {keys: [{name: c, secret: ${k1}}]}}]
  - resources: ['*.']
    providers: [{aesgcm: {keys: [{name: d, secret: ${k1}}]}}]
  - resources: ['*.*']
    providers: [{identity: {}}]
`;
  const cfg = parseEncryptionConfig(text);
  const w = (g: string, r: string) => cfg.transformerFor(g, r)?.writer;
  assert.is(w('', 'secrets'), 'aesgcm:a');
  assert.is(w('', 'configmaps'), 'aesgcm:a');
  assert.is(w('apps', 'deployments'), 'aesgcm:b');
  assert.is(w('example.com', 'widgets'), 'aesgcm:b');
  assert.is(w('batch', 'jobs'), 'aesgcm:c');
  assert.is(w('', 'pods'), 'aesgcm:d');
  assert.is(w('apps', 'replicasets'), 'identity');
  assert.is(cfg.transformerFor('', 'secrets'), cfg.transformerFor('', 'secrets'), 'cached');
  assert.equal(cfg.rules[0], { resources: ['secrets', 'configmaps'], providers: ['aesgcm:a'] });
  const only = parseEncryptionConfig(config(gcm(['key1', k1])));
  assert.is(only.transformerFor('', 'configmaps'), null);
  assert.is(only.transformerFor('other.io', 'secrets'), null, 'secrets of another group are another resource');
});

test('bad configs are clear errors', () => {
  const bad = (text: string, re: RegExp) => assert.throws(() => parseEncryptionConfig(text, 'enc.yaml'), (e: unknown) => e instanceof Error && e.name === 'EncryptionConfigError' && re.test(e.message) && e.message.startsWith('enc.yaml'));
  bad('a: [', /not valid YAML/);
  bad('- 1', /expected an EncryptionConfiguration object/);
  bad(config(identity).replace('kind: EncryptionConfiguration', 'kind: Config'), /kind must be EncryptionConfiguration/);
  bad(config(identity).replace('apiserver.config.k8s.io/v1', 'v1'), /apiVersion must be apiserver.config.k8s.io\/v1/);
  bad('apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\n', /at least one entry/);
  bad(config(identity, '[]'), /resources\[0\].resources: at least one resource/);
  bad(config(identity, '[Secrets]'), /must be lower case/);
  bad(config(identity, '["*"]'), /"\*" is not a resource/);
  bad(config(identity, '[events]'), /encrypting events is not supported/);
  bad(config(identity, '[secrets, secrets]'), /listed twice/);
});

test('bad configs: providers and keys', () => {
  const bad = (text: string, re: RegExp) => assert.throws(() => parseEncryptionConfig(text, 'enc.yaml'), re);
  bad(config('      - {}\n'), /exactly one provider type per entry, found none/);
  bad(config(`      - aesgcm: {keys: [{name: a, secret: ${k1}}]}\n        identity: {}\n`), /exactly one provider type per entry, found aesgcm, identity/);
  bad(config('      - aesgcm: {keys: []}\n'), /aesgcm.keys: at least one key/);
  bad(config(gcm(['a', 'not base64!'])), /keys\[0\].secret: not valid base64/);
  bad(config(gcm(['a', Buffer.alloc(31).toString('base64')])), /the key is 31 bytes, expected 16 or 24 or 32/);
  bad(config(cbc('a', k16)), /the key is 16 bytes, expected 32/);
  bad(config(gcm(['a', k1], ['a', k2])), /"a" is used twice/);
  bad(config(gcm(['a:b', k1])), /may not contain ":"/);
  bad(config('      - aesgcm: {keys: [{secret: x}]}\n'), /name: required/);
  bad(config('      - secretbox: {keys: [{name: a, secret: x}]}\n'), /secretbox provider is not supported by Keelson; use aesgcm/);
  bad(config('      - kms: {name: x}\n'), /kms provider is not supported/);
  bad(config('      - rot13: {}\n'), /unknown provider type "rot13"/);
  bad(config(identity) + 'extra: 1\n', /unknown field "extra"/);
  const masked = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ['*.*']
    providers: [{identity: {}}]
  - resources: [secrets]
    providers: [{aesgcm: {keys: [{name: a, secret: ${k1}}]}}]
`;
  bad(masked, /"secrets" can never apply: "\*\.\*" at resources\[0\].resources\[0\] already covers it/);
});

test('loadEncryptionConfig reads a file; missing, oversized and directory paths are clear errors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-enc-'));
  try {
    const f = path.join(dir, 'enc.yaml');
    fs.writeFileSync(f, config(gcm(['key1', generateKeySecret()]) + identity));
    const t = loadEncryptionConfig(f).transformerFor('', 'secrets')!;
    assert.ok(t.decrypt(t.encrypt(plain, key), key).equals(plain));
    assert.throws(() => loadEncryptionConfig(path.join(dir, 'missing.yaml')), /cannot read encryption config/);
    assert.throws(() => loadEncryptionConfig(dir), /not a regular file/);
    const big = path.join(dir, 'big.yaml');
    fs.writeFileSync(big, Buffer.alloc(1024 * 1024 + 1, 0x20));
    assert.throws(() => loadEncryptionConfig(big), /larger than/);
    fs.writeFileSync(f, config(gcm(['key1', 'short'])));
    assert.throws(() => loadEncryptionConfig(f), (e: unknown) => e instanceof Error && e.message.startsWith(`${f}: resources[0].providers[0].aesgcm.keys[0].secret`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
