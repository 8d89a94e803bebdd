// The MVCC keyspace: a multi-version key-value store with etcd v3's data
// model on lmdb, driven as a deterministic replicated state machine.
//
// Overview
// - Every committed log entry carries one msgpackr-encoded Proposal
//   (requests.ts). apply() writes a batch of entries, and the applied index,
//   into the open lmdb write transaction, so after any crash the stored data
//   and the stored applied index agree and the Raft driver replays exactly
//   the entries after it (see StateMachine in ../raft/state-machine.ts).
// - Commit batching (as etcd does with its backend's batch transaction): one
//   write transaction stays open across applies and is committed, with its
//   fsync, every commitIntervalMs or commitEntriesMax entries, and whenever
//   flush(), snapshot(), hashAsync(), restore() or close() need the stored
//   state. Every read on the JS thread goes through the open transaction
//   (lmdb-js reads in env.writeTxn when one is open), so an apply is visible
//   the moment apply() returns; a crash loses at most the uncommitted batches,
//   which the WAL replays (they are committed Raft entries, durable there).
//   A commit costs about one fdatasync whatever its size, so batching takes
//   that cost off every request.
// - The store revision `rev` is a counter of main revisions. A put, a delete
//   that removes something, and a txn that writes something take the next main
//   revision; each change inside it takes the next sub revision. Nothing is
//   overwritten in place: a put adds a version, a delete adds a tombstone.
// - Databases (layout in encoding.ts): `kv` holds versions in key order, newest
//   first within a key; `rev` indexes changes by revision (watch catch-up and
//   compaction); `lease` and `leaseKey` hold leases and their attached keys;
//   `meta` holds the applied index, revision, compact revision, physical
//   compaction progress and alarms.
// - A read at revision R walks one cursor over the encoded range and takes,
//   per key, the first version with main <= R (a tombstone means absent).
// - compact(C) sets the logical compact revision in the apply transaction:
//   from then on reads below C fail, and nothing that a read at R >= C can see
//   changes. Physical removal of versions that no read at or above C - 1 can
//   see (one revision of slack keeps the events of revision C itself, so a
//   watch can resume at exactly the compact revision) runs
//   later in small write transactions (compactStep, compactionBatchKeysMax
//   revision-index entries each) so that writes never wait behind a large
//   compaction. Its progress is stored, so it resumes after a restart; it is
//   local (members may be at different points) because no read depends on it.
//
// Failure modes
// - Crash anywhere: lmdb transactions are atomic, so the data and applied
//   index agree; physical compaction resumes from its stored progress.
// - Durability: a commit is durable when it returns (lmdb-js overlappingSync
//   syncs the file and then marks the commit flushed; a machine crash leaves
//   the last flushed state, never a corrupt file). Uncommitted batches live
//   only in memory; the Raft WAL is the durable log and replays them. Hence
//   the integration rule: the WAL must keep every entry above the index
//   returned by flush() (the durable applied index) and may only be compacted
//   below it.
// - A request that fails (bad input, a compare that refers to a missing lease,
//   the NOSPACE alarm) is checked completely before it writes anything, so it
//   has no effect; its error is reported to the proposer and is the same on
//   every member.
// - A broken invariant (an entry index out of order, an undecodable stored
//   record) throws out of the write transaction, which aborts it.
import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { KeelsonError } from '../errors.ts';
import type { CommittedEntry, StateMachine } from '../raft/state-machine.ts';
import {
  assert, encodeGroup, encodeHead, encodeLeaseId, encodeLeaseKey, encodeRange, encodeRecord, encodeRevKey, encodeRevValue,
  encodeVersionKey, EVENT_DELETE, EVENT_PUT, headCreate, headLease, headMain, headSub, headVersion, inRange, readU64,
  recordCreate, recordLease, recordTombstone,
  recordValue, recordVersion, revKeyMain, revKeySub, sameGroup, versionMain, versionTombstone, versionUserKey,
} from './encoding.ts';
import {
  decodeProposal, limits, needsSpace, validateRange, validateRequest,
  type AlarmType, type ApplyResult, type Compare, type DeleteRangeResponse, type KeyValue, type PutRequest,
  type PutResponse, type RangeRequest, type RangeResponse, type Request, type RequestOp, type Response,
  type ResponseOp, type TxnRequest, type TxnResponse,
} from './requests.ts';

export interface Event {
  type: 'put' | 'delete';
  /** For a delete: the key with modRevision = the delete's revision and zero fields. */
  kv: KeyValue;
  /** The key's previous version, if it had one that was not deleted. */
  prevKv?: KeyValue;
}

export interface KeyspaceOptions {
  /** Directory for the lmdb files; created if missing. */
  dir: string;
  /** Revision-index entries handled by one physical compaction transaction. */
  compactionBatchKeysMax?: number;
  /** The open write transaction is committed at most this long after its first apply (default 100, as etcd's backend batch interval). */
  commitIntervalMs?: number;
  /** ... or once it holds this many entries (default 10,000). */
  commitEntriesMax?: number;
  /** ... or once it holds this many bytes of entry data (default 32 MiB). */
  commitBytesMax?: number;
  /** Called after every applied proposal, in log order, once it is visible to reads; `from` is the proposing member (0 if unset). */
  onApplied?: (id: number, result: ApplyResult, from: number) => void;
  /** Called after every applied batch with its events in revision order (empty batches are not reported). */
  onEvents?: (events: Event[], revision: number) => void;
  /** Called after a snapshot was restored (the watch hub resyncs, the lessor reloads). */
  onRestored?: (index: number) => void;
  /** Called after apply for every lease granted or revoked by the batch (the lessor tracks expiry). */
  onLeaseChange?: (change: { type: 'grant'; id: number; ttl: number } | { type: 'revoke'; id: number }) => void;
}

export interface HashResult {
  /** crc32 over every version visible at or above the compact revision, up to `revision`. */
  hash: number;
  revision: number;
  compactRevision: number;
}

export interface LeaseRecord {
  id: number;
  /** Granted TTL in seconds. */
  ttl: number;
}

const FILE = 'keyspace.mdb';
const RESTORE_FILE = 'keyspace.mdb.restore';
const EMPTY = Buffer.alloc(0);
const SNAPSHOT_MAGIC = Buffer.from('KSNAP001');
const SNAPSHOT_HEADER_BYTES = 8 + 8 + 4;
/** Temporary snapshot copies in the keyspace dir are named so; leftovers are removed on open. */
const SNAPSHOT_TMP_PREFIX = 'snapshot-';
/** The chunk size of snapshotStream(). */
export const snapshotChunkBytes = 1024 * 1024;

/** A file's bytes in fresh buffers of at most snapshotChunkBytes (a consumer may keep each one). */
async function* readChunks(file: string): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(snapshotChunkBytes);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
/**
 * Version of the on-disk layout (encoding.ts), stored in meta. 2 added the
 * `head` index; a directory written by an older layout is refused rather than
 * read with a missing index.
 */
const LAYOUT_VERSION = 2;

/** A key's newest live version as recorded in the head index. */
interface Head {
  main: number;
  sub: number;
  create: number;
  version: number;
  lease: number;
}


function makeKv(key: Buffer, vk: Buffer, rec: Buffer, keysOnly: boolean): KeyValue {
  return {
    key,
    createRevision: recordCreate(rec),
    modRevision: versionMain(vk),
    version: recordVersion(rec),
    value: keysOnly ? Buffer.alloc(0) : recordValue(rec),
    lease: recordLease(rec),
  };
}

