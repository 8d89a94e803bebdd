// The recorded history of a chaos run: what every client asked, when, and
// what it got back. The checkers (src/chaos/check/) read only this, so they
// can be tested on hand-written histories and rerun on a saved report.
//
// Times are milliseconds on one monotonic clock shared by every client of a
// run (performance.now() of the harness process). Keys and values are
// strings: the workload writes only printable ASCII, and the recorder turns
// Buffers into strings with latin1 so that no byte is lost.

/**
 * ok: the operation took effect (for a read: the result is what the store
 * said). failed: it certainly did not take effect (the store refused it).
 * unknown: no answer (timeout, connection lost): it may or may not have taken
 * effect, at any time after its invoke.
 */
export type Outcome = 'ok' | 'failed' | 'unknown';

export type KvOpKind = 'put' | 'delete' | 'get' | 'cas';

/** One single-key operation of the register workload. */
export interface KvOp {
  /** Unique within the history. */
  id: number;
  client: number;
  kind: KvOpKind;
  key: string;
  /** put and cas: the value written. */
  value?: string;
  /** cas: the value compared against; null = the key must be absent. */
  expect?: string | null;
  /** put: attached lease id (the lease checker uses it). */
  lease?: number;
  /** get: read without consensus; such reads are not linearizable and only the revision checker looks at them. */
  serializable?: boolean;
  invokeMs: number;
  /** Infinity when outcome is unknown. */
  returnMs: number;
  outcome: Outcome;
  /**
   * The value the op saw, null = absent. get: the value read. cas that failed
   * its compare: the value it found (the workload reads it in the failure
   * branch). delete: the previous value (prev_kv). Optional for cas and
   * delete; when every state-dependent op carries it, the linearizability
   * checker can drop unknown writes nobody observed.
   */
  readValue?: string | null;
  /** get (ok): the mod revision of what was read (0 = absent). */
  readModRevision?: number;
  /** cas (ok): whether the comparison held and the write happened. */
  succeeded?: boolean;
  /** delete (ok): how many keys were deleted (0 or 1). */
  deleted?: number;
  /** ok operations: the header revision of the response. For a write that took effect it is the write's revision. */
  revision?: number;
  /** Error text for failed and unknown outcomes. */
  error?: string;
}

export interface WatchEventRec {
  type: 'put' | 'delete';
  key: string;
  /** put: the value. */
  value?: string;
  modRevision: number;
  createRevision?: number;
  version?: number;
  lease?: number;
  /** Present only when the watch asked for prev_kv; null = the store sent none. */
  prevKv?: { value: string; modRevision: number } | null;
}

export interface WatchResponseRec {
  atMs: number;
  events: WatchEventRec[];
}

/**
 * One watch stream. A logical watcher that reconnects opens a new session
 * from the last revision it saw + 1; sessions of one watcher share watcherId
 * and are listed in order.
 */
export interface WatchSessionRec {
  watcherId: number;
  session: number;
  key: string;
  /** '' = the key alone; '\0' = every key >= key; else [key, rangeEnd). */
  rangeEnd: string;
  startRevision: number;
  prevKv: boolean;
  openedMs: number;
  responses: WatchResponseRec[];
  /** How the session ended: closed by the harness, error (reconnect follows), compacted (history gone). */
  end: 'closed' | 'error' | 'compacted' | 'open';
  compactRevision?: number;
}

/** A lease the workload granted, kept alive, and then let expire or revoked. */
export interface LeaseRec {
  id: number;
  /** TTL the store granted (seconds). */
  ttlS: number;
  grantInvokeMs: number;
  grantReturnMs: number;
  /** Every keep-alive: invoke, return (Infinity if unknown; abandonedMs = when the client gave up), outcome and granted TTL. */
  keepAlives: { invokeMs: number; returnMs: number; outcome: Outcome; ttlS?: number; abandonedMs?: number }[];
  /** A revoke the workload sent, if any (its outcome decides whether keys may vanish early). */
  revoke?: { invokeMs: number; returnMs: number; outcome: Outcome };
  /** Keys put with this lease (ok puts only). */
  keys: string[];
}

