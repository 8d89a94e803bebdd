// Leases: a key attached to a lease never vanishes before the lease could have
// expired, and never outlives the lease past the TTL bound.
//
// Early: the store starts a lease's clock when it handles the grant or a
// keep-alive, which is after the client sent it, so the lease cannot expire
// before max(grant invoke, acknowledged keep-alive invokes) + TTL. A deletion
// of one of its keys seen before that (a watch delete event delivered, or a
// linearizable read that returned after the key's put and found it absent)
// with no revoke sent and no delete of the key invoked is an early expiry.
//
// Late: the last renewal that can have taken effect is the latest of the
// grant's return, acknowledged keep-alives' returns and the times the client
// gave up on unacknowledged ones. The lease must be gone by that + TTL +
// graceMs (the store's expiry scan interval and the revoke's commit). A leader
// change restarts every lease's clock at the new leader, and without a quorum
// no revoke can commit, so a fault window that overlaps the deadline moves it
// to the fault's end + TTL + graceMs; so does a gap in successful writes
// (where an unrecorded leader change may hide). A linearizable read invoked after the
// deadline that still finds the key is a violation.
import type { CheckResult, FaultRec, History, KvOp, LeaseRec, Violation } from '../history.ts';
import { describeOp } from '../history.ts';

export interface LeaseCheckOptions {
  /** A pause of successful writes longer than this may hide a leader change (which restarts lease clocks) (ms). */
  writeGapMs?: number;
  /** Slack on the early side, for timer granularity (ms). */
  earlySlackMs?: number;
  /** Allowed lateness after TTL (ms). */
  graceMs?: number;
}

export function earliestExpiryMs(l: LeaseRec): number {
  let t = l.grantInvokeMs + l.ttlS * 1000;
  for (const k of l.keepAlives) {
    if (k.outcome === 'ok') t = Math.max(t, k.invokeMs + (k.ttlS ?? l.ttlS) * 1000);
  }
  return t;
}

export function latestExpiryMs(l: LeaseRec, faults: FaultRec[], graceMs: number): number {
  let renewed = l.grantReturnMs;
  for (const k of l.keepAlives) {
    if (k.outcome === 'ok') renewed = Math.max(renewed, k.returnMs);
    else if (k.outcome === 'unknown') renewed = Math.max(renewed, k.abandonedMs ?? k.invokeMs);
  }
  let deadline = renewed + l.ttlS * 1000 + graceMs;
  // Faults that overlap the window push the deadline out; bounded by the fault count.
  const sorted = [...faults].sort((a, b) => a.startMs - b.startMs);
  for (let pass = 0; pass <= sorted.length; pass++) {
    let moved = false;
    for (const f of sorted) {
      if (f.startMs <= deadline && f.endMs + l.ttlS * 1000 + graceMs > deadline && f.endMs >= renewed) {
        deadline = f.endMs + l.ttlS * 1000 + graceMs;
        moved = true;
      }
    }
    if (!moved) break;
  }
  return deadline;
}

