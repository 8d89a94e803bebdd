// Profiling harness for the networked store: starts a 3-member cluster
// (`keelson store serve` processes, or etcd 3.4 with --etcd for comparison)
// on loopback, runs closed-loop rows with the same client as bench/store.ts,
// and prints for each row ops/s, latency and CPU-seconds per 1,000 operations
// of every member process (from /proc/<pid>/stat) and of the load generator.
// CPU per operation stays meaningful on a loaded machine where ops/s does
// not; comparing a member's CPU with the load generator's (same machine,
// same moment) evens out more of the noise.
//
// Usage: npx tsx bench/profile-store.ts [--rows put1,put50,put1000,lget,sget] [--members 1|3|5]
//          [--seconds 3] [--etcd] [--cpu-prof DIR]
// --cpu-prof writes a V8 CPU profile per member into DIR/<member>/ (written
// when the member exits on SIGTERM at the end). Nothing is written to bench/results/.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EndpointClient } from '../src/cli/store/grpc.ts';
import { encodePut, encodeRange, RawGrpcClient } from './lib/raw-grpc.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rowNames = (flag('rows') ?? 'put1,put50,put1000,lget,sget').split(',');
const seconds = Number(flag('seconds') ?? 3);
const etcd = argv.includes('--etcd');
const profDir = flag('cpu-prof');
/** HTTP/2 connections per member, as in bench/store.ts. */
const connsPerMember = 4;
const keySpace = 100_000;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** utime + stime of a process in seconds. */
function cpuSeconds(pid: number): number {
  return userSysSeconds(pid).reduce((a, b) => a + b);
}

/** [utime, stime] of a process in seconds. */
function userSysSeconds(pid: number): [number, number] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]) / 100, Number(f[12]) / 100];
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'profile-store-'));
const memberCount = Number(flag('members') ?? 3);
const members = await Promise.all(['m1', 'm2', 'm3', 'm4', 'm5'].slice(0, memberCount).map(async (n) => ({ n, client: await freePort(), peer: await freePort() })));
const initial = members.map((m) => `${m.n}=http://127.0.0.1:${m.peer}`).join(',');
const procs: ChildProcess[] = [];
const clients: EndpointClient[] = [];
const raw: RawGrpcClient[] = [];

async function stopAll(): Promise<void> {
  for (const c of clients) c.close();
  for (const c of raw) c.close();
  raw.length = 0;
  await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const kill = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    p.kill('SIGTERM');
  })));
  fs.rmSync(dir, { recursive: true, force: true });
}

