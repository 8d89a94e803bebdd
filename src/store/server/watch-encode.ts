// The protobuf encoding of a WatchResponse that carries events, written by
// hand for the one hot path of the Watch service: a write watched by many
// watchers. Each watcher's response differs from the others only in its
// watch id, so the events are encoded once per event and shared: the
// encoding of an Event (with or without its prevKv) is kept in a WeakMap on
// its KeyValue object, which the watch hub hands unchanged to every
// watcher. Through the generic path every watcher paid protobufjs's
// fromObject and encode for every event.
//
// Field numbers are those of proto/rpc.proto and proto/kv.proto:
//   WatchResponse: header 1, watch_id 2, events 11
//   ResponseHeader: cluster_id 1, member_id 2, revision 3, raft_term 4
//   Event: type 1 (PUT 0, DELETE 1), kv 2, prev_kv 3
//   KeyValue: key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6
// Zero scalars and empty bytes are left out, as proto3 encoders do.
import type { Event } from '../mvcc/keyspace.ts';
import type { KeyValue } from '../mvcc/requests.ts';
import type { HeaderOut } from './codec.ts';

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** Bytes of the varint of a non-negative integer (numbers up to 2^64, as int64/uint64 fields carry). */
function varintBytes(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let bytes = 4;
  let rest = Math.floor(n / 0x10000000);
  while (rest > 0) {
    bytes++;
    rest = Math.floor(rest / 0x80);
  }
  return bytes;
}

function writeVarint(buf: Buffer, off: number, n: number): number {
  if (n < 0 || !Number.isFinite(n)) throw new Error(`keelson: varint of ${n}`);
  while (n >= 0x80) {
    buf[off++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[off++] = n;
  return off;
}

function tag(field: number, wire: number): number {
  return (field << 3) | wire;
}

/** Encoded size of a varint field (0 when the value is 0 and so left out). */
function varintField(n: number): number {
  return n === 0 ? 0 : 1 + varintBytes(n);
}

function bytesField(len: number): number {
  return len === 0 ? 0 : 1 + varintBytes(len) + len;
}

function putVarintField(buf: Buffer, off: number, field: number, n: number): number {
  if (n === 0) return off;
  buf[off++] = tag(field, WIRE_VARINT);
  return writeVarint(buf, off, n);
}

function putBytesField(buf: Buffer, off: number, field: number, b: Uint8Array): number {
  if (b.length === 0) return off;
  buf[off++] = tag(field, WIRE_LEN);
  off = writeVarint(buf, off, b.length);
  buf.set(b, off);
  return off + b.length;
}

export function encodeKeyValue(kv: KeyValue): Buffer {
  const size = bytesField(kv.key.length) + varintField(kv.createRevision) + varintField(kv.modRevision) +
    varintField(kv.version) + bytesField(kv.value.length) + varintField(kv.lease);
  const buf = Buffer.allocUnsafe(size);
  let off = putBytesField(buf, 0, 1, kv.key);
  off = putVarintField(buf, off, 2, kv.createRevision);
  off = putVarintField(buf, off, 3, kv.modRevision);
  off = putVarintField(buf, off, 4, kv.version);
  off = putBytesField(buf, off, 5, kv.value);
  off = putVarintField(buf, off, 6, kv.lease);
  return buf;
}

/** A length-delimited sub-message field: tag, length, bytes. */
function subMessageSize(len: number): number {
  return 1 + varintBytes(len) + len;
}

function putSubMessage(buf: Buffer, off: number, field: number, b: Buffer): number {
  buf[off++] = tag(field, WIRE_LEN);
  off = writeVarint(buf, off, b.length);
  b.copy(buf, off);
  return off + b.length;
}

interface EventBytes {
  plain?: Buffer;
  withPrev?: Buffer;
}

const cache = new WeakMap<KeyValue, EventBytes>();

/** The encoded Event message (memoized on its KeyValue object). */
export function encodeEvent(e: Event): Buffer {
  let c = cache.get(e.kv);
  if (c === undefined) cache.set(e.kv, (c = {}));
  const withPrev = e.prevKv !== undefined;
  const hit = withPrev ? c.withPrev : c.plain;
  if (hit !== undefined) return hit;
  const kv = encodeKeyValue(e.kv);
  const prev = withPrev ? encodeKeyValue(e.prevKv!) : null;
  const type = e.type === 'put' ? 0 : 1;
  const buf = Buffer.allocUnsafe(varintField(type) + subMessageSize(kv.length) + (prev ? subMessageSize(prev.length) : 0));
  let off = putVarintField(buf, 0, 1, type);
  off = putSubMessage(buf, off, 2, kv);
  if (prev) putSubMessage(buf, off, 3, prev);
  if (withPrev) c.withPrev = buf;
  else c.plain = buf;
  return buf;
}

/** A WatchResponse with a header, a watch id (>= 0) and events; nothing else set. */
export function encodeWatchEvents(header: HeaderOut, watchId: number, events: Event[]): Buffer {
  const headerSize = varintField(header.cluster_id) + varintField(header.member_id) + varintField(header.revision) + varintField(header.raft_term);
  const encoded = events.map(encodeEvent);
  let size = subMessageSize(headerSize) + varintField(watchId);
  for (const e of encoded) size += 1 + varintBytes(e.length) + e.length;
  const buf = Buffer.allocUnsafe(size);
  buf[0] = tag(1, WIRE_LEN);
  let off = writeVarint(buf, 1, headerSize);
  off = putVarintField(buf, off, 1, header.cluster_id);
  off = putVarintField(buf, off, 2, header.member_id);
  off = putVarintField(buf, off, 3, header.revision);
  off = putVarintField(buf, off, 4, header.raft_term);
  off = putVarintField(buf, off, 2, watchId);
  for (const e of encoded) {
    buf[off++] = tag(11, WIRE_LEN);
    off = writeVarint(buf, off, e.length);
    e.copy(buf, off);
    off += e.length;
  }
  if (off !== size) throw new Error(`keelson: WatchResponse encoding wrote ${off} of ${size} bytes`);
  return buf;
}