export class Keyspace implements StateMachine {
  readonly dir: string;
  private env!: RootDatabase;
  private kv!: Database<Buffer, Buffer>;
  private revIdx!: Database<Buffer, Buffer>;
  /** Lease id -> granted TTL (u64), both binary: no encoder state lives in the database. */
  private leaseDb!: Database<Buffer, Buffer>;
  private leaseKeyDb!: Database<Buffer, Buffer>;
  /** userKey -> newest live version (encoding.ts); absent for deleted keys. */
  private headDb!: Database<Buffer, Buffer>;
  private meta!: Database<unknown, string>;
  private readonly opts: KeyspaceOptions;
  private readonly compactionBatchKeysMax: number;
  private readonly commitIntervalMs: number;
  private readonly commitEntriesMax: number;
  private readonly commitBytesMax: number;
  /** The open write transaction applies go into (null between commits); see "Commit batching". */
  private batch: OpenBatch | null = null;

  // In-memory copies of meta, updated when an apply is published.
  private applied = 0;
  /** Invariant: compactRev <= rev. */
  private rev = 0;
  private compactRev = 0;
  /** Revision-index position (main, sub) up to which physical compaction is done. */
  private compactDoneMain = 0;
  private compactDoneSub = 0;
  private alarmSet = new Set<AlarmType>();
  private closed = false;

  // Write-side state: as of the last batch run in the write transaction.
  // Invariant: w* equal the published fields above outside apply().
  private wApplied = 0;
  private wRev = 0;
  private wCompactRev = 0;
  private wAlarms = new Set<AlarmType>();
  private pendingApplies = 0;
  /** apply() calls waiting for a commit to finish, and the tail of their queue. */
  private waitingApplies = 0;
  private applyQueue: Promise<void> = Promise.resolve();
  /** Set while restore() replaces the environment: applies are a caller bug then. */
  private restoring = false;
  /** Set when a write failed in a way that leaves memory ahead of storage; every later call fails. */
  private broken: Error | null = null;

  // State of the apply in progress (valid inside one write transaction).
  private txRev = 0;
  private txCompactRev = 0;
  private txSub = 0;
  private txEvents: Event[] = [];
  private txLeaseChanges: ({ type: 'grant'; id: number; ttl: number } | { type: 'revoke'; id: number })[] = [];
  /** Temporary copies of snapshotStream() not yet removed. */
  private readonly snapshotFiles = new Set<string>();
  private snapshotSeq = 0;

  constructor(opts: KeyspaceOptions) {
    this.opts = opts;
    this.dir = opts.dir;
    this.compactionBatchKeysMax = opts.compactionBatchKeysMax ?? 1000;
    this.commitIntervalMs = opts.commitIntervalMs ?? 100;
    this.commitEntriesMax = opts.commitEntriesMax ?? 10_000;
    this.commitBytesMax = opts.commitBytesMax ?? 32 << 20;
    fs.mkdirSync(this.dir, { recursive: true });
    // A leftover restore file is an interrupted restore: the old state is
    // still whole (the rename never happened), so drop the partial copy.
    fs.rmSync(path.join(this.dir, RESTORE_FILE), { force: true });
    // So is a snapshot copy: the stream that was reading it is gone.
    for (const f of fs.readdirSync(this.dir)) if (f.startsWith(SNAPSHOT_TMP_PREFIX)) fs.rmSync(path.join(this.dir, f), { force: true });
    this.openEnv();
  }

  private openEnv(): void {
    this.env = open({ path: path.join(this.dir, FILE), maxDbs: 8 });
    this.kv = this.env.openDB<Buffer, Buffer>('kv', { keyEncoding: 'binary', encoding: 'binary' });
    this.revIdx = this.env.openDB<Buffer, Buffer>('rev', { keyEncoding: 'binary', encoding: 'binary' });
    this.leaseDb = this.env.openDB<Buffer, Buffer>('lease', { keyEncoding: 'binary', encoding: 'binary' });
    this.leaseKeyDb = this.env.openDB<Buffer, Buffer>('leaseKey', { keyEncoding: 'binary', encoding: 'binary' });
    this.headDb = this.env.openDB<Buffer, Buffer>('head', { keyEncoding: 'binary', encoding: 'binary' });
    this.meta = this.env.openDB<unknown, string>('meta', { encoding: 'msgpack' });
    const layout = this.meta.get('layout') as number | undefined;
    if (layout === undefined && (this.meta.get('applied') as number | undefined) === undefined && (this.kv.getStats() as { entryCount: number }).entryCount === 0) {
      this.meta.putSync('layout', LAYOUT_VERSION);
    } else if (layout !== LAYOUT_VERSION) {
      throw new Error(`keelson keyspace in ${this.dir} has on-disk layout ${layout ?? 1}, this build reads ${LAYOUT_VERSION}; restore it from a member or a snapshot of this version`);
    }
    this.applied = (this.meta.get('applied') as number | undefined) ?? 0;
    this.rev = (this.meta.get('rev') as number | undefined) ?? 0;
    this.compactRev = (this.meta.get('compactRev') as number | undefined) ?? 0;
    const done = (this.meta.get('compactDone') as [number, number] | undefined) ?? [0, 0];
    this.compactDoneMain = done[0];
    this.compactDoneSub = done[1];
    this.alarmSet = new Set((this.meta.get('alarms') as AlarmType[] | undefined) ?? []);
    this.wApplied = this.applied;
    this.wRev = this.rev;
    this.wCompactRev = this.compactRev;
    this.wAlarms = this.alarmSet;
    assert(this.compactRev <= this.rev, 'compactRev <= rev on open');
  }

  // -------------------------------------------------------------------------
  // StateMachine
  // -------------------------------------------------------------------------

  appliedIndex(): number {
    return this.applied;
  }

  /** The current (last applied) main revision. */
  revision(): number {
    return this.rev;
  }

  compactRevision(): number {
    return this.compactRev;
  }

  alarms(): AlarmType[] {
    return [...this.alarmSet].sort();
  }

  /**
   * Applies a batch in the open write transaction (opening one if needed)
   * and publishes it at once: results, events and lease changes are reported
   * and reads see it when this returns. It becomes durable at the next
   * commit (see "Commit batching"). Calls are applied in call order; a call
   * made while a commit is finishing waits for it.
   */
  async apply(entries: CommittedEntry[]): Promise<void> {
    this.checkOpen();
    assert(!this.restoring, 'apply during restore');
    if (entries.length === 0) return;
    if (this.waitingApplies === 0 && !this.batch?.closing) {
      this.applyInBatch(entries);
      return;
    }
    // Behind a finishing commit, or behind calls that wait for one: queue up
    // in call order.
    const before = this.applyQueue;
    let done!: () => void;
    this.applyQueue = new Promise<void>((r) => { done = r; });
    this.pendingApplies++;
    this.waitingApplies++;
    try {
      await before;
      while (this.batch?.closing) await this.batch.done;
      this.checkOpen();
      this.applyInBatch(entries);
    } finally {
      this.pendingApplies--;
      this.waitingApplies--;
      done();
    }
  }

  /**
   * The same as apply(), synchronously (tests and tools). It waits for
   * nothing: while a commit is finishing, it writes into the transaction
   * lmdb-js has open (the finishing one, which then commits it too) or into
   * one of its own. Must not be mixed with unresolved apply() calls.
   */
  applySync(entries: CommittedEntry[]): void {
    this.checkOpen();
    assert(this.pendingApplies === 0 && !this.restoring, 'applySync with asynchronous applies or a restore in flight');
    if (entries.length === 0) return;
    if (!this.batch?.closing) {
      this.applyInBatch(entries);
      return;
    }
    let publish: (() => void) | undefined;
    try {
      this.env.transactionSync(() => {
        publish = this.runBatch(entries);
      }, 0x10000 as never);
    } catch (err) {
      if (err instanceof KeelsonError) throw err;
      this.broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    }
    publish!();
  }

