// The lessor: tracks when leases expire. Leases themselves (id, granted TTL,
// attached keys) are replicated state in the keyspace; their deadlines are not.
//
// Overview
// - Only the primary (the Raft leader, or a single local member) keeps
//   deadlines, measured on an injected monotonic clock in milliseconds.
//   Keep-alives go to the primary and only move a deadline in its memory, so
//   they cost no log entry.
// - The primary's expired() names leases past their deadline (at most
//   expireBatchMax per call); the host proposes a leaseExpire request with
//   them, and the keyspace revokes those that still exist when the entry is
//   applied (deleting their keys), on every member alike. A lease proposed for
//   expiry is not named again until the proposal resolved (or failed, then
//   retry() makes it eligible again).
// - promote() renews every lease to a full TTL from now: a new leader does not
//   know how long its predecessor had left, and expiring everything at once on
//   failover would be worse than granting a little extra time (etcd does the
//   same). demote() forgets all deadlines.
// - Deadlines sit in a binary min-heap with lazy deletion: a renewed or
//   revoked lease leaves a stale heap entry that is skipped when popped. The
//   heap holds at most one live entry per lease plus stale ones; it is
//   rebuilt when stale entries outnumber live ones, so it stays within twice
//   the number of leases.
import { KeelsonError } from '../errors.ts';
import type { LeaseRecord } from '../mvcc/keyspace.ts';

export interface LessorOptions {
  /** Monotonic milliseconds. */
  clock: () => number;
  /** Granted TTLs below this are raised to it (seconds). */
  minTtlSeconds?: number;
  /** Leases named by one expired() call. */
  expireBatchMax?: number;
}

export interface LeaseSource {
  leases(): LeaseRecord[];
  lease(id: number): { ttl: number; keys: Buffer[] } | null;
}

export interface TimeToLive {
  id: number;
  /** Remaining seconds (rounded up); -1 when the lease does not exist. */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

export class Lessor {
  private readonly source: LeaseSource;
  private readonly clock: () => number;
  readonly minTtlSeconds: number;
  private readonly expireBatchMax: number;
  private primary = false;
  /** Granted TTL (seconds) of every existing lease: mirrors the keyspace. */
  private readonly ttls = new Map<number, number>();
  /** Deadline (ms) of every lease, only while primary. */
  private readonly deadlines = new Map<number, number>();
  /** Min-heap of [deadline, id], possibly stale. */
  private heap: [number, number][] = [];
  /** Proposed for expiry and not yet resolved. */
  private readonly expiring = new Set<number>();

  constructor(source: LeaseSource, opts: LessorOptions) {
    this.source = source;
    this.clock = opts.clock;
    this.minTtlSeconds = opts.minTtlSeconds ?? 1;
    this.expireBatchMax = opts.expireBatchMax ?? 1000;
    this.reload();
  }

  /** Re-reads the lease set from the keyspace (start-up and after a snapshot restore). */
  reload(): void {
    this.ttls.clear();
    for (const l of this.source.leases()) this.ttls.set(l.id, l.ttl);
    if (this.primary) this.promote();
  }

  isPrimary(): boolean {
    return this.primary;
  }

  /** The TTL a grant request should carry. */
  grantTtl(ttl: number): number {
    return Math.max(ttl, this.minTtlSeconds);
  }

  /** Becomes the primary: every lease gets a full TTL from now. */
  promote(): void {
    this.primary = true;
    this.deadlines.clear();
    this.heap = [];
    this.expiring.clear();
    const now = this.clock();
    for (const [id, ttl] of this.ttls) this.setDeadline(id, now + ttl * 1000);
  }

  demote(): void {
    this.primary = false;
    this.deadlines.clear();
    this.heap = [];
    this.expiring.clear();
  }

