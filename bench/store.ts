// Side-by-side benchmark: a 3-member Keelson cluster (`keelson store serve`
// processes) and a 3-member etcd 3.4 cluster (/usr/bin/etcd), both on
// loopback with data in a temp dir, driven in the same run by the same load
// generator: a minimal HTTP/2 gRPC client (bench/lib/raw-grpc.ts, about a
// third of the CPU per call of @grpc/grpc-js, so the generator takes less of
// the 2-core machine from the members) with many requests in flight over a
// few HTTP/2 connections per member; the watch fan-out uses @grpc/grpc-js
// streams (src/cli/store/grpc.ts).
//
// Rows: puts of 256-byte values with 1 client (to the leader, and to a
// follower), 50 and 1,000 concurrent clients;
// linearizable and serializable single-key reads with 1,000 clients; watch
// fan-out (events delivered per second to many watchers of one key).
// A "client" is one request loop: it sends its next request when the
// previous one answered, so N clients = at most N requests in flight.
//
// The systems run one after the other (the machine has 2 cores: running both
// at once would make each one's numbers depend on the other's idle work).
//
// Usage: npm run bench:store [-- --seconds 3 --warmup 20 --only keelson|etcd]
// Writes bench/results/store.json and bench/results/store.svg.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EndpointClient } from '../src/cli/store/grpc.ts';
import { encodePut, encodeRange, RawGrpcClient } from './lib/raw-grpc.ts';
import { resultsDir } from './lib/results.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const rowSeconds = Number(args.get('seconds') ?? 3);
/** Warm-up before the rows (half with 50 clients, a quarter before each 1-client row). */
const warmupSeconds = Number(args.get('warmup') ?? 20);
const only = args.get('only');
/** HTTP/2 connections per member; etcd's own benchmark tool uses a few dozen for 1,000 clients. */
const connsPerMember = Number(args.get('conns') ?? 4);
const keySpace = 100_000;
const valueBytes = 256;
const watchers = Number(args.get('watchers') ?? 1000);
const watchEvents = Number(args.get('watch-events') ?? 200);

interface Row {
  name: string;
  clients: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface System {
  name: 'keelson' | 'etcd';
  endpoints: string[];
  procs: ChildProcess[];
  dir: string;
}

async function waitReady(proc: ChildProcess, marker: RegExp | null, what: string): Promise<void> {
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready after 60 s:\n${log.slice(-2000)}`)), 60_000);
    const on = (d: Buffer) => {
      log += d.toString();
      if (marker && marker.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout?.on('data', on);
    proc.stderr?.on('data', on);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${log.slice(-2000)}`));
    });
    if (!marker) {
      clearTimeout(timer);
      resolve();
    }
  });
}