  private applyInBatch(entries: CommittedEntry[]): void {
    if (this.batch === null) this.openBatch();
    const b = this.batch!;
    let publish: () => void;
    try {
      publish = this.runBatch(entries);
    } catch (err) {
      if (err instanceof KeelsonError) throw err;
      // A broken invariant: the transaction holds a part of this batch.
      // Roll it back (with the uncommitted batches before it, whose effects
      // were published: the member must restart and replay them from the
      // WAL) and refuse to go on.
      this.broken = err instanceof Error ? err : new Error(String(err));
      this.endBatch(b, err);
      throw err;
    }
    publish();
    b.entries += entries.length;
    for (const e of entries) b.bytes += e.data.length;
    if (b.entries >= this.commitEntriesMax || b.bytes >= this.commitBytesMax) this.endBatch(b);
  }

  /** Opens the write transaction that applies go into until endBatch(). */
  private openBatch(): void {
    assert(this.batch === null, 'one open batch at a time');
    let release!: (v: unknown) => void;
    let abort!: (e: unknown) => void;
    const hold = new Promise((res, rej) => {
      release = res;
      abort = rej;
    });
    // lmdb-js keeps a synchronous transaction open until the promise its
    // callback returns settles, then commits it (or aborts it on rejection).
    const committed = this.env.transactionSync(() => hold, 0x10000 as never) as unknown as Promise<unknown>;
    const b: OpenBatch = { release, abort, done: Promise.resolve(), closing: false, entries: 0, bytes: 0, timer: null };
    b.done = Promise.resolve(committed).then(
      () => {
        if (this.batch === b) this.batch = null;
      },
      (err: unknown) => {
        if (this.batch === b) this.batch = null;
        // A failed commit (I/O error) leaves published state that is not
        // stored: refuse to go on. The host restarts the member, which
        // replays from the stored applied index.
        this.broken ??= err instanceof Error ? err : new Error(String(err));
      },
    );
    this.batch = b;
    b.timer = setTimeout(() => this.endBatch(b), this.commitIntervalMs);
  }

  /** Starts the commit (or, with an error, the abort) of an open batch; its `done` settles when it is over. */
  private endBatch(b: OpenBatch, error?: unknown): void {
    if (b.closing) return;
    b.closing = true;
    if (b.timer !== null) clearTimeout(b.timer);
    b.timer = null;
    if (error === undefined) b.release(undefined);
    else b.abort(error);
  }

  /** Commits the open batch, if any; resolves when it is durable. */
  private async commitBatch(): Promise<void> {
    const b = this.batch;
    if (b === null) return;
    this.endBatch(b);
    await b.done;
    if (this.broken) throw new Error(`keelson keyspace is unusable after a failed write: ${this.broken.message}`);
  }

  /**
   * Runs inside the write transaction: applies every entry, stores the
   * applied index with them, advances the write-side state, and returns the
   * function that publishes the batch.
   */
  private runBatch(entries: CommittedEntry[]): () => void {
    const results: [number, ApplyResult, number][] = [];
    const events: Event[] = [];
    const leaseChanges: ({ type: 'grant'; id: number; ttl: number } | { type: 'revoke'; id: number })[] = [];
    const firstIndex = entries[0].index;
    let applied = this.wApplied;
    let alarms = this.wAlarms;
    let compactRev = this.wCompactRev;
    this.txRev = this.wRev;
    this.txEvents = events;
    this.txLeaseChanges = leaseChanges;
    for (const e of entries) {
      assert(e.index === applied + 1, `entry index ${e.index} follows applied index ${applied}`);
      applied = e.index;
      if (e.data.length === 0) continue;
      let id = 0;
      let from = 0;
      try {
        const p = decodeProposal(e.data);
        id = p.id;
        from = typeof p.from === 'number' ? p.from : 0;
        validateRequest(p.req);
        if (e.data.length > limits.requestBytesMax) throw new KeelsonError('request too large');
        if (alarms.has('NOSPACE') && needsSpace(p.req)) throw new KeelsonError('NOSPACE');
        this.txCompactRev = compactRev;
        const out = this.applyRequest(p.req, compactRev, alarms);
        if (out.compactRev !== undefined) compactRev = out.compactRev;
        if (out.alarms !== undefined) alarms = out.alarms;
        results.push([id, { ok: true, response: out.response }, from]);
      } catch (err) {
        if (!(err instanceof KeelsonError)) throw err;
        results.push([id, { ok: false, error: err }, from]);
      }
    }
    this.meta.putSync('applied', applied);
    this.meta.putSync('rev', this.txRev);
    if (compactRev !== this.wCompactRev) this.meta.putSync('compactRev', compactRev);
    if (alarms !== this.wAlarms) this.meta.putSync('alarms', [...alarms].sort());
    const rev = this.txRev;
    this.wApplied = applied;
    this.wRev = rev;
    this.wCompactRev = compactRev;
    this.wAlarms = alarms;
    return () => {
      assert(firstIndex === this.applied + 1, `batches are published in log order (${firstIndex} after ${this.applied})`);
      this.applied = applied;
      this.rev = rev;
      this.compactRev = compactRev;
      this.alarmSet = alarms;
      if (this.opts.onLeaseChange) for (const c of leaseChanges) this.opts.onLeaseChange(c);
      if (events.length > 0 && this.opts.onEvents) this.opts.onEvents(events, rev);
      if (this.opts.onApplied) for (const [id, r, from] of results) this.opts.onApplied(id, r, from);
    };
  }

  private applyRequest(req: Request, compactRev: number, alarms: Set<AlarmType>): { response: Response; compactRev?: number; alarms?: Set<AlarmType> } {
    switch (req.op) {
      case 'put': {
        this.checkPut(req);
        const rev = this.beginWrite();
        const r = this.doPut(req, rev);
        return { response: { header: { revision: rev }, ...r } };
      }
      case 'deleteRange': {
        const live = this.liveKeys(req.key, req.rangeEnd);
        if (live.length === 0) return { response: { header: { revision: this.txRev }, deleted: 0, prevKvs: [] } };
        const rev = this.beginWrite();
        const r = this.doDelete(live, rev, req.prevKv === true);
        return { response: { header: { revision: rev }, ...r } };
      }
      case 'txn': {
        const path = this.txnPath(req);
        this.checkTxnPath(req, path);
        const writes = this.txnWrites(req, path);
        const rev = writes ? this.beginWrite() : this.txRev;
        const r = this.doTxn(req, path, rev, writes);
        return { response: { header: { revision: rev }, ...r } };
      }
      case 'compact': {
        if (req.revision <= compactRev) throw new KeelsonError('compacted', `compact revision is ${compactRev}`, { compactRevision: compactRev });
        if (req.revision > this.txRev) throw new KeelsonError('future revision', `current revision is ${this.txRev}`, { currentRevision: this.txRev });
        return { response: { header: { revision: this.txRev } }, compactRev: req.revision };
      }
      case 'leaseGrant': {
        const k = encodeLeaseId(req.leaseId);
        if (this.leaseDb.get(k) !== undefined) throw new KeelsonError('lease exists');
        this.leaseDb.putSync(k, encodeLeaseId(req.ttl));
        this.txLeaseChanges.push({ type: 'grant', id: req.leaseId, ttl: req.ttl });
        return { response: { header: { revision: this.txRev }, id: req.leaseId, ttl: req.ttl } };
      }
      case 'leaseRevoke': {
        if (this.leaseDb.get(encodeLeaseId(req.leaseId)) === undefined) throw new KeelsonError('lease not found');
        this.revokeLease(req.leaseId);
        return { response: { header: { revision: this.txRev } } };
      }
      case 'leaseExpire': {
        const revoked: number[] = [];
        for (const id of req.leaseIds) {
          if (this.leaseDb.get(encodeLeaseId(id)) === undefined) continue;
          this.revokeLease(id);
          revoked.push(id);
        }
        return { response: { header: { revision: this.txRev }, revoked } };
      }
      case 'alarm': {
        const next = new Set(alarms);
        if (req.action === 'activate') next.add(req.alarm);
        else next.delete(req.alarm);
        return { response: { header: { revision: this.txRev }, alarms: [...next].sort() }, alarms: next };
      }
    }
  }