  /** Called by the keyspace after a grant or revoke committed. */
  onLeaseChange(c: { type: 'grant'; id: number; ttl: number } | { type: 'revoke'; id: number }): void {
    if (c.type === 'grant') {
      this.ttls.set(c.id, c.ttl);
      if (this.primary) this.setDeadline(c.id, this.clock() + c.ttl * 1000);
    } else {
      this.ttls.delete(c.id);
      this.deadlines.delete(c.id);
      this.expiring.delete(c.id);
    }
  }

  /** Renews a lease to its full TTL; returns the TTL in seconds. Only on the primary. */
  keepAlive(id: number): number {
    if (!this.primary) throw new KeelsonError('not leader');
    const ttl = this.ttls.get(id);
    if (ttl === undefined || this.expiring.has(id)) throw new KeelsonError('lease not found');
    this.setDeadline(id, this.clock() + ttl * 1000);
    return ttl;
  }

  timeToLive(id: number, withKeys: boolean): TimeToLive {
    const l = this.source.lease(id);
    if (l === null) return { id, ttl: -1, grantedTtl: 0, keys: [] };
    const deadline = this.deadlines.get(id);
    const ttl = deadline === undefined ? l.ttl : Math.max(0, Math.ceil((deadline - this.clock()) / 1000));
    return { id, ttl, grantedTtl: l.ttl, keys: withKeys ? l.keys : [] };
  }

  list(): number[] {
    return [...this.ttls.keys()].sort((a, b) => a - b);
  }

  /** Leases past their deadline, at most expireBatchMax; each is named once until retry(). */
  expired(): number[] {
    if (!this.primary) return [];
    const now = this.clock();
    const out: number[] = [];
    while (this.heap.length > 0 && out.length < this.expireBatchMax) {
      const [deadline, id] = this.heap[0];
      if (deadline > now) break;
      this.pop();
      if (this.deadlines.get(id) !== deadline || this.expiring.has(id)) continue; // stale
      this.expiring.add(id);
      out.push(id);
    }
    return out;
  }

  /** The expire proposal for these leases failed (e.g. lost leadership mid-way): name them again later. */
  retry(ids: number[]): void {
    const now = this.clock();
    for (const id of ids) {
      if (!this.expiring.delete(id)) continue;
      if (this.primary && this.ttls.has(id)) this.setDeadline(id, now);
    }
  }

  private setDeadline(id: number, deadline: number): void {
    this.deadlines.set(id, deadline);
    this.heap.push([deadline, id]);
    this.up(this.heap.length - 1);
    if (this.heap.length > 2 * this.deadlines.size + 16) this.rebuild();
  }

  private rebuild(): void {
    this.heap = [...this.deadlines].map(([id, d]) => [d, id] as [number, number]);
    this.heap.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // a sorted array is a valid heap
  }

  private less(i: number, j: number): boolean {
    const a = this.heap[i];
    const b = this.heap[j];
    return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [this.heap[i], this.heap[p]] = [this.heap[p], this.heap[i]];
      i = p;
    }
  }

  private pop(): void {
    const last = this.heap.pop() as [number, number];
    if (this.heap.length === 0) return;
    this.heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && this.less(l, m)) m = l;
      if (r < this.heap.length && this.less(r, m)) m = r;
      if (m === i) break;
      [this.heap[i], this.heap[m]] = [this.heap[m], this.heap[i]];
      i = m;
    }
  }
}

/** Tries at picking an unused lease id before taking the last one drawn. */
const leaseIdAttemptsMax = 16;

/**
 * A lease id for a grant that named none: `gen()` (default: a random 53-bit
 * positive integer) until `taken(id)` is false. A random 53-bit id collides
 * with a live lease with negligible probability; the bounded retry covers
 * the rest (a collision left after it fails at apply as a duplicate id).
 */
export function pickLeaseId(taken: (id: number) => boolean, gen?: () => number): number {
  const next = gen ?? (() => 1 + Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 1)));
  let id = next();
  for (let attempt = 1; attempt < leaseIdAttemptsMax && taken(id); attempt++) id = next();
  return id;
}
