// Linearizability of a key-value history, one register per key.
//
// The algorithm is Wing & Gong's search as improved by Lowe ("Testing for
// linearizability", 2017): the calls and returns of a key's operations sit in
// one time-ordered linked list. The search walks it; at a call it tries to
// linearize that operation now (apply it to the register model; if the model
// accepts the result the operation reported, lift its call and return out of
// the list and restart from the head); at a return it has met an operation
// that must already have taken effect, so it backtracks (pops the last
// linearized operation, restores the model state, and tries the next call).
// A memo of visited (set of linearized operations, model state) pairs prunes
// every configuration already known to fail; the set of known operations is
// hashed with Zobrist keys (two independent 32-bit XOR hashes, so a false
// prune needs a 64-bit collision), the set of unknown ones kept exactly so
// that a configuration dominated by an explored one (same known set and
// state, a superset of unknown ops) is pruned too. The search is bounded by stepsMax per key; hitting the bound
// answers "inconclusive", never "ok".
//
// Outcomes: a failed operation never happened and is dropped. An unknown
// operation (timeout) may have taken effect at any time after its invoke: its
// return is at infinity and its result unconstrained. Linearizing it last is
// the same as it never having happened, so the search is done once every
// known operation is linearized. Reads with an unknown outcome and
// serializable reads constrain nothing here and are dropped.
//
// When a key fails, the report shows the smallest window found: first the
// history is cut at the earliest time T such that it already fails (ops
// pending at T become unknown, later ops go), then the front is cut at the
// latest quiet point (no known op spans it) such that the rest still fails
// from an unknown start state. Both cuts keep a history that fails only if the
// whole one does, so the window is a genuine witness.
import type { CheckResult, KvOp, Violation } from '../history.ts';
import { describeOp } from '../history.ts';

/** Model state: the register's value, null = absent, ANY = not known (only at the start of a window). */
const ANY = Symbol('any');
type State = string | null | typeof ANY;

export interface LinearizabilityOptions {
  /** Search steps per key before the answer is "inconclusive". */
  stepsMax?: number;
  /** Upper bound on the extra searches spent shrinking a failing window. */
  shrinkSearchesMax?: number;
}

/** Successor states when op takes effect in state s; empty = the model refuses op's reported result. */
function step(s: State, op: KvOp): State[] {
  const known = op.outcome === 'ok';
  switch (op.kind) {
    case 'put':
      return [op.value!];
    case 'delete':
      if (known && s !== ANY) {
        if (op.deleted !== undefined && (op.deleted > 0) !== (s !== null)) return [];
        if (op.readValue !== undefined && op.readValue !== s) return [];
      }
      return [null];
    case 'get': {
      const v = op.readValue ?? null;
      if (s === ANY) return [v];
      return s === v ? [s] : [];
    }
    case 'cas': {
      const expect = op.expect ?? null;
      if (known) {
        const seen = op.succeeded ? undefined : op.readValue;
        if (s === ANY) return op.succeeded ? [op.value!] : [seen !== undefined && seen !== expect ? seen : ANY];
        const holds = s === expect;
        if (holds !== op.succeeded) return [];
        if (seen !== undefined && seen !== s) return [];
        return holds ? [op.value!] : [s];
      }
      if (s === ANY) return [op.value!, ANY];
      return s === expect ? [op.value!] : [s];
    }
  }
}

interface Entry {
  op: number; // index into ops
  isCall: boolean;
  time: number;
  prev: Entry | null;
  next: Entry | null;
  match: Entry | null; // call -> its return
}

export interface SearchResult {
  result: 'ok' | 'violation' | 'inconclusive';
  steps: number;
  /** On violation: the op whose return the search could not get past at its deepest point. */
  stuckOp?: KvOp;
}

// A tiny deterministic PRNG for the Zobrist keys (mulberry32).
function zobristKeys(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n * 2);
  let a = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (t ^ (t >>> 14)) >>> 0;
  }
  return out;
}

function stateKey(s: State): string {
  return s === ANY ? '*' : s === null ? '-' : `=${s}`;
}

/**
 * Prepares a key's ops for the search: drops what constrains nothing.
 *
 * Unknown writes nobody observed. When every known op that depends on the
 * state reports the value it saw (reads, and CAS failures and deletes with
 * readValue), an unknown write whose value no op ever saw can be dropped: in
 * any order that uses its effect, the next op acting on the key either
 * overwrites it (a put, or a CAS that succeeds only on a value someone saw),
 * or is itself unknown and may be deferred, or would have seen the value. So
 * dropping it keeps every linearizable history linearizable, and it removes
 * the doubling of the search space per pending unknown write.
 */
