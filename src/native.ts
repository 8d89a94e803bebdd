// The only module that loads the native addon (build/Release/keelson.node).
// Every other module imports the native core through the types below.
//
// The addon is built by node-gyp from binding.gyp during `npm install`.
// KEELSON_ADDON may name another build of it (the sanitizer build used by
// `npm run test:asan`).
//
// Binary formats that cross the seam are documented in docs/native-format.md.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const addonPath = process.env.KEELSON_ADDON ?? path.join(here, '..', 'build', 'Release', 'keelson.node');

// ---------------------------------------------------------------------------
// Errors. Errors thrown by the addon are plain Error objects with a string
// `code` (one of NativeErrorCode) and, for ERR_NOT_LEADER, the known leader.
// ---------------------------------------------------------------------------
export type NativeErrorCode =
  | 'ERR_NOT_LEADER' // proposal on a node that is not the leader and cannot forward
  | 'ERR_PROPOSAL_DROPPED' // proposal dropped (no leader known, transfer in progress, ...)
  | 'ERR_TOO_LARGE' // a single proposal larger than maxSizePerMsgBytes allows
  | 'ERR_UNCOMMITTED_LIMIT' // uncommitted bytes would exceed maxUncommittedEntriesBytes
  | 'ERR_BAD_MESSAGE' // a message buffer is malformed or has out-of-range fields
  | 'ERR_BAD_ARGUMENT' // an argument of the wrong type or out of range
  | 'ERR_CONF_CHANGE' // a membership change that is not allowed now
  | 'ERR_SNAPSHOT' // snapshot index/term out of range
  | 'ERR_COMPACTED' // requested log index is below the compacted log
  | 'ERR_WAL_CORRUPT' // a checksum failure before the tail (message names file and offset)
  | 'ERR_WAL_MISMATCH' // WAL belongs to another cluster or member
  | 'ERR_WAL_IO' // an I/O error (message carries errno text)
  | 'ERR_WAL_CLOSED'; // operation on a closed WAL

export interface NativeError extends Error {
  code: NativeErrorCode;
  /** For ERR_NOT_LEADER: the leader's id, 0 when unknown. */
  leader?: number;
}

export function isNativeError(e: unknown, code?: NativeErrorCode): e is NativeError {
  return e instanceof Error && typeof (e as NativeError).code === 'string' && (code === undefined || (e as NativeError).code === code);
}

// ---------------------------------------------------------------------------
// Raft core. A pure state machine in the shape of etcd's raft RawNode: no
// clock, file, socket or random source of its own. Member ids are positive
// integers below 2^53.
// ---------------------------------------------------------------------------

export type RaftRole = 'follower' | 'candidate' | 'precandidate' | 'leader';

export interface RaftConfig {
  id: number;
  /**
   * Voters at bootstrap. On restart with a snapshot the snapshot's configuration
   * is used instead; without one the host passes the same bootstrap lists again
   * and the core replays the committed ConfChange entries up to `applied` on top.
   */
  voters: number[];
  learners?: number[];
  /** Election timeout in ticks; the randomized timeout is in [electionTicks, 1.5*electionTicks). */
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Upper bound on the bytes of entries in one append message. */
  maxSizePerMsgBytes: number;
  /** Per-follower inflight window: appends in flight, and their bytes (0: no byte bound). */
  maxInflightMsgs: number;
  maxInflightBytes: number;
  /** Bound on the bytes of proposed but not yet committed entries on the leader. */
  maxUncommittedEntriesBytes: number;
  /** Followers forward proposals to the leader unless this is set (then ERR_NOT_LEADER). */
  disableProposalForwarding?: boolean;
  /** Seed of the core's PRNG (randomized election timeouts). */
  seed: number;
  /** Index already applied by the host (restart). */
  applied?: number;
  /**
   * Deliberately broken behaviour, for testing the simulation's checker only.
   * 'commitPreviousTerm': the leader commits entries of earlier terms by counting
   * replicas (violates Raft paper 5.4.2).
   */
  testingBug?: 'commitPreviousTerm';
}

export interface HardState {
  term: number;
  vote: number;
  commit: number;
}

