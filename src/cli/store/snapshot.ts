// `keelson store snapshot status|restore`: offline commands on a snapshot
// file (`snapshot save` is a client command, in client-commands.ts).
//
// A saved file is what the Maintenance.Snapshot stream carried: the
// snapshot file (src/store/embedded/snapshot-file.ts, with its own SHA-256)
// followed by the 32-byte SHA-256 of the stream that the server appends, as
// etcd does. Both checksums are verified before anything is printed or
// written; a file that fails either is refused with exit code 2.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../command.ts';
import { parseFlags, type FlagSpec } from './args.ts';
import { outputFormat, table, toJson, humanBytes, hex } from './output.ts';
import { decodeSnapshotFile, SnapshotFileError, snapshotFileStatus } from '../../store/embedded/snapshot-file.ts';
import { restoreSnapshot } from '../../store/embedded.ts';
import { parseSnapshotFile } from '../../store/server/snapshot-file.ts';
import { parseInitialCluster } from './serve.ts';

export const snapshotUsage = `Usage:
  keelson store snapshot save FILE --endpoints=HOST:PORT    stream one member's snapshot to FILE
  keelson store snapshot status FILE [-w table|json]          verify FILE and show what it holds
  keelson store snapshot restore FILE --data-dir=D --name=N --initial-cluster=N=URL[,...]
      [--initial-advertise-peer-urls=URL] [--initial-cluster-token=T]
      Builds the data dir of one member of a NEW cluster from FILE (run it once per
      member, with the same --initial-cluster). Never writes over an existing data dir.`;

/** Reads a saved snapshot and strips the stream framing; throws SnapshotFileError when corrupt. */
export function readSnapshotFile(file: string): Buffer {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new SnapshotFileError(`cannot read snapshot file ${file}: ${(e as Error).message}`);
  }
  let inner: Buffer;
  try {
    inner = parseSnapshotFile(buf);
  } catch (e) {
    // A bare snapshot file (without the stream framing) is accepted too; its
    // own checksum still guards it.
    if (buf.subarray(0, 8).toString('latin1') !== 'KEELSNAP') throw new SnapshotFileError(`${file}: ${(e as Error).message}`);
    inner = buf;
  }
  decodeSnapshotFile(inner);
  return inner;
}

const statusSpec: FlagSpec = { value: ['write-out'], alias: { w: 'write-out' } };
export async function snapshotStatus(args: string[]): Promise<number> {
  const p = parseFlags(args, statusSpec);
  const out = outputFormat(p.flags.get('write-out'));
  const [file, extra] = p.positional;
  if (file === undefined || extra !== undefined) throw new UsageError('snapshot status needs a file name');
  let st: ReturnType<typeof snapshotFileStatus>;
  try {
    st = snapshotFileStatus(readSnapshotFile(file));
  } catch (e) {
    if (!(e instanceof SnapshotFileError)) throw e;
    process.stderr.write(`Error: ${e.message}\n`);
    return 2;
  }
  const row = [st.sha256.slice(0, 16), String(st.revision), String(st.index), String(st.members.length), humanBytes(st.sizeBytes)];
  if (out === 'json') console.log(toJson({ hash: st.sha256, revision: st.revision, index: st.index, clusterId: st.clusterId, memberId: st.memberId, members: st.members.map((m) => ({ ...m, id: hex(m.id) })), totalSize: st.sizeBytes, createdAtMs: st.createdAtMs }));
  else if (out === 'table') console.log(table(['HASH', 'REVISION', 'RAFT INDEX', 'MEMBERS', 'TOTAL SIZE'], [row]));
  else console.log(row.join(', '));
  return 0;
}

const restoreSpec: FlagSpec = { value: ['data-dir', 'name', 'initial-cluster', 'initial-advertise-peer-urls', 'initial-cluster-token'] };
export async function snapshotRestore(args: string[]): Promise<number> {
  const p = parseFlags(args, restoreSpec);
  const [file, extra] = p.positional;
  if (file === undefined || extra !== undefined) throw new UsageError('snapshot restore needs a file name');
  const name = p.flags.get('name') ?? 'default';
  const dataDir = p.flags.get('data-dir') ?? `${name}.keelson`;
  const advertise = (p.flags.get('initial-advertise-peer-urls') ?? 'http://localhost:2380').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const initialCluster = parseInitialCluster(p.flags.get('initial-cluster') ?? `${name}=${advertise.join(`,${name}=`)}`);
  const me = initialCluster.find((m) => m.name === name);
  if (!me) throw new UsageError(`--initial-cluster has no member named "${name}" (--name)`);
  if (p.flags.has('initial-advertise-peer-urls') && (me.peerUrls.length !== advertise.length || !me.peerUrls.every((u) => advertise.includes(u)))) {
    throw new UsageError(`--initial-cluster lists ${name} at ${me.peerUrls.join(',')} but --initial-advertise-peer-urls is ${advertise.join(',')}`);
  }
  if (fs.existsSync(dataDir) && (!fs.statSync(dataDir).isDirectory() || fs.readdirSync(dataDir).length > 0)) {
    process.stderr.write(`Error: data dir ${dataDir} already exists and is not empty; a restore never writes over existing data\n`);
    return 2;
  }
  let snapshot: Buffer;
  try {
    snapshot = readSnapshotFile(file);
  } catch (e) {
    if (!(e instanceof SnapshotFileError)) throw e;
    process.stderr.write(`Error: ${e.message}\n`);
    return 2;
  }
  // Restore into a sibling temp dir and rename at the end, so a failure part
  // way never leaves a half-built data dir under the final name.
  const tmp = path.join(path.dirname(path.resolve(dataDir)), `.${path.basename(dataDir)}.restore-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    await restoreSnapshot({
      file: snapshot,
      dataDir: tmp,
      name,
      initialCluster,
      clusterToken: p.flags.get('initial-cluster-token') ?? 'keelson-cluster',
    });
    if (fs.existsSync(dataDir)) fs.rmdirSync(dataDir);
    fs.renameSync(tmp, dataDir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof SnapshotFileError) {
      process.stderr.write(`Error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const st = snapshotFileStatus(snapshot);
  console.log(`restored snapshot of revision ${st.revision} into ${dataDir} for member ${name}`);
  return 0;
}
