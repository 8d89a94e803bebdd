// API server benchmarks, on the embedded store (or --store local), against
// the full server (HTTPS, bearer-token authentication, RBAC, admission):
//   creates   pod creates with N concurrent HTTPS clients, twice: closed loop
//             (each client waits for its answer: the most the server does) and
//             open loop at --rate creates/s (latency counted from when each
//             create was due), with the server's CPU ms per create; then a
//             closed loop of GETs of one pod (what a request costs without
//             the write; its "serverCpuMsPerCreate" is per GET)
//   list      LIST of 10,000 and 100,000 pods over HTTPS, served from the watch cache
//   fanout    watch fan-out: W in-process watchers of one resource, events delivered per second
// The machine is shared, so the load average is recorded with the numbers.
//
// Usage: npm run bench:apiserver [-- --store embedded|local --clients 100 --seconds 10 --warmup 2
//        --rate 2000 --list 10000,100000 --watchers 1000 --events 200 --only creates,list,fanout]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { constants as perfConstants, monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { resultsDir } from './lib/results.ts';
import { startStandalone } from '../src/apiserver/standalone.ts';
import { EmbeddedStore } from '../src/store/embedded.ts';
import { LocalKeyspaceStore } from '../src/store/local.ts';
import type { Store } from '../src/store/store.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const storeKind = args.get('store') ?? 'embedded';
const clients = Number(args.get('clients') ?? 100);
const seconds = Number(args.get('seconds') ?? 10);
const warmupSeconds = Number(args.get('warmup') ?? 2);
/** The open-loop create rate (the target's 2,000 creates/s). */
const rate = Number(args.get('rate') ?? 2000);
const listSizes = (args.get('list') ?? '10000,100000').split(',').map(Number);
const watchers = Number(args.get('watchers') ?? 1000);
const fanoutEvents = Number(args.get('events') ?? 200);
const only = new Set((args.get('only') ?? 'creates,list,fanout').split(','));

/** The create load generator, run as its own process (see its header). */
const createLoad = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'create-load.mjs');