  /** Takes the next main revision for a write request. */
  private beginWrite(): number {
    this.txRev++;
    this.txSub = 0;
    return this.txRev;
  }

  /** The newest version of key if it is live, as stored now (in the write transaction when inside one). */
  private head(key: Buffer): Head | null {
    // getBinaryFast returns a buffer lmdb-js reuses for the next read: decode at once.
    const h = this.headDb.getBinaryFast(key);
    if (h === undefined) return null;
    return { main: headMain(h), sub: headSub(h), create: headCreate(h), version: headVersion(h), lease: headLease(h) };
  }

  /** The live version a head names, with its value read from `kv` (a copy, not a view of lmdb memory). */
  private headKv(key: Buffer, h: Head, withValue: boolean): KeyValue {
    let value = EMPTY;
    if (withValue) {
      // One copy out of lmdb-js's reused read buffer (or the memory map).
      const rec = this.kv.getBinaryFast(encodeVersionKey(key, h.main, h.sub, false));
      assert(rec !== undefined, 'a head names a stored version');
      value = Buffer.from(recordValue(rec as Buffer));
    }
    return { key, createRevision: h.create, modRevision: h.main, version: h.version, value, lease: h.lease };
  }

  private latestLive(key: Buffer, withValue = true): KeyValue | null {
    const h = this.head(key);
    return h === null ? null : this.headKv(key, h, withValue);
  }

  private checkPut(req: PutRequest): void {
    if (req.ignoreValue || req.ignoreLease) {
      if (this.head(req.key) === null) throw new KeelsonError('key not found');
    }
    if (!req.ignoreLease && req.lease) {
      if (this.leaseDb.get(encodeLeaseId(req.lease)) === undefined) throw new KeelsonError('lease not found');
    }
  }

  private doPut(req: PutRequest, rev: number): { prevKv?: KeyValue } {
    const prev = this.latestLive(req.key);
    const value = req.ignoreValue ? (prev as KeyValue).value : req.value;
    const lease = req.ignoreLease ? (prev as KeyValue).lease : (req.lease ?? 0);
    const sub = this.txSub++;
    const create = prev ? prev.createRevision : rev;
    const version = prev ? prev.version + 1 : 1;
    const rec = encodeRecord(false, create, version, lease, value);
    this.kv.putSync(encodeVersionKey(req.key, rev, sub, false), rec);
    this.headDb.putSync(req.key, encodeHead(rev, sub, create, version, lease));
    this.revIdx.putSync(encodeRevKey(rev, sub), encodeRevValue(EVENT_PUT, req.key));
    if (prev && prev.lease !== 0 && prev.lease !== lease) this.leaseKeyDb.removeSync(encodeLeaseKey(prev.lease, req.key));
    if (lease !== 0 && (!prev || prev.lease !== lease)) this.leaseKeyDb.putSync(encodeLeaseKey(lease, req.key), Buffer.alloc(0));
    const kv: KeyValue = { key: req.key, createRevision: create, modRevision: rev, version, value: Buffer.from(value), lease };
    this.txEvents.push(prev ? { type: 'put', kv, prevKv: prev } : { type: 'put', kv });
    return req.prevKv && prev ? { prevKv: prev } : {};
  }

  /** Live keys (newest version not a tombstone) in a range, as of now in the transaction. */
  private liveKeys(key: Buffer, rangeEnd: Buffer | undefined): KeyValue[] {
    const out: KeyValue[] = [];
    this.walk(key, rangeEnd, REV_MAX_READ, (vk, userKey) => {
      out.push(this.readKv(userKey, vk, false, undefined));
      return true;
    }, undefined, this.txRev);
    return out;
  }

  private doDelete(live: KeyValue[], rev: number, wantPrev: boolean): Omit<DeleteRangeResponse, 'header'> {
    const empty = Buffer.alloc(0);
    for (const prev of live) {
      const sub = this.txSub++;
      this.kv.putSync(encodeVersionKey(prev.key, rev, sub, true), encodeRecord(true, 0, 0, 0, empty));
      this.headDb.removeSync(prev.key);
      this.revIdx.putSync(encodeRevKey(rev, sub), encodeRevValue(EVENT_DELETE, prev.key));
      if (prev.lease !== 0) this.leaseKeyDb.removeSync(encodeLeaseKey(prev.lease, prev.key));
      this.txEvents.push({ type: 'delete', kv: { key: prev.key, createRevision: 0, modRevision: rev, version: 0, value: empty, lease: 0 }, prevKv: prev });
    }
    return { deleted: live.length, prevKvs: wantPrev ? live : [] };
  }

  private revokeLease(id: number): void {
    const keys: Buffer[] = [];
    const prefix = encodeLeaseId(id);
    const end = encodeLeaseId(id + 1);
    for (const k of this.leaseKeyDb.getKeys({ start: prefix, end })) keys.push(Buffer.from((k as Buffer).subarray(8)));
    const live: KeyValue[] = [];
    for (const k of keys) {
      const kv = this.latestLive(k);
      assert(kv !== null && kv.lease === id, 'a lease-attached key is live and attached');
      live.push(kv);
    }
    if (live.length > 0) this.doDelete(live, this.beginWrite(), false);
    this.leaseDb.removeSync(prefix);
    this.txLeaseChanges.push({ type: 'revoke', id });
  }

  // --- txn ---

  /**
   * The branch taken at every level of a txn, decided from the state before
   * the txn writes anything (nested compares too), so that the checks below
   * can run before the first write. Encoded as a list of booleans in
   * depth-first order of the txns on the taken path.
   */
  private txnPath(t: TxnRequest): boolean[] {
    const out: boolean[] = [];
    const visit = (tx: TxnRequest): void => {
      const ok = tx.compare.every((c) => this.compare(c));
      out.push(ok);
      for (const op of ok ? tx.success : tx.failure) if (op.op === 'txn') visit(op);
    };
    visit(t);
    return out;
  }

  private compare(c: Compare): boolean {
    const kvs: (KeyValue | null)[] = [];
    if (c.rangeEnd === undefined || c.rangeEnd.length === 0) {
      kvs.push(this.latestLive(c.key, c.target === 'value'));
    } else {
      this.walk(c.key, c.rangeEnd, REV_MAX_READ, (vk, userKey) => {
        kvs.push(this.readKv(userKey, vk, c.target !== 'value', undefined));
        return true;
      }, undefined, this.txRev);
    }
    // A compare over no key compares against an absent key (etcd's rule).
    if (kvs.length === 0) return compareOne(c, null);
    for (const kv of kvs) if (!compareOne(c, kv)) return false;
    return true;
  }

