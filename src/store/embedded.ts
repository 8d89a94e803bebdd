// EmbeddedStore: one member of a replicated Keelson store, in the caller's
// process. It implements ClusterStore (src/store/cluster.ts) on the Raft
// driver (src/store/raft/driver.ts) and the MVCC keyspace, watch hub and
// lessor, wired as docs/mvcc.md "Wiring it to the Raft driver" describes and
// as LocalKeyspaceStore (src/store/local.ts) does without Raft.
//
// Requests
// - Writes (put, delete, txn, compact, lease grant/revoke/expire, alarms) are
//   encoded once as a Proposal {id, from: memberId, req} and proposed. On a
//   follower the core forwards the proposal to the leader. The caller's
//   promise resolves when THIS member applies the entry (onApplied with
//   from === memberId), so a follower's caller also reads its own write
//   locally afterwards. With no leader the proposal is retried until the
//   request timeout; past it the caller gets 'timeout' (the write may still
//   take effect later, as with etcd).
// - Reads are linearizable by default: a ReadIndex round (shared by every
//   read that arrives before it is sent) confirms the leader's commit index,
//   and the read runs once this member applied it. Serializable reads run on
//   the local keyspace at once.
// - Leases: the leader's lessor keeps deadlines and proposes expiries; on a
//   follower, keep-alive and time-to-live go to the leader through the
//   `peerStore` option (in-process clusters) or fail with 'not leader'
//   naming it (a networked server forwards them over its client API).
//
// Replicated membership metadata (names, peer and client URLs) travels in the
// log: as the context of ConfChange entries (add, remove, promote) and as
// member-update entries (a payload starting with byte 0xc1, which no
// msgpack-encoded proposal starts with). It is kept in members.json beside
// the keyspace, with the index it reflects, and travels in snapshots.
//
// Data dir layout: member.json (identity and bootstrap configuration, written
// once), members.json (membership metadata), keyspace/ (lmdb), wal/ (the WAL).
//
// Durability: an acknowledged write is in the WAL of a quorum (fdatasync
// before the ack); lmdb commits need not be synced, since after a crash the
// driver replays the WAL from the keyspace's stored applied index.
import fs from 'node:fs';
import path from 'node:path';
import { isNativeError, Wal, type ConfState, type RaftRole } from '../native.ts';
import type { AlarmMember, ClusterHeader, ClusterStore, MemberChangeResponse, SnapshotStream } from './cluster.ts';
import { clusterIdOf, memberIdOf, newMemberId, type InitialMember } from './embedded/ids.ts';
import { decodeSnapshotFile, SnapshotFileError, streamSnapshotFile, type SnapshotHeader } from './embedded/snapshot-file.ts';
import { isKeelsonError, KeelsonError } from './errors.ts';
import { Lessor, pickLeaseId } from './lease/lessor.ts';
import { AutoCompactor, type AutoCompactMode } from './mvcc/autocompact.ts';
import { Keyspace, type KeyspaceSnapshotStream } from './mvcc/keyspace.ts';
import {
  encodeChecked, needsSpace, type AlarmType, type ApplyResult, type CompactResponse, type DeleteRangeResponse,
  type LeaseGrantResponse, type LeaseRevokeResponse, type PutResponse, type RangeResponse, type Request, type Response,
  type TxnRequest, type TxnResponse,
} from './mvcc/requests.ts';
import type { DecodedConfChange } from './raft/codec.ts';
import { RaftDriver, type Scheduler } from './raft/driver.ts';
import { MemoryNetwork } from './raft/memory.ts';
import type { CommittedEntry } from './raft/state-machine.ts';
import type { Transport } from './raft/transport.ts';
import type {
  DeleteOptions, HashKVResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseTimeToLiveResponse, Member,
  MemberListResponse, PutOptions, RangeOptions, StatusResponse, WatchStartOptions, WatchStream,
} from './store.ts';
import { WatchHub } from './watch/hub.ts';

export type { InitialMember } from './embedded/ids.ts';
export { snapshotFileStatus, type SnapshotFileStatus, type SnapshotHeader, SnapshotFileError } from './embedded/snapshot-file.ts';

export const VERSION = 'keelson-0.1.0';
/** First byte of a member-metadata entry (0xc1 is never used by msgpack). */
const MEMBER_ENTRY = 0xc1;
const EMPTY = Buffer.alloc(0);
/**
 * What one applied entry is assumed to add to the keyspace's size at most, for
 * reusing a size measurement (see sizeBytes): its bytes several times over
 * (the value and key in the kv tree, the revision index, the key head) plus a
 * few page splits in each tree.
 */
/** Copies made (with a flush between) before a MsgSnap's payload gives up on reaching its index. */
const snapshotPayloadAttemptsMax = 50;
/** Retries of this member's attribute publication (name, client URLs) after a failed proposal, and the pause between them. */
const publishAttemptsMax = 20;
const publishRetryMs = 500;
const sizeGrowthPerByte = 16;
const sizeGrowthPerEntryBytes = 64 * 1024;

