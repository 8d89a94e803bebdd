// Deterministic simulation of a cluster of native Raft cores.
//
// Overview. Every member is a real native core (src/native.ts RaftNode)
// driven by a host written here, in one process, on a simulated clock. All
// nondeterminism comes from one seeded Prng, so a seed replays a run exactly.
// The simulator keeps a time-ordered event queue (a binary heap keyed by
// simulated time, then by insertion order):
//   - tick:    every member that is up ticks its core (a member may skip a
//              tick now and then, which models clock drift);
//   - deliver: one message reaches its destination (the network drops,
//              duplicates and delays messages, and so reorders them; a
//              partition, possibly one-way, cuts a pair of members);
//   - sync:    a member's disk finishes an fdatasync of its last write.
// On each tick the "nemesis" may inject a fault (partition, heal, crash,
// restart, leader kill, loss and duplication rates) or a client action
// (proposal, read, membership change, leadership transfer, snapshot). Two
// profiles: 'mixed' draws from every fault, 'churn' kills and cuts off
// leaders around their election and their commits (the Figure 8 schedule).
//
// The host follows the Ready contract of src/native.ts: it writes a Ready's
// hard state, entries and snapshot to the member's simulated disk; a leader
// sends the Ready's messages at once (Raft thesis 10.2.1), any other role only
// after the write is synced; committed entries are applied after the write is
// synced, then advance() is called. The disk keeps what was written and what
// was synced apart: a crash keeps the synced state (or, sometimes, everything
// written, or a torn prefix of the last write), and a restart restores the
// core from it with RaftRestoreState. The state machine is volatile: after a
// restart it is rebuilt from the snapshot and the committed log, so every
// index is applied again and checked again.
//
// Invariants, checked as the events happen (the first violation stops the
// run and is reported with the seed, the step and the event):
//   - election safety: at most one leader per term;
//   - log matching: two logs holding an entry with the same index and term
//     hold the same entry there, and the same term just before it;
//   - leader completeness: an entry known to be committed while no term above
//     T had been seen is in the log of every leader of a term above T;
//   - state machine safety: no two members (nor two lives of one member) apply
//     different entries, or reach different states, at the same index;
//   - linearizable reads: a read index covers everything committed before
//     the read was issued;
//   - durability: acks and vote grants leave only once what they promise is
//     synced; a restarted member's durable commit index is backed by its
//     durable log, which agrees with everything known committed; everything
//     a client saw committed is applied by every member in the end.
// Liveness phase: once the faults stop (network healed, crashed members
// restarted), a leader must be elected and new proposals must commit on every
// member of the configuration within a bounded number of ticks.
//
// Failure modes of the simulator itself: a run that never settles is cut by
// bounds (events per tick, Readies in a row, the liveness deadlines) and
// reported as a violation with its seed, never left to hang.
import { createHash } from 'node:crypto';
import { RaftNode, isNativeError, messageTypes, type ConfChange, type ConfState, type HardState, type RaftConfig, type RaftNode as Core, type RaftRole, type Ready, type Snapshot } from '../../src/native.ts';
import { encodeEntries, parseEntries, splitMessages, type Entry } from '../native/raft-harness.ts';
import { Prng } from './prng.ts';

export interface SimOptions {
  seed: number;
  /** 3 or 5 voters at bootstrap (plus two spare members for membership changes). */
  members: 3 | 5;
  /** Ticks of the safety phase (faults on). */
  steps: number;
  /** Run the cores with the deliberately injected bug (checker test). */
  testingBug?: 'commitPreviousTerm';
  /** The nemesis: 'mixed' (default, every fault), 'churn' (leader churn, the Figure 8 schedule) or 'none' (a script drives the faults). */
  profile?: 'mixed' | 'churn' | 'none';
  /** Print a line per fault/action (replay diagnostics). */
  trace?: boolean;
}

export interface SimResult {
  ok: boolean;
  seed: number;
  members: number;
  /** Tick of the failure (or the last tick). */
  step: number;
  /** Events processed. */
  events: number;
  /** Which invariant failed, and how. */
  failure?: string;
  stats: SimStats;
}

export interface SimStats {
  ticks: number;
  messagesSent: number;
  messagesDropped: number;
  messagesDuplicated: number;
  crashes: number;
  restarts: number;
  leaderKills: number;
  partitions: number;
  elections: number;
  proposalsCommitted: number;
  confChangesApplied: number;
  snapshotsCreated: number;
  snapshotsSent: number;
  readsServed: number;
  maxTerm: number;
  maxCommit: number;
}

/** A broken invariant: stops the run. */
export class InvariantViolation extends Error {}

// Simulated time: a tick lasts tickUnits; message and disk delays are in units.
const tickUnits = 10;
const electionTicks = 10;
const heartbeatTicks = 1;
// Bounds of the liveness phase (ticks after the faults stop).
const livenessElectionTicksMax = 40 * electionTicks;
const livenessCommitTicksMax = 60 * electionTicks;
// Bound on the Readies a member hands out without waiting on its disk: a
// core that always has more work is a bug.
const readiesInARowMax = 1000;
// Bound on the events processed in one tick: a runaway message storm is a bug.
const eventsPerTickMax = 200_000;
// Proposals in flight the nemesis keeps at most (bounds the log's growth).
const clientProposalsPendingMax = 64;
// ReadIndex requests in flight at most, and the ticks after which a client gives up on one.
const readsPendingMax = 64;
const readForgetTicks = 10 * electionTicks;
// Trace lines kept for a failure report.
const traceTailLinesMax = 40;
// Ticks after which a client gives up on a proposal (it was dropped).
const clientProposalForgetTicks = 10 * electionTicks;

export interface DiskState {
  hardState?: HardState;
  snapshot?: Snapshot;
  /** Entries after the snapshot, consecutive, ascending. */
  log: Entry[];
}