  /** Refuses the txn before any write if an operation on its path would fail. */
  private checkTxnPath(t: TxnRequest, path: boolean[]): void {
    let i = 0;
    const visit = (tx: TxnRequest): void => {
      const ok = path[i++];
      for (const op of ok ? tx.success : tx.failure) {
        if (op.op === 'put') this.checkPut(op);
        else if (op.op === 'range') this.checkReadRevision(op.revision ?? 0, this.txRev, this.txCompactRev);
        else if (op.op === 'txn') visit(op);
      }
    };
    visit(t);
  }

  /** True when the taken path writes anything (then the txn takes a revision). */
  private txnWrites(t: TxnRequest, path: boolean[]): boolean {
    let i = 0;
    let writes = false;
    const visit = (tx: TxnRequest): void => {
      const ok = path[i++];
      for (const op of ok ? tx.success : tx.failure) {
        if (op.op === 'put') writes = true;
        else if (op.op === 'deleteRange' && this.liveKeys(op.key, op.rangeEnd).length > 0) writes = true;
        else if (op.op === 'txn') visit(op);
      }
    };
    visit(t);
    return writes;
  }

  private doTxn(t: TxnRequest, path: boolean[], rev: number, writes: boolean): Omit<TxnResponse, 'header'> {
    let i = 0;
    const visit = (tx: TxnRequest): Omit<TxnResponse, 'header'> => {
      const ok = path[i++];
      const responses: ResponseOp[] = [];
      for (const op of ok ? tx.success : tx.failure) responses.push(this.doOp(op, rev, writes, visit));
      return { succeeded: ok, responses };
    };
    return visit(t);
  }

  private doOp(op: RequestOp, rev: number, writes: boolean, visit: (t: TxnRequest) => Omit<TxnResponse, 'header'>): ResponseOp {
    const header = { revision: rev };
    switch (op.op) {
      case 'range': {
        // A range inside a txn sees the txn's earlier writes: the written
        // versions carry revision `rev`, which is the read revision.
        // The head index stands at txRev: every write so far in this batch.
        const r = this.rangeAt(op, op.revision || this.txRev, rev, undefined, this.txRev);
        return { op: 'range', ...r, header };
      }
      case 'put':
        return { op: 'put', header, ...this.doPut(op, rev) };
      case 'deleteRange': {
        const live = this.liveKeys(op.key, op.rangeEnd);
        return { op: 'deleteRange', header, ...this.doDelete(live, rev, op.prevKv === true) };
      }
      case 'txn':
        return { op: 'txn', header, ...visit(op) };
    }
  }

  // -------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------

  private checkReadRevision(revision: number, current: number, compactRev: number): number {
    if (revision === 0) return current;
    if (revision > current) throw new KeelsonError('future revision', `current revision is ${current}`, { currentRevision: current });
    if (revision < compactRev) throw new KeelsonError('compacted', `compact revision is ${compactRev}`, { compactRevision: compactRev });
    return revision;
  }

  /**
   * Calls fn(versionKey, userKey) for every key in the range whose newest
   * version at or below `atRev` is not a tombstone, in key order. fn returns
   * false to stop. `txn` is a read snapshot, or undefined inside a write
   * transaction (to see its own writes). `headRev` is the revision the head
   * index of that snapshot stands at, if known: a read at or above it walks
   * the head index (one entry per live key) instead of every version in `kv`.
   */
  private walk(key: Buffer, rangeEnd: Buffer | undefined, atRev: number, fn: (vk: Buffer, userKey: Buffer) => boolean, txn?: Transaction, headRev?: number): void {
    if (headRev !== undefined && atRev >= headRev) {
      this.walkHead(key, rangeEnd, fn, txn);
      return;
    }
    const r = encodeRange(key, rangeEnd);
    // The last version key whose group has been decided: a read takes at
    // most one version per key, the first at or below atRev.
    let decided: Buffer | null = null;
    for (const k of this.kv.getKeys({ start: r.start, end: r.end, transaction: txn })) {
      const vk = k as Buffer;
      if (decided !== null && sameGroup(vk, decided)) continue;
      if (versionMain(vk) > atRev) continue;
      decided = vk;
      if (versionTombstone(vk)) continue;
      if (!fn(vk, versionUserKey(vk))) return;
    }
  }

  /** walk() over the head index: the newest version of every live key. */
  private walkHead(key: Buffer, rangeEnd: Buffer | undefined, fn: (vk: Buffer, userKey: Buffer) => boolean, txn: Transaction | undefined): void {
    if (rangeEnd === undefined || rangeEnd.length === 0) {
      const h = getFast(this.headDb, key, txn);
      if (h !== undefined) fn(encodeVersionKey(key, headMain(h), headSub(h), false), key);
      return;
    }
    const all = rangeEnd.length === 1 && rangeEnd[0] === 0;
    if (!all && Buffer.compare(rangeEnd, key) <= 0) return;
    for (const { key: k, value: h } of this.headDb.getRange({ start: key, end: all ? undefined : rangeEnd, transaction: txn })) {
      const userKey = k as Buffer;
      if (!fn(encodeVersionKey(userKey, headMain(h), headSub(h), false), userKey)) return;
    }
  }

  /** The KeyValue of a version key that the caller just saw in the same snapshot (the value is copied out of lmdb). */
  private readKv(userKey: Buffer, vk: Buffer, keysOnly: boolean, txn: Transaction | undefined): KeyValue {
    // getBinaryFast returns lmdb-js's reused read buffer: decode and copy at once.
    const rec = getFast(this.kv, vk, txn);
    assert(rec !== undefined, 'a walked version has a record');
    return {
      key: userKey,
      createRevision: recordCreate(rec),
      modRevision: versionMain(vk),
      version: recordVersion(rec),
      value: keysOnly ? Buffer.alloc(0) : Buffer.from(recordValue(rec)),
      lease: recordLease(rec),
    };
  }

  /**
   * A range read at a revision (0 = current), from one read snapshot:
   * lmdb-js renews its shared read transaction only when the JS thread
   * observes a commit (a callback, or a synchronous write of our own), so the
   * walk and the record reads of one synchronous call see one snapshot. An
   * explicit useReadTransaction() costs about as much as a one-key range.
   */
  range(req: RangeRequest): RangeResponse {
    this.checkOpen();
    validateRange(req);
    const atRev = this.checkReadRevision(req.revision ?? 0, this.rev, this.compactRev);
    // The head index may only stand in for a read at the revision this read
    // snapshot holds: an apply committed but not yet published (or
    // published after this snapshot) would otherwise leak in or out.
    const snapRev = (this.meta.get('rev') as number | undefined) ?? 0;
    return { ...this.rangeAt(req, atRev, this.rev, undefined, snapRev === atRev ? atRev : undefined), header: { revision: this.rev } };
  }

