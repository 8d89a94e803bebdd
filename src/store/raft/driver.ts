// The Raft driver: the thin shell of I/O around the native core (src/native.ts
// RaftNode). The core decides; the driver owns the clock, the WAL, the
// transport and the state machine, and moves data between them.
//
// The Ready loop (one Ready at a time, docs/raft-core.md):
//   1. An incoming snapshot: wait for in-flight applies, restore the state
//      machine from it, write a WAL snapshot marker.
//   2. Append hard state and entries to the WAL.
//   3. Send messages. A leader sends at once, in parallel with its own write
//      (Raft thesis 10.2.1: its own log counts toward commit only once it has
//      called advance(), i.e. after the sync). Anyone else sends only after
//      the sync, because its messages (votes, append acks) promise that the
//      hard state and entries they depend on are durable.
//   4. Hand committed entries to the state machine (they are durable on a
//      quorum, so this need not wait for step 5). Applies are pipelined (the
//      next Ready proceeds while lmdb commits the previous batch), at most
//      applyInflightBatchesMax at once; ConfChange entries are applied to the
//      core synchronously, in log order, before advance().
//   5. fdatasync the WAL when the Ready requires it (group commit: one sync
//      covers every proposal that reached the core meanwhile).
//   6. Hand read states to waiting linearizable reads; advance().
//
// Restart: open the WAL; the core is restored with what it recovered; the
// state machine's applied index tells which committed entries it already
// holds (those are skipped; their ConfChanges are still applied to the core
// when it hands them out, since the core only replays configuration up to
// `config.applied`).
//
// Snapshots are lazy. The state is the lmdb keyspace, which is already a
// durable, consistent copy of itself up to its flushed applied index; so a
// log compaction only needs the core to record "a snapshot at index X" with a
// small marker as its data, a WAL snapshot marker at X, and X <= the flushed
// applied index. Only when a follower needs the snapshot does the driver copy
// the keyspace (at its current applied index J >= X) and put that copy into
// the outgoing MsgSnap. The receiver restores J and skips the committed
// entries up to J that the core then hands out (they are in the copy).
//
// Failure modes: a WAL error (ERR_WAL_IO) or a failed apply is fatal: the
// driver stops, rejects every waiter, and reports it through onFatal; the
// member must be restarted (it recovers from the WAL and the keyspace).
// A malformed inbound batch is dropped and counted.
import {
  EntryType, isNativeError, RaftNode, Wal, type ConfChange, type ConfState, type RaftConfig,
  type RaftNode as Core, type RaftRole, type RaftStatus, type Ready, type Snapshot, type SnapshotMeta,
} from '../../native.ts';
import { randomInt } from 'node:crypto';
import { KeelsonError } from '../errors.ts';
import {
  decodeConfChange, decodeReadCtx, dropAppendsFromStart, encodeReadCtx, entryIndexTerms, parseEntries, replaceSnapshotData, snapshotIndexOf, splitSnapshots,
  type DecodedConfChange,
} from './codec.ts';
import type { CommittedEntry } from './state-machine.ts';
import type { Transport } from './transport.ts';

/** What the driver replicates: the embedded store's keyspace, with snapshot and membership hooks. */
export interface DriverStateMachine {
  /** The applied index whose effects are visible to reads. */
  appliedIndex(): number;
  /** Applies committed entries in order (pipelined: may be called before the previous call resolved). */
  apply(entries: CommittedEntry[]): Promise<void>;
  /** Waits until every apply so far is durable; returns the durable applied index. */
  flush(): Promise<number>;
  /**
   * A full copy of the state at an applied index >= minIndex (the index the
   * MsgSnap names), to send in that MsgSnap. A copy below it would leave the
   * receiver's state behind its log: rejects when it cannot make one.
   */
  snapshotPayload(minIndex: number): Promise<Buffer>;
  /** Replaces the state with a payload made by snapshotPayload() on another member; refuses one below `index`. */
  restoreSnapshot(data: Buffer, index: number): Promise<void>;
  /**
   * A committed ConfChange entry, after the core applied it (result) or
   * refused it (an ERR_CONF_CHANGE error). Called synchronously in log order.
   */
  onConfChange(index: number, cc: DecodedConfChange, result: ConfState | Error): void;
}

