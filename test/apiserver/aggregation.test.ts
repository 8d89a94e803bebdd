// API aggregation: an APIService claims metrics.example.com/v1 for a small
// HTTPS backend started here; requests are authenticated and authorized by
// the main server, then proxied with X-Remote-User/X-Remote-Group, and the
// backend's resources show up in discovery (kubectl finds them).
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensurePki, issueClientCertificate } from '../../src/apiserver/auth/index.ts';
import { InProcessClient } from '../../src/client/inprocess.ts';
import { ok, startServer, type TestServer } from './helpers.ts';

let s: TestServer;
let proxyCn = '';
let backend: https.Server;
let pkiDir: string;
const seen: { user?: string; groups?: string | string[]; path?: string }[] = [];

test.before(async () => {
  pkiDir = mkdtempSync(path.join(tmpdir(), 'keelson-agg-'));
  const pki = await ensurePki(pkiDir, { hosts: ['127.0.0.1'] });
  const proxyCert = await issueClientCertificate(pki, { username: 'front-proxy-client' });
  s = await startServer({ proxyClientCert: proxyCert, apiServiceCheckIntervalMs: 0 });
  backend = https.createServer({ key: pki.keyPem, cert: pki.certPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    proxyCn = String((req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject?.CN ?? '');
    seen.push({ user: req.headers['x-remote-user'] as string, groups: req.headers['x-remote-group'], path: req.url });
    const send = (code: number, body: unknown) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
    const url = new URL(req.url ?? '/', 'https://x');
    if (url.pathname === '/apis/metrics.example.com/v1') {
      return send(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'metrics.example.com/v1', resources: [{ name: 'widgets', singularName: 'widget', namespaced: true, kind: 'Widget', verbs: ['get', 'list'] }] });
    }
    if (url.pathname === '/apis/metrics.example.com/v1/namespaces/default/widgets') {
      return send(200, { kind: 'WidgetList', apiVersion: 'metrics.example.com/v1', metadata: { resourceVersion: '1' }, items: [{ kind: 'Widget', apiVersion: 'metrics.example.com/v1', metadata: { name: 'w1', namespace: 'default' }, seenBy: req.headers['x-remote-user'] }] });
    }
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'not here' });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const port = (backend.address() as AddressInfo).port;
  const c = new InProcessClient(s.api);
  assert.is((await c.create('/api/v1/namespaces/default/endpoints', { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'metrics' }, subsets: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ port }] }] })).status, 201);
  const svc = await c.create('/apis/apiregistration.k8s.io/v1/apiservices', {
    apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name: 'v1.metrics.example.com' },
    spec: { group: 'metrics.example.com', version: 'v1', service: { namespace: 'default', name: 'metrics', port }, caBundle: Buffer.from(pki.caCertPem).toString('base64'), groupPriorityMinimum: 100, versionPriority: 100 },
  });
  assert.is(svc.status, 201, JSON.stringify(svc.body));
  await s.api.registry('apiregistration.k8s.io', 'apiservices')!.cache.syncToStore();
});

test.after(async () => {
  await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
  backend?.closeAllConnections();
  await s?.stop();
  rmSync(pkiDir, { recursive: true, force: true });
});

test('requests are proxied with the user in X-Remote-* headers', async () => {
  const c = new InProcessClient(s.api);
  const r = await c.get('/apis/metrics.example.com/v1/namespaces/default/widgets');
  assert.is(r.status, 200);
  assert.is(r.body.items[0].metadata.name, 'w1');
  assert.is(r.body.items[0].seenBy, 'system:admin');
  const last = seen[seen.length - 1]!;
  assert.ok(String(last.groups).includes('system:masters'));
  // The backend demanded a client certificate: the aggregator's proxy certificate.
  assert.is(proxyCn, 'front-proxy-client');
  const missing = await c.get('/apis/metrics.example.com/v1/namespaces/default/gadgets');
  assert.is(missing.status, 404);
});

test('discovery merges the backend; kubectl finds the resource', async () => {
  const c = new InProcessClient(s.api);
  const groups = await c.get('/apis');
  assert.ok(groups.body.groups.some((g: any) => g.name === 'metrics.example.com'));
  const agg = await c.request('GET', '/apis', undefined, { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' });
  const g = agg.body.items.find((x: any) => x.metadata.name === 'metrics.example.com');
  assert.is(g.versions[0].resources[0].resource, 'widgets');
  const out = await ok(s.kubeconfig, ['get', 'widgets', '-o', 'name']);
  assert.is(out.trim(), 'widget.metrics.example.com/w1');
});

test('APIService Available condition', async () => {
  await s.api.checkApiServices();
  const svc = (await new InProcessClient(s.api).get('/apis/apiregistration.k8s.io/v1/apiservices/v1.metrics.example.com')).body;
  const av = svc.status.conditions.find((x: any) => x.type === 'Available');
  assert.is(av.status, 'True');
  assert.is(av.reason, 'Passed');
});

test('a backend without endpoints is 503', async () => {
  const c = new InProcessClient(s.api);
  await c.create('/apis/apiregistration.k8s.io/v1/apiservices', {
    apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name: 'v1.nowhere.example.com' },
    spec: { group: 'nowhere.example.com', version: 'v1', service: { namespace: 'default', name: 'nowhere' }, insecureSkipTLSVerify: true, groupPriorityMinimum: 100, versionPriority: 100 },
  });
  await s.api.registry('apiregistration.k8s.io', 'apiservices')!.cache.syncToStore();
  const r = await c.get('/apis/nowhere.example.com/v1/things');
  assert.is(r.status, 503);
  assert.is(r.body.reason, 'ServiceUnavailable');
  await s.api.checkApiServices();
  const av = (await c.get('/apis/apiregistration.k8s.io/v1/apiservices/v1.nowhere.example.com')).body.status.conditions.find((x: any) => x.type === 'Available');
  assert.is(av.status, 'False');
  assert.is(av.reason, 'MissingEndpoints');
});

test.run();
