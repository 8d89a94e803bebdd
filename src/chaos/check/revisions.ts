// The revision history of a run, rebuilt from what the clients saw, and the
// watch checker that holds every watch stream against it.
//
// Every watch event and every acknowledged write names a revision. Merged,
// they give for each revision the events it made (the reference). Two
// observations of the same (revision, key) that disagree are a violation by
// themselves: the store told two clients different pasts. When the run says
// revisions are dense (a fresh cluster, every write inside the watched
// prefix), every revision from the first to the last must be in the reference
// and a watch over the prefix must deliver each of them.
//
// Per watch session: revisions strictly increase from response to response
// (ordered), no (revision, key) twice (unique), all events of a revision in
// one response (atomic), the first event at or after the start revision, and
// every reference event inside the session's range between its start and the
// last revision it delivered present (no gaps). A logical watcher that
// reconnects opens its next session at last delivered + 1, so the gap check
// runs over the chain of sessions as one stream (resumable). prev_kv must be
// the key's previous version in the reference.
//
// Reads: an ok read at header revision R that returned a key at mod revision
// m must match the reference put at m, with no change of the key in (m, R];
// an absent key must have no live put at R. This holds for serializable reads
// too (a member answers from one revision of its own), so it catches a member
// that serves a state no revision ever had.
import type { CheckResult, History, KvOp, Violation, WatchEventRec, WatchSessionRec } from '../history.ts';
import { describeOp, inRange, prefixEndString } from '../history.ts';

export interface RefEvent {
  type: 'put' | 'delete';
  key: string;
  value?: string;
  revision: number;
  /** Where it was seen first, for messages. */
  source: string;
}

export interface Reference {
  /** revision -> key -> event */
  byRevision: Map<number, Map<string, RefEvent>>;
  /** key -> events in revision order */
  byKey: Map<string, RefEvent[]>;
  maxRevision: number;
  minRevision: number;
  /**
   * Merged [from, to] revision intervals some watch over the whole workload
   * prefix delivered: inside them the reference holds every event of the
   * prefix (if that watch had a gap, the watch checker reports it).
   */
  covered: [number, number][];
}

/** Whether every revision in [from, to] is covered. */
export function isCovered(ref: Reference, from: number, to: number): boolean {
  if (from > to) return true;
  for (const [a, b] of ref.covered) if (a <= from && to <= b) return true;
  return false;
}

function describeEvent(e: WatchEventRec): string {
  return `${e.type} ${e.key}${e.type === 'put' ? `=${e.value}` : ''} @${e.modRevision}`;
}

