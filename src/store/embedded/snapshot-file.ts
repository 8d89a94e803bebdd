// The snapshot file format: what `ClusterStore.snapshot()` streams, what
// `keelson store snapshot save/restore/status` reads and writes, and also what
// a leader sends a follower inside a Raft MsgSnap. Layout (docs/embedding.md):
//
//   magic      8 bytes  "KEELSNAP"
//   version    u32 BE   1
//   headerLen  u32 BE
//   header     headerLen bytes of UTF-8 JSON (SnapshotHeader)
//   keyspace   the keyspace's own snapshot (Keyspace.snapshot(): "KSNAP001",
//              index, crc32, lmdb file)
//   sha256     32 bytes over everything before it
//
// The trailing sha256 lets a reader refuse a truncated or corrupted file
// before writing anything.
import { createHash } from 'node:crypto';
import type { Member } from '../store.ts';

const MAGIC = Buffer.from('KEELSNAP');
const VERSION = 1;
const SHA_BYTES = 32;
const FIXED_BYTES = 8 + 4 + 4;
/** A header larger than this is not one we wrote. */
const headerBytesMax = 16 * 1024 * 1024;

export interface SnapshotHeader {
  /** The keyspace revision and Raft applied index the snapshot covers. */
  revision: number;
  index: number;
  clusterId: number;
  /** The member that took it. */
  memberId: number;
  /** Cluster membership (names, URLs) as of `membersIndex`. */
  members: Member[];
  membersIndex: number;
  /** Wall-clock milliseconds when it was taken (informational). */
  createdAtMs: number;
}

export class SnapshotFileError extends Error {
  constructor(message: string) {
    super(`keelson: ${message}`);
    this.name = 'SnapshotFileError';
  }
}

/** What comes before the keyspace's bytes: magic, version, header length and header. */
export function snapshotFilePrefix(header: SnapshotHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const fixed = Buffer.alloc(FIXED_BYTES);
  MAGIC.copy(fixed, 0);
  fixed.writeUInt32BE(VERSION, 8);
  fixed.writeUInt32BE(json.length, 12);
  return Buffer.concat([fixed, json]);
}

export function encodeSnapshotFile(header: SnapshotHeader, keyspace: Buffer): Buffer {
  const body = Buffer.concat([snapshotFilePrefix(header), keyspace]);
  const sha = createHash('sha256').update(body).digest();
  return Buffer.concat([body, sha]);
}

/**
 * The same bytes as encodeSnapshotFile(header, keyspace), from the keyspace's
 * bytes as a stream, holding one chunk at a time: the prefix, each chunk as
 * it comes, then the SHA-256. `keyspaceBytes` is the length of what
 * `keyspace` yields; the result's sizeBytes is the length of the whole.
 */
export function streamSnapshotFile(header: SnapshotHeader, keyspace: AsyncIterable<Buffer>, keyspaceBytes: number): { sizeBytes: number; chunks: AsyncGenerator<Buffer> } {
  const prefix = snapshotFilePrefix(header);
  async function* chunks(): AsyncGenerator<Buffer> {
    const sha = createHash('sha256').update(prefix);
    yield prefix;
    for await (const c of keyspace) {
      sha.update(c);
      yield c;
    }
    yield sha.digest();
  }
  return { sizeBytes: prefix.length + keyspaceBytes + SHA_BYTES, chunks: chunks() };
}

/** Verifies and splits a snapshot file; throws SnapshotFileError naming what is wrong. */
export function decodeSnapshotFile(buf: Buffer): { header: SnapshotHeader; keyspace: Buffer; sha256: string } {
  if (buf.length < FIXED_BYTES + SHA_BYTES || !buf.subarray(0, 8).equals(MAGIC)) throw new SnapshotFileError('not a Keelson snapshot file (bad magic)');
  const version = buf.readUInt32BE(8);
  if (version !== VERSION) throw new SnapshotFileError(`unsupported snapshot file version ${version}`);
  const body = buf.subarray(0, buf.length - SHA_BYTES);
  const want = buf.subarray(buf.length - SHA_BYTES);
  const got = createHash('sha256').update(body).digest();
  if (!got.equals(want)) throw new SnapshotFileError('snapshot file checksum mismatch (corrupt or truncated)');
  const headerLen = buf.readUInt32BE(12);
  if (headerLen > headerBytesMax || FIXED_BYTES + headerLen > body.length) throw new SnapshotFileError('snapshot file header length out of range');
  let header: SnapshotHeader;
  try {
    header = JSON.parse(body.subarray(FIXED_BYTES, FIXED_BYTES + headerLen).toString('utf8')) as SnapshotHeader;
  } catch {
    throw new SnapshotFileError('snapshot file header is not valid JSON');
  }
  if (!Number.isSafeInteger(header.index) || !Number.isSafeInteger(header.revision) || !Array.isArray(header.members)) {
    throw new SnapshotFileError('snapshot file header lacks index, revision or members');
  }
  return { header, keyspace: body.subarray(FIXED_BYTES + headerLen), sha256: got.toString('hex') };
}

export interface SnapshotFileStatus {
  revision: number;
  index: number;
  clusterId: number;
  memberId: number;
  members: Member[];
  sizeBytes: number;
  sha256: string;
  createdAtMs: number;
}

/** What `keelson store snapshot status` prints. Verifies the checksum. */
export function snapshotFileStatus(buf: Buffer): SnapshotFileStatus {
  const { header, sha256 } = decodeSnapshotFile(buf);
  return {
    revision: header.revision, index: header.index, clusterId: header.clusterId, memberId: header.memberId,
    members: header.members, sizeBytes: buf.length, sha256, createdAtMs: header.createdAtMs,
  };
}