/** A fault the harness injected (the report marks them on the timeline). */
export interface FaultRec {
  kind: string;
  startMs: number;
  endMs: number;
  detail: string;
  /** Leader kills: what the surviving members reported after the SIGKILL (see ElectionTrace). */
  election?: ElectionTrace;
}

/**
 * A leader kill as the survivors saw it, from Status polled every few ms
 * (times in ms on the run's clock). detectMs: the first answer that no
 * longer named the killed leader or showed a higher term (a follower's
 * election timeout fired: it dropped the leader to campaign); electedMs: the
 * first answer naming a leader in a higher term. Absent when not seen
 * within the watch bound.
 */
export interface ElectionTrace {
  killMs: number;
  oldTerm: number;
  detectMs?: number;
  electedMs?: number;
  newLeader?: string;
  newTerm?: number;
  /** Status answers seen while watching (each poll asks every survivor). */
  polls: number;
}

export interface MemberHash {
  member: string;
  ok: boolean;
  revision: number;
  hash: number;
  compactRevision?: number;
  error?: string;
}

export interface History {
  kv: KvOp[];
  watches: WatchSessionRec[];
  leases: LeaseRec[];
  faults: FaultRec[];
  /** The final linearizable read of every key the workload touched, after the faults healed. */
  finalState?: { revision: number; readMs: number; keys: Record<string, { value: string; modRevision: number } | null> };
  hashes?: MemberHash[];
  /** Every watch covers the whole workload prefix and every revision of the run is a workload write. */
  denseRevisions?: boolean;
  /** The key range the workload owns: [prefix, prefixEnd). */
  prefix: string;
}

export interface Violation {
  checker: 'linearizability' | 'watch' | 'revisions' | 'lost-write' | 'lease' | 'convergence';
  message: string;
  /** A few lines that show the problem (the smallest violating window for linearizability). */
  detail?: string[];
}

export interface CheckResult {
  checker: Violation['checker'];
  violations: Violation[];
  /** Checks that hit their work bound without an answer. */
  inconclusive: string[];
  /** What was checked, for the report. */
  checked: number;
}

/** The next key after every key with this prefix (etcd's prefix range end), as a string. */
export function prefixEndString(prefix: string): string {
  const codes = [...prefix].map((c) => c.charCodeAt(0));
  for (let i = codes.length - 1; i >= 0; i--) {
    if (codes[i]! < 0xff) {
      codes[i]!++;
      return String.fromCharCode(...codes.slice(0, i + 1));
    }
  }
  return '\0';
}

/** Whether key is inside [key0, rangeEnd) with etcd's rangeEnd conventions. */
export function inRange(key: string, key0: string, rangeEnd: string): boolean {
  if (rangeEnd === '') return key === key0;
  if (rangeEnd === '\0') return key >= key0;
  return key >= key0 && key < rangeEnd;
}

export function describeOp(op: KvOp): string {
  const t = `[${op.invokeMs.toFixed(1)}, ${op.returnMs === Infinity ? 'inf' : op.returnMs.toFixed(1)}]`;
  let what: string;
  switch (op.kind) {
    case 'put': what = `put ${op.key}=${op.value}`; break;
    case 'delete': what = `delete ${op.key}${op.outcome === 'ok' ? ` -> deleted ${op.deleted ?? '?'}` : ''}`; break;
    case 'get': what = `get${op.serializable ? ' (serializable)' : ''} ${op.key}${op.outcome === 'ok' ? ` -> ${op.readValue === null ? '(absent)' : op.readValue}` : ''}`; break;
    case 'cas': what = `cas ${op.key} ${op.expect === null ? '(absent)' : op.expect} -> ${op.value}${op.outcome === 'ok' ? (op.succeeded ? ' succeeded' : ' failed compare') : ''}`; break;
  }
  const rev = op.revision !== undefined ? ` rev ${op.revision}` : '';
  return `#${op.id} c${op.client} ${what} ${op.outcome}${rev} ${t}`;
}