  private rangeAt(req: RangeRequest, atRev: number, headerRev: number, txn?: Transaction, headRev?: number): RangeResponse {
    const limit = req.limit ?? 0;
    const target = req.sortTarget ?? 'key';
    let order = req.sortOrder ?? 'none';
    if (order === 'none' && target !== 'key') order = 'ascend';
    // The walk already yields ascending key order.
    const sorted = !(order === 'none' || (target === 'key' && order === 'ascend'));
    const { minModRevision: minMod = 0, maxModRevision: maxMod = 0, minCreateRevision: minCreate = 0, maxCreateRevision: maxCreate = 0 } = req;
    const filtered = minMod > 0 || maxMod > 0 || minCreate > 0 || maxCreate > 0;
    const kvs: KeyValue[] = [];
    let count = 0;
    // Without sorting or filtering the walk yields keys in result order, so
    // past the limit it only counts (no record read, no objects).
    const collectAll = sorted || filtered;
    const byCreate = minCreate > 0 || maxCreate > 0;
    // On the head index every entry is one live key, so counting is lmdb's
    // own key count (no per-key callback): all of it for countOnly, and the
    // rest past the limit otherwise.
    const onHead = headRev !== undefined && atRev >= headRev && req.rangeEnd !== undefined && req.rangeEnd.length > 0;
    const headEnd = req.rangeEnd !== undefined && !(req.rangeEnd.length === 1 && req.rangeEnd[0] === 0) ? req.rangeEnd : undefined;
    if (onHead && req.countOnly) {
      const n = headEnd !== undefined && Buffer.compare(headEnd, req.key) <= 0 ? 0 : this.headDb.getKeysCount({ start: req.key, end: headEnd, transaction: txn });
      return { header: { revision: headerRev }, kvs: [], more: false, count: n };
    }
    const countRest = onHead && !collectAll && limit > 0;
    let stoppedAfter: Buffer | undefined;
    this.walk(req.key, req.rangeEnd, atRev, (vk, userKey) => {
      let kv: KeyValue | undefined;
      // As etcd: count is every key in the range; the revision filters only
      // thin out the kvs returned (and countOnly ignores them).
      count++;
      if (req.countOnly) return true;
      if (countRest && kvs.length === limit) {
        stoppedAfter = userKey;
        return false;
      }
      if (filtered) {
        const mod = versionMain(vk);
        if (minMod > 0 && mod < minMod) return true;
        if (maxMod > 0 && mod > maxMod) return true;
        if (byCreate) {
          kv = this.readKv(userKey, vk, req.keysOnly === true, txn);
          const create = kv.createRevision;
          if (minCreate > 0 && create < minCreate) return true;
          if (maxCreate > 0 && create > maxCreate) return true;
        }
      }
      if (collectAll || limit === 0 || kvs.length < limit) kvs.push(kv ?? this.readKv(userKey, vk, req.keysOnly === true, txn));
      return true;
    }, txn, headRev);
    if (stoppedAfter !== undefined) count += this.headDb.getKeysCount({ start: stoppedAfter, exclusiveStart: true, end: headEnd, transaction: txn });
    if (req.countOnly) return { header: { revision: headerRev }, kvs: [], more: false, count };
    if (sorted) sortKvs(kvs, target, order === 'descend');
    let more = false;
    if (limit > 0 && kvs.length > limit) {
      kvs.length = limit;
      more = true;
    } else if (limit > 0 && !collectAll && count > kvs.length) {
      more = true;
    }
    return { header: { revision: headerRev }, kvs, more, count };
  }

  /**
   * Events of revisions [fromRev, ...] from the revision index, for watch
   * catch-up. Scans at most scanMax index entries but never splits a
   * revision (so one huge revision is returned whole). Returns the events of
   * keys in the range and the first revision not scanned.
   */
  eventsFrom(fromRev: number, key: Buffer, rangeEnd: Buffer | undefined, scanMax: number, prevKv: boolean): { events: Event[]; nextRev: number } {
    this.checkOpen();
    if (fromRev < this.compactRev) throw new KeelsonError('compacted', `compact revision is ${this.compactRev}`, { compactRevision: this.compactRev });
    // Uncommitted revisions are only in the open write transaction, which
    // reads without an explicit transaction use.
    if (this.batch !== null) return this.eventsIn(undefined, fromRev, key, rangeEnd, scanMax, prevKv);
    const txn = this.env.useReadTransaction();
    try {
      return this.eventsIn(txn, fromRev, key, rangeEnd, scanMax, prevKv);
    } finally {
      txn.done();
    }
  }

  private eventsIn(txn: Transaction | undefined, fromRev: number, key: Buffer, rangeEnd: Buffer | undefined, scanMax: number, prevKv: boolean): { events: Event[]; nextRev: number } {
    const events: Event[] = [];
    let scanned = 0;
    let lastMain = fromRev - 1;
    let cut = false;
    const rev = this.rev;
    for (const { key: rk, value } of this.revIdx.getRange({ start: encodeRevKey(fromRev, 0), end: encodeRevKey(rev + 1, 0), transaction: txn })) {
      const main = revKeyMain(rk);
      if (scanned >= scanMax && main !== lastMain) {
        cut = true;
        break;
      }
      scanned++;
      lastMain = main;
      const k = value.subarray(1);
      if (!inRange(k, key, rangeEnd)) continue;
      const userKey = Buffer.from(k);
      const sub = revKeySub(rk);
      const vk = encodeVersionKey(userKey, main, sub, value[0] === EVENT_DELETE);
      let rec: Buffer | undefined;
      let prev: KeyValue | undefined;
      // The version itself and, next in key order, the version before it.
      for (const { key: k2, value: r2 } of this.kv.getRange({ start: vk, limit: prevKv ? 2 : 1, transaction: txn })) {
        if (rec === undefined) {
          assert(k2.equals(vk), 'a revision-index entry has its version');
          rec = r2;
        } else if (sameGroup(k2, vk) && !recordTombstone(r2)) {
          prev = makeKv(userKey, k2, r2, false);
        }
      }
      assert(rec !== undefined, 'a revision-index entry has its version');
      const ev: Event = value[0] === EVENT_PUT
        ? { type: 'put', kv: makeKv(userKey, vk, rec, false) }
        : { type: 'delete', kv: { key: userKey, createRevision: 0, modRevision: main, version: 0, value: Buffer.alloc(0), lease: 0 } };
      if (prev) ev.prevKv = prev;
      events.push(ev);
    }
    const nextRev = cut ? lastMain + 1 : rev + 1;
    return { events, nextRev };
  }

  /** A lease's record and attached keys, or null. */
  lease(id: number): { ttl: number; keys: Buffer[] } | null {
    this.checkOpen();
    const raw = this.leaseDb.get(encodeLeaseId(id));
    const rec = raw === undefined ? undefined : { ttl: readU64(raw, 0) };
    if (rec === undefined) return null;
    const keys: Buffer[] = [];
    for (const k of this.leaseKeyDb.getKeys({ start: encodeLeaseId(id), end: encodeLeaseId(id + 1) })) keys.push(Buffer.from((k as Buffer).subarray(8)));
    return { ttl: rec.ttl, keys };
  }

  leases(): LeaseRecord[] {
    this.checkOpen();
    const out: LeaseRecord[] = [];
    for (const { key, value } of this.leaseDb.getRange({})) out.push({ id: readU64(key as Buffer, 0), ttl: readU64(value, 0) });
    return out;
  }

  /**
   * A crc32 over every version a read at some revision in [compact, revision]
   * can see: versions with compact < main <= revision, plus each key's newest
   * version at or below the compact revision unless it is a tombstone. It does
   * not depend on physical compaction progress, so it is equal on every member
   * at the same revision.
   */
  hash(revision = 0): HashResult {
    this.checkOpen();
    const { rev, c } = this.hashBounds(revision);
    const st = { h: 0, keptGroup: null as Buffer | null };
    this.hashChunk(st, rev, c, undefined, undefined, Infinity);
    return { hash: st.h >>> 0, revision: rev, compactRevision: c };
  }

