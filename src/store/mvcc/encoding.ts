// Binary layout of the keyspace's lmdb databases.
//
// Version keys (database `kv`) sort by user key, then newest revision first:
//
//   escape(userKey) 0x00 0x00  inv(main):8  inv(sub):4  tombstone:1
//
// escape() doubles every 0x00 byte as 0x00 0xff. The terminator 0x00 0x00 then
// sorts below every continuation of the key (a non-zero byte or 0x00 0xff), so
// byte order of encoded keys is the byte order of user keys, and all versions
// of one key are contiguous. inv(x) = MAX - x, big-endian, so the first entry of
// a key's group is its newest version: a read at revision R takes the first
// entry with main <= R and skips the rest of the group. The trailing
// tombstone byte (1 for a delete) lets a walk decide about a version, and
// count, from the key alone: a range reads keys only and fetches the records
// of the versions it returns (3x faster per entry than reading values).
//
// Revision index keys (database `rev`) are main:8 sub:4 big-endian, ascending,
// each mapping to an event type byte followed by the user key.
//
// Version records (values of `kv`) are a fixed 25-byte header and the value:
//   flags:1 (bit 0 = tombstone)  createRevision:8  version:8  lease:8  value...
// A fixed header (rather than msgpack) lets a range decide about a version
// without decoding or allocating anything but the result.
//
// Head index (database `head`): userKey (raw bytes, so it sorts as user keys)
// -> the key's newest version while it is live, a fixed 36-byte record:
//   main:8  sub:4  createRevision:8  version:8  lease:8
// A delete removes the entry. It is derived state, written in the same
// transaction as the version it describes: a put or a txn compare finds the
// previous version with one point lookup instead of opening a cursor on `kv`
// (an lmdb-js cursor costs ~10 us inside a write transaction, a point get
// ~0.5 us), and a read at the revision the snapshot holds walks it instead
// of skipping every older version in `kv`.

export const REV_MAX = Number.MAX_SAFE_INTEGER;
const SUB_MAX = 0xffffffff;
/** Bytes after the terminator: inv(main), inv(sub) and the tombstone byte. */
export const REV_BYTES = 13;
export const RECORD_HEADER_BYTES = 25;
export const FLAG_TOMBSTONE = 1;

// Plain byte stores and loads: Buffer's checked 32-bit accessors were a
// visible part of applying a put (9 u64 fields per put). Callers pass
// integers in [0, 2^53) and offsets inside the buffer (fixed layouts).
export function writeU64(buf: Buffer, off: number, n: number): void {
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  buf[off] = hi >>> 24;
  buf[off + 1] = hi >>> 16;
  buf[off + 2] = hi >>> 8;
  buf[off + 3] = hi;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = lo >>> 16;
  buf[off + 6] = lo >>> 8;
  buf[off + 7] = lo;
}

export function readU64(buf: Buffer, off: number): number {
  const hi = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
  const lo = ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0;
  return hi * 0x100000000 + lo;
}

/** Length of escape(key) without the terminator. */
function escapedLength(key: Buffer): number {
  let n = key.length;
  let i = key.indexOf(0);
  while (i !== -1) {
    n++;
    i = key.indexOf(0, i + 1);
  }
  return n;
}

/** Writes escape(key) at off; returns the offset after it. */
function writeEscaped(out: Buffer, off: number, key: Buffer): number {
  if (key.indexOf(0) === -1) {
    key.copy(out, off);
    return off + key.length;
  }
  for (let i = 0; i < key.length; i++) {
    const b = key[i];
    out[off++] = b;
    if (b === 0) out[off++] = 0xff;
  }
  return off;
}

/** escape(key) with no terminator: the lower bound of every key >= key. */
export function encodeBound(key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(escapedLength(key));
  writeEscaped(out, 0, key);
  return out;
}

/** escape(key) 0x00 0x00: the common prefix of all versions of key. */
export function encodeGroup(key: Buffer): Buffer {
  const n = escapedLength(key);
  const out = Buffer.allocUnsafe(n + 2);
  writeEscaped(out, 0, key);
  out[n] = 0;
  out[n + 1] = 0;
  return out;
}

export function encodeVersionKey(key: Buffer, main: number, sub: number, tombstone: boolean): Buffer {
  const n = escapedLength(key);
  const out = Buffer.allocUnsafe(n + 2 + REV_BYTES);
  writeEscaped(out, 0, key);
  out[n] = 0;
  out[n + 1] = 0;
  writeU64(out, n + 2, REV_MAX - main);
  out.writeUInt32BE(SUB_MAX - sub, n + 10);
  out[n + 14] = tombstone ? 1 : 0;
  return out;
}

export function versionMain(vk: Buffer): number {
  return REV_MAX - readU64(vk, vk.length - REV_BYTES);
}

export function versionSub(vk: Buffer): number {
  return SUB_MAX - vk.readUInt32BE(vk.length - 5);
}

export function versionTombstone(vk: Buffer): boolean {
  return vk[vk.length - 1] === 1;
}