/** Periodic callbacks; injectable so tests drive time by hand. */
export interface Scheduler {
  every(ms: number, fn: () => void): () => void;
}

export const realScheduler: Scheduler = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

export interface RaftDriverOptions {
  id: number;
  clusterId: number;
  walDir: string;
  /** WAL segment size in bytes (default 64 MiB). */
  walSegmentBytes?: number;
  /** Testing only: the WAL's fdatasync fails after this many (see WalOpenOptions). */
  testingFailFdatasyncAfter?: number;
  /** Voters and learners at bootstrap (ignored by the core when the WAL holds a snapshot). */
  voters: number[];
  learners?: number[];
  transport: Transport;
  stateMachine: DriverStateMachine;
  /** Heartbeat interval in ms (one tick); 0 = no timer, the caller calls tick(). Default 100. */
  tickMs?: number;
  /** Election timeout in ticks. Default 10. */
  electionTicks?: number;
  heartbeatTicks?: number;
  scheduler?: Scheduler;
  /** Seed of the core's election-timeout randomness; default: fresh randomness on every start. */
  seed?: number;
  /** Take a local snapshot (log compaction) every this many applied entries. Default 10,000. */
  snapshotEntries?: number;
  /** Entries kept below a local snapshot for slow followers. Default 5,000. */
  snapshotCatchUpEntries?: number;
  maxSizePerMsgBytes?: number;
  maxInflightMsgs?: number;
  maxUncommittedEntriesBytes?: number;
  /** Proposal bytes handed to the core in one proposeBatch. Default 4 MiB. */
  proposalBatchBytesMax?: number;
  /** Apply batches in flight (lmdb commits not yet resolved). Default 4. */
  applyInflightBatchesMax?: number;
  /** Linearizable reads waiting at once. Default 100,000. */
  readWaitersMax?: number;
  /** A linearizable read not served within this fails with 'timeout' (checked on ticks). Default 7,000. */
  readTimeoutMs?: number;
  /** Called (synchronously) when the known leader or this member's role changes. */
  onLeaderChange?: (lead: number, term: number, role: RaftRole) => void;
  onFatal?: (err: Error) => void;
}

/** Data the core holds for a local snapshot: the real state is the keyspace (see the overview). */
export const SNAPSHOT_MARKER = Buffer.from('keelson-lazy-snapshot');

interface ReadRound {
  id: number;
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
  issuedTick: number;
  issues: number;
  createdMs: number;
}

const EMPTY = Buffer.alloc(0);
/** One keyspace copy serves every follower that needs a snapshot within this window. */
const snapshotPayloadReuseMs = 5000;

export class RaftDriver {
  readonly id: number;
  readonly clusterId: number;
  private readonly node: Core;
  private readonly wal: Wal;
  private readonly transport: Transport;
  private readonly sm: DriverStateMachine;
  private readonly opts: RaftDriverOptions;
  private readonly electionTicks: number;
  private readonly snapshotEntries: number;
  private readonly snapshotCatchUpEntries: number;
  private readonly proposalBatchBytesMax: number;
  private readonly applyInflightBatchesMax: number;
  private readonly readWaitersMax: number;
  private readonly readTimeoutMs: number;
  private stopTimer: (() => void) | null = null;

  // Ready loop
  private loopRunning = false;
  private loopScheduled = false;
  private closed = false;
  private closing: Promise<void> | null = null;
  private fatal: Error | null = null;
  /** Invariant: appliedSubmitted >= sm.appliedIndex(); the last index handed to the state machine. */
  private appliedSubmitted: number;
  /** The last committed index the core handed out (or restored). */
  private committedSeen: number;
  private readonly applying: Promise<void>[] = [];

  // Leadership
  private lead = 0;
  private role: RaftRole = 'follower';
  private term = 0;
  private readonly leaderWaiters: (() => void)[] = [];

  // Proposals
  private props: Buffer[] = [];
  private propsBytes = 0;
  private propBatch: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;

