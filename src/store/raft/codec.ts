// Small readers and writers for the native wire formats the driver has to
// look into (docs/native-format.md): entry headers, message headers (to find
// MsgSnap), the snapshot section (to put the real state into a MsgSnap), and
// the ConfChange payload (to read its context).
import type { ConfChangeType } from '../../native.ts';

export const ENTRY_HEADER_BYTES = 21;
export const MESSAGE_HEADER_BYTES = 80;
export const MSG_SNAP = 7;
export const ENTRY_CONF_CHANGE = 1;

export interface RawEntry {
  index: number;
  term: number;
  type: number;
  data: Buffer;
}

function u64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x100000000;
}

function writeU64(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v >>> 0, off);
  b.writeUInt32LE(Math.floor(v / 0x100000000), off + 4);
}

/** Decodes a buffer in the entries format; `data` are views into it. */
export function parseEntries(buf: Buffer | null | undefined): RawEntry[] {
  const out: RawEntry[] = [];
  if (!buf) return out;
  let off = 0;
  while (off < buf.length) {
    const len = buf.readUInt32LE(off + 17);
    out.push({ index: u64(buf, off), term: u64(buf, off + 8), type: buf[off + 16], data: buf.subarray(off + ENTRY_HEADER_BYTES, off + ENTRY_HEADER_BYTES + len) });
    off += ENTRY_HEADER_BYTES + len;
  }
  return out;
}

/** Index and term of every entry, without copying payloads. */
export function entryIndexTerms(buf: Buffer | null | undefined, fn: (index: number, term: number) => void): void {
  if (!buf) return;
  let off = 0;
  while (off < buf.length) {
    fn(u64(buf, off), u64(buf, off + 8));
    off += ENTRY_HEADER_BYTES + buf.readUInt32LE(off + 17);
  }
}

/** Splits a concatenation of messages into those that are MsgSnap and the rest (kept concatenated). */
export function splitSnapshots(data: Buffer): { rest: Buffer | null; snaps: Buffer[] } {
  let off = 0;
  let hasSnap = false;
  while (off < data.length) {
    if (data[off + 4] === MSG_SNAP) hasSnap = true;
    off += data.readUInt32LE(off);
  }
  if (!hasSnap) return { rest: data, snaps: [] };
  const rest: Buffer[] = [];
  const snaps: Buffer[] = [];
  off = 0;
  while (off < data.length) {
    const total = data.readUInt32LE(off);
    const m = data.subarray(off, off + total);
    (m[4] === MSG_SNAP ? snaps : rest).push(m);
    off += total;
  }
  return { rest: rest.length > 0 ? Buffer.concat(rest) : null, snaps };
}

export const MSG_APP = 3;

/**
 * Removes appends that start at the beginning of the log (previous index 0)
 * from a concatenation of messages; returns null when nothing is left.
 */
export function dropAppendsFromStart(data: Buffer): Buffer | null {
  const keep: Buffer[] = [];
  let dropped = false;
  let off = 0;
  while (off + MESSAGE_HEADER_BYTES <= data.length) {
    const total = data.readUInt32LE(off);
    if (total < MESSAGE_HEADER_BYTES || off + total > data.length) return data; // malformed: let step() refuse it
    const m = data.subarray(off, off + total);
    if (m[4] === MSG_APP && u64(m, 40) === 0) dropped = true;
    else keep.push(m);
    off += total;
  }
  if (!dropped) return data;
  return keep.length > 0 ? Buffer.concat(keep) : null;
}

/**
 * Replaces the host data inside a MsgSnap's snapshot section. The core only
 * holds a small marker as snapshot data (the real state is the keyspace,
 * copied when a follower actually needs it), so the driver swaps in the
 * copy just before the message leaves.
 */
/** The snapshot index a MsgSnap names (the first field of its snapshot section). */
export function snapshotIndexOf(msg: Buffer): number {
  const snapOff = MESSAGE_HEADER_BYTES + msg.readUInt32LE(64) + msg.readUInt32LE(72);
  return msg.readUInt32LE(snapOff) + msg.readUInt32LE(snapOff + 4) * 0x100000000;
}

export function replaceSnapshotData(msg: Buffer, data: Buffer): Buffer {
  const ctxLen = msg.readUInt32LE(64);
  const entLen = msg.readUInt32LE(72);
  const snapLen = msg.readUInt32LE(76);
  const snapOff = MESSAGE_HEADER_BYTES + ctxLen + entLen;
  const s = msg.subarray(snapOff, snapOff + snapLen);
  const counts = s.readUInt32LE(17) + s.readUInt32LE(21) + s.readUInt32LE(25) + s.readUInt32LE(29);
  const fixed = 8 + 8 + 1 + 16 + 8 * counts; // up to the dataLength field
  const newSnapLen = fixed + 4 + data.length;
  const head = Buffer.from(msg.subarray(0, snapOff + fixed));
  head.writeUInt32LE(snapOff + newSnapLen, 0);
  head.writeUInt32LE(newSnapLen, 76);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(data.length, 0);
  return Buffer.concat([head, len, data]);
}

export interface DecodedConfChange {
  transition: number;
  changes: { type: ConfChangeType; nodeId: number }[];
  context: Buffer;
}

const ccTypes: ConfChangeType[] = ['addNode', 'removeNode', 'addLearner'];

/** Decodes a committed ConfChange entry's payload (written by the core, so trusted). */
export function decodeConfChange(data: Buffer): DecodedConfChange {
  const transition = data[1];
  const count = data.readUInt32LE(2);
  const changes: DecodedConfChange['changes'] = [];
  let off = 6;
  for (let i = 0; i < count; i++) {
    changes.push({ type: ccTypes[data[off]] ?? 'addNode', nodeId: u64(data, off + 1) });
    off += 9;
  }
  const ctxLen = data.readUInt32LE(off);
  return { transition, changes, context: data.subarray(off + 4, off + 4 + ctxLen) };
}

/** An 8-byte ReadIndex context carrying a round number. */
export function encodeReadCtx(round: number): Buffer {
  const b = Buffer.alloc(8);
  writeU64(b, 0, round);
  return b;
}

export function decodeReadCtx(b: Buffer): number {
  return b.length === 8 ? u64(b, 0) : -1;
}