/** One HTTPS request as the bench user on the keep-alive agent (lighter than fetch, so the client costs less of the shared CPU). */
function call(url: string, method: string, body?: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: `Bearer ${benchToken}` };
    if (body) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    const req = https.request(url, { method, agent, headers }, (res) => {
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
// The whole server as `keelson apiserver` runs it: HTTPS, token authentication,
// RBAC, the default admission chain. The bench client is an ordinary user
// (not system:masters), so every request is authorized by RBAC rules.
const benchToken = 'bench-token-0123456789abcdef';
const tokenFile = path.join(dir, 'tokens.csv');
writeFileSync(tokenFile, `${benchToken},bench-client,bench-client-uid\n`);
const standalone = await startStandalone({ store, dataDir: path.join(dir, 'api'), port: 0, tokenFile, bookmarkIntervalMs: 0 });
const api = standalone.api;
const ca = readFileSync(path.join(dir, 'api', 'pki', 'ca.crt'), 'utf8');
const adminUser = { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] };
const admin = async (method: string, url: string, obj: unknown) => {
  const r = await api.handle({ method, url, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(obj)), trustedUser: adminUser });
  if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${r.body}`);
};
const agent = new https.Agent({ keepAlive: true, maxSockets: 8, ca });
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

/** perf_hooks' GC kinds (NODE_PERFORMANCE_GC_*). */
const gcKinds: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak',
};

/**
 * The server's event-loop stalls over 30 ms, the longest first (at most 8),
 * each split by the main thread's scheduler counters (Linux
 * /proc/<pid>/task/<pid>/schedstat) into time on a CPU (work on the thread:
 * JS, a collector pause, a synchronous native call) and time runnable but
 * waiting for a CPU (the machine's other threads and processes had it); the
 * rest is time blocked in the kernel (I/O, page faults).
 */
function watchStalls(): { stop(): Array<{ ms: number; onCpuMs: number; waitingForCpuMs: number }> } {
  const file = `/proc/${process.pid}/task/${process.pid}/schedstat`;
  const read = (): [number, number] => {
    try {
      const [run, wait] = readFileSync(file, 'utf8').split(' ').map(Number);
      return [run! / 1e6, wait! / 1e6];
    } catch {
      return [0, 0];
    }
  };
  const out: Array<{ ms: number; onCpuMs: number; waitingForCpuMs: number }> = [];
  let last = performance.now();
  let [run0, wait0] = read();
  const timer = setInterval(() => {
    const now = performance.now();
    const [run, wait] = read();
    const ms = now - last - 5;
    if (ms > 30) out.push({ ms: Math.round(ms), onCpuMs: Math.round(run - run0), waitingForCpuMs: Math.round(wait - wait0) });
    last = now;
    run0 = run;
    wait0 = wait;
  }, 5);
  return { stop: () => { clearInterval(timer); return out.sort((a, b) => b.ms - a.ms).slice(0, 8); } };
}

/** One run of the load generator in its own process (so that it does not share the server's event loop), with the server's CPU per request. */
async function createRun(mode: 'closed' | 'open' | 'get', tag: string): Promise<Record<string, unknown>> {
  // Where the server's time goes besides work: event-loop stalls, and collector pauses by kind.
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const gc = new Map<string, { count: number; ms: number; maxMs: number }>();
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = gcKinds[(e as any).detail?.kind] ?? 'other';
      const g = gc.get(kind) ?? { count: 0, ms: 0, maxMs: 0 };
      g.count++; g.ms += e.duration; g.maxMs = Math.max(g.maxMs, e.duration);
      gc.set(kind, g);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const cpu0 = cpuMs();
  const elu0 = performance.eventLoopUtilization();
  const stalls = watchStalls();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [createLoad], {
      env: {
        ...process.env, URL: `${standalone.url}/api/v1/namespaces/bench/pods`, CA: ca, TOKEN: benchToken, TAG: tag, MODE: mode,
        CLIENTS: String(clients), SECONDS: String(seconds), WARMUP: String(warmupSeconds), RATE: String(rate), QUEUE_MAX: String(rate * 2), GET_NAME: 'p-c-0',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`load generator exited ${code}`))));
  });
  const r = JSON.parse(out);
  const serverCpuMs = cpuMs() - cpu0;
  const elu = performance.eventLoopUtilization(elu0);
  const stallList = stalls.stop();
  loop.disable();
  gcObserver.disconnect();
  const ms = (ns: number) => +(ns / 1e6).toFixed(1);
  return {
    ...r, serverCpuMsPerCreate: +(serverCpuMs / r.requestsTotal).toFixed(3),
    serverEventLoopUtilization: +elu.utilization.toFixed(3),
    serverStallsOver30Ms: stallList,
    serverEventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
    serverGc: Object.fromEntries([...gc].map(([k, g]) => [k, { count: g.count, ms: Math.round(g.ms), maxMs: +g.maxMs.toFixed(1) }])),
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

try {
  await admin('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
  await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'bench-pods' },
    rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'watch'] }],
  });
  await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'bench-pods' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'bench-pods' }, subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'bench-client' }],
  });
  await api.registry('rbac.authorization.k8s.io', 'clusterrolebindings')!.cache.syncToStore();

  if (only.has('creates')) {
    const closed = await createRun('closed', 'c');
    console.log('creates closed', JSON.stringify(closed));
    const openLoop = await createRun('open', 'o');
    console.log('creates open', JSON.stringify(openLoop));
    // What a request costs the server without the write: GETs of one pod over the same path.
    const gets = await createRun('get', 'g');
    console.log('gets closed', JSON.stringify(gets));
    results.creates = {
      target: `p99 <= 50 ms at ${rate} creates/s with ${clients} clients`,
      closedLoop: closed, openLoop, getsClosedLoop: gets,
      met: openLoop.errors === 0 && openLoop.dropped === 0 && (openLoop as any).perSecond >= rate * 0.98 && (openLoop as any).latencyMs.p99 !== null && (openLoop as any).latencyMs.p99 <= 50,
    };
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
        const r = await call(`${standalone.url}/api/v1/namespaces/${ns}/pods`, 'GET');
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
      const r = await api.handle({ method: 'GET', url: `/api/v1/namespaces/bench/configmaps?watch=true&resourceVersion=${rv}`, headers: {}, trustedUser: adminUser });
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
        api.handle({ method: 'POST', url: '/api/v1/namespaces/bench/configmaps', headers: { 'content-type': 'application/json' }, body: body(i + j), trustedUser: adminUser })));
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
  await standalone.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

// Only a run of every part replaces the recorded results (a partial run is printed).
if (!args.has('only') || args.get('write') === '1') {
  const out = resultsDir();
  writeFileSync(path.join(out, `apiserver-${storeKind}.json`), JSON.stringify(results, null, 2) + '\n');
}
console.log(JSON.stringify(results, null, 2));