export interface ConfState {
  voters: number[];
  learners: number[];
  /** Joint consensus: the outgoing voters while in a joint configuration. */
  votersOutgoing: number[];
  learnersNext: number[];
  autoLeave: boolean;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot extends SnapshotMeta {
  /** The host's opaque state at `index`. */
  data: Buffer;
}

/** State to restore a core from after a restart (what the WAL recovered). */
export interface RaftRestoreState {
  hardState?: HardState;
  snapshot?: Snapshot;
  /** Entries after the snapshot, in the entries format (docs/native-format.md). */
  entries?: Buffer;
}

export const EntryType = { Normal: 0, ConfChange: 1 } as const;

export interface ReadState {
  index: number;
  ctx: Buffer;
}

/**
 * One batch of work handed to the host. The contract:
 * 1. Persist `hardState` and `entries` (and `snapshot`) durably.
 *    Messages may be sent before that only when `role === 'leader'`
 *    (Raft thesis 10.2.1); otherwise send them after the write is durable.
 * 2. Apply `committed` entries in order (a ConfChange entry is applied with
 *    applyConfChange).
 * 3. Call advance(). The leader counts its own log as replicated only up to
 *    what the host has advanced past, i.e. what is durable.
 *
 * One Ready at a time: after ready(), hasReady() is false and ready() throws
 * ERR_BAD_ARGUMENT until advance() is called. The host may keep calling
 * step()/tick()/propose() while it persists (their effects go to the next
 * Ready). Entries handed out but overwritten meanwhile by a new leader are
 * handed out again; the host's log keeps the last write of an index.
 * A committed entry with an empty payload is a new leader's no-op entry.
 */
export interface Ready {
  lead: number;
  role: RaftRole;
  /** Present when it changed since the last Ready. */
  hardState?: HardState;
  /** Entries to persist, in the entries format; null when none. */
  entries: Buffer | null;
  entryCount: number;
  /** Committed entries to apply, in the entries format; null when none. */
  committed: Buffer | null;
  committedCount: number;
  /** Outbound messages, grouped per destination, each `data` a concatenation of messages. */
  messages: Array<{ to: number; data: Buffer }>;
  /** An incoming snapshot to persist and restore from. */
  snapshot?: Snapshot;
  readStates: ReadState[];
  /** True when hardState or entries must be synced before dependent messages leave. */
  mustSync: boolean;
}

export interface RaftStatus {
  id: number;
  role: RaftRole;
  lead: number;
  term: number;
  vote: number;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  leadTransferee: number;
  confState: ConfState;
  /** Leader only: per-member replication progress. */
  progress?: Record<number, { match: number; next: number; state: 'probe' | 'replicate' | 'snapshot'; inflight: number; recentActive: boolean; isLearner: boolean }>;
}

export type ConfChangeType = 'addNode' | 'removeNode' | 'addLearner';

export interface ConfChange {
  changes: Array<{ type: ConfChangeType; nodeId: number }>;
  /** 'auto' (default): simple change when one voter changes, joint otherwise, leaving automatically. */
  transition?: 'auto' | 'implicit' | 'explicit';
  context?: Buffer;
}

export interface RaftNode {
  tick(): void;
  /** Step one or more concatenated messages (docs/native-format.md). Throws ERR_BAD_MESSAGE. */
  step(messages: Buffer): void;
  propose(data: Buffer): void;
  /** Propose many entries at once: `count` records of [u32 length][bytes]. All or nothing. */
  proposeBatch(records: Buffer, count: number): void;
  proposeConfChange(cc: ConfChange): void;
  /**
   * Apply a committed ConfChange entry's payload, in log order, before advance();
   * returns the new configuration. A change that is not allowed throws
   * ERR_CONF_CHANGE and leaves the configuration as it was (deterministically,
   * on every member).
   */
  applyConfChange(entryData: Buffer): ConfState;
  readIndex(ctx: Buffer): void;
  transferLeader(to: number): void;
  campaign(): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(): void;
  /**
   * Record a snapshot of the host's state at `index` (<= applied; the core
   * remembers the configuration at that index) and drop the entries below it.
   * Followers that need compacted entries are sent this snapshot.
   */
  createSnapshot(index: number, data: Buffer): void;
  /**
   * Drop log entries below `index`. Requires index <= applied + 1 and
   * index <= snapshot index + 1 (ERR_SNAPSHOT otherwise: a lagging follower
   * could not be served); ERR_COMPACTED below the first index.
   */
  compact(index: number): void;
  reportUnreachable(id: number): void;
  reportSnapshot(id: number, ok: boolean): void;
  status(): RaftStatus;
}

export interface RaftNodeConstructor {
  new (config: RaftConfig, restore?: RaftRestoreState): RaftNode;
}

// ---------------------------------------------------------------------------
// WAL. Append-only segments of checksummed records; group commit with
// fdatasync off the JS thread.
// ---------------------------------------------------------------------------

export interface WalOpenOptions {
  /** Directory of the WAL; created (with missing parents) when absent. */
  dir: string;
  clusterId: number;
  memberId: number;
  /** Segment size in bytes (preallocated); default 64 MiB, in [4 KiB, 1 GiB]. */
  segmentBytes?: number;
  /**
   * Bound on appended-but-not-yet-written bytes (records with their 12-byte
   * headers); default 16 MiB, in [64 KiB, 1 GiB]. An append that would exceed
   * it blocks the JS thread until the writer thread takes the buffer (at most
   * one write plus one fdatasync); a single append larger than it throws
   * ERR_BAD_ARGUMENT.
   */
  pendingBytesMax?: number;
  /**
   * Testing only: fdatasync fails (as with EIO) once this many have
   * succeeded, to exercise the failure path (ERR_WAL_IO) without a broken disk.
   */
  testingFailFdatasyncAfter?: number;
}

export interface WalRecovered {
  hardState?: HardState;
  snapshot?: SnapshotMeta;
  /** Entries after the snapshot, in the entries format (last write of an index wins). */
  entries: Buffer;
  entryCount: number;
  /** Bytes cut off a torn tail at open, 0 when the tail was clean. */
  truncatedBytes: number;
}

export interface WalStats {
  /** fdatasync calls made by the writer thread (group commit shares them). */
  fdatasyncs: number;
  appendedBytes: number;
  durableBytes: number;
  /** Segment files currently in the directory. */
  segments: number;
  segmentsCreated: number;
  segmentsRemoved: number;
  /** The log's last index as appended (durable or not). */
  lastIndex: number;
  /** The latest durable snapshot marker's index. */
  snapshotIndex: number;
  /** Appends that had to wait for pending space (backpressure). */
  backpressureWaits: number;
}

/**
 * Errors: ERR_BAD_ARGUMENT (nothing written), ERR_WAL_IO (the WAL has failed
 * for good after a write or fsync error), ERR_WAL_CLOSED; at open also
 * ERR_WAL_CORRUPT and ERR_WAL_MISMATCH. See docs/wal.md.
 */
export interface Wal {
  /** What the WAL held at open. */
  readonly recovered: WalRecovered;
  /**
   * Append entries (entries format); not durable until sync(). The first
   * index must be in (snapshotIndex, lastIndex + 1]; an index <= lastIndex
   * supersedes the entries from there on (a follower truncating a conflict).
   * Indexes must be consecutive and terms non-decreasing.
   */
  appendEntries(entries: Buffer): void;
  /** Term must not decrease. */
  appendHardState(hs: HardState): void;
  /**
   * Index must not decrease. Drops entries <= index; later entries survive
   * only when the log holds entry `index` with this term.
   */
  appendSnapshot(meta: SnapshotMeta): void;
  /**
   * Resolve once every record appended before this call is durable. Calls that
   * arrive while an fdatasync runs share the next one (group commit).
   */
  sync(): Promise<void>;
  /**
   * Remove segments wholly below `index` (every entry in them < index),
   * never the current one, and never beyond the latest durable snapshot
   * marker. Returns the number removed.
   */
  releaseBefore(index: number): number;
  stats(): WalStats;
  /** Write and sync everything appended, stop the writer thread, release the directory lock. */
  close(): Promise<void>;
}

export interface WalConstructor {
  open(options: WalOpenOptions): Wal;
}

// ---------------------------------------------------------------------------

/** Wire message type numbers by name (MsgApp, MsgVote, ...), docs/native-format.md. */
export type MessageTypes = Readonly<Record<string, number>>;

interface Addon {
  version: string;
  RaftNode: RaftNodeConstructor;
  messageTypes: MessageTypes;
  Wal: WalConstructor;
}

const require = createRequire(import.meta.url);
let loaded: Addon;
try {
  loaded = require(addonPath) as Addon;
} catch (e) {
  throw new Error(`keelson: cannot load the native addon at ${addonPath} (run \`npm install\` to build it): ${(e as Error).message}`);
}

export const addon: Addon = loaded;
export const RaftNode: RaftNodeConstructor = loaded.RaftNode;
export const messageTypes: MessageTypes = loaded.messageTypes;
/**
 * The addon's Wal behind a thin wrapper: sync() calls made in one synchronous
 * run of JS (say, a thousand appenders resumed by one fdatasync) share a single
 * native sync, issued in a microtask after them. That crosses the N-API seam
 * and creates a native promise once per batch instead of once per caller.
 * Correct because the native sync runs after every one of those calls, so it
 * covers everything appended before each of them.
 */
class CoalescingWal implements Wal {
  readonly #w: Wal;
  #batch: Promise<void> | null = null;
  #flush: (() => void) | null = null;

  constructor(w: Wal) {
    this.#w = w;
  }

  get recovered(): WalRecovered {
    return this.#w.recovered;
  }

  appendEntries(entries: Buffer): void {
    this.#w.appendEntries(entries);
  }

  appendHardState(hs: HardState): void {
    this.#w.appendHardState(hs);
  }

  appendSnapshot(meta: SnapshotMeta): void {
    this.#w.appendSnapshot(meta);
  }

  sync(): Promise<void> {
    if (this.#batch === null) {
      this.#batch = new Promise<void>((resolve, reject) => {
        this.#flush = () => {
          this.#batch = null;
          this.#flush = null;
          this.#w.sync().then(resolve, reject);
        };
      });
      queueMicrotask(() => this.#flush?.());
    }
    return this.#batch;
  }

  releaseBefore(index: number): number {
    return this.#w.releaseBefore(index);
  }

  stats(): WalStats {
    return this.#w.stats();
  }

  close(): Promise<void> {
    // A sync() called before close() must still see its records made durable.
    this.#flush?.();
    return this.#w.close();
  }
}

export const Wal: WalConstructor = {
  open(options: WalOpenOptions): Wal {
    return new CoalescingWal(loaded.Wal.open(options));
  },
};
