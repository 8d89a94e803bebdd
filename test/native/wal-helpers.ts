// Shared helpers of the WAL tests: the Raft core's entries format and temp dirs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TestEntry {
  index: number;
  term: number;
  type?: number;
  data: Buffer;
}

/** Encodes entries as [u64 index][u64 term][u8 type][u32 dataLength][data], little-endian. */
export function encodeEntries(entries: TestEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(21);
    h.writeBigUInt64LE(BigInt(e.index), 0);
    h.writeBigUInt64LE(BigInt(e.term), 8);
    h.writeUInt8(e.type ?? 0, 16);
    h.writeUInt32LE(e.data.length, 17);
    parts.push(h, e.data);
  }
  return Buffer.concat(parts);
}

export function decodeEntries(buf: Buffer): TestEntry[] {
  const out: TestEntry[] = [];
  for (let off = 0; off < buf.length; ) {
    const index = Number(buf.readBigUInt64LE(off));
    const term = Number(buf.readBigUInt64LE(off + 8));
    const type = buf.readUInt8(off + 16);
    const len = buf.readUInt32LE(off + 17);
    out.push({ index, term, type, data: Buffer.from(buf.subarray(off + 21, off + 21 + len)) });
    off += 21 + len;
  }
  return out;
}

/** Entries lo..hi (inclusive) with data derived from index and term. */
export function makeEntries(lo: number, hi: number, term: number, dataBytes = 8): TestEntry[] {
  const out: TestEntry[] = [];
  for (let i = lo; i <= hi; i++) out.push({ index: i, term, data: entryData(i, term, dataBytes) });
  return out;
}

export function entryData(index: number, term: number, bytes = 8): Buffer {
  const b = Buffer.alloc(bytes);
  for (let k = 0; k < bytes; k++) b[k] = (index * 31 + term * 7 + k * 13 + 1) & 0xff || 1;
  return b;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A fresh directory under <repo>/.tmp (on the real disk, unlike a tmpfs /tmp could be). */
export function freshDir(name: string): string {
  const dir = path.join(root, '.tmp', `wal-test-${process.pid}`, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  return dir;
}

export function cleanupDirs(): void {
  fs.rmSync(path.join(root, '.tmp', `wal-test-${process.pid}`), { recursive: true, force: true });
}

export function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.wal')).sort().map((f) => path.join(dir, f));
}

/** Offset just past the last non-zero byte of a file. */
export function dataEnd(file: string): number {
  const b = fs.readFileSync(file);
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return end;
}

/** Mulberry32: a small seeded PRNG for the crash test. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
