// Benchmarks of the embedded store: a single member and a 3-member
// in-process cluster (MemoryNetwork). Every put is durable when it resolves
// (WAL fdatasync on a quorum before the ack).
//
//   npm run bench:embedded                 puts, ranges, watch fan-out
//   npm run bench:embedded -- --restart    restart time and RSS with KEYS (default 1,000,000) keys
//
// Results go to bench/results/embedded.json (the restart run updates its own
// section) and a table is printed. Load average is recorded with the numbers:
// the machine is shared, so compare runs only with their load in mind.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedStore, restoreSnapshot } from '../src/store/embedded.ts';
import { encodeSnapshotFile } from '../src/store/embedded/snapshot-file.ts';
import { Keyspace } from '../src/store/mvcc/keyspace.ts';
import { encodeProposal } from '../src/store/mvcc/requests.ts';
import { EmbeddedCluster } from '../src/store/embedded/cluster.ts';
import { prefixEnd } from '../src/store/store.ts';
import { resultsDir } from './lib/results.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsFile = path.join(resultsDir(), 'embedded.json');
const secondsPerCase = Number(process.env.SECONDS ?? 3);
const value = Buffer.alloc(256, 7);

interface Target {
  name: string;
  store: EmbeddedStore;
  close(): Promise<void>;
}

async function single(dir: string): Promise<Target> {
  const store = new EmbeddedStore({ dataDir: path.join(dir, 'single'), leaseTickMs: 0 });
  await store.waitForLeader();
  return { name: 'single member', store, close: () => store.close() };
}

async function cluster(dir: string): Promise<Target> {
  const c = new EmbeddedCluster({ size: 3, dir: path.join(dir, 'cluster'), leaseTickMs: 0 });
  const store = await c.waitForLeader();
  return { name: '3 members (via leader)', store, close: () => c.close() };
}

async function puts(store: EmbeddedStore, callers: number, seconds: number): Promise<{ putsPerSecond: number; p50Ms: number; p99Ms: number }> {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const lat: number[] = [];
  let seq = 0;
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await store.put(Buffer.from(`/bench/put/${seq++ % 100_000}`), value);
      if (lat.length < 200_000) lat.push(performance.now() - t);
      n++;
    }
  }));
  const elapsed = seconds + Math.max(0, performance.now() - end) / 1000;
  lat.sort((a, b) => a - b);
  return { putsPerSecond: Math.round(n / elapsed), p50Ms: +lat[Math.floor(lat.length * 0.5)].toFixed(2), p99Ms: +lat[Math.floor(lat.length * 0.99)].toFixed(2) };
}

async function ranges(store: EmbeddedStore, keys: number, seconds: number, serializable: boolean): Promise<number> {
  const prefix = Buffer.from(`/bench/range${keys}/`);
  const existing = await store.range(prefix, { rangeEnd: prefixEnd(prefix), countOnly: true });
  if (existing.count < keys) {
    const ps = [];
    for (let i = 0; i < keys; i++) ps.push(store.put(Buffer.concat([prefix, Buffer.from(String(i).padStart(6, '0'))]), value));
    await Promise.all(ps);
  }
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const callers = keys === 1 ? 100 : 4;
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() < end) {
      if (keys === 1) await store.range(Buffer.concat([prefix, Buffer.from('000000')]), { serializable });
      else await store.range(prefix, { rangeEnd: prefixEnd(prefix), serializable });
      n++;
    }
  }));
  return Math.round(n / seconds);
}

async function watchFanout(store: EmbeddedStore, watchers: number, seconds: number): Promise<number> {
  const prefix = Buffer.from('/bench/watch/');
  let delivered = 0;
  const ws = Array.from({ length: watchers }, () => store.watch(prefix, { rangeEnd: prefixEnd(prefix) }));
  const readers = ws.map(async (w) => {
    for await (const r of w) delivered += r.events.length;
  });
  const end = performance.now() + seconds * 1000;
  const t = performance.now();
  let seq = 0;
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (performance.now() < end) await store.put(Buffer.from(`/bench/watch/${seq++ % 1000}`), value);
  }));
  await new Promise((r) => setTimeout(r, 200));
  const elapsed = (performance.now() - t) / 1000;
  for (const w of ws) w.cancel();
  await Promise.all(readers);
  return Math.round(delivered / elapsed);
}

function load(): number[] {
  return os.loadavg().map((x) => +x.toFixed(2));
}

