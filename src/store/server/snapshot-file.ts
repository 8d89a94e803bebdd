// The framing of a snapshot as the Maintenance.Snapshot stream sends it,
// which is also the file `etcdctl snapshot save` (and `keelson store
// snapshot save`) writes:
//
//   [store snapshot bytes][zero padding][u64 BE length of the snapshot][SHA-256 of all before]
//
// Why the padding: etcdctl 3.4 accepts a saved snapshot only if its size is
// 32 more than a multiple of 512 (a page-aligned etcd database plus the
// SHA-256 etcd appends), so the body is padded to a multiple of 512 bytes.
// The length just before the hash says where the store's bytes end, so the
// padding can be dropped again on restore.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { KeelsonError } from '../errors.ts';

export const snapshotAlignBytes = 512;
const lengthBytes = 8;
const shaBytes = 32;

/** What follows the store's snapshot of dataBytes bytes, before the hash: zeros, then the length. */
export function snapshotPadding(dataBytes: number): Buffer {
  const pad = (snapshotAlignBytes - ((dataBytes + lengthBytes) % snapshotAlignBytes)) % snapshotAlignBytes;
  const out = Buffer.alloc(pad + lengthBytes);
  out.writeBigUInt64BE(BigInt(dataBytes), pad);
  return out;
}

/** The store's snapshot bytes out of a saved snapshot file; a damaged file is refused. */
export function parseSnapshotFile(file: Buffer): Buffer {
  if (file.length < lengthBytes + shaBytes || (file.length - shaBytes) % snapshotAlignBytes !== 0) {
    throw new KeelsonError('bad request', `not a Keelson snapshot file (${file.length} bytes)`);
  }
  const body = file.subarray(0, file.length - shaBytes);
  if (!createHash('sha256').update(body).digest().equals(file.subarray(file.length - shaBytes))) {
    throw new KeelsonError('bad request', 'snapshot file checksum mismatch');
  }
  const length = body.readBigUInt64BE(body.length - lengthBytes);
  if (length > BigInt(body.length - lengthBytes) || body.length - lengthBytes - Number(length) >= snapshotAlignBytes) {
    throw new KeelsonError('bad request', 'snapshot file length field is out of range');
  }
  return body.subarray(0, Number(length));
}

/**
 * Writes a snapshot stream (as RemoteStore.snapshot() yields it: the framed
 * body without the hash) to `file` the way etcdctl does: into `file.part`,
 * then the SHA-256, fsync, rename. Resolves with the bytes written. A
 * failure leaves no file at `file`.
 */
export async function saveSnapshotFile(chunks: AsyncIterable<Buffer>, file: string): Promise<number> {
  const part = `${file}.part`;
  const fh = await fs.promises.open(part, 'w', 0o600);
  let bytes = 0;
  try {
    const sha = createHash('sha256');
    for await (const chunk of chunks) {
      sha.update(chunk);
      await fh.write(chunk);
      bytes += chunk.length;
    }
    const digest = sha.digest();
    await fh.write(digest);
    bytes += digest.length;
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.promises.rm(part, { force: true });
    throw e;
  }
  await fh.close();
  await fs.promises.rename(part, file);
  return bytes;
}
