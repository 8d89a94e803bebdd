// API server benchmarks, on the embedded store (or --store local):
//   creates   pod creates/s and latency percentiles with N concurrent HTTP clients
//   list      LIST of 10,000 and 100,000 pods over HTTP, served from the watch cache
//   fanout    watch fan-out: W in-process watchers of one resource, events delivered per second
// The machine is shared, so the load average is recorded with the numbers.
//
// Usage: npm run bench:apiserver [-- --store embedded|local --clients 100 --seconds 10
//        --list 10000,100000 --watchers 1000 --events 200 --only creates,list,fanout]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { serve } from '../src/apiserver/http/adapter.ts';
import { ApiServer } from '../src/apiserver/server.ts';
import { EmbeddedStore } from '../src/store/embedded.ts';
import { LocalKeyspaceStore } from '../src/store/local.ts';
import type { Store } from '../src/store/store.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const storeKind = args.get('store') ?? 'embedded';
const clients = Number(args.get('clients') ?? 100);
const seconds = Number(args.get('seconds') ?? 10);
const listSizes = (args.get('list') ?? '10000,100000').split(',').map(Number);
const watchers = Number(args.get('watchers') ?? 1000);
const fanoutEvents = Number(args.get('events') ?? 200);
const only = new Set((args.get('only') ?? 'creates,list,fanout').split(','));

/** The create load generator (plain JavaScript, run with node -e): CLIENTS loops POSTing pods for SECONDS. */
const createClient = `
const http = require('node:http');
const url = process.env.URL, clients = Number(process.env.CLIENTS), seconds = Number(process.env.SECONDS);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients + 4 });
const lat = []; let errors = 0; let seq = 0;
function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject); req.end(body);
  });
}
(async () => {
  const end = performance.now() + seconds * 1000, t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const name = 'p-' + process.pid + '-' + (seq++);
      const body = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'bench' } }, spec: { containers: [{ name: 'c', image: 'registry.example/app:1.0' }] } });
      const s = performance.now();
      const code = await post(body);
      if (code !== 201) errors++;
      lat.push(performance.now() - s);
    }
  }));
  const el = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const p = (q) => +lat[Math.min(lat.length - 1, Math.floor(q / 100 * lat.length))].toFixed(2);
  agent.destroy();
  process.stdout.write(JSON.stringify({ clients, seconds: +el.toFixed(2), created: lat.length - errors, errors, perSecond: Math.round((lat.length - errors) / el), latencyMs: { p50: p(50), p90: p(90), p99: p(99), max: +lat[lat.length - 1].toFixed(2) } }));
})();
`;

const agent = new http.Agent({ keepAlive: true, maxSockets: clients + 4 });

/** One HTTP request on the keep-alive agent (lighter than fetch, so the client costs less of the shared CPU). */
function call(url: string, method: string, body?: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;
}

const podBody = (name: string, ns = 'bench') => JSON.stringify({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { app: 'bench' } },
  spec: { containers: [{ name: 'c', image: 'registry.example/app:1.0' }] },
});

async function open(dir: string): Promise<Store> {
  if (storeKind === 'local') return new LocalKeyspaceStore({ dir: path.join(dir, 'store'), leaseTickMs: 0 });
  const s = new EmbeddedStore({ dataDir: path.join(dir, 'store'), quotaBackendBytes: 8 * 1024 ** 3 });
  await s.waitForLeader();
  return s;
}

const results: Record<string, unknown> = {
  date: new Date().toISOString(), host: os.hostname(), cpus: os.cpus().length, store: storeKind,
  loadAverageStart: os.loadavg().map((x) => Number(x.toFixed(2))),
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'keelson-bench-api-'));
const store = await open(dir);
const api = new ApiServer({ store, bookmarkIntervalMs: 0, inflightPerClientMax: 10_000 });
await api.start();
const served = await serve(api, { port: 0 });
await api.handle({ method: 'POST', url: '/api/v1/namespaces', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } })) });