  /**
   * The same hash, computed in chunks of hashChunkEntriesMax versions with
   * the event loop free in between, over one lmdb read snapshot held for the
   * whole walk (so concurrent applies and compaction do not change it).
   */
  async hashAsync(revision = 0, hashChunkEntriesMax = 10_000): Promise<HashResult> {
    this.checkOpen();
    const { rev, c } = this.hashBounds(revision);
    // The read snapshot must hold every revision up to rev: commit first.
    await this.commitBatch();
    this.checkOpen();
    const txn = this.env.useReadTransaction();
    try {
      const st = { h: 0, keptGroup: null as Buffer | null };
      let from: Buffer | undefined;
      for (;;) {
        const last = this.hashChunk(st, rev, c, txn, from, hashChunkEntriesMax);
        if (last === undefined) break;
        from = last;
        await new Promise<void>((r) => setImmediate(r));
        this.checkOpen();
      }
      return { hash: st.h >>> 0, revision: rev, compactRevision: c };
    } finally {
      txn.done();
    }
  }

  private hashBounds(revision: number): { rev: number; c: number } {
    const rev = revision === 0 ? this.rev : revision;
    if (rev > this.rev) throw new KeelsonError('future revision', undefined, { currentRevision: this.rev });
    if (rev < this.compactRev) throw new KeelsonError('compacted', undefined, { compactRevision: this.compactRev });
    return { rev, c: this.compactRev };
  }

  /** Hashes up to max versions after `from`; returns the last key when it stopped early. */
  private hashChunk(st: { h: number; keptGroup: Buffer | null }, rev: number, c: number, txn: Transaction | undefined, from: Buffer | undefined, max: number): Buffer | undefined {
    let n = 0;
    for (const { key: vk, value: rec } of this.kv.getRange({ start: from, exclusiveStart: from !== undefined, transaction: txn })) {
      if (n++ >= max) return from;
      from = vk;
      const main = versionMain(vk);
      if (main > rev) continue;
      if (main > c) {
        st.h = crc32(rec, crc32(vk, st.h));
        continue;
      }
      // The first version at or below c in this group is the kept one.
      if (st.keptGroup !== null && sameGroup(vk, st.keptGroup)) continue;
      st.keptGroup = vk;
      if (!recordTombstone(rec)) st.h = crc32(rec, crc32(vk, st.h));
    }
    return undefined;
  }


  // -------------------------------------------------------------------------
  // Physical compaction
  // -------------------------------------------------------------------------

  /** True while physical compaction lags the logical compact revision. */
  compactPending(): boolean {
    // Done means the position is past every entry of revision C - 1 (sub = max).
    const p = this.compactRev - 1;
    return this.compactDoneMain < p || (this.compactDoneMain === p && this.compactDoneSub !== 0xffffffff);
  }

  /**
   * Removes, in one write transaction, what no read can see any more for up
   * to compactionBatchKeysMax revision-index entries at or below the compact
   * revision. Returns true when more work remains. For each entry (r, key):
   * the version just older than r is superseded (it can only be the version
   * an earlier compaction kept, the rest went when their own entries were
   * handled) and is removed; r itself is removed if a newer version at or
   * below the compact revision exists, or if it is a tombstone and the newest
   * one (nothing older remains for it to hide). Entries are handled in
   * ascending order, so after every batch each key's newest version at any
   * readable revision is unchanged.
   */
  compactStep(): boolean {
    this.checkOpen();
    // Physical compaction works at C - 1 (see the overview).
    const c = this.compactRev - 1;
    if (!this.compactPending()) return false;
    let doneMain = this.compactDoneMain;
    let doneSub = this.compactDoneSub;
    let n = 0;
    // In the open batch like an apply (its own transaction only while a
    // commit is finishing).
    if (this.batch === null) this.openBatch();
    this.env.transactionSync(() => {
      const start = doneSub === 0xffffffff ? encodeRevKey(doneMain + 1, 0) : encodeRevKey(doneMain, doneSub + 1);
      const end = encodeRevKey(c + 1, 0);
      for (const { key: rk, value } of this.revIdx.getRange({ start, end, limit: this.compactionBatchKeysMax })) {
        const main = revKeyMain(rk);
        const sub = revKeySub(rk);
        const userKey = Buffer.from(value.subarray(1));
        const vk = encodeVersionKey(userKey, main, sub, value[0] === EVENT_DELETE);
        const group = encodeGroup(userKey);
        // Newer version (sorts just before vk in the descending group).
        let newerAtOrBelowC = false;
        for (const { key: k2 } of this.kv.getRange({ start: vk, end: group, reverse: true, limit: 2 })) {
          if (!k2.equals(vk) && versionMain(k2) <= c) newerAtOrBelowC = true;
        }
        let self = false;
        let older: Buffer | undefined;
        for (const k of this.kv.getKeys({ start: vk, limit: 2 })) {
          const k2 = k as Buffer;
          if (k2.equals(vk)) self = true;
          else if (sameGroup(k2, vk)) older = k2;
        }
        if (older !== undefined) this.kv.removeSync(older);
        if (self && (newerAtOrBelowC || versionTombstone(vk))) this.kv.removeSync(vk);
        this.revIdx.removeSync(rk);
        doneMain = main;
        doneSub = sub;
        n++;
      }
      if (n < this.compactionBatchKeysMax) {
        doneMain = c;
        doneSub = 0xffffffff;
      }
      this.meta.putSync('compactDone', [doneMain, doneSub]);
    }, 0x10000 as never);
    this.compactDoneMain = doneMain;
    this.compactDoneSub = doneSub;
    return this.compactPending();
  }

  /** Entries stored in the version and revision-index databases (tests and metrics). */
  entryCounts(): { versions: number; revIndex: number } {
    this.checkOpen();
    return { versions: this.kv.getKeysCount(), revIndex: this.revIdx.getKeysCount() };
  }

  /** Runs compactStep until done, yielding to the event loop between batches. */
  async compactAll(): Promise<void> {
    while (this.compactStep()) await new Promise<void>((r) => setImmediate(r));
  }

  // -------------------------------------------------------------------------
  // Durability, size, snapshots
  // -------------------------------------------------------------------------

  /** Commits the open batch; returns the applied index that is now durable. */
  async flush(): Promise<number> {
    this.checkOpen();
    const applied = this.applied;
    await this.commitBatch();
    return applied;
  }

  /**
   * Bytes of the pages the keyspace's databases occupy: the figure the quota
   * is checked against. Unlike the file size it falls when compaction frees
   * pages (lmdb reuses free pages; the file never shrinks).
   */
  sizeBytes(): number {
    let pages = 0;
    let pageSize = 4096;
    for (const db of [this.kv, this.revIdx, this.leaseDb, this.leaseKeyDb, this.headDb, this.meta]) {
      const s = db.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
      pageSize = s.pageSize;
    }
    return pages * pageSize;
  }

  /**
   * A consistent copy of the whole lmdb state. The copy runs off the JS
   * thread in one lmdb read transaction; the applied index is read from the
   * copy itself, so it matches the data even if applies ran meanwhile.
   * Format: magic:8 index:8 crc32:4 then the lmdb file. The whole copy is in
   * memory: the Raft MsgSnap path needs it so; snapshotStream() does not.
   */
  async snapshot(): Promise<{ index: number; data: Buffer }> {
    const s = await this.snapshotStream();
    const parts: Buffer[] = [];
    for await (const c of s.chunks) parts.push(c);
    return { index: s.index, data: Buffer.concat(parts, s.sizeBytes) };
  }