export function checkLeases(h: History, opts: LeaseCheckOptions = {}): CheckResult {
  const earlySlackMs = opts.earlySlackMs ?? 50;
  const graceMs = opts.graceMs ?? 2000;
  const violations: Violation[] = [];
  let checked = 0;
  // Leader changes are not in the history; a gap in successful writes is where one may have happened, and the
  // new leader restarts every lease's clock by the time the next write succeeds. Such gaps count as faults.
  const writeGapMs = opts.writeGapMs ?? 300;
  const writes = h.kv.filter((o) => o.outcome === 'ok' && o.kind !== 'get').map((o) => o.returnMs).sort((a, b) => a - b);
  const disturbances = [...h.faults];
  for (let i = 1; i < writes.length; i++) {
    if (writes[i]! - writes[i - 1]! > writeGapMs) disturbances.push({ kind: 'write-gap', startMs: writes[i - 1]!, endMs: writes[i]!, detail: '' });
  }
  const keyLease = new Map<string, LeaseRec>();
  for (const l of h.leases) for (const k of l.keys) keyLease.set(k, l);
  const putOf = new Map<string, KvOp>();
  for (const op of h.kv) {
    if (op.kind === 'put' && op.outcome === 'ok' && op.lease !== undefined && keyLease.get(op.key)?.id === op.lease) {
      const had = putOf.get(op.key);
      if (!had || had.returnMs > op.returnMs) putOf.set(op.key, op);
    }
  }
  // Indexes by lease key, so the check is linear in the history (long runs have many leases).
  const deletesSeen = new Map<string, { atMs: number; rev: number }[]>();
  for (const s of h.watches) {
    for (const r of s.responses) {
      for (const e of r.events) {
        if (e.type !== 'delete' || !keyLease.has(e.key)) continue;
        let l = deletesSeen.get(e.key);
        if (!l) deletesSeen.set(e.key, (l = []));
        l.push({ atMs: r.atMs, rev: e.modRevision });
      }
    }
  }
  const opsOf = new Map<string, KvOp[]>();
  for (const op of h.kv) {
    if (!keyLease.has(op.key)) continue;
    let l = opsOf.get(op.key);
    if (!l) opsOf.set(op.key, (l = []));
    l.push(op);
  }
  // An explicit removal (revoke, delete) invoked before t explains a disappearance.
  const explained = (l: LeaseRec, key: string, t: number) =>
    (l.revoke !== undefined && l.revoke.outcome !== 'failed' && l.revoke.invokeMs <= t) ||
    (opsOf.get(key) ?? []).some((o) => o.kind === 'delete' && o.outcome !== 'failed' && o.invokeMs <= t);

  for (const l of h.leases) {
    const early = earliestExpiryMs(l) - earlySlackMs;
    const late = latestExpiryMs(l, disturbances, graceMs);
    for (const key of l.keys) {
      checked++;
      const put = putOf.get(key);
      // Early, seen by a watch (each watcher that saw it reports it once).
      for (const d of deletesSeen.get(key) ?? []) {
        if (put?.revision !== undefined && d.rev < put.revision) continue;
        if (d.atMs < early && !explained(l, key, d.atMs)) {
          violations.push({
            checker: 'lease',
            message: `key ${key} of lease ${l.id} (TTL ${l.ttlS} s) deleted @${d.rev}, seen at ${d.atMs.toFixed(1)} ms, ` +
              `${(early + earlySlackMs - d.atMs).toFixed(0)} ms before the lease could expire (${(early + earlySlackMs).toFixed(1)} ms)`,
          });
        }
      }
      for (const op of opsOf.get(key) ?? []) {
        if (op.kind !== 'get' || op.outcome !== 'ok' || op.serializable) continue;
        // Early, seen by a read.
        if (op.readValue === null && put && op.invokeMs > put.returnMs && op.returnMs < early && !explained(l, key, op.returnMs)) {
          violations.push({
            checker: 'lease',
            message: `${describeOp(op)}: key of lease ${l.id} (TTL ${l.ttlS} s) already gone, ${(early + earlySlackMs - op.returnMs).toFixed(0)} ms before the lease could expire`,
          });
        }
        // Late.
        if (op.readValue !== null && op.readValue !== undefined && op.invokeMs > late) {
          violations.push({
            checker: 'lease',
            message: `${describeOp(op)}: key of lease ${l.id} (TTL ${l.ttlS} s) still present ${(op.invokeMs - late + graceMs).toFixed(0)} ms after the lease's last possible expiry (grace ${graceMs} ms)`,
          });
        }
      }
      const f = h.finalState;
      if (f && f.keys[key] && f.readMs > late && put && f.keys[key]!.modRevision === put.revision) {
        violations.push({ checker: 'lease', message: `key ${key} of lease ${l.id} still present in the final state, ${(f.readMs - late).toFixed(0)} ms past its bound` });
      }
    }
  }
  return { checker: 'lease', violations, inconclusive: [], checked };
}