function readResults(): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function writeResults(update: Record<string, unknown>): void {
  fs.writeFileSync(resultsFile, JSON.stringify({ ...readResults(), ...update }, null, 2) + '\n');
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-bench-embedded-'));
  const out: Record<string, Record<string, unknown>> = {};
  const loadBefore = load();
  try {
    for (const make of [single, cluster]) {
      const t = await make(dir);
      try {
        const r: Record<string, unknown> = {};
        for (const callers of [1, 100, 1000]) r[`puts_${callers}_callers`] = await puts(t.store, callers, secondsPerCase);
        r.range_1_key_per_second = await ranges(t.store, 1, 2, false);
        r.range_1_key_serializable_per_second = await ranges(t.store, 1, 2, true);
        r.range_1000_keys_per_second = await ranges(t.store, 1000, 2, false);
        r.watch_1000_watchers_events_per_second = await watchFanout(t.store, 1000, 2);
        r.wal = { fdatasyncs: t.store.driver.walStats().fdatasyncs, readies: t.store.driver.readies };
        out[t.name] = r;
      } finally {
        await t.close();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = load();
  console.log(`load average before ${loadBefore.join(' ')}, after ${loadAfter.join(' ')}; ${os.cpus().length} cores`);
  const rows: string[][] = [['case', ...Object.keys(out)]];
  const cases = Object.keys(Object.values(out)[0]).filter((k) => k !== 'wal');
  for (const c of cases) {
    rows.push([c, ...Object.values(out).map((r) => {
      const v = r[c] as number | { putsPerSecond: number; p50Ms: number; p99Ms: number };
      return typeof v === 'number' ? v.toLocaleString('en-US') : `${v.putsPerSecond.toLocaleString('en-US')}/s (p50 ${v.p50Ms} ms, p99 ${v.p99Ms} ms)`;
    })]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
  writeResults({ date: new Date().toISOString(), loadAverageBefore: loadBefore, loadAverageAfter: loadAfter, cores: os.cpus().length, secondsPerCase, throughput: out });
}

/** Child mode: open a member's data dir, time it, read once, report RSS. */
async function openChild(dataDir: string): Promise<void> {
  const rss0 = process.memoryUsage().rss;
  const t = performance.now();
  const store = new EmbeddedStore({ dataDir, leaseTickMs: 0 });
  await store.waitForLeader();
  const r = await store.range(Buffer.from('/k/00000001'));
  const readyMs = performance.now() - t;
  const rssOpen = process.memoryUsage().rss;
  const all = await store.range(Buffer.from('/k/'), { rangeEnd: Buffer.from('/k0'), countOnly: true });
  const countMs = performance.now() - t;
  console.log(JSON.stringify({ readyMs, countMs, found: r.count, count: all.count, rssBeforeBytes: rss0, rssOpenBytes: rssOpen, rssAfterCountBytes: process.memoryUsage().rss, walSegments: store.driver.walStats().segments }));
  await store.close();
}

/**
 * Builds a member holding KEYS keys, then measures a restart in a fresh child
 * process. Loading a million keys through Raft would take minutes on this
 * machine, so the keys go straight into a keyspace, which becomes a member
 * through a snapshot file and restoreSnapshot() (exactly what `keelson store
 * snapshot restore` does); then 10,000 more puts go through Raft so that the
 * restart also replays a WAL tail.
 */
async function restart(): Promise<void> {
  const keys = Number(process.env.KEYS ?? 1_000_000);
  const tail = 10_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-bench-restart-'));
  try {
    const t = performance.now();
    const ks = new Keyspace({ dir: path.join(dir, 'load') });
    let index = 1;
    const inflight: Promise<void>[] = [];
    while (index <= keys) {
      const entries = [];
      for (let i = 0; i < 1000 && index <= keys; i++, index++) entries.push({ index, term: 1, data: encodeProposal({ id: index, req: { op: 'put', key: Buffer.from(`/k/${String(index).padStart(8, '0')}`), value } }) });
      inflight.push(ks.apply(entries));
      if (inflight.length > 4) await inflight.shift();
    }
    await Promise.all(inflight);
    const snap = await ks.snapshot();
    const rev = ks.revision();
    await ks.close();
    fs.rmSync(path.join(dir, 'load'), { recursive: true, force: true });
    const file = encodeSnapshotFile({ revision: rev, index: snap.index, clusterId: 1, memberId: 1, members: [], membersIndex: 0, createdAtMs: Date.now() }, snap.data);
    const dataDir = path.join(dir, 'member');
    await restoreSnapshot({ file, dataDir, name: 'default', initialCluster: [{ name: 'default', peerUrls: [] }] });
    const store = new EmbeddedStore({ dataDir, leaseTickMs: 0 });
    await store.waitForLeader();
    let next = 0;
    await Promise.all(Array.from({ length: 100 }, async () => {
      while (next < tail) await store.put(Buffer.from(`/k/${String(next++).padStart(8, '0')}`), value);
    }));
    await store.close();
    const loadMs = performance.now() - t;
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'embedded.ts'), '--open', dataDir], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(child.stderr);
    const m = JSON.parse(child.stdout.trim().split('\n').pop() as string);
    const result = {
      keys, walTailEntries: tail, buildMs: Math.round(loadMs), ...m,
      rssPerKeyOpenBytes: Math.round((m.rssOpenBytes - m.rssBeforeBytes) / keys), rssPerKeyAfterCountBytes: Math.round((m.rssAfterCountBytes - m.rssBeforeBytes) / keys), loadAverage: load(),
    };
    console.log(result);
    writeResults({ restart: { date: new Date().toISOString(), ...result } });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--open') await openChild(process.argv[3]);
else if (process.argv.includes('--restart')) await restart();
else await main();