  /**
   * The bytes of snapshot(), in chunks of at most snapshotChunkBytes: memory
   * stays at one chunk whatever the size of the store (a backup of a large
   * store must not hold it in memory). The copy is a temporary file beside
   * the store, read twice (once for the checksum in the header, once to
   * send), and removed when the stream ends, is abandoned (the consumer's
   * loop breaks or throws), discard() is called, the keyspace closes, or, after
   * a crash, the next open.
   */
  async snapshotStream(): Promise<KeyspaceSnapshotStream> {
    this.checkOpen();
    const tmp = path.join(this.dir, `${SNAPSHOT_TMP_PREFIX}${process.pid}-${++this.snapshotSeq}.mdb`);
    const discard = () => this.removeSnapshotCopy(tmp);
    this.snapshotFiles.add(tmp);
    let index: number;
    let crc = 0;
    let fileBytes = 0;
    try {
      // The copy is of the committed state: commit what is applied so far.
      await this.commitBatch();
      await this.env.backup(tmp, true);
      const copy = open({ path: tmp, maxDbs: 8, readOnly: true });
      index = (copy.openDB('meta', { encoding: 'msgpack' }).get('applied') as number | undefined) ?? 0;
      await copy.close();
      fs.rmSync(`${tmp}-lock`, { force: true });
      for await (const c of readChunks(tmp)) {
        crc = crc32(c, crc);
        fileBytes += c.length;
      }
    } catch (e) {
      discard();
      throw e;
    }
    const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
    SNAPSHOT_MAGIC.copy(header, 0);
    header.writeUInt32BE(Math.floor(index / 0x100000000), 8);
    header.writeUInt32BE(index >>> 0, 12);
    header.writeUInt32BE(crc >>> 0, 16);
    async function* chunks(): AsyncGenerator<Buffer> {
      try {
        yield header;
        let sent = 0;
        for await (const c of readChunks(tmp)) {
          sent += c.length;
          yield c;
        }
        // The file is private to this stream: a change in size means something else wrote it.
        if (sent !== fileBytes) throw new Error(`keelson: keyspace snapshot copy changed size while it was read (${fileBytes} -> ${sent} bytes)`);
      } finally {
        discard();
      }
    }
    return { index, sizeBytes: SNAPSHOT_HEADER_BYTES + fileBytes, chunks: chunks(), discard };
  }

  /**
   * Replaces the whole state with a snapshot. The new file is written and
   * synced beside the old one and renamed over it, so a crash leaves either
   * the old state (the leftover is removed on open) or the new one. A
   * snapshot whose checksum or index does not match is refused.
   */
  async restore(index: number, data: Buffer): Promise<void> {
    this.checkOpen();
    assert(this.pendingApplies === 0 && !this.restoring, 'restore with applies or another restore in flight');
    await this.commitBatch();
    this.restoring = true;
    try {
      await this.restoreFile(index, data);
    } finally {
      this.restoring = false;
    }
    this.opts.onRestored?.(index);
  }

  private async restoreFile(index: number, data: Buffer): Promise<void> {
    if (data.length < SNAPSHOT_HEADER_BYTES || !data.subarray(0, 8).equals(SNAPSHOT_MAGIC)) throw new KeelsonError('bad request', 'not a keyspace snapshot');
    const snapIndex = readU64(data, 8);
    const file = data.subarray(SNAPSHOT_HEADER_BYTES);
    if ((crc32(file) >>> 0) !== data.readUInt32BE(16)) throw new KeelsonError('bad request', 'keyspace snapshot checksum mismatch');
    if (snapIndex !== index) throw new KeelsonError('bad request', `snapshot is at index ${snapIndex}, not ${index}`);
    const target = path.join(this.dir, RESTORE_FILE);
    const fh = await fs.promises.open(target, 'w');
    try {
      await fh.writeFile(file);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.env.close();
    fs.renameSync(target, path.join(this.dir, FILE));
    const dfd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
    this.openEnv();
    assert(this.applied === index, `restored applied index ${this.applied} is the snapshot index ${index}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // What is applied is committed before the file closes (a failed commit
    // leaves it to the WAL, as a crash would).
    const b = this.batch;
    if (b !== null) {
      this.endBatch(b, this.broken ?? undefined);
      await b.done;
    }
    for (const f of [...this.snapshotFiles]) this.removeSnapshotCopy(f);
    await this.env.close();
  }

  /** Removes a snapshotStream() copy (and its lock file) once. */
  private removeSnapshotCopy(file: string): void {
    if (!this.snapshotFiles.delete(file)) return;
    fs.rmSync(file, { force: true });
    fs.rmSync(`${file}-lock`, { force: true });
  }

  private checkOpen(): void {
    if (this.closed) throw new KeelsonError('closed');
    if (this.restoring) throw new KeelsonError('closed', 'a snapshot is being restored');
    if (this.broken) throw new Error(`keelson keyspace is unusable after a failed write: ${this.broken.message}`);
  }
}

/** A keyspace snapshot being read (Keyspace.snapshotStream()). */
export interface KeyspaceSnapshotStream {
  /** The applied index the copy holds. */
  index: number;
  /** Total bytes the chunks add up to (the length of snapshot().data). */
  sizeBytes: number;
  /** Chunks of at most snapshotChunkBytes; the copy is removed when they end or the loop over them stops. */
  chunks: AsyncIterable<Buffer>;
  /** Removes the copy now (a stream that will not be read). Idempotent. */
  discard(): void;
}

/** The write transaction that applies go into between commits. */
interface OpenBatch {
  /** Resolves lmdb-js's hold on the transaction: it commits. */
  release(v: unknown): void;
  /** Rejects the hold: lmdb-js aborts the transaction. */
  abort(e: unknown): void;
  /** Settles when the commit (or abort) is over and `batch` is cleared; never rejects (a failure sets `broken`). */
  done: Promise<void>;
  closing: boolean;
  entries: number;
  bytes: number;
  timer: NodeJS.Timeout | null;
}

/** lmdb-js's getBinaryFast with a read transaction (its typings omit the options). */
function getFast(db: Database<Buffer, Buffer>, key: Buffer, txn: Transaction | undefined): Buffer | undefined {
  return (db.getBinaryFast as (k: Buffer, o?: { transaction: Transaction }) => Buffer | undefined).call(db, key, txn ? { transaction: txn } : undefined);
}

/** A read revision above every stored one (the walk inside a write transaction). */
const REV_MAX_READ = Number.MAX_SAFE_INTEGER;

function compareOne(c: Compare, kv: KeyValue | null): boolean {
  if (c.target === 'value') {
    // A missing key has no value: every value compare on it fails (as in etcd).
    if (kv === null) return false;
    return cmpResult(Buffer.compare(kv.value, c.value as Buffer), c.result);
  }
  const n = kv === null ? 0 : c.target === 'version' ? kv.version : c.target === 'create' ? kv.createRevision : c.target === 'mod' ? kv.modRevision : kv.lease;
  const want = c.number as number;
  return cmpResult(n < want ? -1 : n > want ? 1 : 0, c.result);
}

function cmpResult(d: number, r: Compare['result']): boolean {
  switch (r) {
    case 'equal': return d === 0;
    case 'notEqual': return d !== 0;
    case 'less': return d < 0;
    case 'greater': return d > 0;
  }
}

function sortKvs(kvs: KeyValue[], target: NonNullable<RangeRequest['sortTarget']>, descend: boolean): void {
  const sign = descend ? -1 : 1;
  const num = (kv: KeyValue): number => (target === 'version' ? kv.version : target === 'create' ? kv.createRevision : kv.modRevision);
  kvs.sort((a, b) => {
    let d: number;
    if (target === 'key') d = Buffer.compare(a.key, b.key);
    else if (target === 'value') d = Buffer.compare(a.value, b.value) || Buffer.compare(a.key, b.key);
    else d = num(a) - num(b) || Buffer.compare(a.key, b.key);
    return d * sign;
  });
}