async function startCluster(name: 'keelson' | 'etcd'): Promise<System> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-store-${name}-`));
  const members = await Promise.all(['m1', 'm2', 'm3'].map(async (n) => ({ n, client: await freePort(), peer: await freePort() })));
  const initial = members.map((m) => `${m.n}=http://127.0.0.1:${m.peer}`).join(',');
  const procs: ChildProcess[] = [];
  for (const m of members) {
    const common = [
      `--name=${m.n}`, `--data-dir=${path.join(dir, m.n)}`,
      `--listen-client-urls=http://127.0.0.1:${m.client}`, `--advertise-client-urls=http://127.0.0.1:${m.client}`,
      `--listen-peer-urls=http://127.0.0.1:${m.peer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${m.peer}`,
      `--initial-cluster=${initial}`, '--initial-cluster-state=new', '--initial-cluster-token=bench',
      '--heartbeat-interval=100', '--election-timeout=1000',
    ];
    const proc = name === 'keelson'
      ? spawn(process.execPath, [path.join(root, 'bin', 'keelson'), 'store', 'serve', ...common], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('/usr/bin/etcd', [...common, '--logger=zap', '--log-outputs=stderr', '--log-level=error'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(proc);
  }
  const sys: System = { name, endpoints: members.map((m) => `127.0.0.1:${m.client}`), procs, dir };
  if (name === 'keelson') await Promise.all(procs.map((p, i) => waitReady(p, / ready; /, `keelson member m${i + 1}`)));
  // Ready = a linearizable write goes through on every member.
  const deadline = Date.now() + 60_000;
  for (const e of sys.endpoints) {
    const c = new EndpointClient(e, 2000);
    for (;;) {
      try {
        await c.unary('KV', 'Put', { key: Buffer.from('bench-ready'), value: Buffer.from('1') });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${name} at ${e} not serving: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    c.close();
  }
  return sys;
}

async function stopCluster(sys: System): Promise<void> {
  await Promise.all(sys.procs.map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  })));
  fs.rmSync(sys.dir, { recursive: true, force: true });
}

/** The index in `clients` (and in the endpoints) of the member that leads. */
async function leaderIndex(clients: EndpointClient[]): Promise<number> {
  const n = new Set(clients.map((c) => c.endpoint)).size;
  const st = await Promise.all(clients.slice(0, n).map((c) => c.unary('Maintenance', 'Status', {}) as Promise<{ leader: string; header: { member_id: string } }>));
  const i = st.findIndex((x) => String(x.header.member_id) === String(x.leader));
  if (i < 0) throw new Error('no member reports itself as the leader');
  return i;
}

/** Channels to every member (clients[i] is on endpoints[i % members]); separate subchannel pools so each is its own TCP connection. */
function openClients(sys: System): EndpointClient[] {
  const out: EndpointClient[] = [];
  for (let i = 0; i < connsPerMember; i++) {
    for (const e of sys.endpoints) out.push(new EndpointClient(e, 30_000, undefined, { 'grpc.use_local_subchannel_pool': 1 }));
  }
  return out;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Latency samples kept per row; past this the reservoir keeps a uniform sample. */
const latencySamplesMax = 200_000;

/** Raw gRPC sessions laid out as openClients() lays out its channels. */
function openRaw(sys: System): RawGrpcClient[] {
  const out: RawGrpcClient[] = [];
  for (let i = 0; i < connsPerMember; i++) for (const e of sys.endpoints) out.push(new RawGrpcClient(e));
  return out;
}

async function closedLoop<C>(clients: C[], concurrency: number, seconds: number, op: (c: C, i: number) => Promise<unknown>): Promise<Omit<Row, 'name'>> {
  const samples = new Float64Array(latencySamplesMax);
  let n = 0;
  let seen = 0;
  let errors = 0;
  let done = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let seq = 0;
  const loop = async (w: number): Promise<void> => {
    const c = clients[w % clients.length]!;
    while (performance.now() < end) {
      const s = performance.now();
      try {
        await op(c, seq++);
        done++;
      } catch {
        errors++;
        // Back off a little so that a failing system does not spin.
        if (errors > 10_000) return;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const lat = performance.now() - s;
      seen++;
      if (n < latencySamplesMax) samples[n++] = lat;
      else {
        const j = Math.floor(Math.random() * seen);
        if (j < latencySamplesMax) samples[j] = lat;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => loop(w)));
  const elapsed = (performance.now() - t0) / 1000;
  const sorted = samples.slice(0, n).sort();
  return { clients: concurrency, opsPerSec: done / elapsed, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), errors };
}

function key(i: number): Buffer {
  return Buffer.from(`bench/${(i * 7919) % keySpace}`.padEnd(16, '0'));
}

async function watchFanout(sys: System, clients: EndpointClient[]): Promise<Omit<Row, 'name'>> {
  const wkey = Buffer.from('bench/watched');
  let delivered = 0;
  const latencies: number[] = [];
  const sentAt = new Map<string, number>();
  const streams: Array<{ cancel(): void }> = [];
  // Watchers spread over the connections (several watches per stream, as clients multiplex them).
  const watchesPerStream = 50;
  let created = 0;
  for (let s = 0; s * watchesPerStream < watchers; s++) {
    const c = clients[s % clients.length]!;
    const stream = c.duplex('Watch', 'Watch');
    streams.push(stream);
    stream.on('data', (r: any) => {
      if (r.created) created++;
      for (const ev of r.events ?? []) {
        delivered++;
        const t = sentAt.get(Buffer.from(ev.kv.value).toString());
        if (t !== undefined && latencies.length < latencySamplesMax) latencies.push(performance.now() - t);
      }
    });
    stream.on('error', () => {});
    const count = Math.min(watchesPerStream, watchers - s * watchesPerStream);
    for (let i = 0; i < count; i++) stream.write({ create_request: { key: wkey, start_revision: '0' } });
  }
  const deadline = Date.now() + 30_000;
  while (created < watchers && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const writer = clients[0]!;
  const t0 = performance.now();
  // Writes at a steady pace, each one awaited: the number measured is how
  // fast the system fans one write out to every watcher.
  for (let i = 0; i < watchEvents; i++) {
    const v = `w${i}`;
    sentAt.set(v, performance.now());
    await writer.unary('KV', 'Put', { key: wkey, value: Buffer.from(v) });
  }
  const want = watchEvents * watchers;
  const waitUntil = Date.now() + 30_000;
  while (delivered < want && Date.now() < waitUntil) await new Promise((r) => setTimeout(r, 5));
  const elapsed = (performance.now() - t0) / 1000;
  for (const s of streams) s.cancel();
  latencies.sort((a, b) => a - b);
  const sorted = Float64Array.from(latencies);
  return { clients: watchers, opsPerSec: delivered / elapsed, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), errors: want - delivered };
}

async function benchSystem(name: 'keelson' | 'etcd'): Promise<Row[]> {
  const sys = await startCluster(name);
  const clients = openClients(sys);
  const raw = openRaw(sys);
  const value = Buffer.alloc(valueBytes, 0x61);
  const rows: Row[] = [];
  try {
    // Warm up connections and both sides' code: Keelson's members are
    // JIT-compiled, and at one request in flight their per-put cost keeps
    // falling for tens of seconds (measured: 200 -> 600 puts/s over the first
    // 20 s). etcd needs no warm-up but gets the same one. Every row is then
    // measured in steady state.
    const put = (c: RawGrpcClient, i: number) => c.unary('/etcdserverpb.KV/Put', encodePut(key(i), value));
    await closedLoop(raw, 50, warmupSeconds / 2, put);
    // One client: a request loop on one member. Where it lands matters (a
    // follower forwards the put), so both placements are measured instead of
    // whichever member happens to be first.
    const leader = await leaderIndex(clients);
    const follower = (leader + 1) % sys.endpoints.length;
    for (const [where, i] of [['the leader', leader], ['a follower', follower]] as const) {
      await closedLoop([raw[i]!], 1, warmupSeconds / 4, put);
      rows.push({ name: `put 256 B, 1 client (to ${where})`, ...(await closedLoop([raw[i]!], 1, rowSeconds, put)) });
      console.error(`  ${name}: ${rows.at(-1)!.name}: ${rows.at(-1)!.opsPerSec.toFixed(0)}/s`);
    }
    for (const n of [50, 1000]) {
      rows.push({ name: `put 256 B, ${n} clients`, ...(await closedLoop(raw, n, rowSeconds, put)) });
      console.error(`  ${name}: ${rows.at(-1)!.name}: ${rows.at(-1)!.opsPerSec.toFixed(0)}/s`);
    }
    const lget = encodeRange(key(1), false);
    const sget = encodeRange(key(1), true);
    rows.push({ name: 'linearizable get, 1000 clients', ...(await closedLoop(raw, 1000, rowSeconds, (c) => c.unary('/etcdserverpb.KV/Range', lget))) });
    console.error(`  ${name}: ${rows.at(-1)!.name}: ${rows.at(-1)!.opsPerSec.toFixed(0)}/s`);
    rows.push({ name: 'serializable get, 1000 clients', ...(await closedLoop(raw, 1000, rowSeconds, (c) => c.unary('/etcdserverpb.KV/Range', sget))) });
    console.error(`  ${name}: ${rows.at(-1)!.name}: ${rows.at(-1)!.opsPerSec.toFixed(0)}/s`);
    rows.push({ name: `watch fan-out, ${watchers} watchers`, ...(await watchFanout(sys, clients)) });
    console.error(`  ${name}: ${rows.at(-1)!.name}: ${rows.at(-1)!.opsPerSec.toFixed(0)} events/s`);
  } finally {
    for (const c of clients) c.close();
    for (const c of raw) c.close();
    await stopCluster(sys);
  }
  return rows;
}

function svgChart(rows: Array<{ name: string; keelson?: number; etcd?: number }>, title: string): string {
  const w = 900;
  const rowH = 46;
  const left = 260;
  const top = 50;
  const h = top + rows.length * rowH + 40;
  const max = Math.max(1, ...rows.flatMap((r) => [r.keelson ?? 0, r.etcd ?? 0]));
  const scale = (v: number) => ((w - left - 120) * v) / max;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${w / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${left}" y="30" width="12" height="10" fill="#2b6cb0"/><text x="${left + 16}" y="39">Keelson</text>`,
    `<rect x="${left + 90}" y="30" width="12" height="10" fill="#a0aec0"/><text x="${left + 106}" y="39">etcd 3.4</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    out.push(`<text x="${left - 8}" y="${y + 22}" text-anchor="end">${esc(r.name)}</text>`);
    const k = r.keelson ?? 0;
    const e = r.etcd ?? 0;
    out.push(`<rect x="${left}" y="${y + 4}" width="${scale(k).toFixed(1)}" height="16" fill="#2b6cb0"/>`);
    out.push(`<text x="${left + scale(k) + 4}" y="${y + 16}">${k.toFixed(0)}/s</text>`);
    out.push(`<rect x="${left}" y="${y + 22}" width="${scale(e).toFixed(1)}" height="16" fill="#a0aec0"/>`);
    out.push(`<text x="${left + scale(e) + 4}" y="${y + 34}">${e.toFixed(0)}/s${k && e ? `  (Keelson ${(k / e).toFixed(2)}x)` : ''}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

async function main(): Promise<void> {
  const load0 = os.loadavg();
  const results: Record<string, Row[]> = {};
  const loadBySystem: Record<string, { before: number[]; after: number[] }> = {};
  for (const sys of ['etcd', 'keelson'] as const) {
    if (only && only !== sys) continue;
    console.error(`${sys}: starting a 3-member cluster`);
    const before = os.loadavg();
    results[sys] = await benchSystem(sys);
    loadBySystem[sys] = { before, after: os.loadavg() };
  }
  const load1 = os.loadavg();
  const names = (results.keelson ?? results.etcd ?? []).map((r) => r.name);
  const merged = names.map((name) => {
    const k = results.keelson?.find((r) => r.name === name);
    const e = results.etcd?.find((r) => r.name === name);
    return { name, keelson: k?.opsPerSec, etcd: e?.opsPerSec, ratio: k && e ? k.opsPerSec / e.opsPerSec : undefined, keelsonP99Ms: k?.p99Ms, etcdP99Ms: e?.p99Ms };
  });
  const lines = [
    `${'row'.padEnd(36)}${'keelson/s'.padStart(12)}${'etcd/s'.padStart(12)}${'ratio'.padStart(8)}${'k p99 ms'.padStart(10)}${'e p99 ms'.padStart(10)}`,
    ...merged.map((m) => `${m.name.padEnd(36)}${(m.keelson?.toFixed(0) ?? '-').padStart(12)}${(m.etcd?.toFixed(0) ?? '-').padStart(12)}${(m.ratio?.toFixed(2) ?? '-').padStart(8)}${(m.keelsonP99Ms?.toFixed(1) ?? '-').padStart(10)}${(m.etcdP99Ms?.toFixed(1) ?? '-').padStart(10)}`),
  ];
  console.log(lines.join('\n'));
  console.log(`load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} cores)`);
  const out = {
    benchmark: 'store',
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, loadAverageBefore: load0, loadAverageAfter: load1, loadAverageBySystem: loadBySystem, node: process.version },
    note: 'The machine is shared with other jobs; the load average (1, 5, 15 min) says how much. Numbers on a quiet machine are much higher for both systems.',
    settings: { rowSeconds, warmupSeconds, connsPerMember, keySpace, valueBytes, watchers, watchEvents, heartbeatMs: 100, electionMs: 1000 },
    rows: merged,
    raw: results,
  };
  const dir = resultsDir();
  // Earlier runs stay in the file (the newest historyRunsMax), since on a
  // shared machine one run says little on its own.
  const historyRunsMax = 10;
  let history: unknown[] = [];
  try {
    const prev = JSON.parse(fs.readFileSync(path.join(dir, 'store.json'), 'utf8')) as { date: string; machine: unknown; rows: unknown; history?: unknown[] };
    history = [{ date: prev.date, machine: prev.machine, rows: prev.rows }, ...(prev.history ?? [])].slice(0, historyRunsMax);
  } catch {
    // No earlier results.
  }
  fs.writeFileSync(path.join(dir, 'store.json'), `${JSON.stringify({ ...out, history }, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, 'store.svg'), svgChart(merged, `keelson store vs etcd 3.4, 3 members each, loopback (load avg ${load0[0]!.toFixed(1)})`));
  console.error(`wrote ${path.relative(process.cwd(), path.join(dir, 'store.json'))} and store.svg`);
}

await main();