export function relevantOps(ops: KvOp[]): KvOp[] {
  const kept = ops.filter((op) => {
    if (op.outcome === 'failed') return false;
    if (op.kind === 'get' && (op.outcome !== 'ok' || op.serializable)) return false;
    return true;
  });
  const revealing = kept.every((op) => op.outcome !== 'ok' || op.kind === 'put' || op.kind === 'get' ||
    (op.kind === 'cas' && (op.succeeded || op.readValue !== undefined)) || (op.kind === 'delete' && op.readValue !== undefined));
  if (!revealing) return kept;
  const observed = new Set<string>();
  for (const op of kept) {
    if (op.outcome !== 'ok') continue;
    if (op.readValue !== undefined && op.readValue !== null) observed.add(op.readValue);
    if (op.kind === 'cas' && op.expect !== undefined && op.expect !== null) observed.add(op.expect);
  }
  return kept.filter((op) => op.outcome !== 'unknown' || op.kind === 'delete' || observed.has(op.value!));
}

/** The WGL search over one key's ops (already filtered by relevantOps). */
export function searchKey(ops: KvOp[], init: State | 'any', stepsMax: number): SearchResult {
  const n = ops.length;
  if (n === 0) return { result: 'ok', steps: 0 };
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    const call: Entry = { op: i, isCall: true, time: op.invokeMs, prev: null, next: null, match: null };
    const ret: Entry = { op: i, isCall: false, time: op.outcome === 'ok' ? op.returnMs : Infinity, prev: null, next: null, match: null };
    call.match = ret;
    entries.push(call, ret);
  }
  // Calls before returns at equal times: equal timestamps count as
  // overlapping, which can only hide a violation, never invent one.
  entries.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Entry = { op: -1, isCall: false, time: -Infinity, prev: null, next: null, match: null };
  let last = head;
  for (const e of entries) { last.next = e; e.prev = last; last = e; }

  const lift = (e: Entry) => {
    e.prev!.next = e.next; if (e.next) e.next.prev = e.prev;
    const r = e.match!; r.prev!.next = r.next; if (r.next) r.next.prev = r.prev;
  };
  const unlift = (e: Entry) => {
    const r = e.match!; r.prev!.next = r; if (r.next) r.next.prev = r;
    e.prev!.next = e; if (e.next) e.next.prev = e;
  };

  const zk = zobristKeys(n, 0x5eed);
  let h1 = 0, h2 = 0;
  // Memo: (known ops linearized, state) -> the sets of unknown ops linearized
  // with it that were already explored. A configuration is pruned when an
  // explored one has the same known set and state and a subset of its
  // unknown ops: that one has every option this one has (unknown ops may
  // also never take effect), so if it failed, this one fails too. Unknown
  // ops leave the hash alone; their bitset is compared exactly.
  const unknownIndex = new Int32Array(n).fill(-1);
  let unknownCount = 0;
  for (let i = 0; i < n; i++) if (ops[i]!.outcome !== 'ok') unknownIndex[i] = unknownCount++;
  const words = Math.max(1, Math.ceil(unknownCount / 32));
  const ubits = new Uint32Array(words);
  const memo = new Map<string, Uint32Array[]>();
  const dominated = (key: string, bits: Uint32Array): boolean => {
    const seen = memo.get(key);
    if (!seen) { memo.set(key, [bits.slice()]); return false; }
    for (const b of seen) {
      let subset = true;
      for (let w = 0; w < words; w++) if ((b[w]! & ~bits[w]!) !== 0) { subset = false; break; }
      if (subset) return true;
    }
    seen.push(bits.slice());
    return false;
  };
  let knownLeft = ops.reduce((c, op) => c + (op.outcome === 'ok' ? 1 : 0), 0);
  // The candidates of a configuration are the calls before the first return
  // in the list (ops that may take effect next). Known ops are tried before
  // unknown ones: any order is complete (the memo makes this a search over
  // configurations), and this one walks straight through a history where
  // unknown ops need not have taken effect, instead of first trying every
  // pending unknown op at every step.
  const candidates = (): Entry[] => {
    const known: Entry[] = [], unknown: Entry[] = [];
    for (let e = head.next; e !== null && e.isCall; e = e.next) (unknownIndex[e.op]! < 0 ? known : unknown).push(e);
    return unknown.length ? known.concat(unknown) : known;
  };
  const stack: { cands: Entry[]; idx: number; state: State; branch: number }[] = [];
  let state: State = init === 'any' ? ANY : init;
  let cands = candidates();
  let idx = 0;
  let branch = 0;
  let steps = 0;
  let deepest = -1;
  let stuck: number | undefined;

  while (knownLeft > 0) {
    if (++steps > stepsMax) return { result: 'inconclusive', steps };
    if (idx < cands.length) {
      const cur = cands[idx]!;
      const i = cur.op;
      const succ = step(state, ops[i]!);
      const u = unknownIndex[i]!;
      const nh1 = u < 0 ? (h1 ^ zk[2 * i]!) >>> 0 : h1, nh2 = u < 0 ? (h2 ^ zk[2 * i + 1]!) >>> 0 : h2;
      if (u >= 0) ubits[u >>> 5]! |= 1 << (u & 31);
      let taken = false;
      for (let b = branch; b < succ.length; b++) {
        const key = `${nh1}:${nh2}:${stateKey(succ[b]!)}`;
        if (dominated(key, ubits)) continue;
        stack.push({ cands, idx, state, branch: b });
        state = succ[b]!;
        h1 = nh1; h2 = nh2;
        if (u < 0) knownLeft--;
        lift(cur);
        cands = candidates();
        idx = 0;
        branch = 0;
        taken = true;
        break;
      }
      if (!taken) {
        if (u >= 0) ubits[u >>> 5]! &= ~(1 << (u & 31));
        idx++;
        branch = 0;
      }
    } else {
      // Every candidate failed: some op that must already have taken effect could not. Backtrack.
      if (stack.length > deepest) {
        deepest = stack.length;
        for (let e = head.next; e !== null; e = e.next) if (!e.isCall) { stuck = e.op; break; }
      }
      const top = stack.pop();
      if (!top) return { result: 'violation', steps, stuckOp: stuck !== undefined ? ops[stuck] : undefined };
      const e = top.cands[top.idx]!;
      const i = e.op;
      unlift(e);
      const u = unknownIndex[i]!;
      if (u < 0) { h1 = (h1 ^ zk[2 * i]!) >>> 0; h2 = (h2 ^ zk[2 * i + 1]!) >>> 0; knownLeft++; } else ubits[u >>> 5]! &= ~(1 << (u & 31));
      state = top.state;
      cands = top.cands;
      idx = top.idx;
      branch = top.branch + 1;
    }
  }
  return { result: 'ok', steps };
}