try {
  if (only.has('creates')) {
    // The load generator runs in its own process, so that it does not share the server's event loop.
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', createClient], { env: { ...process.env, URL: `${served.url}/api/v1/namespaces/bench/pods`, CLIENTS: String(clients), SECONDS: String(seconds) }, stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d) => { text += d; });
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`load generator exited ${code}`))));
    });
    results.creates = { ...JSON.parse(out), loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))) };
    console.log('creates', JSON.stringify(results.creates));
  }

  if (only.has('list')) {
    const lists: unknown[] = [];
    for (const n of listSizes) {
      // Fill the namespace "list<n>" straight through the store in batches (the create path is measured above).
      const ns = `list${n}`;
      const batch = 100; // the store refuses txns of more than 128 operations
      for (let i = 0; i < n; i += batch) {
        const ops = [];
        for (let j = i; j < Math.min(n, i + batch); j++) {
          const name = `p-${j}`;
          const obj = JSON.parse(podBody(name, ns));
          obj.metadata.uid = `00000000-0000-0000-0000-${String(j).padStart(12, '0')}`;
          obj.metadata.creationTimestamp = '2026-01-01T00:00:00Z';
          obj.status = { phase: 'Pending' };
          ops.push({ op: 'put' as const, key: Buffer.from(`/registry/pods/${ns}/${name}`), value: Buffer.from(JSON.stringify(obj)) });
        }
        await store.txn({ compare: [], success: ops, failure: [] });
      }
      await api.registry('', 'pods')!.cache.syncToStore();
      const times: number[] = [];
      let bytes = 0;
      for (let rep = 0; rep < 3; rep++) {
        const t0 = performance.now();
        const r = await call(`${served.url}/api/v1/namespaces/${ns}/pods`, 'GET');
        bytes = r.bytes;
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const entry = { pods: n, bytes, ms: { best: +times[0]!.toFixed(1), median: +times[1]!.toFixed(1) }, loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))) };
      lists.push(entry);
      console.log('list', JSON.stringify(entry));
    }
    results.list = lists;
  }

  if (only.has('fanout')) {
    const streams = [];
    const rv = api.registry('', 'configmaps')!.cache.rev;
    for (let i = 0; i < watchers; i++) {
      const r = await api.handle({ method: 'GET', url: `/api/v1/namespaces/bench/configmaps?watch=true&resourceVersion=${rv}`, headers: {} });
      streams.push(r.stream!);
    }
    let delivered = 0;
    const want = watchers * fanoutEvents;
    // Consumers drain their streams the way the HTTP adapter does (ready() then drain()); each chunk is one event.
    const consumers = streams.map(async (st) => {
      for (;;) {
        await st.ready();
        const n = st.drain().length;
        delivered += n;
        if ((n === 0 && st.closed) || delivered >= want) break;
      }
    });
    // Creates of distinct objects, 50 at a time, so the store group-commits them and the writes do not dominate.
    const body = (i: number) => Buffer.from(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `fan-${i}` }, data: { i: String(i) } }));
    const t0 = performance.now();
    for (let i = 0; i < fanoutEvents; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, fanoutEvents - i) }, (_, j) =>
        api.handle({ method: 'POST', url: '/api/v1/namespaces/bench/configmaps', headers: { 'content-type': 'application/json' }, body: body(i + j) })));
    }
    const written = performance.now();
    while (delivered < want && performance.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 5));
    const s = (performance.now() - t0) / 1000;
    for (const st of streams) st.end();
    await Promise.allSettled(consumers);
    results.fanout = { watchers, events: fanoutEvents, delivered, seconds: +s.toFixed(3), writesSeconds: +((written - t0) / 1000).toFixed(3), eventsPerSecond: Math.round(delivered / s), loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))) };
    console.log('fanout', JSON.stringify(results.fanout));
  }
} finally {
  agent.destroy();
  await served.close();
  await api.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, `apiserver-${storeKind}.json`), JSON.stringify(results, null, 2) + '\n');
console.log(JSON.stringify(results, null, 2));