  // Reads
  private nextRound = 1;
  private openRound: ReadRound | null = null;
  private readonly rounds = new Map<number, ReadRound>();
  private readWaiting = 0;
  private appliedWaiters: { index: number; resolve: () => void }[] = [];
  private ticks = 0;

  // Snapshots. Histories hold (index, value) changes, trimmed below the last snapshot.
  private snapIndex: number;
  private snapshotting = false;
  private pendingSnapshot: { minIndex: number; catchUp: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private termHistory: [number, number][] = [];
  private confHistory: [number, ConfState][] = [];
  private payloadCache: { promise: Promise<Buffer>; at: number; minIndex: number } | null = null;

  /** Joined with an empty configuration and no snapshot yet (see onMessages). */
  private awaitingSnapshot: boolean;
  /** Inbound batches refused as malformed (metrics, tests). */
  badMessages = 0;
  /**
   * True while records that a Ready marked mustSync (entries, a term or vote
   * change, a snapshot) are appended but not yet durable. A commit-only hard
   * state need not be synced before sending (no message depends on it). Tests
   * check the ordering rule against it.
   */
  unsyncedRequired = false;
  /** Readies handled and WAL syncs waited for (metrics, benchmarks). */
  readies = 0;
  syncs = 0;

  constructor(opts: RaftDriverOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.clusterId = opts.clusterId;
    this.transport = opts.transport;
    this.sm = opts.stateMachine;
    this.electionTicks = opts.electionTicks ?? 10;
    this.snapshotEntries = opts.snapshotEntries ?? 10_000;
    this.snapshotCatchUpEntries = opts.snapshotCatchUpEntries ?? 5_000;
    this.proposalBatchBytesMax = opts.proposalBatchBytesMax ?? 4 * 1024 * 1024;
    this.applyInflightBatchesMax = opts.applyInflightBatchesMax ?? 4;
    this.readWaitersMax = opts.readWaitersMax ?? 100_000;
    this.readTimeoutMs = opts.readTimeoutMs ?? 7000;

    this.wal = Wal.open({
      dir: opts.walDir, clusterId: opts.clusterId, memberId: opts.id,
      segmentBytes: opts.walSegmentBytes, testingFailFdatasyncAfter: opts.testingFailFdatasyncAfter,
    });
    const rec = this.wal.recovered;
    const snap = rec.snapshot;
    const first = snap?.index ?? 0;
    let last = first;
    if (snap) this.termHistory.push([snap.index, snap.term]);
    entryIndexTerms(rec.entries, (index, term) => {
      last = index;
      this.noteTerm(index, term);
    });
    const smApplied = this.sm.appliedIndex();
    if (smApplied < first) {
      throw new Error(`keelson: the keyspace (applied index ${smApplied}) is behind the WAL snapshot at ${first}; the data dir is damaged`);
    }
    const commit = Math.max(rec.hardState?.commit ?? 0, first);
    // The core may only be told what its log can back: applied <= last, <= commit.
    const applied = Math.max(first, Math.min(smApplied, last, commit));
    this.appliedSubmitted = smApplied;
    this.committedSeen = applied;
    this.snapIndex = first;
    const config: RaftConfig = {
      id: opts.id,
      voters: opts.voters,
      learners: opts.learners ?? [],
      electionTicks: this.electionTicks,
      heartbeatTicks: opts.heartbeatTicks ?? 1,
      preVote: true,
      checkQuorum: true,
      maxSizePerMsgBytes: opts.maxSizePerMsgBytes ?? 1024 * 1024,
      maxInflightMsgs: opts.maxInflightMsgs ?? 256,
      maxInflightBytes: 0,
      maxUncommittedEntriesBytes: opts.maxUncommittedEntriesBytes ?? 256 * 1024 * 1024,
      // Unseeded, a member draws its election timeouts from fresh randomness:
      // a seed derived from its id made a restarted member repeat the same
      // timeouts on every start. Tests that need a schedule pass a seed.
      seed: opts.seed ?? randomInt(1, 2 ** 32 - 1),
      applied,
    };
    const restore = rec.hardState || snap || rec.entryCount > 0
      ? { hardState: rec.hardState, snapshot: snap ? { ...snap, data: SNAPSHOT_MARKER } as Snapshot : undefined, entries: rec.entryCount > 0 ? rec.entries : undefined }
      : undefined;
    this.node = new RaftNode(config, restore);
    this.awaitingSnapshot = !snap && opts.voters.length === 0 && (opts.learners ?? []).length === 0;
    const st = this.node.status();
    this.term = st.term;
    this.confHistory.push([applied, st.confState]);
  }

  /** Starts the transport, the tick timer and the Ready loop. */
  start(): void {
    this.transport.start({
      onMessages: (from, data) => this.onMessages(from, data),
      onUnreachable: (peer) => {
        if (this.closed) return;
        this.node.reportUnreachable(peer);
        this.kick();
      },
      onSnapshotStatus: (peer, ok) => {
        if (this.closed) return;
        this.node.reportSnapshot(peer, ok);
        this.kick();
      },
    });
    const tickMs = this.opts.tickMs ?? 100;
    if (tickMs > 0) this.stopTimer = (this.opts.scheduler ?? realScheduler).every(tickMs, () => this.tick());
    // A lone voter need not wait an election timeout to lead itself.
    const cs = this.node.status().confState;
    if (cs.voters.length === 1 && cs.voters[0] === this.id && cs.votersOutgoing.length === 0) this.node.campaign();
    this.kick();
  }

  // -------------------------------------------------------------------------
  // Inputs
  // -------------------------------------------------------------------------

  tick(): void {
    if (this.closed) return;
    this.ticks++;
    this.node.tick();
    // A read round whose answer was lost (no leader, a dropped message) is
    // asked again every election timeout.
    const now = performance.now();
    for (const r of this.rounds.values()) {
      if (now - r.createdMs > this.readTimeoutMs) {
        this.rounds.delete(r.id);
        this.readWaiting -= r.waiters.length;
        const err = new KeelsonError('timeout', 'no read index (no leader?)');
        for (const w of r.waiters) w.reject(err);
      } else if (this.ticks - r.issuedTick >= this.electionTicks) {
        this.issueRound(r);
      }
    }
    this.kick();
  }

  private onMessages(_from: number, data: Buffer): void {
    if (this.closed) return;
    if (this.awaitingSnapshot) {
      // A member that joined with an empty configuration must start from a
      // snapshot (which carries the configuration), never replay the log
      // from index 1: the bootstrap configuration is not in the log, so
      // replaying would leave it without the cluster's voters. Dropping the
      // appends from the start makes the leader retry until its log is
      // compacted (every member compacts when a member is added), and then
      // send a snapshot.
      const kept = dropAppendsFromStart(data);
      if (kept === null) return;
      data = kept;
    }
    try {
      this.node.step(data);
    } catch (e) {
      if (!isNativeError(e, 'ERR_BAD_MESSAGE')) throw e;
      this.badMessages++;
      return;
    }
    this.kick();
  }

  /**
   * Proposes one entry. Resolves once the core took it (it is in the leader's
   * log, or forwarded to the leader); whether and when it commits is the
   * caller's to observe through the state machine. Proposals made in one
   * synchronous run share one proposeBatch call. Rejects with the core's
   * error (ERR_PROPOSAL_DROPPED with no leader, ERR_UNCOMMITTED_LIMIT, ...).
   */
  propose(data: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(this.fatal ?? new KeelsonError('closed'));
    // Every proposal of one batch shares one promise (one per proposeBatch
    // call, not one per proposal: at 100k proposals/s that matters).
    if (this.propBatch === null) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.propBatch = { promise, resolve, reject };
      queueMicrotask(() => this.flushProposals());
    }
    const batch = this.propBatch;
    this.props.push(data);
    this.propsBytes += 4 + data.length;
    if (this.propsBytes >= this.proposalBatchBytesMax) this.flushProposals();
    return batch.promise;
  }