/** The history as it was at time t: ops invoked after t gone, ops still pending at t unknown. */
function truncateAt(ops: KvOp[], t: number): KvOp[] {
  const out: KvOp[] = [];
  for (const op of ops) {
    if (op.invokeMs > t) continue;
    if (op.outcome === 'ok' && op.returnMs > t) {
      if (op.kind === 'get') continue; // an unknown read constrains nothing
      out.push({ ...op, outcome: 'unknown', returnMs: Infinity });
    } else out.push(op);
  }
  return out;
}

/**
 * The ops from a quiet point t on (no known op spans t): known ops that
 * returned before t go, the rest stays (unknown ops may take effect after t).
 */
function cutFront(ops: KvOp[], t: number): KvOp[] {
  return ops.filter((op) => op.outcome !== 'ok' || op.returnMs >= t);
}

function shrink(ops: KvOp[], stepsMax: number, searchesMax: number): KvOp[] {
  let searches = 0;
  const fails = (h: KvOp[], init: State | 'any') => {
    searches++;
    return searchKey(h, init, stepsMax).result === 'violation';
  };
  // 1. Earliest end: the return times of known ops, binary searched.
  const ends = [...new Set(ops.filter((o) => o.outcome === 'ok').map((o) => o.returnMs))].sort((a, b) => a - b);
  let lo = 0, hi = ends.length - 1;
  while (lo < hi && searches < searchesMax) {
    const mid = (lo + hi) >> 1;
    if (fails(truncateAt(ops, ends[mid]!), null)) hi = mid; else lo = mid + 1;
  }
  let window = hi >= 0 ? truncateAt(ops, ends[hi]!) : ops;
  if (!fails(window, null)) window = ops; // the bound cut the search short
  // 2. Latest start: quiet points are invoke times that no known op spans.
  const known = window.filter((o) => o.outcome === 'ok');
  const quiet = [...new Set(window.map((o) => o.invokeMs))]
    .filter((t) => !known.some((o) => o.invokeMs < t && o.returnMs >= t))
    .sort((a, b) => a - b);
  let best = window;
  lo = 0; hi = quiet.length - 1;
  while (lo <= hi && searches < searchesMax) {
    const mid = (lo + hi) >> 1;
    const cut = cutFront(window, quiet[mid]!);
    if (fails(cut, 'any')) { best = cut; lo = mid + 1; } else hi = mid - 1;
  }
  return best;
}

/** Checks every key of the history; kv ops of all keys may be mixed. */
export function checkLinearizability(all: KvOp[], opts: LinearizabilityOptions = {}): CheckResult {
  const stepsMax = opts.stepsMax ?? 2_000_000;
  const shrinkSearchesMax = opts.shrinkSearchesMax ?? 40;
  const byKey = new Map<string, KvOp[]>();
  for (const op of all) {
    let list = byKey.get(op.key);
    if (!list) byKey.set(op.key, (list = []));
    list.push(op);
  }
  const violations: Violation[] = [];
  const inconclusive: string[] = [];
  let checked = 0;
  for (const [key, list] of [...byKey].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const ops = relevantOps(list);
    checked += ops.length;
    const r = searchKey(ops, null, stepsMax);
    if (r.result === 'inconclusive') {
      inconclusive.push(`key ${key}: search bound of ${stepsMax} steps hit over ${ops.length} ops`);
    } else if (r.result === 'violation') {
      const window = shrink(ops, stepsMax, shrinkSearchesMax).slice().sort((a, b) => a.invokeMs - b.invokeMs);
      violations.push({
        checker: 'linearizability',
        message: `key ${key}: not linearizable (no order of its ${ops.length} ops explains the results; ` +
          `stuck at ${r.stuckOp ? describeOp(r.stuckOp) : '?'}); smallest failing window: ${window.length} ops`,
        detail: window.map(describeOp),
      });
    }
  }
  return { checker: 'linearizability', violations, inconclusive, checked };
}