try {
  for (const m of members) {
    const common = [
      `--name=${m.n}`, `--data-dir=${path.join(dir, m.n)}`,
      `--listen-client-urls=http://127.0.0.1:${m.client}`, `--advertise-client-urls=http://127.0.0.1:${m.client}`,
      `--listen-peer-urls=http://127.0.0.1:${m.peer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${m.peer}`,
      `--initial-cluster=${initial}`, '--initial-cluster-state=new', '--initial-cluster-token=bench',
      '--heartbeat-interval=100', '--election-timeout=1000',
    ];
    // --cpu-prof is refused in NODE_OPTIONS, so it goes on the command line.
    const nodeFlags = profDir ? ['--cpu-prof', '--cpu-prof-interval=200', `--cpu-prof-dir=${path.join(path.resolve(profDir), m.n)}`] : [];
    const p = etcd
      ? spawn('/usr/bin/etcd', [...common, '--logger=zap', '--log-outputs=stderr', '--log-level=error'], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(process.execPath, [...nodeFlags, path.join(root, 'bin', 'keelson'), 'store', 'serve', ...common], { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (d: Buffer) => {
      if (process.env.VERBOSE) process.stderr.write(`[${m.n}] ${d.toString()}`);
    });
    procs.push(p);
  }
  const endpoints = members.map((m) => `127.0.0.1:${m.client}`);
  const deadline = Date.now() + 60_000;
  for (const e of endpoints) {
    const c = new EndpointClient(e, 2000);
    try {
      for (;;) {
        try {
          await c.unary('KV', 'Put', { key: Buffer.from('bench-ready'), value: Buffer.from('1') });
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`${e} not serving: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      c.close();
    }
  }
  for (let i = 0; i < connsPerMember; i++) {
    for (const e of endpoints) clients.push(new EndpointClient(e, 30_000, undefined, { 'grpc.use_local_subchannel_pool': 1 }));
  }
  // The rows' load, as bench/store.ts sends it.
  for (let i = 0; i < connsPerMember; i++) for (const e of endpoints) raw.push(new RawGrpcClient(e));
  const ids = await Promise.all(endpoints.map(async (e, i) => {
    const s = await clients[i]!.unary('Maintenance', 'Status', {}) as { leader: string; header: { member_id: string } };
    return { name: members[i]!.n, id: s.header.member_id, leader: s.leader };
  }));
  const leader = ids.find((x) => x.id === x.leader)?.name ?? '?';
  console.log(`${etcd ? 'etcd' : 'keelson'}: leader ${leader}; pids ${procs.map((p, i) => `${members[i]!.n}=${p.pid}`).join(' ')}; clients go to m1, m2, m3 in turn (1 client: m1)`);

  const value = Buffer.alloc(256, 0x61);
  const key = (i: number) => Buffer.from(`bench/${(i * 7919) % keySpace}`.padEnd(16, '0'));
  type Op = (c: RawGrpcClient, i: number) => Promise<unknown>;
  const closedLoop = async (n: number, op: Op) => {
    let done = 0;
    let errors = 0;
    let seq = 0;
    const lats: number[] = [];
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    await Promise.all(Array.from({ length: n }, async (_, w) => {
      const c = raw[w % raw.length]!;
      while (performance.now() < end) {
        const s = performance.now();
        try {
          await op(c, seq++);
          done++;
          lats.push(performance.now() - s);
        } catch {
          errors++;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }));
    const elapsed = (performance.now() - t0) / 1000;
    lats.sort((a, b) => a - b);
    return { done, opsPerSec: done / elapsed, p50: lats[Math.floor(lats.length * 0.5)] ?? 0, p99: lats[Math.floor(lats.length * 0.99)] ?? 0, errors };
  };
  const put: Op = (c, i) => c.unary('/etcdserverpb.KV/Put', encodePut(key(i), value));
  const lget = encodeRange(key(1), false);
  const sget = encodeRange(key(1), true);
  const rows: Record<string, [number, Op]> = {
    put1: [1, put],
    put50: [50, put],
    put1000: [1000, put],
    lget: [1000, (c) => c.unary('/etcdserverpb.KV/Range', lget)],
    sget: [1000, (c) => c.unary('/etcdserverpb.KV/Range', sget)],
  };
  await closedLoop(50, put); // warm-up: connections, JIT
  console.log(`${'row'.padEnd(8)}${'ops/s'.padStart(8)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${members.map((m) => `${m.n} cpu`.padStart(9)).join('')}${'loadgen'.padStart(9)}  load  (CPU-seconds per 1,000 ops)`);
  for (const name of rowNames) {
    const row = rows[name];
    if (!row) throw new Error(`unknown row ${name} (one of ${Object.keys(rows).join(', ')})`);
    const cpu0 = procs.map((p) => cpuSeconds(p.pid!));
    const sys0 = procs.map((p) => userSysSeconds(p.pid!)[1]);
    const me0 = process.cpuUsage();
    const load = os.loadavg()[0]!;
    const r = await closedLoop(row[0], row[1]);
    const cpu1 = procs.map((p) => cpuSeconds(p.pid!));
    const sys1 = procs.map((p) => userSysSeconds(p.pid!)[1]);
    const me = process.cpuUsage(me0);
    const sysShare = cpu1.reduce((a, c, i) => a + c - cpu0[i]!, 0);
    const per = (s: number) => ((s / Math.max(1, r.done)) * 1000).toFixed(3).padStart(9);
    console.log(`${name.padEnd(8)}${r.opsPerSec.toFixed(0).padStart(8)}${r.p50.toFixed(1).padStart(9)}${r.p99.toFixed(1).padStart(9)}${cpu1.map((c, i) => per(c - cpu0[i]!)).join('')}${per((me.user + me.system) / 1e6)}  ${load.toFixed(1)}  members' sys share ${(100 * sys1.reduce((a, c, i) => a + c - sys0[i]!, 0) / Math.max(1e-9, sysShare)).toFixed(0)}%${r.errors ? `  errors ${r.errors}` : ''}`);
  }
} finally {
  await stopAll();
}