  private flushProposals(): void {
    const batch = this.propBatch;
    this.propBatch = null;
    if (batch === null || this.props.length === 0) return;
    const props = this.props;
    const buf = Buffer.allocUnsafe(this.propsBytes);
    this.props = [];
    this.propsBytes = 0;
    let off = 0;
    for (const p of props) {
      buf.writeUInt32LE(p.length, off);
      p.copy(buf, off + 4);
      off += 4 + p.length;
    }
    try {
      if (this.closed) throw this.fatal ?? new KeelsonError('closed');
      this.node.proposeBatch(buf, props.length);
    } catch (e) {
      batch.reject(e);
      return;
    }
    batch.resolve();
    this.kick();
  }

  proposeConfChange(cc: ConfChange): void {
    if (this.closed) throw this.fatal ?? new KeelsonError('closed');
    this.node.proposeConfChange(cc);
    this.kick();
  }

  /**
   * Resolves when a read at this moment may be served from the local state:
   * a ReadIndex round confirmed the leader's commit index and the state
   * machine has applied it. Every read that arrives before a round is sent
   * shares it (one heartbeat round for many reads).
   */
  readIndex(): Promise<void> {
    if (this.closed) return Promise.reject(this.fatal ?? new KeelsonError('closed'));
    if (this.readWaiting >= this.readWaitersMax) return Promise.reject(new KeelsonError('too many requests', `${this.readWaitersMax} reads waiting`));
    let round = this.openRound;
    if (round === null) {
      const r: ReadRound = { id: this.nextRound++, waiters: [], issuedTick: 0, issues: 0, createdMs: performance.now() };
      round = this.openRound = r;
      queueMicrotask(() => {
        this.openRound = null;
        if (this.closed) {
          for (const w of r.waiters) w.reject(this.fatal ?? new KeelsonError('closed'));
          return;
        }
        this.rounds.set(r.id, r);
        this.issueRound(r);
      });
    }
    this.readWaiting++;
    return new Promise<void>((resolve, reject) => round.waiters.push({ resolve, reject }));
  }