/** True when two version keys belong to the same user key. */
export function sameGroup(a: Buffer, b: Buffer): boolean {
  const n = a.length - REV_BYTES;
  return n === b.length - REV_BYTES && a.compare(b, 0, n, 0, n) === 0;
}

/** The user key of a version key. */
export function versionUserKey(vk: Buffer): Buffer {
  const n = vk.length - REV_BYTES - 2;
  if (vk.indexOf(0) === n) return Buffer.from(vk.subarray(0, n));
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  for (let i = 0; i < n; i++) {
    out[o++] = vk[i];
    if (vk[i] === 0) i++; // skip the 0xff of an escaped zero
  }
  return out.subarray(0, o);
}

/** Key of the revision index. */
export const REV_KEY_BYTES = 12;

export function encodeRevKey(main: number, sub: number): Buffer {
  const out = Buffer.allocUnsafe(REV_KEY_BYTES);
  writeU64(out, 0, main);
  out.writeUInt32BE(sub, 8);
  return out;
}

export function revKeyMain(rk: Buffer): number {
  return readU64(rk, 0);
}

export function revKeySub(rk: Buffer): number {
  return rk.readUInt32BE(8);
}

export const EVENT_PUT = 0;
export const EVENT_DELETE = 1;

export function encodeRevValue(type: number, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + key.length);
  out[0] = type;
  key.copy(out, 1);
  return out;
}

export function encodeRecord(tombstone: boolean, createRevision: number, version: number, lease: number, value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + value.length);
  out[0] = tombstone ? FLAG_TOMBSTONE : 0;
  writeU64(out, 1, createRevision);
  writeU64(out, 9, version);
  writeU64(out, 17, lease);
  value.copy(out, RECORD_HEADER_BYTES);
  return out;
}

export function recordTombstone(rec: Buffer): boolean {
  return (rec[0] & FLAG_TOMBSTONE) !== 0;
}
export function recordCreate(rec: Buffer): number {
  return readU64(rec, 1);
}
export function recordVersion(rec: Buffer): number {
  return readU64(rec, 9);
}
export function recordLease(rec: Buffer): number {
  return readU64(rec, 17);
}
/** A view of the value bytes (shares memory with rec). */
export function recordValue(rec: Buffer): Buffer {
  return rec.subarray(RECORD_HEADER_BYTES);
}

export const HEAD_BYTES = 36;

export function encodeHead(main: number, sub: number, createRevision: number, version: number, lease: number): Buffer {
  const out = Buffer.allocUnsafe(HEAD_BYTES);
  writeU64(out, 0, main);
  out.writeUInt32BE(sub, 8);
  writeU64(out, 12, createRevision);
  writeU64(out, 20, version);
  writeU64(out, 28, lease);
  return out;
}

export function headMain(h: Uint8Array): number {
  return readU64(h as Buffer, 0);
}
export function headSub(h: Uint8Array): number {
  return (h as Buffer).readUInt32BE(8);
}
export function headCreate(h: Uint8Array): number {
  return readU64(h as Buffer, 12);
}
export function headVersion(h: Uint8Array): number {
  return readU64(h as Buffer, 20);
}
export function headLease(h: Uint8Array): number {
  return readU64(h as Buffer, 28);
}

export function encodeLeaseId(id: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  writeU64(out, 0, id);
  return out;
}

export function encodeLeaseKey(id: number, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(8 + key.length);
  writeU64(out, 0, id);
  key.copy(out, 8);
  return out;
}

export interface EncodedRange {
  start: Buffer;
  /** Exclusive; undefined = to the end of the keyspace. */
  end: Buffer | undefined;
  /** True when the range is one key (no rangeEnd). */
  single: boolean;
}

/** Maps etcd's (key, rangeEnd) conventions to bounds on encoded version keys. */
export function encodeRange(key: Buffer, rangeEnd: Buffer | undefined): EncodedRange {
  if (rangeEnd === undefined || rangeEnd.length === 0) {
    const start = encodeGroup(key);
    const end = Buffer.from(start);
    end[end.length - 1] = 1; // escape(key) 0x00 0x01: just past the group
    return { start, end, single: true };
  }
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) {
    return { start: encodeBound(key), end: undefined, single: false };
  }
  return { start: encodeBound(key), end: encodeBound(rangeEnd), single: false };
}

/** True when user key k lies in etcd's (key, rangeEnd). */
export function inRange(k: Buffer, key: Buffer, rangeEnd: Buffer | undefined): boolean {
  if (rangeEnd === undefined || rangeEnd.length === 0) return k.equals(key);
  if (Buffer.compare(k, key) < 0) return false;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return true;
  return Buffer.compare(k, rangeEnd) < 0;
}

export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) {
    const e = new Error(`keelson mvcc invariant broken: ${what}`);
    // A broken invariant means the stored state can no longer be trusted;
    // throwing out of a write transaction aborts it, and the caller crashes.
    throw e;
  }
}