export interface SimMember {
  id: number;
  core: Core | null;
  /** Lives so far; messages and syncs of an earlier life are void. */
  incarnation: number;
  written: DiskState;
  synced: DiskState;
  /** The Ready written but not yet synced/applied/advanced. */
  pending: Ready | null;
  /** The volatile state machine: index applied and a digest chained over every applied entry. */
  smIndex: number;
  smDigest: string;
  /** Role in the latest Ready (the core's role may have moved on while a Ready is pending). */
  role: RaftRole;
  /** Term from the latest hard state handed out by the core. */
  term: number;
  /** Commit index of the latest hard state handed out. */
  leaderCommit?: number;
  /** Leader terms already checked for completeness on this member. */
  ledTerms: Set<number>;
}

type SimEvent =
  | { kind: 'tick' }
  | { kind: 'deliver'; from: number; to: number; raw: Buffer; type: number; fromIncarnation: number }
  | { kind: 'sync'; id: number; incarnation: number };

interface QueuedEvent {
  at: number;
  seq: number;
  ev: SimEvent;
}

class EventQueue {
  #heap: QueuedEvent[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(at: number, ev: SimEvent): void {
    const h = this.#heap;
    h.push({ at, seq: this.#seq++, ev });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  pop(): QueuedEvent | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l], h[m])) m = l;
        if (r < h.length && less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

function less(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function entryKey(e: Entry): string {
  return `${e.term}/${e.type}/${e.data.toString('base64')}`;
}

function chainDigest(prev: string, e: Entry): string {
  return createHash('sha1').update(prev).update(`|${e.index}|${e.term}|${e.type}|`).update(e.data).digest('base64');
}

/** Writes entries to a disk's log: an entry at an index already held supersedes the log from there on. */
function appendLog(id: number, d: DiskState, ents: Entry[]): void {
  const first = ents[0].index;
  const base = d.snapshot?.index ?? 0;
  if (first <= base) throw new InvariantViolation(`member ${id}: Ready entries start at ${first}, at or below the snapshot ${base}`);
  const keep = first - base - 1;
  if (keep > d.log.length) throw new InvariantViolation(`member ${id}: Ready entries start at ${first}, leaving a gap after ${base + d.log.length}`);
  d.log.length = keep;
  for (const e of ents) {
    if (e.index !== base + d.log.length + 1) throw new InvariantViolation(`member ${id}: Ready entries not consecutive at ${e.index}`);
    d.log.push({ index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data) });
  }
}

function cloneDisk(d: DiskState): DiskState {
  return { hardState: d.hardState, snapshot: d.snapshot, log: d.log.slice() };
}

function confMembers(cs: ConfState): number[] {
  return [...new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext])].sort((a, b) => a - b);
}

function fmtConf(cs: ConfState): string {
  const part = (xs: number[]) => xs.join(',');
  return `voters ${part(cs.voters)}${cs.votersOutgoing.length ? ` & ${part(cs.votersOutgoing)}` : ''}${cs.learners.length ? ` learners ${part(cs.learners)}` : ''}${cs.learnersNext.length ? ` next ${part(cs.learnersNext)}` : ''}`;
}

export class Simulation {
  readonly opts: SimOptions;
  readonly rnd: Prng;
  readonly ids: number[];
  readonly bootstrapVoters: number[];
  readonly members = new Map<number, SimMember>();
  readonly queue = new EventQueue();
  now = 0;
  tickNo = 0;
  events = 0;
  /** 'safety': the nemesis injects faults; 'liveness': no faults; 'script': a scripted scenario drives the faults. */
  phase: 'safety' | 'liveness' | 'script' = 'safety';
  readonly stats: SimStats = {
    ticks: 0,
    messagesSent: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    crashes: 0,
    restarts: 0,
    leaderKills: 0,
    partitions: 0,
    elections: 0,
    proposalsCommitted: 0,
    confChangesApplied: 0,
    snapshotsCreated: 0,
    snapshotsSent: 0,
    readsServed: 0,
    maxTerm: 0,
    maxCommit: 0,
  };

  // Network faults.
  /** Directed pairs "from>to" whose messages are lost. */
  cut = new Set<string>();
  dropRate = 0;
  dupRate = 0;
  delayMaxUnits = 5;
  /** The cores' maxSizePerMsgBytes: small, so that replication takes several rounds. */
  msgBytesMax = 32;
  /** Core knobs; the mixed profile varies them per seed (flow control, byte bounds, pre-vote). */
  knobs = { preVote: true, maxInflightMsgs: 4, maxInflightBytes: 0, maxUncommittedEntriesBytes: 1 << 20 };
  // Disk: sync latency bound.
  syncDelayMaxUnits = 8;

  // Checker state.
  /** term -> the member that led it. */
  readonly leaders = new Map<number, number>();
  /** index:term -> [entry key, term at index-1 or -1 when unknown]. */
  readonly logEntries = new Map<string, [string, number]>();
  /** index -> entry applied there, the digest after it, and the highest term seen when it was first known committed. */
  readonly applied = new Map<number, { key: string; digest: string; knownAtTerm: number }>();
  /** Client proposals seen committed: payload -> index. */
  readonly acked = new Map<string, number>();
  /** Client proposals not yet seen committed: payload -> tick proposed (forgotten after a while: lost with a leader change). */
  proposalsPending = new Map<string, number>();
  proposalSeq = 0;
  /** Linearizable reads in flight: ctx -> the highest index known committed when the read was issued, and the tick. */
  readsPending = new Map<string, { minIndex: number; at: number }>();
  readSeq = 0;
  /** The last trace lines (printed with a scripted scenario's failure). */
  readonly traceTail: string[] = [];

  constructor(opts: SimOptions) {
    this.opts = opts;
    this.rnd = new Prng(opts.seed);
    const n = opts.members;
    this.bootstrapVoters = Array.from({ length: n }, (_, i) => i + 1);
    this.ids = Array.from({ length: n + 2 }, (_, i) => i + 1);
    this.delayMaxUnits = this.rnd.range(1, 3 * tickUnits);
    if ((opts.profile ?? 'mixed') === 'mixed') {
      // From a generator of their own, so that the main stream (and with it
      // every other profile's schedule) does not depend on them.
      const k = new Prng(opts.seed ^ 0x5eed5eed);
      this.msgBytesMax = k.pick([32, 32, 1024]);
      this.knobs = {
        preVote: k.pick([true, true, false]),
        maxInflightMsgs: k.pick([1, 4, 4, 256]),
        maxInflightBytes: k.pick([0, 0, 200]),
        maxUncommittedEntriesBytes: k.pick([1 << 20, 1 << 20, 400]),
      };
    }
    for (const id of this.ids) {
      const m: SimMember = {
        id,
        core: null,
        incarnation: 0,
        written: { log: [] },
        synced: { log: [] },
        pending: null,
        smIndex: 0,
        smDigest: '',
        term: 0,
        role: 'follower',
        ledTerms: new Set(),
      };
      this.members.set(id, m);
      this.start(m);
    }
    this.queue.push(tickUnits, { kind: 'tick' });
  }

  // -------------------------------------------------------------------------
  // Hosts.
  // -------------------------------------------------------------------------

  config(m: SimMember, applied: number): RaftConfig {
    return {
      id: m.id,
      // Spare members start with the bootstrap voters (they are not among
      // them) and learn the configuration from the log or a snapshot.
      voters: this.bootstrapVoters,
      electionTicks,
      heartbeatTicks,
      preVote: this.knobs.preVote,
      checkQuorum: true,
      // Small appends so that replication takes several rounds (more
      // interleavings, and old-term entries replicated on their own).
      maxSizePerMsgBytes: this.msgBytesMax,
      maxInflightMsgs: this.knobs.maxInflightMsgs,
      maxInflightBytes: this.knobs.maxInflightBytes,
      maxUncommittedEntriesBytes: this.knobs.maxUncommittedEntriesBytes,
      seed: this.rnd.fork(),
      applied,
      ...(this.opts.testingBug ? { testingBug: this.opts.testingBug } : {}),
    };
  }

  start(m: SimMember): void {
    m.incarnation++;
    const d = m.synced;
    const applied = d.snapshot?.index ?? 0;
    m.written = cloneDisk(d);
    m.pending = null;
    m.smIndex = applied;
    m.smDigest = d.snapshot ? d.snapshot.data.toString() : '';
    m.term = d.hardState?.term ?? 0;
    m.role = 'follower';
    if (d.snapshot) this.checkSnapshotState(m, d.snapshot, 'restart');
    this.checkRestoredDisk(m);
    const restore = m.incarnation === 1 ? undefined : { hardState: d.hardState, snapshot: d.snapshot, entries: encodeEntries(d.log) };
    m.core = new RaftNode(this.config(m, applied), restore);
  }

  crash(m: SimMember, why: string): void {
    if (!m.core) return;
    // What survives a power loss: the synced state; in a fifth of the
    // crashes everything written (the unsynced writes happened to reach the
    // disk); in another fifth a prefix of the unsynced write (a torn tail
    // that the WAL cuts off at open): the snapshot marker first, then the
    // entries in order, the hard state last, as the driver appends them.
    // Each is a state a real disk can be left in.
    const x = this.rnd.float();
    let kept = '';
    if (x < 0.2) {
      m.synced = cloneDisk(m.written);
      kept = ', unsynced writes survive';
    } else if (x < 0.4 && m.pending) {
      const rd = m.pending;
      const d = cloneDisk(m.synced);
      if (rd.snapshot) {
        d.snapshot = rd.snapshot;
        d.log = [];
      }
      const ents = parseEntries(rd.entries);
      const k = this.rnd.int(ents.length + 1);
      if (k > 0) appendLog(m.id, d, ents.slice(0, k));
      if (k === ents.length && rd.hardState) d.hardState = rd.hardState;
      m.synced = d;
      kept = `, ${k} of ${ents.length} unsynced entries survive${k === ents.length && rd.hardState ? ' and the hard state' : ''}`;
    }
    m.core = null;
    m.pending = null;
    this.stats.crashes++;
    this.trace(`crash ${m.id} (${why}${kept})`);
  }

  restart(m: SimMember): void {
    if (m.core) return;
    this.start(m);
    this.stats.restarts++;
    this.trace(`restart ${m.id} (term ${m.synced.hardState?.term ?? 0}, commit ${m.synced.hardState?.commit ?? 0}, snapshot ${m.synced.snapshot?.index ?? 0}, log ${m.synced.log.length})`);
  }

  /** Hands out and processes Readies until the member waits on its disk or has nothing to do. */
  drive(m: SimMember): void {
    for (let i = 0; i < readiesInARowMax; i++) {
      if (!m.core || m.pending || !m.core.hasReady()) return;
      const rd = m.core.ready();
      this.write(m, rd);
      if (rd.role === 'leader') this.send(m, rd);
      if (rd.mustSync || rd.snapshot) {
        m.pending = rd;
        this.queue.push(this.now + this.rnd.range(1, this.syncDelayMaxUnits), { kind: 'sync', id: m.id, incarnation: m.incarnation });
        return;
      }
      this.finish(m, rd);
    }
    throw new InvariantViolation(`member ${m.id}: more than ${readiesInARowMax} Readies in a row`);
  }

  write(m: SimMember, rd: Ready): void {
    const d = m.written;
    if (rd.hardState) {
      if (d.hardState && rd.hardState.term < d.hardState.term) throw new InvariantViolation(`member ${m.id}: hard state term went from ${d.hardState.term} to ${rd.hardState.term}`);
      d.hardState = rd.hardState;
      m.term = rd.hardState.term;
      if (m.term > this.stats.maxTerm) this.stats.maxTerm = m.term;
    }
    if (rd.snapshot) {
      this.checkSnapshotState(m, rd.snapshot, 'received');
      d.snapshot = rd.snapshot;
      d.log = [];
    }
    const ents = parseEntries(rd.entries);
    if (ents.length) {
      appendLog(m.id, d, ents);
      for (let i = ents.length - 1; i >= 0; i--) this.checkLogMatching(m, d, ents[i].index);
    }
    if (this.opts.profile === 'churn' && this.phase === 'safety' && rd.role === 'leader' && rd.hardState && rd.hardState.commit > (m.leaderCommit ?? 0) && this.rnd.chance(0.25)) {
      // The adversary strikes the moment a leader's commit index moves:
      // harmless for a correct core, whose commit implies its own term's
      // entry is on a quorum, but the window of the Figure 8 hazard otherwise.
      this.isolate(m, 'its commit moved');
    }
    if (rd.hardState) m.leaderCommit = rd.hardState.commit;
    for (const rs of rd.readStates) this.checkRead(m, rs.index, rs.ctx);
    m.role = rd.role;
    if (rd.role === 'leader') this.recordLeader(m, m.term);
    if (rd.role === 'leader' && !m.ledTerms.has(m.term)) {
      m.ledTerms.add(m.term);
      this.onLeader(m, m.term);
      // ... and the moment a leader is elected, before its first entry spreads.
      if (this.opts.profile === 'churn' && this.phase === 'safety' && this.rnd.chance(0.25)) this.isolate(m, 'just elected');
    }
  }

  finish(m: SimMember, rd: Ready): void {
    if (rd.role !== 'leader') this.send(m, rd);
    const core = m.core!;
    if (rd.snapshot) {
      m.smIndex = rd.snapshot.index;
      m.smDigest = rd.snapshot.data.toString();
    }
    for (const e of parseEntries(rd.committed)) {
      if (e.index !== m.smIndex + 1) throw new InvariantViolation(`member ${m.id}: committed entry ${e.index} handed out after applying ${m.smIndex}`);
      if (e.type === 1) {
        try {
          const cs = core.applyConfChange(Buffer.from(e.data));
          this.stats.confChangesApplied++;
          this.trace(`member ${m.id} applies conf change at ${e.index}: ${fmtConf(cs)}`);
        } catch (err) {
          if (!isNativeError(err, 'ERR_CONF_CHANGE')) throw err;
        }
      }
      this.onApply(m, e);
    }
    core.advance();
  }

  onSync(m: SimMember): void {
    const rd = m.pending;
    if (!rd || !m.core) return;
    m.synced = cloneDisk(m.written);
    m.pending = null;
    this.finish(m, rd);
  }

  send(m: SimMember, rd: Ready): void {
    for (const { to, data } of rd.messages) {
      for (const msg of splitMessages(data)) {
        this.stats.messagesSent++;
        if (rd.role !== 'leader') this.checkDurableBeforeSend(m, msg.type, msg.reject, msg.term, msg.index, to);
        if (msg.type === messageTypes.MsgSnap) this.stats.snapshotsSent++;
        if (this.rnd.chance(this.dropRate)) {
          this.stats.messagesDropped++;
          this.lost(m, to, msg.type);
          continue;
        }
        const copies = this.rnd.chance(this.dupRate) ? 2 : 1;
        if (copies === 2) this.stats.messagesDuplicated++;
        for (let c = 0; c < copies; c++) {
          this.queue.push(this.now + this.rnd.range(1, this.delayMaxUnits), { kind: 'deliver', from: m.id, to, raw: Buffer.from(msg.raw), type: msg.type, fromIncarnation: m.incarnation });
        }
      }
    }
  }

  /** The transport tells the sender when it knows a message was lost (a broken connection). */
  lost(from: SimMember, to: number, type: number): void {
    if (!from.core) return;
    if (type === messageTypes.MsgSnap) from.core.reportSnapshot(to, false);
    else if (this.rnd.chance(0.3)) from.core.reportUnreachable(to);
  }

  deliver(ev: Extract<SimEvent, { kind: 'deliver' }>): void {
    const dst = this.members.get(ev.to);
    const src = this.members.get(ev.from)!;
    if (!dst || !dst.core || this.cut.has(`${ev.from}>${ev.to}`)) {
      this.stats.messagesDropped++;
      if (src.incarnation === ev.fromIncarnation) this.lost(src, ev.to, ev.type);
      return;
    }
    try {
      dst.core.step(ev.raw);
    } catch (e) {
      if (isNativeError(e, 'ERR_BAD_MESSAGE')) throw new InvariantViolation(`member ${dst.id} refused a message from ${ev.from} (type ${ev.type}) on an honest network: ${(e as Error).message}`);
      throw e;
    }
    if (ev.type === messageTypes.MsgSnap && src.core && src.incarnation === ev.fromIncarnation) src.core.reportSnapshot(dst.id, true);
    this.drive(dst);
  }

  // -------------------------------------------------------------------------
  // Checks.
  // -------------------------------------------------------------------------

  /**
   * Election safety from the role the core reports right now, and agreement
   * of the host with the core. Leaders are also recorded from every Ready
   * (write()); this catches a leadership that ends before its first Ready is
   * handed out, and runs after a vote response (the only message that makes
   * a leader) and on every fourth tick.
   */
  checkMember(m: SimMember): void {
    if (!m.core) return;
    const s = m.core.status();
    if (s.term > this.stats.maxTerm) this.stats.maxTerm = s.term;
    if (!m.pending && !m.core.hasReady()) {
      // With every Ready written, the host's log is the core's log.
      const last = (m.written.snapshot?.index ?? 0) + m.written.log.length;
      if (s.lastIndex !== last) throw new InvariantViolation(`member ${m.id}: the core's last index ${s.lastIndex} differs from the host's log ${last}`);
      if (s.applied !== m.smIndex) throw new InvariantViolation(`member ${m.id}: the core's applied index ${s.applied} differs from the host's ${m.smIndex}`);
    }
    if (s.role === 'leader') this.recordLeader(m, s.term);
  }

  recordLeader(m: SimMember, term: number): void {
    const other = this.leaders.get(term);
    if (other === undefined) {
      this.leaders.set(term, m.id);
      this.stats.elections++;
      this.trace(`member ${m.id} leads term ${term}`);
    } else if (other !== m.id) {
      throw new InvariantViolation(`election safety: members ${other} and ${m.id} both lead term ${term}`);
    }
  }

  /**
   * What a message promises is durable when it leaves: an append ack covers
   * entries on the synced log, a granted vote is in the synced hard state
   * (or the synced term is past the vote's).
   */
  checkDurableBeforeSend(m: SimMember, type: number, reject: boolean, term: number, index: number, to: number): void {
    if (reject) return;
    const d = m.synced;
    if (type === messageTypes.MsgAppResp) {
      // Only acks of the member's current term. An ack of an older term can
      // leave after the entries it covers were replaced by a newer leader
      // (appended while a Ready was being synced, then truncated before the
      // next one): harmless, because that leader's election shows no quorum
      // of the old term can hold those entries, so the old leader cannot
      // commit them by counting this ack.
      if (term !== d.hardState?.term) return;
      const last = (d.snapshot?.index ?? 0) + d.log.length;
      if (index > last) throw new InvariantViolation(`durability: member ${m.id} acknowledges index ${index} to ${to} with only ${last} synced`);
    } else if (type === messageTypes.MsgVoteResp) {
      // A grant of an older term may leave after the member moved on (granted
      // while a Ready was being synced, superseded before the next one): a
      // synced later term is enough, as the member never votes in that term
      // again.
      const hs = d.hardState;
      if (hs && hs.term > term) return;
      if (!hs || hs.term !== term || hs.vote !== to) throw new InvariantViolation(`durability: member ${m.id} grants its term-${term} vote to ${to} before the vote is synced (synced: term ${hs?.term ?? 0} vote ${hs?.vote ?? 0})`);
    }
  }

  checkLogMatching(m: SimMember, d: DiskState, index: number): void {
    const base = d.snapshot?.index ?? 0;
    const e = d.log[index - base - 1];
    const prevTerm = index - 1 === base ? (d.snapshot?.term ?? 0) : index - 1 > base ? d.log[index - base - 2].term : -1;
    const k = `${index}:${e.term}`;
    const key = entryKey(e);
    const have = this.logEntries.get(k);
    if (!have) {
      this.logEntries.set(k, [key, prevTerm]);
      return;
    }
    if (have[0] !== key) throw new InvariantViolation(`log matching: member ${m.id} holds a different entry at index ${index} term ${e.term} than another log`);
    if (prevTerm >= 0 && have[1] >= 0 && have[1] !== prevTerm)
      throw new InvariantViolation(`log matching: member ${m.id} holds index ${index} term ${e.term} after term ${prevTerm}, another log after term ${have[1]}`);
    if (have[1] < 0 && prevTerm >= 0) have[1] = prevTerm;
  }

  /** Leader completeness: everything known committed below this term is in the new leader's log. */
  onLeader(m: SimMember, term: number): void {
    const d = m.written;
    const base = d.snapshot?.index ?? 0;
    for (const [index, a] of this.applied) {
      if (a.knownAtTerm >= term || index <= base) continue;
      const e = d.log[index - base - 1];
      if (!e || entryKey(e) !== a.key)
        throw new InvariantViolation(`leader completeness: member ${m.id} leads term ${term} without the entry committed at index ${index} (known committed by term ${a.knownAtTerm}); it holds ${e ? `term ${e.term}` : 'nothing'} there`);
    }
  }

  onApply(m: SimMember, e: Entry): void {
    const key = entryKey(e);
    m.smIndex = e.index;
    m.smDigest = chainDigest(m.smDigest, e);
    const have = this.applied.get(e.index);
    if (!have) {
      this.applied.set(e.index, { key, digest: m.smDigest, knownAtTerm: this.stats.maxTerm });
      if (e.index > this.stats.maxCommit) this.stats.maxCommit = e.index;
    } else if (have.key !== key || have.digest !== m.smDigest) {
      throw new InvariantViolation(`state machine safety: member ${m.id} (life ${m.incarnation}) applies ${have.key !== key ? `a different entry (term ${e.term})` : 'the same entry onto a different state'} at index ${e.index} than was applied before`);
    }
    if (e.type === 0 && e.data.length > 0) {
      const p = e.data.toString();
      if (!this.acked.has(p)) {
        this.acked.set(p, e.index);
        this.stats.proposalsCommitted++;
        this.proposalsPending.delete(p);
      }
      // The same payload at two indexes is no violation: a duplicated
      // forwarded proposal (MsgProp) is appended twice, as Raft allows.
    }
  }

  /**
   * Linearizable reads: a read index covers every entry known committed
   * (applied anywhere) before the read was issued; a smaller one would let
   * the read miss a write that completed before it began.
   */
  checkRead(m: SimMember, index: number, ctx: Buffer): void {
    const r = this.readsPending.get(ctx.toString());
    if (!r) return;
    this.readsPending.delete(ctx.toString());
    this.stats.readsServed++;
    if (index < r.minIndex) throw new InvariantViolation(`linearizability: member ${m.id} serves read ${ctx.toString()} at index ${index}, but index ${r.minIndex} was committed before the read began`);
  }

  read(target: SimMember): void {
    if (!target.core) return;
    if (this.readsPending.size >= readsPendingMax) {
      for (const [c, r] of this.readsPending) if (this.tickNo - r.at > readForgetTicks) this.readsPending.delete(c);
      if (this.readsPending.size >= readsPendingMax) return;
    }
    const ctx = `r${this.readSeq++}`;
    try {
      target.core.readIndex(Buffer.from(ctx));
      this.readsPending.set(ctx, { minIndex: this.stats.maxCommit, at: this.tickNo });
    } catch (e) {
      if (!isNativeError(e)) throw e;
    }
    this.drive(target);
  }

  checkSnapshotState(m: SimMember, s: Snapshot, how: string): void {
    const have = this.applied.get(s.index);
    if (have && have.digest !== s.data.toString()) throw new InvariantViolation(`state machine safety: member ${m.id} ${how} a snapshot at ${s.index} whose state differs from what was applied there`);
  }

  /** A restarted member's durable commit is backed by its durable log, which agrees with what is known committed. */
  checkRestoredDisk(m: SimMember): void {
    const d = m.synced;
    const base = d.snapshot?.index ?? 0;
    const commit = d.hardState?.commit ?? 0;
    if (commit > base + d.log.length) throw new InvariantViolation(`durability: member ${m.id} restarts with commit ${commit} beyond its durable log ${base + d.log.length}`);
    for (const e of d.log) {
      if (e.index > commit) break;
      const a = this.applied.get(e.index);
      if (a && a.key !== entryKey(e)) throw new InvariantViolation(`durability: member ${m.id} restarts with a committed entry at ${e.index} that differs from the one applied there`);
    }
  }

  // -------------------------------------------------------------------------
  // The nemesis and the clients.
  // -------------------------------------------------------------------------

  upMembers(): SimMember[] {
    return [...this.members.values()].filter((m) => m.core);
  }

  /**
   * The up member that leads the highest term, if any: from the cores' status
   * when `exact`, else from the latest Readies (cheaper; the nemesis aims
   * with it, and a stale answer only makes it aim at a former leader).
   */
  leader(exact = false): SimMember | undefined {
    let best: SimMember | undefined;
    let bestTerm = -1;
    for (const m of this.members.values()) {
      if (!m.core) continue;
      let role = m.role;
      let term = m.term;
      if (exact) {
        const s = m.core.status();
        role = s.role;
        term = s.term;
      }
      if (role === 'leader' && term > bestTerm) {
        best = m;
        bestTerm = term;
      }
    }
    return best;
  }

  propose(target: SimMember): void {
    if (!target.core) return;
    if (this.proposalsPending.size >= clientProposalsPendingMax) {
      for (const [p, at] of this.proposalsPending) if (this.tickNo - at > clientProposalForgetTicks) this.proposalsPending.delete(p);
      if (this.proposalsPending.size >= clientProposalsPendingMax) return;
    }
    const p = `s${this.opts.seed}-p${this.proposalSeq++}`;
    try {
      target.core.propose(Buffer.from(p));
      this.proposalsPending.set(p, this.tickNo);
    } catch (e) {
      if (!isNativeError(e)) throw e;
    }
    this.drive(target);
  }

  changeMembership(l: SimMember): void {
    const s = l.core!.status();
    const cs = s.confState;
    const r = this.rnd;
    let cc: ConfChange | null = null;
    if (cs.votersOutgoing.length > 0) {
      if (!cs.autoLeave) cc = { changes: [] };
    } else {
      const inConf = new Set(confMembers(cs));
      const outside = this.ids.filter((id) => !inConf.has(id));
      const voters = cs.voters;
      const voterMin = 3;
      const voterMax = this.opts.members + 1;
      const choice = r.int(5);
      if (choice === 0 && outside.length) cc = { changes: [{ type: 'addLearner', nodeId: r.pick(outside) }] };
      else if (choice === 1 && cs.learners.length && voters.length < voterMax) cc = { changes: [{ type: 'addNode', nodeId: r.pick(cs.learners) }] };
      else if (choice === 2 && voters.length > voterMin) cc = { changes: [{ type: 'removeNode', nodeId: r.pick(voters) }] };
      else if (choice === 3 && cs.learners.length) cc = { changes: [{ type: 'removeNode', nodeId: r.pick(cs.learners) }] };
      else if (choice === 4) {
        // Joint consensus: swap a voter for a learner or an outsider.
        const incoming = [...cs.learners, ...outside];
        if (incoming.length) {
          cc = {
            changes: [
              { type: 'addNode', nodeId: r.pick(incoming) },
              { type: 'removeNode', nodeId: r.pick(voters) },
            ],
            transition: r.pick(['auto', 'implicit', 'explicit'] as const),
          };
        }
      }
    }
    if (!cc) return;
    try {
      l.core!.proposeConfChange(cc);
      this.trace(`propose conf change on ${l.id}: ${cc.changes.map((c) => `${c.type} ${c.nodeId}`).join(', ') || 'leave joint'}${cc.transition ? ` (${cc.transition})` : ''}`);
    } catch (e) {
      if (!isNativeError(e)) throw e;
    }
    this.drive(l);
  }

  snapshot(m: SimMember): void {
    const core = m.core;
    if (!core || m.pending) return;
    const base = m.written.snapshot?.index ?? 0;
    if (m.smIndex <= base + 2) return;
    const index = m.smIndex;
    const data = Buffer.from(m.smDigest);
    try {
      core.createSnapshot(index, data);
    } catch (e) {
      if (!isNativeError(e, 'ERR_SNAPSHOT') && !isNativeError(e, 'ERR_COMPACTED')) throw e;
      return;
    }
    const meta = core.status();
    const term = m.written.log[index - base - 1]?.term;
    if (term === undefined) throw new InvariantViolation(`member ${m.id}: snapshot at ${index} beyond its log`);
    const snap: Snapshot = { index, term, confState: meta.confState, data };
    // The snapshot file is written and synced before it is recorded, and the
    // log below it is dropped (in the written and the synced state alike).
    for (const d of [m.written, m.synced]) {
      const dBase = d.snapshot?.index ?? 0;
      if (dBase >= index) continue;
      d.log = d.log.filter((e) => e.index > index);
      d.snapshot = snap;
      if (d.log.length && d.log[0].index !== index + 1) d.log = [];
    }
    // A hard state whose commit is below the snapshot is fine: the snapshot is committed.
    this.stats.snapshotsCreated++;
    this.trace(`member ${m.id} snapshots at ${index}`);
  }

  nemesis(): void {
    if (this.opts.profile === 'churn') return this.churn();
    if (this.opts.profile === 'none') return;
    const r = this.rnd;
    const all = [...this.members.values()];
    const x = r.float();
    if (x < 0.3) {
      const l = this.leader();
      const target = l && r.chance(0.85) ? l : r.pick(all);
      const n = r.range(1, 3);
      for (let i = 0; i < n; i++) this.propose(target);
    } else if (x < 0.33) {
      // Partition: two random sides, sometimes only one direction.
      this.cut.clear();
      const side = new Set(all.filter(() => r.chance(0.5)).map((m) => m.id));
      const oneWay = r.chance(0.3);
      for (const a of all) for (const b of all) if (a !== b && side.has(a.id) && !side.has(b.id)) {
        this.cut.add(`${a.id}>${b.id}`);
        if (!oneWay) this.cut.add(`${b.id}>${a.id}`);
      }
      this.stats.partitions++;
      this.trace(`partition {${[...side].join(',')}} ${oneWay ? '-/->' : '<-/->'} rest`);
    } else if (x < 0.35) {
      // Isolate the leader (or cut it off in one direction).
      const l = this.leader();
      if (l) {
        const oneWay = r.chance(0.5);
        for (const b of all) if (b !== l) {
          this.cut.add(`${l.id}>${b.id}`);
          if (!oneWay) this.cut.add(`${b.id}>${l.id}`);
        }
        this.stats.partitions++;
        this.trace(`isolate leader ${l.id}${oneWay ? ' (outbound only)' : ''}`);
      }
    } else if (x < 0.39) {
      this.cut.clear();
      this.trace('heal');
    } else if (x < 0.41) {
      this.dropRate = r.pick([0, 0, 0.05, 0.2]);
      this.dupRate = r.pick([0, 0.05, 0.2]);
      this.delayMaxUnits = r.range(1, 3 * tickUnits);
      this.trace(`network: drop ${this.dropRate}, dup ${this.dupRate}, delay <= ${this.delayMaxUnits}`);
    } else if (x < 0.44) {
      const up = this.upMembers();
      const downCount = all.length - up.length;
      if (up.length && downCount < 3) this.crash(r.pick(up), 'random');
    } else if (x < 0.46) {
      const l = this.leader();
      if (l) {
        this.stats.leaderKills++;
        this.crash(l, 'leader kill');
      }
    } else if (x < 0.52) {
      const down = all.filter((m) => !m.core);
      if (down.length) {
        const m = r.pick(down);
        this.restart(m);
        this.drive(m);
      }
    } else if (x < 0.55) {
      const l = this.leader();
      if (l) this.changeMembership(l);
    } else if (x < 0.57) {
      const l = this.leader();
      if (l) {
        const to = r.pick(all).id;
        try {
          l.core!.transferLeader(to);
          this.trace(`transfer leadership ${l.id} -> ${to}`);
        } catch (e) {
          if (!isNativeError(e)) throw e;
        }
        this.drive(l);
      }
    } else if (x < 0.61) {
      const up = this.upMembers();
      if (up.length) this.snapshot(r.pick(up));
    } else if (x < 0.66) {
      const l = this.leader();
      this.read(l && r.chance(0.7) ? l : r.pick(all));
    }
  }

  /** Cuts a member off from every other, both ways. */
  isolate(m: SimMember, why: string): void {
    for (const b of this.members.values()) if (b !== m) {
      this.cut.add(`${m.id}>${b.id}`);
      this.cut.add(`${b.id}>${m.id}`);
    }
    this.stats.partitions++;
    this.trace(`isolate ${m.id} (${why})`);
  }

  /**
   * Leader churn: leaders are killed or cut off soon after they are elected,
   * while clients keep proposing, and crashed members come back quickly. This
   * is the schedule of the Raft paper's Figure 8 (entries of an old term left
   * on some members, a new leader replicating them, then losing its
   * leadership before its own entries spread), which a uniform nemesis
   * rarely produces.
   */
  churn(): void {
    const r = this.rnd;
    const all = [...this.members.values()];
    const l = this.leader();
    if (l && r.chance(0.7)) for (let i = r.range(1, 2); i > 0; i--) this.propose(l);
    if (r.chance(0.2)) this.read(l && r.chance(0.7) ? l : r.pick(all));
    const x = r.float();
    if (x < 0.12) {
      if (l) {
        this.stats.leaderKills++;
        this.crash(l, 'leader kill');
      }
    } else if (x < 0.2) {
      if (l) {
        this.cut.clear();
        this.isolate(l, 'leader');
      }
    } else if (x < 0.3) {
      this.cut.clear();
      this.trace('heal');
    } else if (x < 0.5) {
      const down = all.filter((m) => !m.core);
      if (down.length) {
        const m = r.pick(down);
        this.restart(m);
        this.drive(m);
      }
    }
  }

  // -------------------------------------------------------------------------
  // Running.
  // -------------------------------------------------------------------------

  trace(line: string): void {
    const s = `[tick ${this.tickNo}] ${line}`;
    if (this.opts.trace) console.log(s);
    this.traceTail.push(s);
    if (this.traceTail.length > traceTailLinesMax) this.traceTail.shift();
  }

  /** Runs events up to and including the next tick. */
  runTick(): void {
    for (let budget = eventsPerTickMax; budget > 0; budget--) if (this.runEvent()) return;
    throw new InvariantViolation(`more than ${eventsPerTickMax} events in one tick`);
  }

  /** Processes the next event; true when it was a tick. */
  runEvent(): boolean {
    const q = this.queue.pop();
    if (!q) throw new Error('event queue ran dry (the tick event is always queued)');
    this.now = q.at;
    this.events++;
    const ev = q.ev;
    if (ev.kind === 'deliver') {
      this.deliver(ev);
      if (ev.type === messageTypes.MsgVoteResp) this.checkMember(this.members.get(ev.to)!);
      return false;
    }
    if (ev.kind === 'sync') {
      const m = this.members.get(ev.id)!;
      if (m.incarnation !== ev.incarnation) return false;
      this.onSync(m);
      this.drive(m);
      return false;
    }
    this.tickNo++;
    this.stats.ticks++;
    if (this.phase === 'safety') this.nemesis();
    for (const m of this.members.values()) {
      if (!m.core) continue;
      // Now and then a member misses a tick: clocks drift apart.
      if (this.phase === 'safety' && this.rnd.chance(0.05)) continue;
      m.core.tick();
      this.drive(m);
      if (this.tickNo % 4 === 0) this.checkMember(m);
    }
    this.queue.push(this.now + tickUnits, { kind: 'tick' });
    return true;
  }

  /** Runs events until `done` holds after one (checked after every event), for at most `ticksMax` ticks; false on timeout. */
  runUntil(done: () => boolean, ticksMax: number): boolean {
    const until = this.tickNo + ticksMax;
    let budget = eventsPerTickMax * ticksMax;
    while (this.tickNo < until && budget-- > 0) {
      this.runEvent();
      if (done()) return true;
    }
    return false;
  }

  /** Stop the faults: heal, clean network, restart everyone. */
  calm(): void {
    this.phase = 'liveness';
    this.cut.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.delayMaxUnits = 3;
    for (const m of this.members.values()) {
      if (!m.core) {
        this.restart(m);
        this.drive(m);
      }
    }
    this.trace('faults stop: liveness phase');
  }

  livenessPhase(): void {
    this.calm();
    // A leader that is a voter of its own configuration.
    let l: SimMember | undefined;
    const electBy = this.tickNo + livenessElectionTicksMax;
    while (this.tickNo < electBy) {
      this.runTick();
      l = this.leader(true);
      if (l) break;
    }
    if (!l) throw new InvariantViolation(`liveness: no leader within ${livenessElectionTicksMax} ticks after the faults stopped`);
    // New proposals commit on every member of the configuration, and so
    // does everything a client saw committed before (nothing was lost).
    let finalsProposed = 0;
    let finalsAcked = 0;
    const commitBy = this.tickNo + livenessCommitTicksMax;
    let lastProposeTick = -Infinity;
    for (;;) {
      if (this.tickNo >= commitBy) {
        throw new InvariantViolation(`liveness: proposals did not commit on every member within ${livenessCommitTicksMax} ticks after the faults stopped (${this.describe()})`);
      }
      l = this.leader(true);
      if (l) {
        const cs = l.core!.status().confState;
        finalsAcked = 0;
        for (let i = 0; i < finalsProposed; i++) if (this.acked.has(`s${this.opts.seed}-final${i}`)) finalsAcked++;
        if (this.tickNo - lastProposeTick >= electionTicks) {
          // A joint configuration left explicitly needs the host to leave it.
          if (cs.votersOutgoing.length > 0 && !cs.autoLeave) {
            try {
              l.core!.proposeConfChange({ changes: [] });
            } catch (e) {
              if (!isNativeError(e)) throw e;
            }
          }
          // (Re)propose until three commit: a proposal may be lost with a leader change.
          if (finalsAcked < 3) {
            try {
              l.core!.propose(Buffer.from(`s${this.opts.seed}-final${finalsProposed++}`));
            } catch (e) {
              if (!isNativeError(e)) throw e;
            }
          }
          this.drive(l);
          lastProposeTick = this.tickNo;
        }
        if (finalsAcked >= 3 && cs.votersOutgoing.length === 0) {
          const target = Math.max(...this.acked.values());
          const behind = confMembers(cs).filter((id) => this.members.get(id)!.smIndex < target);
          if (behind.length === 0) break;
        }
      }
      this.runTick();
    }
  }

  describe(): string {
    const parts: string[] = [];
    for (const m of this.members.values()) {
      if (!m.core) {
        parts.push(`${m.id}: down`);
        continue;
      }
      const s = m.core.status();
      parts.push(`${m.id}: ${s.role} t${s.term} lead ${s.lead} commit ${s.commit} applied ${m.smIndex} last ${s.lastIndex}${m.pending ? ' (syncing)' : ''} [${fmtConf(s.confState)}]`);
    }
    return parts.join('; ');
  }

  run(): SimResult {
    let failure: string | undefined;
    try {
      for (let i = 0; i < this.opts.steps; i++) this.runTick();
      this.livenessPhase();
    } catch (e) {
      if (!(e instanceof InvariantViolation) && !isNativeError(e)) throw e;
      failure = `${(e as Error).message}${e instanceof InvariantViolation ? '' : ` (native error ${(e as { code: string }).code})`}`;
    }
    return { ok: failure === undefined, seed: this.opts.seed, members: this.opts.members, step: this.tickNo, events: this.events, failure, stats: this.stats };
  }
}

export function runSeed(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

/** The cluster size a seed runs with when none is given: mixes 3 and 5. */
export function membersForSeed(seed: number): 3 | 5 {
  return seed % 2 === 0 ? 3 : 5;
}