export interface EmbeddedStoreOptions {
  /** Directory of this member's data; created when absent. */
  dataDir: string;
  /** This member's name (etcd --name). Default 'default'. */
  name?: string;
  /** Taken as given; derived from the name, peer URLs and cluster token otherwise. */
  memberId?: number;
  clusterId?: number;
  /** Mixed into derived ids so that two clusters with the same names differ. Default 'keelson-cluster'. */
  clusterToken?: string;
  /**
   * The members at bootstrap (etcd --initial-cluster). Default: this member
   * alone. Ignored on restart (member.json in the data dir wins).
   */
  initialCluster?: InitialMember[];
  /** 'new' bootstraps a cluster; 'existing' joins one this member was added to (memberAdd). Default 'new'. */
  initialClusterState?: 'new' | 'existing';
  /** This member's advertised client URLs (published into the membership on start). */
  clientUrls?: string[];
  /** Required with more than one member; a lone member needs none. */
  transport?: Transport;
  /** Heartbeat interval in ms. Default 100; 0 = no timer (tests call tick()). */
  tickMs?: number;
  /** Election timeout in heartbeats. Default 10. */
  electionTicks?: number;
  scheduler?: Scheduler;
  seed?: number;
  /** Backend quota in bytes; 0 = none. Default 2 GiB. */
  quotaBackendBytes?: number;
  /**
   * How often applied entries are committed to lmdb, with their fsync (etcd
   * --backend-batch-interval), in ms; and after how many entries at the
   * latest (--backend-batch-limit). Defaults 100 ms and 10,000, as etcd's.
   * See docs/mvcc.md, "Commit batching", for what a longer interval trades.
   */
  backendBatchIntervalMs?: number;
  backendBatchLimit?: number;
  autoCompact?: AutoCompactMode;
  /** Replicated requests waiting for their entry to apply; past it new ones get 'too many requests'. Default 100,000. */
  proposalsWaitingMax?: number;
  /** How long a replicated request may wait for its entry to apply. Default 7,000 ms. */
  requestTimeoutMs?: number;
  /** Lease expiry check period on the leader; 0 = only tickLeases(). Default 500. */
  leaseTickMs?: number;
  minLeaseTtlSeconds?: number;
  /** Cross-member hash check period on the leader; 0 = only checkHashes(). Default 0. */
  hashCheckMs?: number;
  /** Progress notifications to watchers every this many ms; 0 = none. */
  progressNotifyMs?: number;
  /** Monotonic milliseconds, for lease deadlines. */
  clock?: () => number;
  leaseId?: () => number;
  snapshotEntries?: number;
  snapshotCatchUpEntries?: number;
  watchBufferEventsMax?: number;
  catchupScanMax?: number;
  /**
   * Another member's store in this process, for what only the leader serves
   * (lease keep-alive and time-to-live, learner promotion checks) and for
   * the hash check. Set by startCluster(); a networked server passes the
   * equivalent over its client connections or leaves it unset.
   */
  peerStore?: (id: number) => EmbeddedStore | undefined;
  /** The hash of another member at a revision, for the corruption check (networked members). */
  peerHashKV?: (id: number, revision: number) => Promise<HashKVResponse>;
  walSegmentBytes?: number;
  /** Testing only: the WAL's fdatasync fails after this many succeeded. */
  testingFailFdatasyncAfter?: number;
  /** Called when the member stops for good (a WAL I/O error). */
  onFatal?: (err: Error) => void;
}

interface MemberFile {
  memberId: number;
  clusterId: number;
  name: string;
  voters: number[];
  learners: number[];
}

interface MemberOp {
  reqId: number;
  from: number;
  member?: Member;
  /** For member-metadata entries. */
  op?: 'update' | 'attrs';
  id?: number;
  peerUrls?: string[];
  name?: string;
  clientUrls?: string[];
}

interface Waiter {
  resolve: (r: ApplyResult) => void;
  deadline: number;
  /** The Raft term when the core took the proposal (0 until it did). */
  term: number;
}