  /**
   * Sends a round's ReadIndex request. With no leader known the core drops
   * it; the round stays and is asked again on the next tick.
   */
  private issueRound(r: ReadRound): void {
    r.issues++;
    try {
      this.node.readIndex(encodeReadCtx(r.id));
      r.issuedTick = this.ticks;
    } catch (e) {
      if (!isNativeError(e, 'ERR_PROPOSAL_DROPPED')) throw e;
      r.issuedTick = this.ticks - this.electionTicks + 1;
    }
    this.kick();
  }

  transferLeader(to: number): void {
    if (this.closed) throw this.fatal ?? new KeelsonError('closed');
    this.node.transferLeader(to);
    this.kick();
  }

  campaign(): void {
    if (this.closed) return;
    this.node.campaign();
    this.kick();
  }

  /** Resolves once the state machine's visible applied index reaches `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.sm.appliedIndex() >= index) return Promise.resolve();
    return new Promise<void>((resolve) => this.appliedWaiters.push({ index, resolve }));
  }

  /** Resolves when a leader is known (or after timeoutMs, then with false). */
  waitForLeader(timeoutMs: number): Promise<boolean> {
    if (this.lead !== 0) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        const i = this.leaderWaiters.indexOf(done);
        if (i >= 0) this.leaderWaiters.splice(i, 1);
        resolve(this.lead !== 0);
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.leaderWaiters.push(done);
    });
  }

  /**
   * Takes a local snapshot (log compaction) as soon as the state machine has
   * applied `minIndex`, keeping `catchUp` entries below it. Used after a
   * member is added, so that it is sent a snapshot carrying the current
   * configuration rather than a log to replay from the beginning.
   */
  requestSnapshot(minIndex: number, catchUp = 0): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pendingSnapshot.push({ minIndex, catchUp, resolve, reject });
      void this.waitApplied(minIndex).then(() => this.kick());
    });
  }

  // -------------------------------------------------------------------------
  // State
  // -------------------------------------------------------------------------

  leader(): number {
    return this.lead;
  }

  isLeader(): boolean {
    return this.role === 'leader';
  }

  currentTerm(): number {
    return this.term;
  }

  status(): RaftStatus {
    return this.node.status();
  }

  walStats() {
    return this.wal.stats();
  }

  /** The last local snapshot's index. */
  snapshotIndex(): number {
    return this.snapIndex;
  }

  // -------------------------------------------------------------------------
  // The Ready loop
  // -------------------------------------------------------------------------

  private kick(): void {
    if (this.loopRunning || this.loopScheduled || this.closed) return;
    this.loopScheduled = true;
    setImmediate(() => {
      this.loopScheduled = false;
      void this.runLoop();
    });
  }

  private async runLoop(): Promise<void> {
    if (this.loopRunning || this.closed) return;
    this.loopRunning = true;
    try {
      for (;;) {
        if (this.closed) return;
        if (this.pendingSnapshot.length > 0 || this.snapshotDue()) await this.maybeSnapshot();
        if (this.closed || !this.node.hasReady()) break;
        const rd = this.node.ready();
        await this.handleReady(rd);
        if (this.closed) return;
        this.node.advance();
      }
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.loopRunning = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.readies++;
    if (rd.snapshot) await this.installSnapshot(rd.snapshot);
    if (rd.hardState) {
      this.wal.appendHardState(rd.hardState);
      this.term = rd.hardState.term;
    }
    if (rd.entries) this.wal.appendEntries(rd.entries);
    if (rd.lead !== this.lead || rd.role !== this.role) this.leaderChanged(rd.lead, rd.role);
    const leader = rd.role === 'leader';
    if (leader) this.send(rd.messages);
    // Committed entries are durable on a quorum already, so they are applied
    // while this Ready's own write is synced rather than after it (which
    // would add one fdatasync to every request's latency). A crash may then
    // leave the keyspace ahead of the local log; the constructor's clamp of
    // `applied` and the skip of entries the keyspace holds cover that.
    if (rd.committed) this.applyCommitted(rd.committed);
    if (rd.mustSync || rd.snapshot) {
      this.unsyncedRequired = true;
      this.syncs++;
      await this.wal.sync();
      if (this.closed) return;
      this.unsyncedRequired = false;
    }
    if (!leader) this.send(rd.messages);
    for (const rs of rd.readStates) {
      const round = this.rounds.get(decodeReadCtx(rs.ctx));
      if (!round) continue; // answered already by an earlier issue of the round
      this.rounds.delete(round.id);
      void this.waitApplied(rs.index).then(() => {
        this.readWaiting -= round.waiters.length;
        for (const w of round.waiters) w.resolve();
      });
    }
    // Bound the pipeline: at most applyInflightBatchesMax lmdb commits pending.
    while (this.applying.length >= this.applyInflightBatchesMax) await this.applying[0];
  }

  private leaderChanged(lead: number, role: RaftRole): void {
    const changed = lead !== this.lead || role !== this.role;
    this.lead = lead;
    this.role = role;
    if (lead !== 0) for (const w of this.leaderWaiters.splice(0)) w();
    if (changed) this.opts.onLeaderChange?.(lead, this.term, role);
    // Open read rounds were asked of the old leader (or of nobody): ask the
    // new one now rather than at the next election-timeout retry. Deferred
    // past this Ready, whose handling must not re-enter the core.
    if (changed && lead !== 0 && this.rounds.size > 0) {
      queueMicrotask(() => {
        if (this.closed || this.lead !== lead) return;
        for (const r of this.rounds.values()) this.issueRound(r);
      });
    }
  }

  private send(messages: Ready['messages']): void {
    for (const { to, data } of messages) {
      const { rest, snaps } = splitSnapshots(data);
      if (rest) this.transport.send(to, rest);
      for (const m of snaps) void this.sendSnapshot(to, m);
    }
    // Out now rather than at the end of the event-loop turn: a leader's
    // MsgApp is on every write's critical path (measured: 3-10% more
    // 1-client puts/s, less CPU per put). One Ready holds all of this turn's
    // messages per peer, so batching is unchanged.
    if (messages.length > 0) this.transport.flush?.();
  }

  /** Puts a fresh copy of the state into a MsgSnap and sends it (see the overview). */
  private async sendSnapshot(to: number, msg: Buffer): Promise<void> {
    try {
      const now = Date.now();
      const minIndex = snapshotIndexOf(msg);
      // One copy serves every follower that needs one within a few seconds:
      // any copy at or above the marker's index is a valid snapshot.
      if (!this.payloadCache || now - this.payloadCache.at > snapshotPayloadReuseMs || this.payloadCache.minIndex < minIndex) {
        const p = this.sm.snapshotPayload(minIndex);
        const entry = { promise: p, at: now, minIndex };
        this.payloadCache = entry;
        p.catch(() => { if (this.payloadCache === entry) this.payloadCache = null; });
        // Do not hold a copy of the whole keyspace in memory longer than it is useful.
        setTimeout(() => { if (this.payloadCache === entry) this.payloadCache = null; }, snapshotPayloadReuseMs).unref();
      }
      const data = await this.payloadCache.promise;
      if (this.closed) return;
      this.transport.send(to, replaceSnapshotData(msg, data), true);
    } catch {
      if (this.closed) return;
      this.node.reportSnapshot(to, false);
      this.kick();
    }
  }

  private async installSnapshot(s: Snapshot): Promise<void> {
    while (this.applying.length > 0) await this.applying[0];
    await this.sm.restoreSnapshot(s.data, s.index);
    const meta: SnapshotMeta = { index: s.index, term: s.term, confState: s.confState };
    this.wal.appendSnapshot(meta);
    this.awaitingSnapshot = false;
    this.snapIndex = s.index;
    this.termHistory = [[s.index, s.term]];
    this.confHistory = [[s.index, s.confState]];
    this.committedSeen = Math.max(this.committedSeen, s.index);
    this.appliedSubmitted = this.sm.appliedIndex();
    this.payloadCache = null;
    this.checkAppliedWaiters();
  }

  private applyCommitted(buf: Buffer): void {
    const entries = parseEntries(buf);
    const batch: CommittedEntry[] = [];
    for (const e of entries) {
      this.noteCommittedTerm(e.index, e.term);
      this.committedSeen = e.index;
      if (e.type === EntryType.ConfChange) {
        let result: ConfState | Error;
        try {
          result = this.node.applyConfChange(e.data);
          this.confHistory.push([e.index, result]);
        } catch (err) {
          if (!isNativeError(err, 'ERR_CONF_CHANGE')) throw err;
          result = err;
        }
        this.sm.onConfChange(e.index, decodeConfChange(e.data), result);
        // The keyspace keeps a gapless applied index: a ConfChange is an empty entry to it.
        if (e.index > this.appliedSubmitted) batch.push({ index: e.index, term: e.term, data: EMPTY });
      } else if (e.index > this.appliedSubmitted) {
        batch.push(e); // a RawEntry is a CommittedEntry (plus its type)
      }
    }
    if (batch.length === 0) return;
    this.appliedSubmitted = batch[batch.length - 1].index;
    const p = this.sm.apply(batch).then(
      () => {
        this.applying.splice(this.applying.indexOf(p), 1);
        this.checkAppliedWaiters();
        if (this.snapshotDue()) this.kick();
      },
      (err) => {
        this.applying.splice(this.applying.indexOf(p), 1);
        this.fail(err instanceof Error ? err : new Error(String(err)));
      },
    );
    this.applying.push(p);
  }

  private checkAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const applied = this.sm.appliedIndex();
    const still: { index: number; resolve: () => void }[] = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= applied) w.resolve();
      else still.push(w);
    }
    this.appliedWaiters = still;
  }

  // -------------------------------------------------------------------------
  // Local snapshots (log compaction)
  // -------------------------------------------------------------------------

  private noteTerm(index: number, term: number): void {
    const last = this.termHistory[this.termHistory.length - 1];
    if (last === undefined || last[1] !== term) this.termHistory.push([index, term]);
  }

  /**
   * Committed entries are authoritative: any term recorded at or above their
   * index came from a log tail (recovered from the WAL) that the leader has
   * since overwritten, so it is dropped first. This keeps the history sorted
   * by index, which termAt() relies on; a wrong term in a WAL snapshot marker
   * would make the WAL drop the entries after it.
   */
  private noteCommittedTerm(index: number, term: number): void {
    const h = this.termHistory;
    while (h.length > 0 && h[h.length - 1][0] >= index) h.pop();
    if (h.length === 0 || h[h.length - 1][1] !== term) h.push([index, term]);
  }

  private termAt(index: number): number {
    let t = 0;
    for (const [i, term] of this.termHistory) {
      if (i > index) break;
      t = term;
    }
    return t;
  }

  private confAt(index: number): ConfState {
    let c = this.confHistory[0][1];
    for (const [i, cs] of this.confHistory) {
      if (i > index) break;
      c = cs;
    }
    return c;
  }

  private snapshotDue(): boolean {
    return !this.snapshotting && this.sm.appliedIndex() - this.snapIndex >= this.snapshotEntries + this.snapshotCatchUpEntries;
  }

  /**
   * Runs between Readies (the core is not mid-Ready): records a snapshot at
   * an index that is durable in the keyspace and known to the core, writes
   * the WAL marker, syncs it, and releases the WAL segments below it.
   */
  private async maybeSnapshot(): Promise<void> {
    const applied = this.sm.appliedIndex();
    const requests = this.pendingSnapshot.filter((r) => r.minIndex <= applied);
    if (requests.length === 0 && !this.snapshotDue()) return;
    this.pendingSnapshot = this.pendingSnapshot.filter((r) => r.minIndex > applied);
    this.snapshotting = true;
    try {
      const catchUp = requests.length > 0 ? Math.min(...requests.map((r) => r.catchUp)) : this.snapshotCatchUpEntries;
      // Only what lmdb has on disk may leave the log (docs/mvcc.md).
      const durable = await this.sm.flush();
      const upTo = Math.min(durable, this.committedSeen, this.node.status().applied);
      // The WAL marker needs the configuration at x; it is known exactly only
      // from the oldest recorded configuration on (the restart point), so
      // keep fewer catch-up entries rather than guess.
      const x = Math.min(upTo, Math.max(upTo - catchUp, this.confHistory[0][0]));
      if (x > this.snapIndex && !this.closed) {
        const meta: SnapshotMeta = { index: x, term: this.termAt(x), confState: this.confAt(x) };
        this.node.createSnapshot(x, SNAPSHOT_MARKER);
        this.wal.appendSnapshot(meta);
        await this.wal.sync();
        this.wal.releaseBefore(x);
        this.snapIndex = x;
        this.termHistory = this.termHistory.filter(([i], k, a) => i >= x || (a[k + 1]?.[0] ?? Infinity) > x);
        this.confHistory = this.confHistory.filter(([i], k, a) => i >= x || (a[k + 1]?.[0] ?? Infinity) > x);
      }
      for (const r of requests) r.resolve();
    } catch (e) {
      for (const r of requests) r.reject(e);
      throw e;
    } finally {
      this.snapshotting = false;
    }
  }

  // -------------------------------------------------------------------------
  // Shutdown
  // -------------------------------------------------------------------------

  private fail(err: Error): void {
    if (this.closed) return;
    this.fatal = err;
    this.opts.onFatal?.(err);
    void this.close();
  }

  /** Stops timers and the transport, waits for in-flight applies, closes the WAL. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.stopTimer?.();
    const err = this.fatal ?? new KeelsonError('closed');
    this.propBatch?.reject(err);
    this.propBatch = null;
    this.props = [];
    for (const r of this.rounds.values()) for (const w of r.waiters) w.reject(err);
    this.rounds.clear();
    for (const r of this.pendingSnapshot.splice(0)) r.reject(err);
    for (const w of this.leaderWaiters.splice(0)) w();
    await this.transport.close();
    while (this.loopRunning) await new Promise((r) => setImmediate(r));
    await Promise.allSettled(this.applying);
    await this.wal.close().catch(() => {});
  }
}

