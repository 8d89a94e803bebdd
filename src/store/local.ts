// LocalKeyspaceStore: the Store interface on a keyspace without Raft. Each
// request is validated, encoded exactly as it would be proposed, and applied
// at once as the next log entry, so it exercises the same codec and apply
// path as a replicated member. Used by tests, the contract suite, and as the
// model the embedded (Raft) store must match.
//
// It is its own lease primary (a single member is always the leader), runs
// physical compaction in bounded batches between other work, and enforces
// the backend quota: once sizeBytes() is past quotaBackendBytes, it raises the
// NOSPACE alarm through the apply path and refuses writes that add data until
// compaction brings the size back under the quota.
import { KeelsonError } from './errors.ts';
import { Lessor, pickLeaseId } from './lease/lessor.ts';
import { AutoCompactor, type AutoCompactMode } from './mvcc/autocompact.ts';
import { Keyspace } from './mvcc/keyspace.ts';
import {
  encodeChecked, needsSpace, type ApplyResult, type CompactResponse, type DeleteRangeResponse, type LeaseGrantResponse,
  type LeaseRevokeResponse, type PutResponse, type RangeResponse, type Request, type Response, type TxnRequest, type TxnResponse,
} from './mvcc/requests.ts';
import type {
  DeleteOptions, HashKVResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseTimeToLiveResponse, MemberListResponse,
  PutOptions, RangeOptions, StatusResponse, Store, WatchStartOptions, WatchStream,
} from './store.ts';
import { WatchHub } from './watch/hub.ts';

/** Entries applied in one lmdb transaction by the local store. */
const applyBatchEntriesMax = 1000;

export interface LocalKeyspaceStoreOptions {
  dir: string;
  /** Monotonic milliseconds, for lease deadlines. Default: performance.now. */
  clock?: () => number;
  /** Picks lease ids for grants without one (positive integers < 2^53). Default: Math.random based. */
  leaseId?: () => number;
  /** Backend quota in bytes; 0 = none. Default 2 GiB (etcd's default). */
  quotaBackendBytes?: number;
  compactionBatchKeysMax?: number;
  watchBufferEventsMax?: number;
  catchupScanMax?: number;
  minLeaseTtlSeconds?: number;
  /** Check lease expiry every this many ms (timer unref'd); 0 = only when tickLeases() is called. Default 500. */
  leaseTickMs?: number;
  /** Progress notifications every this many ms; 0 = only on progressTick(). Default 0. */
  progressNotifyMs?: number;
  /** Automatic compaction (keep the last N revisions, or a time window); off by default. */
  autoCompact?: AutoCompactMode;
  /** Schedules watch catch-up steps (tests). */
  schedule?: (fn: () => void) => void;
}

export class LocalKeyspaceStore implements Store {
  readonly keyspace: Keyspace;
  readonly hub: WatchHub;
  readonly lessor: Lessor;
  private readonly opts: LocalKeyspaceStoreOptions;
  private readonly results = new Map<number, ApplyResult>();
  private nextProposalId = 1;
  /** Index of the next log entry. */
  private nextIndex: number;
  private batch: { index: number; term: number; data: Buffer }[] = [];
  private batchWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private batchScheduled = false;
  private sizeCache = -1;
  private readonly autoCompactor: AutoCompactor | null;
  private autoCompacting = false;
  private readonly clock: () => number;
  private compacting: Promise<void> | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly quota: number;

  constructor(opts: LocalKeyspaceStoreOptions) {
    this.opts = opts;
    const clock = opts.clock ?? (() => performance.now());
    this.clock = clock;
    this.autoCompactor = opts.autoCompact ? new AutoCompactor(opts.autoCompact) : null;
    this.quota = opts.quotaBackendBytes ?? 2 * 1024 * 1024 * 1024;
    let hub: WatchHub | undefined;
    let lessor: Lessor | undefined;
    this.keyspace = new Keyspace({
      dir: opts.dir,
      compactionBatchKeysMax: opts.compactionBatchKeysMax,
      onApplied: (id, r) => this.results.set(id, r),
      onEvents: (events, rev) => hub?.notify(events, rev),
      onLeaseChange: (c) => lessor?.onLeaseChange(c),
      onRestored: () => {
        hub?.resync();
        lessor?.reload();
      },
    });
    this.hub = hub = new WatchHub(this.keyspace, {
      watchBufferEventsMax: opts.watchBufferEventsMax,
      catchupScanMax: opts.catchupScanMax,
      schedule: opts.schedule,
    });
    this.nextIndex = this.keyspace.appliedIndex() + 1;
    this.lessor = lessor = new Lessor(this.keyspace, { clock, minTtlSeconds: opts.minLeaseTtlSeconds });
    this.lessor.promote();
    const leaseTickMs = opts.leaseTickMs ?? 500;
    if (leaseTickMs > 0) this.timers.push(setInterval(() => void this.tickLeases().catch(() => {}), leaseTickMs).unref());
    if (opts.progressNotifyMs) this.timers.push(setInterval(() => this.hub.progressTick(), opts.progressNotifyMs).unref());
    if (this.keyspace.compactPending()) this.startCompaction();
  }

