// WAL benchmark: durable appends of 256-byte entries, beside the fdatasync
// floor of the same disk measured in the same run.
//
// - floor: a plain loop of fs.writeSync(record) + fs.fdatasyncSync on a file
//   in the same directory (appending, like the WAL, records of the same size),
//   measured in blocks interleaved with the single appender's.
// - WAL, N concurrent appenders (1, 64, 1000): each appender loops
//   appendEntries(one entry) then `await sync()`. Latency is per iteration;
//   throughput is acknowledged (durable) entries per second.
//
// Usage: npm run bench:wal [-- --seconds=3]. Writes bench/results/wal.json.
// The data directory is <repo>/.tmp/bench-wal: /tmp may be a tmpfs, where
// fdatasync costs nothing and the numbers would mean nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { Wal } from '../src/native.ts';
import { resultsDir } from './lib/results.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const seconds = Number(args.get('seconds') ?? 3);
const blockOps = Number(args.get('blockOps') ?? 100);
const singleOps = Number(args.get('singleOps') ?? 3000);
const entryDataBytes = 256;
const baseDir = path.join(root, '.tmp', 'bench-wal');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(latNs: number[]): { p50Us: number; p99Us: number; meanUs: number } {
  const s = latNs.slice().sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return { p50Us: percentile(s, 50) / 1000, p99Us: percentile(s, 99) / 1000, meanUs: mean / 1000 };
}

function fsInfo(dir: string): string {
  try {
    return execFileSync('df', ['-T', dir], { encoding: 'utf8' }).trim().split('\n').pop()!.replace(/\s+/g, ' ');
  } catch {
    return 'unknown';
  }
}

// One entry in the Raft core's entries format; the index is patched per append
// (two u32 writes, no BigInt on the hot path).
const entry = Buffer.alloc(21 + entryDataBytes);
entry.writeUInt32LE(1, 8); // term 1
entry.writeUInt8(0, 16);
entry.writeUInt32LE(entryDataBytes, 17);
for (let k = 0; k < entryDataBytes; k++) entry[21 + k] = (k * 7 + 3) & 0xff;
function setIndex(i: number): Buffer {
  entry.writeUInt32LE(i >>> 0, 0);
  entry.writeUInt32LE(Math.floor(i / 4294967296), 4);
  return entry;
}

// The floor and the single appender are measured interleaved, in blocks of
// `blockOps`, so that both see the same disk: other work on a shared machine
// moves fdatasync latency by a factor of ten within seconds.
async function floorAndSingle(): Promise<{ floor: Stats; floorInPlace: Stats; single: WalResult }> {
  const file = path.join(baseDir, 'floor.dat');
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, 'w');
  // A second, lower floor: overwriting in place a file zero-filled ahead of
  // time, so fdatasync has no file size or extent metadata to commit at all.
  const file2 = path.join(baseDir, 'floor-inplace.dat');
  const fd2 = fs.openSync(file2, 'w');
  const zeros = Buffer.alloc(1 << 20);
  const inPlaceBytes = (singleOps + 200) * (12 + entry.length);
  for (let off = 0; off < inPlaceBytes; off += zeros.length) fs.writeSync(fd2, zeros, 0, zeros.length, off);
  fs.fdatasyncSync(fd2);
  let off2 = 0;
  // Same bytes per append as a WAL record: 12-byte record header + entry.
  const rec = Buffer.alloc(12 + entry.length, 0x5a);
  const dir = path.join(baseDir, 'wal-1');
  fs.rmSync(dir, { recursive: true, force: true });
  const wal = Wal.open({ dir, clusterId: 1, memberId: 1 });
  let next = 1;
  for (let i = 0; i < 100; i++) {
    fs.writeSync(fd, rec);
    fs.fdatasyncSync(fd);
    wal.appendEntries(setIndex(next++));
    await wal.sync();
  }
  const floorLat: number[] = [];
  const inPlaceLat: number[] = [];
  const walLat: number[] = [];
  let floorNs = 0;
  let inPlaceNs = 0;
  let walNs = 0;
  const syncsBefore = wal.stats().fdatasyncs;
  for (let done = 0; done < singleOps; done += blockOps) {
    let t = process.hrtime.bigint();
    for (let i = 0; i < blockOps; i++) {
      const a = process.hrtime.bigint();
      fs.writeSync(fd, rec);
      fs.fdatasyncSync(fd);
      floorLat.push(Number(process.hrtime.bigint() - a));
    }
    floorNs += Number(process.hrtime.bigint() - t);
    t = process.hrtime.bigint();
    for (let i = 0; i < blockOps; i++) {
      const a = process.hrtime.bigint();
      fs.writeSync(fd2, rec, 0, rec.length, off2);
      off2 += rec.length;
      fs.fdatasyncSync(fd2);
      inPlaceLat.push(Number(process.hrtime.bigint() - a));
    }
    inPlaceNs += Number(process.hrtime.bigint() - t);
    t = process.hrtime.bigint();
    for (let i = 0; i < blockOps; i++) {
      const a = process.hrtime.bigint();
      wal.appendEntries(setIndex(next++));
      await wal.sync();
      walLat.push(Number(process.hrtime.bigint() - a));
    }
    walNs += Number(process.hrtime.bigint() - t);
  }
  const syncs = wal.stats().fdatasyncs - syncsBefore;
  await wal.close();
  fs.closeSync(fd);
  fs.rmSync(file, { force: true });
  fs.closeSync(fd2);
  fs.rmSync(file2, { force: true });
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    floor: { ...summarize(floorLat), opsPerSec: floorLat.length / (floorNs / 1e9) },
    floorInPlace: { ...summarize(inPlaceLat), opsPerSec: inPlaceLat.length / (inPlaceNs / 1e9) },
    single: {
      appenders: 1,
      entries: walLat.length,
      seconds: walNs / 1e9,
      entriesPerSec: walLat.length / (walNs / 1e9),
      fdatasyncs: syncs,
      entriesPerFdatasync: walLat.length / Math.max(1, syncs),
      ...summarize(walLat),
    },
  };
}