function writeFileDurable(file: string, data: string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

function validUrls(urls: unknown): urls is string[] {
  return Array.isArray(urls) && urls.length > 0 && urls.every((u) => typeof u === 'string' && u.length > 0 && u.length <= 4096);
}

export class EmbeddedStore implements ClusterStore {
  readonly memberId: number;
  readonly clusterId: number;
  readonly name: string;
  readonly keyspace: Keyspace;
  readonly hub: WatchHub;
  readonly lessor: Lessor;
  readonly driver: RaftDriver;
  private readonly opts: EmbeddedStoreOptions;
  private readonly dataDir: string;
  private readonly clock: () => number;
  private readonly quota: number;
  private readonly requestTimeoutMs: number;
  private readonly autoCompactor: AutoCompactor | null;
  private autoCompacting = false;
  private compacting: Promise<void> | null = null;
  private lastCompactRev: number;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** The keyspace size last measured (-1: measure again), and a bound on its growth since (see sizeBytes). */
  private sizeCache = -1;
  private sizeGrowthBoundBytes = 0;
  /** Runs request timeouts; keeps the process alive only while requests wait (all other timers are unref'd). */
  private sweepTimer: NodeJS.Timeout;
  private readsWaiting = 0;
  /** Set while a snapshot from the leader replaces the keyspace. */
  private restoring: Promise<void> | null = null;

  private nextProposalId = 1;
  /** Insertion order = deadline order (one timeout for all), so the sweep stops at the first live one. */
  private readonly waiters = new Map<number, Waiter>();
  private readonly memberWaiters = new Map<number, { resolve: () => void; reject: (e: unknown) => void; deadline: number }>();

  private memberMap = new Map<number, Member>();
  private membersIndex = 0;
  private published = false;
  /** The term of the last applied entry (proposals of older terms still waiting were lost). */
  private appliedTerm = 0;
  private publishAttempts = 0;
  private removed = false;

  constructor(opts: EmbeddedStoreOptions) {
    this.opts = opts;
    this.dataDir = opts.dataDir;
    this.clock = opts.clock ?? (() => performance.now());
    this.quota = opts.quotaBackendBytes ?? 2 * 1024 * 1024 * 1024;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 7000;
    this.autoCompactor = opts.autoCompact ? new AutoCompactor(opts.autoCompact) : null;
    fs.mkdirSync(this.dataDir, { recursive: true });

    const identity = this.loadOrCreateIdentity();
    if (!opts.transport && identity.voters.length + identity.learners.length !== 1) {
      throw new Error('keelson: a transport is required for a cluster of more than one member');
    }
    this.memberId = identity.memberId;
    this.clusterId = identity.clusterId;
    this.name = identity.name;

    let hub: WatchHub | undefined;
    let lessor: Lessor | undefined;
    this.keyspace = new Keyspace({
      dir: path.join(this.dataDir, 'keyspace'),
      commitIntervalMs: opts.backendBatchIntervalMs,
      commitEntriesMax: opts.backendBatchLimit,
      onApplied: (id, r, from) => {
        if (from !== this.memberId) return;
        const w = this.waiters.get(id);
        if (w) {
          this.waiters.delete(id);
          w.resolve(r);
        }
      },
      onEvents: (events, rev) => hub?.notify(events, rev),
      onLeaseChange: (c) => lessor?.onLeaseChange(c),
      onRestored: () => {
        hub?.resync();
        lessor?.reload();
      },
    });
    this.lastCompactRev = this.keyspace.compactRevision();
    this.hub = hub = new WatchHub(this.keyspace, { watchBufferEventsMax: opts.watchBufferEventsMax, catchupScanMax: opts.catchupScanMax });
    this.lessor = lessor = new Lessor(this.keyspace, { clock: this.clock, minTtlSeconds: opts.minLeaseTtlSeconds });

    const transport = opts.transport ?? new MemoryNetwork().transport(this.memberId);
    for (const m of this.memberMap.values()) if (m.id !== this.memberId) transport.addPeer(m.id, m.peerUrls);

    try {
      this.driver = this.openDriver(identity, transport);
    } catch (e) {
      // A WAL that cannot be opened (locked, corrupt, another member's): leave nothing open.
      this.hub.close();
      void this.keyspace.close();
      throw e;
    }
    this.driver.start();

    this.sweepTimer = setInterval(() => this.sweepTimeouts(), 100);
    this.sweepTimer.unref();
    this.timers.push(this.sweepTimer);
    const leaseTickMs = opts.leaseTickMs ?? 500;
    if (leaseTickMs > 0) this.timers.push(setInterval(() => void this.tickLeases().catch(() => {}), leaseTickMs).unref());
    if (opts.hashCheckMs) this.timers.push(setInterval(() => void this.checkHashes().catch(() => {}), opts.hashCheckMs).unref());
    if (opts.progressNotifyMs) this.timers.push(setInterval(() => this.hub.progressTick(), opts.progressNotifyMs).unref());
    if (this.keyspace.compactPending()) this.startCompaction();
  }

  /** Opens (or creates) a member; the same as `new EmbeddedStore(opts)`. */
  static open(opts: EmbeddedStoreOptions): EmbeddedStore {
    return new EmbeddedStore(opts);
  }

  private openDriver(identity: MemberFile, transport: Transport): RaftDriver {
    const opts = this.opts;
    return new RaftDriver({
      id: this.memberId,
      clusterId: this.clusterId,
      walDir: path.join(this.dataDir, 'wal'),
      voters: identity.voters,
      learners: identity.learners,
      transport,
      tickMs: opts.tickMs,
      electionTicks: opts.electionTicks,
      scheduler: opts.scheduler,
      seed: opts.seed,
      snapshotEntries: opts.snapshotEntries,
      snapshotCatchUpEntries: opts.snapshotCatchUpEntries,
      readTimeoutMs: this.requestTimeoutMs,
      walSegmentBytes: opts.walSegmentBytes,
      testingFailFdatasyncAfter: opts.testingFailFdatasyncAfter,
      stateMachine: {
        appliedIndex: () => this.keyspace.appliedIndex(),
        apply: (entries) => this.applyEntries(entries),
        flush: () => this.keyspace.flush(),
        snapshotPayload: (minIndex) => this.snapshotPayload(minIndex),
        restoreSnapshot: (data, index) => this.restoreFromPayload(data, index),
        onConfChange: (index, cc, result) => this.onConfChange(index, cc, result),
      },
      onLeaderChange: (lead, _term, role) => this.onLeaderChange(lead, role),
      onFatal: (err) => {
        this.failWaiters(err);
        opts.onFatal?.(err);
      },
    });
  }

  // -------------------------------------------------------------------------
  // Identity, bootstrap and membership metadata
  // -------------------------------------------------------------------------

  private loadOrCreateIdentity(): MemberFile {
    const file = path.join(this.dataDir, 'member.json');
    const membersFile = path.join(this.dataDir, 'members.json');
    if (fs.existsSync(file)) {
      const id = JSON.parse(fs.readFileSync(file, 'utf8')) as MemberFile;
      if (this.opts.memberId !== undefined && this.opts.memberId !== id.memberId) {
        throw new Error(`keelson: data dir ${this.dataDir} belongs to member ${id.memberId}, not ${this.opts.memberId}`);
      }
      if (fs.existsSync(membersFile)) {
        const m = JSON.parse(fs.readFileSync(membersFile, 'utf8')) as { index: number; members: Member[] };
        this.memberMap = new Map(m.members.map((x) => [x.id, x]));
        this.membersIndex = m.index;
      }
      return id;
    }
    const token = this.opts.clusterToken ?? 'keelson-cluster';
    const name = this.opts.name ?? 'default';
    const initial = this.opts.initialCluster ?? [{ id: this.opts.memberId, name, peerUrls: [], clientUrls: this.opts.clientUrls ?? [] }];
    if (initial.length === 0) throw new Error('keelson: initialCluster is empty');
    const ids = initial.map((m) => memberIdOf(m, token));
    if (new Set(ids).size !== ids.length) throw new Error('keelson: initialCluster has duplicate member ids');
    const mine = initial.findIndex((m) => m.name === name);
    const memberId = this.opts.memberId ?? (mine >= 0 ? ids[mine] : 0);
    if (memberId === 0) throw new Error(`keelson: member name '${name}' is not in initialCluster`);
    if (this.opts.memberId !== undefined && !ids.includes(memberId) && this.opts.initialClusterState !== 'existing') {
      throw new Error(`keelson: member id ${memberId} is not in initialCluster`);
    }
    const existing = this.opts.initialClusterState === 'existing';
    if (!this.opts.transport && (initial.length !== 1 || existing)) throw new Error('keelson: a transport is required for a cluster of more than one member');
    // memberAdd picks a fresh random id (an id must never be reused after a
    // removal), so a joining member cannot derive its ids: it is told them.
    if (existing && (this.opts.memberId === undefined || this.opts.clusterId === undefined)) {
      throw new Error("keelson: initialClusterState 'existing' needs memberId and clusterId (from the memberAdd response)");
    }
    const clusterId = this.opts.clusterId ?? clusterIdOf(ids, token);
    const identity: MemberFile = {
      memberId,
      clusterId,
      name,
      // A joining member learns the configuration from the leader's snapshot.
      voters: existing ? [] : ids,
      learners: [],
    };
    this.memberMap = new Map(initial.map((m, i) => [ids[i], { id: ids[i], name: m.name, peerUrls: [...m.peerUrls], clientUrls: [...(m.clientUrls ?? [])], isLearner: false }]));
    this.membersIndex = 0;
    this.persistMembers();
    writeFileDurable(file, JSON.stringify(identity));
    return identity;
  }

  private persistMembers(): void {
    writeFileDurable(path.join(this.dataDir, 'members.json'), JSON.stringify({ index: this.membersIndex, members: [...this.memberMap.values()] }));
  }

  private onConfChange(index: number, cc: DecodedConfChange, result: ConfState | Error): void {
    let op: MemberOp | null = null;
    try {
      op = cc.context.length > 0 ? (JSON.parse(cc.context.toString('utf8')) as MemberOp) : null;
    } catch {
      op = null;
    }
    if (index > this.membersIndex) {
      if (!(result instanceof Error)) {
        for (const ch of cc.changes) {
          const cur = this.memberMap.get(ch.nodeId);
          if (ch.type === 'removeNode') {
            this.memberMap.delete(ch.nodeId);
            if (ch.nodeId === this.memberId) this.removed = true;
          } else if (cur) {
            cur.isLearner = ch.type === 'addLearner';
          } else {
            const m = op?.member && op.member.id === ch.nodeId ? op.member : { id: ch.nodeId, name: '', peerUrls: [], clientUrls: [], isLearner: false };
            this.memberMap.set(ch.nodeId, { ...m, isLearner: ch.type === 'addLearner' });
          }
        }
      }
      this.membersIndex = index;
      this.persistMembers();
    }
    // The transport follows the configuration on every member, replay or not.
    if (!(result instanceof Error)) {
      for (const ch of cc.changes) {
        if (ch.nodeId === this.memberId) continue;
        if (ch.type === 'removeNode') this.transportOf()?.removePeer(ch.nodeId);
        else this.transportOf()?.addPeer(ch.nodeId, this.memberMap.get(ch.nodeId)?.peerUrls ?? []);
      }
      // A new member is sent a snapshot (the configuration as of now), not
      // the log from the beginning, which it could not replay from its empty
      // bootstrap configuration. Snapshots are cheap (a marker, see the
      // driver), so every add and promotion takes one.
      if (cc.changes.some((ch) => ch.type !== 'removeNode')) {
        void this.driver.requestSnapshot(index, 0).catch(() => {});
      }
    }
    if (op && op.from === this.memberId) {
      const w = this.memberWaiters.get(op.reqId);
      if (w) {
        this.memberWaiters.delete(op.reqId);
        if (result instanceof Error) w.reject(new KeelsonError('bad request', `membership change refused: ${result.message}`));
        else w.resolve();
      }
    }
  }

  private transportOf(): Transport | undefined {
    return this.opts.transport;
  }

  /** Applies a member-metadata entry (memberUpdate, attributes published on start). */
  private applyMemberEntry(index: number, data: Buffer): void {
    let op: MemberOp;
    try {
      op = JSON.parse(data.subarray(1).toString('utf8')) as MemberOp;
    } catch {
      return;
    }
    let err: KeelsonError | null = null;
    if (index > this.membersIndex) {
      const m = op.id !== undefined ? this.memberMap.get(op.id) : undefined;
      if (!m) err = new KeelsonError('member not found');
      else {
        if (op.op === 'update' && op.peerUrls) {
          m.peerUrls = [...op.peerUrls];
          if (m.id !== this.memberId) this.transportOf()?.addPeer(m.id, m.peerUrls);
        }
        if (op.op === 'attrs') {
          if (typeof op.name === 'string') m.name = op.name;
          if (Array.isArray(op.clientUrls)) m.clientUrls = [...op.clientUrls];
        }
        this.membersIndex = index;
        this.persistMembers();
      }
    }
    if (op.from === this.memberId) {
      const w = this.memberWaiters.get(op.reqId);
      if (w) {
        this.memberWaiters.delete(op.reqId);
        if (err) w.reject(err);
        else w.resolve();
      }
    }
  }

  // -------------------------------------------------------------------------
  // The state machine side
  // -------------------------------------------------------------------------

  private async applyEntries(entries: CommittedEntry[]): Promise<void> {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.data.length > 0 && e.data[0] === MEMBER_ENTRY) {
        this.applyMemberEntry(e.index, e.data);
        entries[i] = { index: e.index, term: e.term, data: EMPTY };
      }
    }
    await this.keyspace.apply(entries);
    const lastTerm = entries[entries.length - 1]!.term;
    if (lastTerm > this.appliedTerm) {
      this.appliedTerm = lastTerm;
      this.failLostProposals(lastTerm);
    }
    if (this.sizeCache >= 0) {
      for (const e of entries) this.sizeGrowthBoundBytes += e.data.length * sizeGrowthPerByte + sizeGrowthPerEntryBytes;
    }
    if (this.keyspace.compactRevision() !== this.lastCompactRev) {
      this.lastCompactRev = this.keyspace.compactRevision();
      this.startCompaction();
    }
    this.maybeAutoCompact();
  }

  private onLeaderChange(lead: number, role: RaftRole): void {
    if (role === 'leader') {
      if (!this.lessor.isPrimary()) this.lessor.promote();
    } else if (this.lessor.isPrimary()) {
      this.lessor.demote();
    }
    if (lead !== 0 && !this.published) {
      this.publishAttempts = 0;
      this.publishAttributes();
    }
  }

  /** Once a leader is known, make sure the replicated membership carries this member's name and client URLs. */
  private publishAttributes(): void {
    if (this.published || this.closed) return;
    const me = this.memberMap.get(this.memberId);
    if (!me) return;
    const clientUrls = this.opts.clientUrls ?? me.clientUrls;
    this.published = true;
    if (me.name === this.name && JSON.stringify(me.clientUrls) === JSON.stringify(clientUrls)) return;
    void this.proposeMemberEntry({ op: 'attrs', id: this.memberId, name: this.name, clientUrls }).then(
      () => {
        this.publishAttempts = 0;
      },
      () => {
        // Not published (no leader in the meantime, a proposal dropped): try
        // again a little later, a bounded number of times; a leader change
        // starts a fresh round.
        this.published = false;
        if (this.closed || ++this.publishAttempts >= publishAttemptsMax) return;
        setTimeout(() => this.publishAttributes(), publishRetryMs).unref();
      },
    );
  }

  // -------------------------------------------------------------------------
  // Proposals
  // -------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new KeelsonError('closed');
  }

  /** Proposes until the core accepts (waiting out leader elections), within the deadline. */
  private async proposeRaw(data: Buffer, deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.driver.propose(data);
        return;
      } catch (e) {
        if (isNativeError(e, 'ERR_PROPOSAL_DROPPED') || isNativeError(e, 'ERR_NOT_LEADER')) {
          const left = deadline - performance.now();
          if (left <= 0 || this.closed) throw new KeelsonError('timeout', 'no leader');
          // Either no leader is known yet, or a transfer is under way: wait
          // for one, then try again (bounded by the deadline).
          if (!(await this.driver.waitForLeader(Math.min(left, 1000)))) continue;
          await new Promise((r) => setTimeout(r, Math.min(left, 10 * (attempt + 1))));
          continue;
        }
        if (isNativeError(e, 'ERR_UNCOMMITTED_LIMIT')) throw new KeelsonError('too many requests');
        if (isNativeError(e, 'ERR_TOO_LARGE')) throw new KeelsonError('request too large');
        throw e;
      }
    }
  }

  private async propose(req: Request): Promise<Response> {
    this.checkOpen();
    if (this.waiters.size >= (this.opts.proposalsWaitingMax ?? 100_000)) throw new KeelsonError('too many requests', `${this.waiters.size} requests waiting`);
    const id = this.nextProposalId++;
    const data = encodeChecked({ id, from: this.memberId, req });
    if (this.quota > 0 && needsSpace(req) && this.sizeBytes() > this.quota && !this.keyspace.alarms().includes('NOSPACE')) {
      await this.propose({ op: 'alarm', action: 'activate', alarm: 'NOSPACE' });
    }
    const deadline = performance.now() + this.requestTimeoutMs;
    const waiter: Waiter = { resolve: () => {}, deadline, term: 0 };
    const result = new Promise<ApplyResult>((resolve) => {
      waiter.resolve = resolve;
      this.waiters.set(id, waiter);
    });
    if (this.waiters.size === 1) this.sweepTimer.ref();
    try {
      await this.proposeRaw(data, deadline);
    } catch (e) {
      this.waiters.delete(id);
      throw e;
    }
    waiter.term = this.driver.currentTerm();
    const r = await result;
    if (!r.ok) throw r.error;
    return r.response;
  }

  private sweepTimeouts(): void {
    const now = performance.now();
    for (const [id, w] of this.waiters) {
      if (w.deadline > now) break;
      this.waiters.delete(id);
      w.resolve({ ok: false, error: new KeelsonError('timeout') });
    }
    for (const [id, w] of this.memberWaiters) {
      if (w.deadline > now) continue;
      this.memberWaiters.delete(id);
      w.reject(new KeelsonError('timeout'));
    }
    if (this.waiters.size === 0 && this.memberWaiters.size === 0 && this.readsWaiting === 0) this.sweepTimer.unref();
  }

  /**
   * An entry of term T is applied: every entry of an earlier term that will
   * ever commit lies below it (log terms never go down), so a proposal taken
   * in an earlier term and still unanswered was lost with its leader (or is
   * held by a deposed leader that may yet get it in later). Its caller gets
   * the timeout now, an outcome that may still take effect, as etcd's
   * "request timed out, possibly due to previous leader failure", rather
   * than at its deadline: it can retry on the new leader at once.
   */
  private failLostProposals(term: number): void {
    for (const [id, w] of this.waiters) {
      if (w.term === 0 || w.term >= term) continue;
      this.waiters.delete(id);
      w.resolve({ ok: false, error: new KeelsonError('timeout', 'request timed out, possibly due to previous leader failure') });
    }
  }

  private failWaiters(err: Error): void {
    const e = isKeelsonError(err) ? err : new KeelsonError('closed', err.message);
    for (const w of this.waiters.values()) w.resolve({ ok: false, error: e });
    this.waiters.clear();
    for (const w of this.memberWaiters.values()) w.reject(e);
    this.memberWaiters.clear();
  }

  /**
   * The keyspace size for the quota check. Measuring reads the stats of six
   * lmdb trees, too slow for every request (it was ~3% of a member's CPU
   * under single-client puts); so a measurement is reused for as long as it
   * plus a generous estimate of what the applies since could have added
   * stays within the quota, where the answer to "over the quota?" is still
   * no. Close to the quota this measures every time, as before.
   */
  private sizeBytes(): number {
    if (this.sizeCache < 0 || (this.quota > 0 && this.sizeCache + this.sizeGrowthBoundBytes > this.quota)) {
      this.sizeCache = this.keyspace.sizeBytes();
      this.sizeGrowthBoundBytes = 0;
    }
    return this.sizeCache;
  }

  /** Waits for a linearizable read point (the driver fails it with 'timeout' past requestTimeoutMs). */
  private async linearize(): Promise<void> {
    this.readsWaiting++;
    this.sweepTimer.ref();
    try {
      await this.driver.readIndex();
    } finally {
      this.readsWaiting--;
    }
  }

  // -------------------------------------------------------------------------
  // Store
  // -------------------------------------------------------------------------

  async range(key: Buffer, opts: RangeOptions = {}): Promise<RangeResponse> {
    this.checkOpen();
    const { serializable, ...rest } = opts;
    if (!serializable) await this.linearize();
    // Reads wait out a snapshot being installed (the keyspace is swapped under them).
    while (this.restoring) await this.restoring;
    this.checkOpen();
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
    this.lastCompactRev = this.keyspace.compactRevision();
    const done = this.startCompaction();
    if (opts.physical) await done;
    return r;
  }

  private maybeAutoCompact(): void {
    if (!this.autoCompactor || this.autoCompacting || this.closed || !this.driver.isLeader()) return;
    const target = this.autoCompactor.next(this.clock(), this.keyspace.revision(), this.keyspace.compactRevision());
    if (target === 0) return;
    this.autoCompacting = true;
    this.compact(target).catch(() => {}).finally(() => { this.autoCompacting = false; });
  }

  /** Physical compaction in bounded batches, one per event-loop turn (local to each member). */
  private startCompaction(): Promise<void> {
    if (this.compacting) return this.compacting;
    this.compacting = (async () => {
      try {
        while (!this.closed && this.keyspace.compactStep()) await new Promise<void>((r) => setImmediate(r));
        this.sizeCache = -1;
        if (!this.closed && this.driver.isLeader() && this.keyspace.alarms().includes('NOSPACE') && this.quota > 0 && this.sizeBytes() <= this.quota) {
          await this.propose({ op: 'alarm', action: 'deactivate', alarm: 'NOSPACE' });
        }
      } catch (e) {
        if (!isKeelsonError(e, 'closed')) throw e;
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

  /** The leader's store when it lives in this process and is not this one. */
  private leaderStore(): EmbeddedStore | undefined {
    const lead = this.driver.leader();
    if (lead === 0 || lead === this.memberId) return undefined;
    return this.opts.peerStore?.(lead);
  }

  async leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    this.checkOpen();
    if (!this.lessor.isPrimary()) {
      const l = this.leaderStore();
      if (l) {
        // The leader has committed everything this member applied, but may not have applied it yet.
        await l.driver.waitApplied(this.keyspace.appliedIndex());
        return l.leaseKeepAlive(id);
      }
      throw new KeelsonError('not leader', `leader is ${this.driver.leader()}`);
    }
    const ttl = this.lessor.keepAlive(id);
    return { header: { revision: this.keyspace.revision() }, id, ttl };
  }

  async leaseTimeToLive(id: number, opts: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    this.checkOpen();
    if (!this.lessor.isPrimary()) {
      const l = this.leaderStore();
      if (l) {
        await l.driver.waitApplied(this.keyspace.appliedIndex());
        return l.leaseTimeToLive(id, opts);
      }
    }
    const t = this.lessor.timeToLive(id, opts.keys === true);
    return { header: { revision: this.keyspace.revision() }, ...t };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    this.checkOpen();
    await this.linearize();
    return { header: { revision: this.keyspace.revision() }, leases: this.lessor.list().map((id) => ({ id })) };
  }

  /** On the leader: proposes the expiry of every lease past its deadline. */
  async tickLeases(): Promise<number[]> {
    if (this.closed || !this.lessor.isPrimary()) return [];
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
    this.checkOpen();
    while (this.restoring) await this.restoring;
    const h = await this.keyspace.hashAsync(revision);
    return { header: { revision: this.keyspace.revision() }, hash: h.hash, compactRevision: h.compactRevision, hashRevision: h.revision };
  }

  /**
   * On the leader: compares its keyspace hash with every other member's at
   * the same revision and raises the CORRUPT alarm on a mismatch. Members
   * that have not reached the revision, or have compacted past it, are
   * skipped this round. Returns the ids of the members that differ.
   */
  async checkHashes(): Promise<number[]> {
    if (this.closed || !this.driver.isLeader()) return [];
    const rev = this.keyspace.revision();
    if (rev === 0) return [];
    const mine = await this.hashKV(rev);
    const bad: number[] = [];
    for (const m of this.memberMap.values()) {
      if (m.id === this.memberId) continue;
      let theirs: HashKVResponse;
      try {
        const peer = this.opts.peerStore?.(m.id);
        if (peer) theirs = await peer.hashKV(rev);
        else if (this.opts.peerHashKV) theirs = await this.opts.peerHashKV(m.id, rev);
        else continue;
      } catch {
        continue;
      }
      if (theirs.compactRevision === mine.compactRevision && theirs.hashRevision === mine.hashRevision && theirs.hash !== mine.hash) bad.push(m.id);
    }
    if (bad.length > 0 && !this.keyspace.alarms().includes('CORRUPT')) await this.propose({ op: 'alarm', action: 'activate', alarm: 'CORRUPT' });
    return bad;
  }

  header(): ClusterHeader {
    return { revision: this.keyspace.revision(), clusterId: this.clusterId, memberId: this.memberId, raftTerm: this.driver.currentTerm() };
  }

  async status(): Promise<StatusResponse> {
    this.checkOpen();
    const st = this.driver.status();
    return {
      header: this.header(),
      version: VERSION,
      dbSizeInUse: this.keyspace.sizeBytes(),
      leader: st.lead,
      raftIndex: st.commit,
      raftTerm: st.term,
      raftAppliedIndex: this.keyspace.appliedIndex(),
      compactRevision: this.keyspace.compactRevision(),
      errors: this.keyspace.alarms(),
      isLearner: st.confState.learners.includes(this.memberId),
    };
  }

  private memberList(): Member[] {
    return [...this.memberMap.values()].sort((a, b) => a.id - b.id).map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] }));
  }

  async members(): Promise<MemberListResponse> {
    this.checkOpen();
    return { header: this.header(), members: this.memberList() };
  }

  leaderId(): number {
    return this.driver.leader();
  }

  /** True once this member was removed from the cluster by a committed change. */
  isRemoved(): boolean {
    return this.removed;
  }

  // -------------------------------------------------------------------------
  // ClusterStore: membership, leadership, alarms, snapshots
  // -------------------------------------------------------------------------

  private memberWait(reqId: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.memberWaiters.set(reqId, { resolve, reject, deadline: performance.now() + this.requestTimeoutMs });
      this.sweepTimer.ref();
    });
  }

  private async proposeConfChange(changes: { type: 'addNode' | 'removeNode' | 'addLearner'; nodeId: number }[], member?: Member): Promise<void> {
    this.checkOpen();
    const reqId = this.nextProposalId++;
    const op: MemberOp = { reqId, from: this.memberId, member };
    const done = this.memberWait(reqId);
    const deadline = performance.now() + this.requestTimeoutMs;
    for (;;) {
      try {
        this.driver.proposeConfChange({ changes, context: Buffer.from(JSON.stringify(op)) });
        break;
      } catch (e) {
        if ((isNativeError(e, 'ERR_PROPOSAL_DROPPED') || isNativeError(e, 'ERR_CONF_CHANGE')) && performance.now() < deadline && !this.closed) {
          // A previous change is still pending, or no leader yet: try again shortly.
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        this.memberWaiters.delete(reqId);
        if (isNativeError(e, 'ERR_CONF_CHANGE')) throw new KeelsonError('bad request', e.message);
        if (isNativeError(e, 'ERR_PROPOSAL_DROPPED')) throw new KeelsonError('timeout', 'no leader');
        throw e;
      }
    }
    await done;
  }

  private async proposeMemberEntry(fields: Omit<MemberOp, 'reqId' | 'from'>): Promise<void> {
    this.checkOpen();
    const reqId = this.nextProposalId++;
    const op: MemberOp = { reqId, from: this.memberId, ...fields };
    const json = Buffer.from(JSON.stringify(op));
    const data = Buffer.alloc(1 + json.length);
    data[0] = MEMBER_ENTRY;
    json.copy(data, 1);
    const done = this.memberWait(reqId);
    try {
      await this.proposeRaw(data, performance.now() + this.requestTimeoutMs);
    } catch (e) {
      this.memberWaiters.delete(reqId);
      throw e;
    }
    await done;
  }

  private changeResponse(member?: Member): MemberChangeResponse {
    return { header: this.header(), member, members: this.memberList() };
  }

  async memberAdd(peerUrls: string[], opts: { isLearner?: boolean } = {}): Promise<MemberChangeResponse> {
    this.checkOpen();
    if (!validUrls(peerUrls)) throw new KeelsonError('bad request', 'peerUrls must be a non-empty list of URLs');
    for (const m of this.memberMap.values()) if (m.peerUrls.some((u) => peerUrls.includes(u))) throw new KeelsonError('peer url exists');
    const id = newMemberId(peerUrls, this.clusterId, Date.now());
    if (this.memberMap.has(id)) throw new KeelsonError('member exists');
    const member: Member = { id, name: '', peerUrls: [...peerUrls], clientUrls: [], isLearner: opts.isLearner === true };
    await this.proposeConfChange([{ type: opts.isLearner ? 'addLearner' : 'addNode', nodeId: id }], member);
    return this.changeResponse(this.memberMap.get(id) ?? member);
  }

  async memberRemove(id: number): Promise<MemberChangeResponse> {
    this.checkOpen();
    if (!this.memberMap.has(id)) throw new KeelsonError('member not found');
    await this.proposeConfChange([{ type: 'removeNode', nodeId: id }]);
    return this.changeResponse();
  }

  async memberPromote(id: number): Promise<MemberChangeResponse> {
    this.checkOpen();
    const m = this.memberMap.get(id);
    if (!m) throw new KeelsonError('member not found');
    if (!m.isLearner) throw new KeelsonError('bad request', 'can only promote a learner member');
    // A learner is promoted only once it holds (nearly) the leader's log, so
    // that the promotion does not leave the cluster waiting on a slow voter.
    const leader = this.driver.isLeader() ? this : this.leaderStore();
    if (leader) {
      const st = leader.driver.status();
      const p = st.progress?.[id];
      if (!p || p.match < st.commit * 0.9) throw new KeelsonError('learner not ready');
    }
    await this.proposeConfChange([{ type: 'addNode', nodeId: id }]);
    return this.changeResponse();
  }

  async memberUpdate(id: number, peerUrls: string[]): Promise<MemberChangeResponse> {
    this.checkOpen();
    if (!validUrls(peerUrls)) throw new KeelsonError('bad request', 'peerUrls must be a non-empty list of URLs');
    if (!this.memberMap.has(id)) throw new KeelsonError('member not found');
    for (const m of this.memberMap.values()) if (m.id !== id && m.peerUrls.some((u) => peerUrls.includes(u))) throw new KeelsonError('peer url exists');
    await this.proposeMemberEntry({ op: 'update', id, peerUrls });
    return this.changeResponse();
  }

  async moveLeader(targetId: number): Promise<{ header: ClusterHeader }> {
    this.checkOpen();
    const m = this.memberMap.get(targetId);
    if (!m) throw new KeelsonError('member not found');
    if (m.isLearner) throw new KeelsonError('bad request', 'cannot transfer leadership to a learner');
    const deadline = performance.now() + this.requestTimeoutMs;
    let lastAsk = 0;
    while (this.driver.leader() !== targetId) {
      if (performance.now() > deadline || this.closed) throw new KeelsonError('timeout', `leadership did not move to ${targetId}`);
      // Ask again now and then: a transfer aborts after an election timeout.
      if (performance.now() - lastAsk > 1000) {
        lastAsk = performance.now();
        this.driver.transferLeader(targetId);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return { header: this.header() };
  }

  async alarm(action: 'get' | 'activate' | 'deactivate', memberId: number, alarm?: AlarmType): Promise<{ header: ClusterHeader; alarms: AlarmMember[] }> {
    this.checkOpen();
    if (action !== 'get') {
      if (alarm !== 'NOSPACE' && alarm !== 'CORRUPT') throw new KeelsonError('bad request', 'alarm must be NOSPACE or CORRUPT');
      await this.propose({ op: 'alarm', action, alarm });
    }
    const lead = this.driver.leader() || this.memberId;
    let alarms = this.keyspace.alarms().map((a) => ({ memberId: memberId || lead, alarm: a }));
    if (action === 'get' && alarm) alarms = alarms.filter((a) => a.alarm === alarm);
    return { header: this.header(), alarms };
  }

  /**
   * A copy of the keyspace (as a stream, Keyspace.snapshotStream()) with the
   * snapshot file header that goes with it. The copy records its own applied
   * index; the revision and membership are taken from a moment when nothing
   * applied in between.
   */
  private async consistentCopy(): Promise<{ header: SnapshotHeader; ks: KeyspaceSnapshotStream }> {
    this.checkOpen();
    for (let attempt = 0; ; attempt++) {
      const indexBefore = this.keyspace.appliedIndex();
      const revBefore = this.keyspace.revision();
      const membersBefore = this.memberList();
      const membersIndexBefore = this.membersIndex;
      const ks = await this.keyspace.snapshotStream();
      if (ks.index !== indexBefore && attempt < 8) {
        ks.discard();
        continue;
      }
      const header: SnapshotHeader = {
        revision: ks.index === indexBefore ? revBefore : this.keyspace.revision(),
        index: ks.index,
        clusterId: this.clusterId,
        memberId: this.memberId,
        members: membersBefore,
        membersIndex: Math.min(membersIndexBefore, ks.index),
        createdAtMs: Date.now(),
      };
      return { header, ks };
    }
  }

  /** A verified snapshot file of this member's state (format in snapshot-file.ts), whole in memory (a Raft MsgSnap carries it). */
  async snapshotFile(): Promise<{ file: Buffer; header: SnapshotHeader }> {
    const { header, ks } = await this.consistentCopy();
    const stream = streamSnapshotFile(header, ks.chunks, ks.sizeBytes);
    const parts: Buffer[] = [];
    for await (const c of stream.chunks) parts.push(c);
    return { file: Buffer.concat(parts, stream.sizeBytes), header };
  }

  /**
   * The snapshot file (snapshotFile()'s bytes) as a stream in chunks of at
   * most 1 MiB, holding one chunk at a time whatever the size of the store:
   * the keyspace copy is read from its temporary file as it is sent.
   */
  async snapshot(): Promise<SnapshotStream> {
    const { header, ks } = await this.consistentCopy();
    const file = streamSnapshotFile(header, ks.chunks, ks.sizeBytes);
    return {
      revision: header.revision,
      index: header.index,
      sizeBytes: file.sizeBytes,
      chunks: (async function* () {
        try {
          yield* file.chunks;
        } finally {
          ks.discard();
        }
      })(),
    };
  }

  /**
   * A snapshot file for a MsgSnap naming index `minIndex`. The keyspace copy
   * records the index its lmdb state holds, which can trail the applied index
   * the Raft log was compacted at until the keyspace's writes are flushed; a
   * copy below `minIndex` would leave the receiver missing the entries in
   * between (it resumes the log after `minIndex`), so flush and copy again.
   */
  private async snapshotPayload(minIndex: number): Promise<Buffer> {
    for (let attempt = 0; attempt < snapshotPayloadAttemptsMax; attempt++) {
      const { file, header } = await this.snapshotFile();
      if (header.index >= minIndex) return file;
      await this.keyspace.flush();
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new KeelsonError('timeout', `no keyspace copy at or above snapshot index ${minIndex} after ${snapshotPayloadAttemptsMax} attempts`);
  }

  private async restoreFromPayload(data: Buffer, index: number): Promise<void> {
    const { header, keyspace } = decodeSnapshotFile(data);
    // Refuse a copy below the index the core now stands at: the log resumes
    // after `index`, so the entries in between would never be applied.
    if (header.index < index) throw new Error(`keelson: snapshot payload holds index ${header.index}, below the snapshot's index ${index}`);
    const restoring = this.keyspace.restore(header.index, keyspace);
    this.restoring = restoring.catch(() => {});
    try {
      await restoring;
    } finally {
      this.restoring = null;
      this.sizeCache = -1; // a different keyspace now: measure it afresh
    }
    this.memberMap = new Map(header.members.map((m) => [m.id, m]));
    this.membersIndex = header.membersIndex;
    this.persistMembers();
    for (const m of header.members) if (m.id !== this.memberId) this.transportOf()?.addPeer(m.id, m.peerUrls);
    // A joining member's provisional view of itself is replaced now: publish its name if the cluster lacks it.
    this.published = false;
    if (this.driver.leader() !== 0) setImmediate(() => this.publishAttributes());
    this.lastCompactRev = this.keyspace.compactRevision();
    if (this.keyspace.compactPending()) this.startCompaction();
  }

  /** Deactivates an alarm (operator action). */
  async disarm(alarm: AlarmType): Promise<void> {
    await this.propose({ op: 'alarm', action: 'deactivate', alarm });
  }

  /** Resolves true once a leader is known (false after timeoutMs). */
  waitForLeader(timeoutMs = 10_000): Promise<boolean> {
    return this.driver.waitForLeader(timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.hub.close();
    this.failWaiters(new KeelsonError('closed'));
    await this.driver.close();
    if (this.compacting) await this.compacting.catch(() => {});
    await this.keyspace.close();
  }
}

export interface RestoreSnapshotOptions {
  /** The snapshot file's path, or its bytes. */
  file: string | Buffer;
  /** The new member's data dir; must not exist (or be empty). */
  dataDir: string;
  /** This member's name in initialCluster. */
  name: string;
  memberId?: number;
  clusterId?: number;
  clusterToken?: string;
  /** The new cluster's members (every member is restored from the same file). */
  initialCluster: InitialMember[];
}

/**
 * Builds a fresh member data dir for a NEW cluster from a snapshot file (what
 * `keelson store snapshot restore` does). The keyspace is restored as is; the
 * Raft log starts at the snapshot's index with the new cluster's members as
 * its configuration, so every member restored from the same file starts from
 * the same state. Refuses an existing data dir and a file whose checksum does
 * not match (SnapshotFileError), writing nothing then.
 */
export async function restoreSnapshot(opts: RestoreSnapshotOptions): Promise<{ memberId: number; clusterId: number; revision: number; index: number }> {
  if (fs.existsSync(opts.dataDir) && fs.readdirSync(opts.dataDir).length > 0) throw new SnapshotFileError(`data dir ${opts.dataDir} already exists`);
  const buf = typeof opts.file === 'string' ? fs.readFileSync(opts.file) : opts.file;
  const { header, keyspace } = decodeSnapshotFile(buf);
  const token = opts.clusterToken ?? 'keelson-cluster';
  if (opts.initialCluster.length === 0) throw new SnapshotFileError('initialCluster is empty');
  const ids = opts.initialCluster.map((m) => memberIdOf(m, token));
  const mine = opts.initialCluster.findIndex((m) => m.name === opts.name);
  const memberId = opts.memberId ?? (mine >= 0 ? ids[mine] : 0);
  if (memberId === 0 || !ids.includes(memberId)) throw new SnapshotFileError(`member '${opts.name}' is not in initialCluster`);
  const clusterId = opts.clusterId ?? clusterIdOf(ids, token);
  fs.mkdirSync(opts.dataDir, { recursive: true });
  try {
    const ks = new Keyspace({ dir: path.join(opts.dataDir, 'keyspace') });
    try {
      await ks.restore(header.index, keyspace);
    } finally {
      await ks.close();
    }
    const wal = Wal.open({ dir: path.join(opts.dataDir, 'wal'), clusterId, memberId });
    wal.appendSnapshot({ index: header.index, term: 1, confState: { voters: ids, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } });
    wal.appendHardState({ term: 1, vote: 0, commit: header.index });
    await wal.sync();
    await wal.close();
    const members: Member[] = opts.initialCluster.map((m, i) => ({ id: ids[i], name: m.name, peerUrls: [...m.peerUrls], clientUrls: [...(m.clientUrls ?? [])], isLearner: false }));
    writeFileDurable(path.join(opts.dataDir, 'members.json'), JSON.stringify({ index: header.index, members }));
    const identity: MemberFile = { memberId, clusterId, name: opts.name, voters: ids, learners: [] };
    writeFileDurable(path.join(opts.dataDir, 'member.json'), JSON.stringify(identity));
  } catch (e) {
    fs.rmSync(opts.dataDir, { recursive: true, force: true });
    throw e;
  }
  return { memberId, clusterId, revision: header.revision, index: header.index };
}