  /**
   * Applies one request as the next log entry and returns its result.
   * Concurrent calls are pipelined: each takes the next index at once, and
   * lmdb-js commits the entries that queued up meanwhile in one transaction.
   */
  private async propose(req: Request): Promise<Response> {
    if (this.closed) throw new KeelsonError('closed');
    const id = this.nextProposalId++;
    const data = encodeChecked({ id, req });
    if (this.quota > 0 && needsSpace(req) && !this.keyspace.alarms().includes('NOSPACE') && this.sizeBytes() > this.quota) {
      await this.applyRaw({ op: 'alarm', action: 'activate', alarm: 'NOSPACE' });
    }
    await this.enqueue(data);
    const r = this.results.get(id);
    this.results.delete(id);
    if (r === undefined) throw new Error('keelson: applied proposal has no result'); // invariant
    if (!r.ok) throw r.error;
    return r.response;
  }

  /**
   * Group commit, as the Raft driver does with committed entries: proposals
   * made in one event-loop turn are applied as one batch (at most
   * applyBatchEntriesMax entries) in one lmdb transaction.
   */
  private enqueue(data: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.batch.push({ index: this.nextIndex++, term: 1, data });
      this.batchWaiters.push({ resolve, reject });
      if (this.batch.length >= applyBatchEntriesMax) this.flushBatch();
      else if (!this.batchScheduled) {
        this.batchScheduled = true;
        setImmediate(() => this.flushBatch());
      }
    });
  }

  /**
   * The keyspace size for the quota check, re-read at most once per applied
   * batch (reading lmdb's page statistics costs more than a put).
   */
  private sizeBytes(): number {
    if (this.sizeCache < 0) this.sizeCache = this.keyspace.sizeBytes();
    return this.sizeCache;
  }

  private flushBatch(): void {
    this.batchScheduled = false;
    if (this.batch.length === 0) return;
    const entries = this.batch;
    const waiters = this.batchWaiters;
    this.batch = [];
    this.batchWaiters = [];
    // Without a log to replay, a write is acknowledged only once its lmdb
    // commit is durable.
    this.keyspace.apply(entries).then(() => this.keyspace.flush()).then(
      () => {
        this.sizeCache = -1;
        for (const w of waiters) w.resolve();
        this.maybeAutoCompact();
      },
      (e) => { for (const w of waiters) w.reject(e); },
    );
  }

  private applyRaw(req: Request): Promise<Response> {
    return this.propose(req);
  }

  async range(key: Buffer, opts: RangeOptions = {}): Promise<RangeResponse> {
    if (this.closed) throw new KeelsonError('closed');
    const { serializable: _s, ...rest } = opts;
    return this.keyspace.range({ key, ...rest });
  }

  async put(key: Buffer, value: Buffer, opts: PutOptions = {}): Promise<PutResponse> {
    return (await this.propose({ op: 'put', key, value, ...opts })) as PutResponse;
  }

  async deleteRange(key: Buffer, opts: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    return (await this.propose({ op: 'deleteRange', key, ...opts })) as DeleteRangeResponse;
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    return (await this.propose({ op: 'txn', compare: req.compare, success: req.success, failure: req.failure })) as TxnResponse;
  }

  async compact(revision: number, opts: { physical?: boolean } = {}): Promise<CompactResponse> {
    const r = (await this.propose({ op: 'compact', revision, physical: opts.physical })) as CompactResponse;
    const done = this.startCompaction();
    if (opts.physical) await done;
    return r;
  }

  private maybeAutoCompact(): void {
    if (!this.autoCompactor || this.autoCompacting || this.closed) return;
    const target = this.autoCompactor.next(this.clock(), this.keyspace.revision(), this.keyspace.compactRevision());
    if (target === 0) return;
    this.autoCompacting = true;
    this.compact(target).catch(() => {}).finally(() => { this.autoCompacting = false; });
  }

  /** Runs physical compaction in bounded batches, one per event-loop turn. */
  private startCompaction(): Promise<void> {
    if (this.compacting) return this.compacting;
    this.compacting = (async () => {
      try {
        while (!this.closed && this.keyspace.compactStep()) await new Promise<void>((r) => setImmediate(r));
        this.sizeCache = -1;
        if (!this.closed && this.keyspace.alarms().includes('NOSPACE') && this.sizeBytes() <= this.quota) {
          await this.applyRaw({ op: 'alarm', action: 'deactivate', alarm: 'NOSPACE' });
        }
      } finally {
        this.compacting = null;
      }
    })();
    return this.compacting;
  }

  watch(key: Buffer, opts: WatchStartOptions = {}): WatchStream {
    return this.hub.watch({ key, ...opts });
  }

  async leaseGrant(ttl: number, id = 0): Promise<LeaseGrantResponse> {
    const leaseId = id !== 0 ? id : pickLeaseId((x) => this.keyspace.lease(x) !== null, this.opts.leaseId);
    return (await this.propose({ op: 'leaseGrant', leaseId, ttl: this.lessor.grantTtl(ttl) })) as LeaseGrantResponse;
  }

  async leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    return (await this.propose({ op: 'leaseRevoke', leaseId: id })) as LeaseRevokeResponse;
  }

  async leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    if (this.closed) throw new KeelsonError('closed');
    const ttl = this.lessor.keepAlive(id);
    return { header: { revision: this.keyspace.revision() }, id, ttl };
  }

  async leaseTimeToLive(id: number, opts: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    if (this.closed) throw new KeelsonError('closed');
    const t = this.lessor.timeToLive(id, opts.keys === true);
    return { header: { revision: this.keyspace.revision() }, ...t };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    if (this.closed) throw new KeelsonError('closed');
    return { header: { revision: this.keyspace.revision() }, leases: this.lessor.list().map((id) => ({ id })) };
  }

  /** Proposes the expiry of every lease past its deadline (called by a timer, or by tests with a fake clock). */
  async tickLeases(): Promise<number[]> {
    if (this.closed) return [];
    const ids = this.lessor.expired();
    if (ids.length === 0) return [];
    try {
      await this.propose({ op: 'leaseExpire', leaseIds: ids });
    } catch (e) {
      this.lessor.retry(ids);
      throw e;
    }
    return ids;
  }

  async hashKV(revision = 0): Promise<HashKVResponse> {
    if (this.closed) throw new KeelsonError('closed');
    const h = await this.keyspace.hashAsync(revision);
    return { header: { revision: this.keyspace.revision() }, hash: h.hash, compactRevision: h.compactRevision, hashRevision: h.revision };
  }

  async status(): Promise<StatusResponse> {
    if (this.closed) throw new KeelsonError('closed');
    return {
      header: { revision: this.keyspace.revision() },
      version: 'keelson-0.1.0',
      dbSizeInUse: this.keyspace.sizeBytes(),
      leader: 1,
      raftIndex: this.keyspace.appliedIndex(),
      raftTerm: 1,
      raftAppliedIndex: this.keyspace.appliedIndex(),
      compactRevision: this.keyspace.compactRevision(),
      errors: this.keyspace.alarms(),
      isLearner: false,
    };
  }

  async members(): Promise<MemberListResponse> {
    return {
      header: { revision: this.keyspace.revision() },
      members: [{ id: 1, name: 'local', peerUrls: [], clientUrls: [], isLearner: false }],
    };
  }

  /** Deactivates an alarm (operator action once space has been reclaimed). */
  async disarm(alarm: 'NOSPACE' | 'CORRUPT'): Promise<void> {
    await this.applyRaw({ op: 'alarm', action: 'deactivate', alarm });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    this.hub.close();
    this.closed = true;
    if (this.compacting) await this.compacting.catch(() => {});
    await this.keyspace.close();
  }
}