interface Stats {
  p50Us: number;
  p99Us: number;
  meanUs: number;
  opsPerSec: number;
}

interface WalResult {
  appenders: number;
  entries: number;
  seconds: number;
  entriesPerSec: number;
  fdatasyncs: number;
  entriesPerFdatasync: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

async function walRun(appenders: number, opts: { seconds?: number; ops?: number }): Promise<WalResult> {
  const dir = path.join(baseDir, `wal-${appenders}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const wal = Wal.open({ dir, clusterId: 1, memberId: 1 });
  let next = 1;
  // Warm up: a few hundred durable appends.
  for (let i = 0; i < 200; i++) {
    wal.appendEntries(setIndex(next++));
    await wal.sync();
  }
  const syncsBefore = wal.stats().fdatasyncs;
  const lat: number[] = [];
  let done = 0;
  let stop = false;
  const deadline = opts.seconds ? Date.now() + opts.seconds * 1000 : Infinity;
  const t0 = process.hrtime.bigint();
  async function appender(): Promise<void> {
    while (!stop) {
      const a = process.hrtime.bigint();
      wal.appendEntries(setIndex(next++));
      await wal.sync();
      lat.push(Number(process.hrtime.bigint() - a));
      done++;
      if ((opts.ops !== undefined && done >= opts.ops) || (done % 256 === 0 && Date.now() >= deadline)) stop = true;
    }
  }
  await Promise.all(Array.from({ length: appenders }, () => appender()));
  const el = Number(process.hrtime.bigint() - t0) / 1e9;
  const syncs = wal.stats().fdatasyncs - syncsBefore;
  await wal.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    appenders,
    entries: done,
    seconds: el,
    entriesPerSec: done / el,
    fdatasyncs: syncs,
    entriesPerFdatasync: done / Math.max(1, syncs),
    ...summarize(lat),
  };
}

fs.mkdirSync(baseDir, { recursive: true });
const fsLine = fsInfo(baseDir);
console.log(`# WAL benchmark: ${entryDataBytes}-byte entries, dir ${baseDir}`);
console.log(`# filesystem: ${fsLine}`);
console.log(`# ${os.cpus().length} CPUs, node ${process.version}`);

const { floor, floorInPlace, single } = await floorAndSingle();
const c64 = await walRun(64, { seconds });
const c1000 = await walRun(1000, { seconds });

const f = (n: number, d = 1) => n.toFixed(d).padStart(10);
console.log('');
console.log('case                     entries/s   p50 us   p99 us   fdatasyncs  entries/sync');
console.log(`floor: append+fdatasync  ${f(floor.opsPerSec, 0)}${f(floor.p50Us)}${f(floor.p99Us)}`);
console.log(`floor: in-place, zeroed ${f(floorInPlace.opsPerSec, 0)}${f(floorInPlace.p50Us)}${f(floorInPlace.p99Us)}`);
for (const r of [single, c64, c1000]) {
  console.log(`wal, ${String(r.appenders).padStart(4)} appenders     ${f(r.entriesPerSec, 0)}${f(r.p50Us)}${f(r.p99Us)}${f(r.fdatasyncs, 0)}${f(r.entriesPerFdatasync)}`);
}
const ratio = single.p50Us / floor.p50Us;
console.log('');
const ratioInPlace = single.p50Us / floorInPlace.p50Us;
console.log(`single appender p50 / floor p50 = ${ratio.toFixed(2)} (target <= 1.3)`);
console.log(`single appender p50 / in-place floor p50 = ${ratioInPlace.toFixed(2)} (stricter comparison, no target)`);
console.log(`1000 appenders: ${c1000.entriesPerSec.toFixed(0)} entries/s (target >= 200000)`);

const out = {
  benchmark: 'wal',
  date: new Date().toISOString(),
  entryDataBytes,
  filesystem: fsLine,
  cpus: os.cpus().length,
  node: process.version,
  floor,
  floorInPlace,
  wal: { single, c64, c1000 },
  targets: {
    singleP50OverFloorP50: { value: ratio, target: 1.3, met: ratio <= 1.3 },
    singleP50OverInPlaceFloorP50: { value: ratioInPlace },
    entriesPerSec1000: { value: c1000.entriesPerSec, target: 200000, met: c1000.entriesPerSec >= 200000 },
  },
};
fs.writeFileSync(path.join(resultsDir(), 'wal.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), path.join(resultsDir(), 'wal.json'))}`);