/** Builds the reference from watch events and acknowledged writes; disagreements are violations. */
export function buildReference(h: History, violations: Violation[]): Reference {
  const byRevision = new Map<number, Map<string, RefEvent>>();
  const add = (ev: RefEvent) => {
    let m = byRevision.get(ev.revision);
    if (!m) byRevision.set(ev.revision, (m = new Map()));
    const had = m.get(ev.key);
    if (!had) { m.set(ev.key, ev); return; }
    if (had.type !== ev.type || (ev.type === 'put' && had.value !== ev.value)) {
      violations.push({
        checker: 'revisions',
        message: `revision ${ev.revision} on key ${ev.key}: ${had.source} saw ${had.type}${had.type === 'put' ? `=${had.value}` : ''}, ` +
          `${ev.source} saw ${ev.type}${ev.type === 'put' ? `=${ev.value}` : ''}`,
      });
    }
  };
  for (const s of h.watches) {
    for (const r of s.responses) {
      for (const e of r.events) {
        add({ type: e.type, key: e.key, value: e.value, revision: e.modRevision, source: `watcher ${s.watcherId}/${s.session}` });
      }
    }
  }
  for (const op of h.kv) {
    if (op.outcome !== 'ok' || op.revision === undefined) continue;
    const src = `client op #${op.id}`;
    if (op.kind === 'put') add({ type: 'put', key: op.key, value: op.value, revision: op.revision, source: src });
    else if (op.kind === 'cas' && op.succeeded) add({ type: 'put', key: op.key, value: op.value, revision: op.revision, source: src });
    else if (op.kind === 'delete' && (op.deleted ?? 0) > 0) add({ type: 'delete', key: op.key, revision: op.revision, source: src });
  }
  const byKey = new Map<string, RefEvent[]>();
  let maxRevision = 0, minRevision = Infinity;
  for (const [rev, m] of byRevision) {
    maxRevision = Math.max(maxRevision, rev);
    minRevision = Math.min(minRevision, rev);
    for (const ev of m.values()) {
      let l = byKey.get(ev.key);
      if (!l) byKey.set(ev.key, (l = []));
      l.push(ev);
    }
  }
  for (const l of byKey.values()) l.sort((a, b) => a.revision - b.revision);
  const end = prefixEndString(h.prefix);
  const spans: [number, number][] = [];
  for (const s of h.watches) {
    const whole = s.key <= h.prefix && (s.rangeEnd === '\0' || (s.rangeEnd !== '' && s.rangeEnd >= end));
    if (!whole) continue;
    let last = 0;
    for (const r of s.responses) for (const e of r.events) last = Math.max(last, e.modRevision);
    if (last >= s.startRevision) spans.push([s.startRevision, last]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  const covered: [number, number][] = [];
  for (const sp of spans) {
    const top = covered[covered.length - 1];
    if (top && sp[0] <= top[1] + 1) top[1] = Math.max(top[1], sp[1]);
    else covered.push([sp[0], sp[1]]);
  }
  return { byRevision, byKey, maxRevision, minRevision: minRevision === Infinity ? 0 : minRevision, covered };
}

/** The key's last reference event at or before rev (binary search). */
function lastAtOrBefore(ref: Reference, key: string, rev: number): RefEvent | undefined {
  const l = ref.byKey.get(key);
  if (!l) return undefined;
  let lo = 0, hi = l.length - 1, ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (l[mid]!.revision <= rev) { ans = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return ans >= 0 ? l[ans] : undefined;
}

function checkSession(s: WatchSessionRec, ref: Reference, dense: boolean, from: number, violations: Violation[]): number {
  const tag = `watcher ${s.watcherId} session ${s.session} (${s.key}${s.rangeEnd ? `..${JSON.stringify(s.rangeEnd)}` : ''} from ${s.startRevision})`;
  const bad = (message: string, detail?: string[]) => violations.push({ checker: 'watch', message: `${tag}: ${message}`, detail });
  const seen = new Set<string>();
  const revResponse = new Map<number, number>();
  let lastRev = 0;
  let delivered = 0;
  s.responses.forEach((r, ri) => {
    for (const e of r.events) {
      const id = `${e.modRevision}/${e.key}`;
      if (seen.has(id)) bad(`duplicate event ${describeEvent(e)} (response ${ri})`);
      seen.add(id);
      if (e.modRevision < lastRev) bad(`event ${describeEvent(e)} after revision ${lastRev}: out of order (response ${ri})`);
      if (e.modRevision < s.startRevision) bad(`event ${describeEvent(e)} before the start revision ${s.startRevision}`);
      if (!inRange(e.key, s.key, s.rangeEnd)) bad(`event ${describeEvent(e)} outside the watched range`);
      const inResp = revResponse.get(e.modRevision);
      if (inResp !== undefined && inResp !== ri) bad(`revision ${e.modRevision} split over responses ${inResp} and ${ri}: not atomic`);
      revResponse.set(e.modRevision, ri);
      lastRev = Math.max(lastRev, e.modRevision);
      delivered++;
      if (s.prevKv && e.prevKv !== undefined) {
        const prev = lastAtOrBefore(ref, e.key, e.modRevision - 1);
        // The record between prev and this event must be complete (this session saw it, or a prefix-wide watch
        // covered it), else an unseen write may sit in between and there is nothing to compare against.
        const since = prev ? prev.revision + 1 : dense ? ref.minRevision : undefined;
        const complete = since !== undefined && (s.startRevision <= since || isCovered(ref, since, e.modRevision - 1));
        if (complete) {
          if (e.prevKv === null) {
            if (prev?.type === 'put') bad(`event ${describeEvent(e)} without prev_kv, but ${e.key} was ${prev.value} @${prev.revision}`);
          } else if (prev?.type === 'put') {
            if (prev.revision !== e.prevKv.modRevision || prev.value !== e.prevKv.value) {
              bad(`event ${describeEvent(e)} has prev_kv ${e.prevKv.value} @${e.prevKv.modRevision}, but the previous version is ${prev.value} @${prev.revision}`);
            }
          } else {
            bad(`event ${describeEvent(e)} has prev_kv ${e.prevKv.value} @${e.prevKv.modRevision}, but the key did not exist before`);
          }
        }
      }
    }
  });
  // Gaps: every reference event in range in [from, lastRev] must be here.
  if (lastRev > 0) {
    const missing: string[] = [];
    for (let rev = Math.max(from, s.startRevision); rev <= lastRev; rev++) {
      const m = ref.byRevision.get(rev);
      if (!m) {
        if (dense && rev >= ref.minRevision) missing.push(`revision ${rev}: no client saw it at all`);
        continue;
      }
      for (const ev of m.values()) {
        if (inRange(ev.key, s.key, s.rangeEnd) && !seen.has(`${rev}/${ev.key}`)) {
          missing.push(`${ev.type} ${ev.key}${ev.type === 'put' ? `=${ev.value}` : ''} @${rev} (seen by ${ev.source})`);
        }
      }
    }
    if (missing.length) bad(`${missing.length} event(s) missing between ${Math.max(from, s.startRevision)} and ${lastRev}`, missing.slice(0, 20));
  }
  return delivered === 0 ? from - 1 : lastRev;
}

export function checkWatches(h: History): CheckResult {
  const violations: Violation[] = [];
  const ref = buildReference(h, violations);
  const dense = h.denseRevisions === true;
  let checked = 0;
  const byWatcher = new Map<number, WatchSessionRec[]>();
  for (const s of h.watches) {
    let l = byWatcher.get(s.watcherId);
    if (!l) byWatcher.set(s.watcherId, (l = []));
    l.push(s);
  }
  for (const [id, sessions] of byWatcher) {
    sessions.sort((a, b) => a.session - b.session);
    let expectNext: number | undefined;
    for (const s of sessions) {
      checked += s.responses.reduce((c, r) => c + r.events.length, 0);
      if (expectNext !== undefined && s.startRevision > expectNext) {
        violations.push({ checker: 'watch', message: `watcher ${id} session ${s.session} resumed from ${s.startRevision}, after ${expectNext - 1}: the harness skipped revisions` });
      }
      const last = checkSession(s, ref, dense, s.startRevision, violations);
      // After a compaction the watcher restarts wherever the store lets it.
      expectNext = s.end === 'compacted' ? undefined : Math.max(last + 1, s.startRevision);
    }
  }
  return { checker: 'watch', violations, inconclusive: [], checked };
}

/** Reads (linearizable or serializable) against the reference at their header revision. */
export function checkReads(h: History): CheckResult {
  const violations: Violation[] = [];
  const ref = buildReference(h, violations);
  const dense = h.denseRevisions === true;
  let checked = 0;
  const bad = (op: KvOp, message: string) => violations.push({ checker: 'revisions', message: `${describeOp(op)}: ${message}` });
  for (const op of h.kv) {
    if (op.kind !== 'get' || op.outcome !== 'ok' || op.revision === undefined) continue;
    const R = op.revision;
    if (R > ref.maxRevision || (!dense && !ref.byKey.has(op.key))) continue;
    checked++;
    const last = lastAtOrBefore(ref, op.key, R);
    if (op.readValue === null || op.readValue === undefined) {
      if (last && last.type === 'put' && isCovered(ref, last.revision + 1, R)) {
        bad(op, `read the key absent at revision ${R}, but it was ${last.value} @${last.revision}`);
      }
      continue;
    }
    const m = op.readModRevision ?? 0;
    const at = ref.byRevision.get(m)?.get(op.key);
    if (at && (at.type !== 'put' || at.value !== op.readValue)) {
      bad(op, `read ${op.readValue} @${m}, but revision ${m} was ${at.type}${at.type === 'put' ? `=${at.value}` : ''} on the key`);
    } else if (!at && isCovered(ref, m, m)) {
      bad(op, `read ${op.readValue} @${m}, a version no watch saw written`);
    }
    if (last && last.revision > m) bad(op, `read ${op.readValue} @${m} at revision ${R}, but the key changed at ${last.revision} (${last.type}${last.type === 'put' ? `=${last.value}` : ''}): stale`);
  }
  return { checker: 'revisions', violations, inconclusive: [], checked };
}
