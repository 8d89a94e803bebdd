// `keelson up` as a process: HTTPS with the generated CA, the admin
// kubeconfig, RBAC for a token-file user, clean stop on SIGTERM, and data that
// survives a restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import YAML from 'yaml';
import { readFileSync } from 'node:fs';
import { kubectl, ok } from './helpers.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'keelson-up-'));
const dataDir = path.join(dir, 'data');
const kubeconfig = path.join(dataDir, 'admin.kubeconfig');
const tokenFile = path.join(dir, 'tokens.csv');
writeFileSync(tokenFile, 'alice-token,alice,1001,"dev"\n');
let child: ChildProcess | null = null;

function start(): Promise<{ out: () => string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(root, 'bin/keelson'), 'up', '--data-dir', dataDir, '--port', '0', '--token-file', tokenFile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    child = p;
    let out = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`keelson up did not start: ${out}`)); }, 50_000);
    p.stdout!.on('data', (d) => { out += d; if (out.includes('kubectl get namespaces')) { clearTimeout(timer); resolve({ out: () => out }); } });
    p.stderr!.on('data', (d) => { out += d; });
    p.on('exit', (code) => { clearTimeout(timer); if (!out.includes('kubectl get namespaces')) reject(new Error(`keelson up exited ${code}: ${out}`)); });
  });
}

function stop(): Promise<number | null> {
  const p = child;
  child = null;
  if (!p || p.exitCode !== null) return Promise.resolve(p?.exitCode ?? null);
  return new Promise((resolve) => { p.on('exit', (code) => resolve(code)); p.kill('SIGTERM'); });
}

test.after(async () => {
  if (child) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('up serves HTTPS with the admin kubeconfig; RBAC applies to other users', async () => {
  const s = await start();
  try {
  assert.match(s.out(), /API server at https:\/\/127\.0\.0\.1:\d+/);
  assert.match(await ok(kubeconfig, ['get', 'ns']), /^default\s+Active/m);
  await ok(kubeconfig, ['create', 'configmap', 'kept', '--from-literal=a=b']);
  // alice (token file) has no bindings: forbidden, and can-i says no.
  // A kubeconfig for alice: the same cluster and CA, her token instead of the admin certificate.
  const cfg = YAML.parse(readFileSync(kubeconfig, 'utf8'));
  let files = 0;
  const asUser = (token: string) => {
    const file = path.join(dir, `user-${files++}.kubeconfig`);
    writeFileSync(file, YAML.stringify({ ...cfg, users: [{ name: cfg.users[0].name, user: { token } }] }));
    return file;
  };
  const aliceCfg = asUser('alice-token');
  const r = await kubectl(aliceCfg, ['get', 'pods']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"/);
  assert.is((await kubectl(aliceCfg, ['auth', 'can-i', 'list', 'pods'])).stdout.trim(), 'no');
  await ok(kubeconfig, ['create', 'rolebinding', 'alice-view', '--clusterrole=view', '--user=alice']);
  // RBAC reads the watch cache; give it a moment to see the new binding.
  let allowed = '';
  for (let i = 0; i < 20 && allowed !== 'yes'; i++) {
    allowed = (await kubectl(aliceCfg, ['auth', 'can-i', 'list', 'pods'])).stdout.trim();
    if (allowed !== 'yes') await new Promise((res) => setTimeout(res, 100));
  }
  assert.is(allowed, 'yes');
  // whoami, can-i --list, impersonation (the admin may impersonate; alice may now list but not delete).
  assert.match(await ok(aliceCfg, ['auth', 'whoami']), /Username\s+alice/);
  assert.match(await ok(aliceCfg, ['auth', 'can-i', '--list']), /pods\s+\[\]\s+\[\]\s+\[get list watch\]/);
  const asAlice = await kubectl(kubeconfig, ['delete', 'configmap', 'kept', '--as=alice']);
  assert.match(asAlice.stderr, /User "alice" cannot delete resource "configmaps"/);
  // A service-account token from the TokenRequest subresource authenticates as the account.
  const token = (await ok(kubeconfig, ['create', 'token', 'default', '--duration=1h'])).trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const sa = await kubectl(asUser(token), ['get', 'secrets']);
  assert.match(sa.stderr, /User "system:serviceaccount:default:default" cannot list resource "secrets"/);
  const jwks = JSON.parse(await ok(kubeconfig, ['get', '--raw', '/openid/v1/jwks']));
  assert.is(jwks.keys[0].alg, 'ES256');
  const bad = await kubectl(asUser('wrong'), ['get', 'pods']);
  assert.match(bad.stderr, /Unauthorized/);
  } finally {
    assert.is(await stop(), 0);
  }
});

test('data survives a restart', async () => {
  await start();
  try {
    assert.is(await ok(kubeconfig, ['get', 'cm', 'kept', '-o', 'jsonpath={.data.a}']), 'b');
  } finally {
    assert.is(await stop(), 0);
  }
});

test.run();
