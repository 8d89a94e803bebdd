// MVCC keyspace benchmark (no Raft: LocalKeyspaceStore applies each request
// as the next log entry through the same apply path a member uses). Prints a
// table and writes bench/results/mvcc.json. Usage: npm run bench:mvcc
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalKeyspaceStore } from '../src/store/local.ts';
import { Keyspace } from '../src/store/mvcc/keyspace.ts';
import { encodeProposal, prefixEnd } from '../src/store/mvcc/requests.ts';
import { resultsDir } from './lib/results.ts';

const results: Record<string, number | string>[] = [];

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-bench-'));
}

async function withStore<T>(fn: (s: LocalKeyspaceStore) => Promise<T>): Promise<T> {
  const dir = tmp();
  const s = new LocalKeyspaceStore({ dir, leaseTickMs: 0 });
  try {
    return await fn(s);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The machine is shared: wall time depends on the load, so CPU time (the
// whole process, lmdb-js's writer thread included) is recorded too.
function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function record(name: string, ops: number, ms: number, cpuSeconds?: number, extra: Record<string, number | string> = {}): void {
  const r: Record<string, number | string> = { name, ops, ms: Math.round(ms), perSecond: Math.round((ops / ms) * 1000), ...extra };
  if (cpuSeconds !== undefined) {
    r.cpuMsPerOp = Number(((cpuSeconds * 1000) / ops).toFixed(4));
    r.perCpuSecond = Math.round(ops / cpuSeconds);
  }
  r.loadAverage = Number(os.loadavg()[0].toFixed(1));
  results.push(r);
  const cpu = cpuSeconds === undefined ? '' : `   cpu ${r.cpuMsPerOp} ms/op, ${r.perCpuSecond} /cpu-s`;
  console.log(`${name.padEnd(52)} ${String(r.perSecond).padStart(10)} /s   (${ops} in ${r.ms} ms)${cpu}   load ${r.loadAverage}`);
}

const value = Buffer.alloc(256, 7);

for (const callers of [1, 100, 1000]) {
  await withStore(async (s) => {
    const total = callers === 1 ? 1000 : 50_000;
    const per = total / callers;
    const t = performance.now();
    const c0 = cpuNow();
    await Promise.all(Array.from({ length: callers }, async (_, c) => {
      for (let i = 0; i < per; i++) await s.put(Buffer.from(`/registry/pods/ns/p-${c}-${i}`), value);
    }));
    record(`put 256 B, ${callers} concurrent callers`, total, performance.now() - t, cpuNow() - c0);
  });
}

// As the embedded store delivers them: batches of 1,000 entries of one put
// each, at most 4 batches in flight, with an onEvents/onApplied consumer.
// Encoding the proposals is done up front (it is the proposer's cost).
for (const keys of [200_000, 50_000]) {
  const dir = tmp();
  const ks = new Keyspace({ dir, onEvents: () => {}, onApplied: () => {} });
  let index = 1;
  const batches: { index: number; term: number; data: Buffer }[][] = [];
  for (let bi = 0; bi < 200; bi++) {
    const entries = [];
    for (let i = 0; i < 1000; i++, index++) entries.push({ index, term: 1, data: encodeProposal({ id: index, from: 1, req: { op: 'put', key: Buffer.from(`/registry/pods/ns/p-${String(index % keys).padStart(6, '0')}`), value } }) });
    batches.push(entries);
  }
  const t = performance.now();
  const c0 = cpuNow();
  const inflight: Promise<void>[] = [];
  for (const entries of batches) {
    inflight.push(ks.apply(entries));
    if (inflight.length >= 4) await inflight.shift();
  }
  await Promise.all(inflight);
  const what = keys === 200_000 ? 'new keys' : '4 versions per key';
  record(`Keyspace.apply, batches of 1,000 puts (${what})`, 200_000, performance.now() - t, cpuNow() - c0);
  await ks.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

await withStore(async (s) => {
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < 10_000; i++) {
    inflight.push(s.put(Buffer.from(`/registry/pods/ns/p-${String(i).padStart(5, '0')}`), value));
    if (inflight.length >= 500) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  // Three more versions of the first 1,000 keys: history a range has to skip.
  for (let v = 0; v < 3; v++) for (let i = 0; i < 1000; i++) inflight.push(s.put(Buffer.from(`/registry/pods/ns/p-${String(i).padStart(5, '0')}`), value));
  await Promise.all(inflight);
  let t = performance.now();
  let c0 = cpuNow();
  const n1 = 20_000;
  for (let i = 0; i < n1; i++) await s.range(Buffer.from(`/registry/pods/ns/p-${String(i % 10_000).padStart(5, '0')}`));
  record('range 1 key (10k keys stored)', n1, performance.now() - t, cpuNow() - c0);
  t = performance.now();
  c0 = cpuNow();
  const n2 = 200;
  const start = Buffer.from('/registry/pods/ns/p-');
  for (let i = 0; i < n2; i++) {
    const r = await s.range(start, { rangeEnd: prefixEnd(start), limit: 1000 });
    if (r.kvs.length !== 1000) throw new Error('bad range');
  }
  record('range limit 1,000 of 10,000 keys (counts all)', n2, performance.now() - t, cpuNow() - c0);
  t = performance.now();
  c0 = cpuNow();
  const p1000 = Buffer.from('/registry/pods/ns/p-00');
  for (let i = 0; i < n2; i++) {
    const r = await s.range(p1000, { rangeEnd: prefixEnd(p1000) });
    if (r.kvs.length !== 1000) throw new Error(`bad range ${r.kvs.length}`);
  }
  record('range a 1,000-key prefix (4 versions each)', n2, performance.now() - t, cpuNow() - c0);
  // The same prefix at the previous revision: the walk over every version.
  const old = s.keyspace.revision() - 1;
  t = performance.now();
  c0 = cpuNow();
  for (let i = 0; i < n2; i++) {
    const r = await s.range(p1000, { rangeEnd: prefixEnd(p1000), revision: old });
    if (r.kvs.length !== 1000) throw new Error(`bad range ${r.kvs.length}`);
  }
  record('range a 1,000-key prefix at an older revision', n2, performance.now() - t, cpuNow() - c0);
});

await withStore(async (s) => {
  const watchers = Array.from({ length: 1000 }, () => s.watch(Buffer.from('/w/'), { rangeEnd: prefixEnd(Buffer.from('/w/')) }));
  const events = 2000;
  let delivered = 0;
  const consumers = watchers.map(async (w) => {
    let got = 0;
    while (got < events) {
      const r = await w.next();
      if (r === null) break;
      got += r.events.length;
      delivered += r.events.length;
    }
  });
  const t = performance.now();
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < events; i++) {
    inflight.push(s.put(Buffer.from(`/w/${i}`), value));
    if (inflight.length >= 100) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  await Promise.all(consumers);
  record('watch fan-out: 1,000 watchers on one prefix (events delivered)', delivered, performance.now() - t);
  for (const w of watchers) w.cancel();
});

const out = path.join(resultsDir(), 'mvcc.json');
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, results }, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}`);
