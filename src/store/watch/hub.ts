// The watch hub: delivers the keyspace's changes to watchers.
//
// Overview
// - The keyspace calls notify(events, revision) for every applied batch,
//   synchronously in the apply. A batch holds whole revisions, in order.
// - A watcher is either synced or unsynced. A synced watcher has been handed
//   every event up to the hub's revision: notify appends the batch's matching
//   events to its queue as one response (so all events of a revision are in
//   one response). An unsynced watcher is behind: it catches up by reading the
//   keyspace's revision index from its nextRev in bounded steps
//   (catchupScanMax index entries, never splitting a revision), one watcher
//   step per event-loop turn, and turns synced when a step reaches the hub's
//   revision. Because notify runs in the same turn as the apply, nothing can
//   slip between the last catch-up step and the switch to synced.
// - A watcher starting in the past starts unsynced. A synced watcher whose
//   queue would exceed watchBufferEventsMax drops the batch and turns unsynced
//   at the batch's first revision, so a slow consumer costs a bounded queue
//   and the writer never waits: the events are re-read from lmdb later.
// - Guarantees: ordered (queue order is revision order, catch-up and live
//   delivery never overlap), no duplicates and no gaps (nextRev moves exactly
//   past what was enqueued), atomic per revision, resumable (a new watch from
//   the last seen modRevision + 1), prevKv as of the event's revision.
// - Memory bound per watcher: watchBufferEventsMax + catchupScanMax events,
//   plus one revision's events when a single revision is larger than that (a
//   revision is never split).
// - Compaction: a watcher whose nextRev falls below the compact revision
//   (it asked for history that is gone, or it fell that far behind) gets one
//   response with compactRevision set and canceled, and is removed.
// - Header revision of a response: every event of this watcher up to that
//   revision has been delivered. A progress notification (no events) carries
//   the same promise and is only sent to a synced watcher with an empty queue.
import { KeelsonError } from '../errors.ts';
import { inRange } from '../mvcc/encoding.ts';
import type { Event } from '../mvcc/keyspace.ts';
import type { ResponseHeader } from '../mvcc/requests.ts';

export interface WatchSource {
  revision(): number;
  compactRevision(): number;
  eventsFrom(fromRev: number, key: Buffer, rangeEnd: Buffer | undefined, scanMax: number, prevKv: boolean): { events: Event[]; nextRev: number };
}

export interface WatchOptions {
  key: Buffer;
  /** As for range: absent = one key, [0x00] = every key >= key, else [key, rangeEnd). */
  rangeEnd?: Buffer;
  /** First revision to deliver; 0 or absent = changes after the current revision. */
  startRevision?: number;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
  /** Send an empty response on every progressTick() when nothing else was sent. */
  progressNotify?: boolean;
}

export interface WatchResponse {
  watchId: number;
  header: ResponseHeader;
  events: Event[];
  /** Set (with canceled) when the watcher asked for, or fell behind to, compacted history. */
  compactRevision?: number;
  canceled?: boolean;
  cancelReason?: string;
  /** True for a progress notification (no events). */
  progressNotify?: boolean;
}

export interface WatchHubOptions {
  /** Events queued for one watcher before it falls back to catching up from lmdb. */
  watchBufferEventsMax?: number;
  /** Revision-index entries read by one catch-up step. */
  catchupScanMax?: number;
  /** Schedules catch-up steps; setImmediate by default (tests inject their own). */
  schedule?: (fn: () => void) => void;
}

/**
 * The event without prevKv, made once per event and shared by every watcher
 * that did not ask for prevKv (events are immutable once published).
 */
const stripped = new WeakMap<Event, Event>();
function withoutPrev(e: Event): Event {
  let s = stripped.get(e);
  if (s === undefined) {
    s = { type: e.type, kv: e.kv };
    stripped.set(e, s);
  }
  return s;
}

export class Watcher implements AsyncIterable<WatchResponse> {
  readonly id: number;
  readonly key: Buffer;
  readonly rangeEnd: Buffer | undefined;
  readonly opts: WatchOptions;
  /** First revision whose events are not yet queued. */
  nextRev: number;
  synced = false;
  /** Set when the catch-up step is scheduled, so it is scheduled once. */
  stepping = false;
  canceled = false;
  /** Events in `queue`. */
  queuedEvents = 0;
  /** True when something was sent since the last progress tick. */
  sentSinceTick = false;
  progressRequested = false;
  readonly queue: WatchResponse[] = [];
  private waiter: ((r: WatchResponse | null) => void) | null = null;
  private readonly hub: WatchHub;

  constructor(hub: WatchHub, id: number, opts: WatchOptions, nextRev: number) {
    this.hub = hub;
    this.id = id;
    this.opts = opts;
    this.key = opts.key;
    this.rangeEnd = opts.rangeEnd;
    this.nextRev = nextRev;
  }

  /** Keeps the events this watcher wants (range and filters); prevKv removed unless asked for. */
  select(events: Event[]): Event[] {
    const out: Event[] = [];
    for (const e of events) {
      if (e.kv.modRevision < this.nextRev) continue;
      if (e.type === 'put' ? this.opts.noPut : this.opts.noDelete) continue;
      if (!inRange(e.kv.key, this.key, this.rangeEnd)) continue;
      out.push(this.opts.prevKv || e.prevKv === undefined ? e : withoutPrev(e));
    }
    return out;
  }

  push(r: WatchResponse): void {
    this.sentSinceTick = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(r);
      return;
    }
    this.queue.push(r);
    this.queuedEvents += r.events.length;
  }

  /** The next response, or null once the watcher is canceled and drained. */
  next(): Promise<WatchResponse | null> {
    const r = this.queue.shift();
    if (r !== undefined) {
      this.queuedEvents -= r.events.length;
      this.hub.drained(this);
      return Promise.resolve(r);
    }
    if (this.canceled) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Responses queued and not yet taken by next() (tests and metrics). */
  pending(): number {
    return this.queue.length;
  }

  cancel(): void {
    this.hub.cancel(this.id);
  }

  /** Asks for a progress notification as soon as this watcher is synced and drained. */
  requestProgress(): void {
    this.progressRequested = true;
    this.hub.drained(this);
  }

  /** Called by the hub when the watcher is removed. */
  finish(): void {
    this.canceled = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(null);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    for (;;) {
      const r = await this.next();
      if (r === null) return;
      yield r;
    }
  }
}

export class WatchHub {
  private readonly source: WatchSource;
  private readonly watchBufferEventsMax: number;
  private readonly catchupScanMax: number;
  private readonly schedule: (fn: () => void) => void;
  private readonly watchers = new Map<number, Watcher>();
  /** Synced watchers on one key, by the key's latin1 string. */
  private readonly byKey = new Map<string, Set<Watcher>>();
  /** Synced watchers on a range. */
  private readonly ranged = new Set<Watcher>();
  private nextId = 1;
  private closed = false;
  /** The revision of the last notified batch: every synced watcher has had every event up to it. */
  private lastRev: number;

  constructor(source: WatchSource, opts: WatchHubOptions = {}) {
    this.source = source;
    this.watchBufferEventsMax = opts.watchBufferEventsMax ?? 1000;
    this.catchupScanMax = opts.catchupScanMax ?? 1000;
    this.schedule = opts.schedule ?? ((fn) => setImmediate(fn));
    this.lastRev = source.revision();
  }

  watch(opts: WatchOptions): Watcher {
    if (this.closed) throw new KeelsonError('closed');
    if (!(opts.key instanceof Uint8Array) || opts.key.length === 0) throw new KeelsonError('empty key');
    const start = opts.startRevision ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) throw new KeelsonError('bad request', 'startRevision must be a non-negative integer');
    const current = this.source.revision();
    const w = new Watcher(this, this.nextId++, opts, start === 0 ? current + 1 : start);
    this.watchers.set(w.id, w);
    if (w.nextRev > current) this.setSynced(w, true);
    else this.kick(w);
    return w;
  }

  cancel(id: number): void {
    const w = this.watchers.get(id);
    if (!w) return;
    this.watchers.delete(id);
    this.setSynced(w, false);
    w.finish();
  }

  /** Number of live watchers (tests and metrics). */
  size(): number {
    return this.watchers.size;
  }

  /** Called by the keyspace for each applied batch (see the overview). */
  notify(events: Event[], revision: number): void {
    if (this.closed || events.length === 0) return;
    const firstRev = events[0].kv.modRevision;
    this.lastRev = revision;
    const targets = new Set<Watcher>(this.ranged);
    for (const e of events) {
      const set = this.byKey.get(e.kv.key.toString('latin1'));
      if (set) for (const w of set) targets.add(w);
    }
    for (const w of targets) {
      const mine = w.select(events);
      if (mine.length === 0) {
        w.nextRev = Math.max(w.nextRev, revision + 1);
        continue;
      }
      if (w.queuedEvents > 0 && w.queuedEvents + mine.length > this.watchBufferEventsMax) {
        // Too slow: drop the batch, re-read it from lmdb once drained.
        w.nextRev = Math.max(w.nextRev, firstRev);
        this.setSynced(w, false);
        continue;
      }
      w.nextRev = Math.max(w.nextRev, revision + 1);
      w.push({ watchId: w.id, header: { revision }, events: mine });
    }
    // Synced watchers not among the targets saw nothing of this batch; their
    // nextRev is implied by the hub's revision (see setSynced).
  }

  /**
   * The keyspace jumped (a snapshot was restored): revisions after the last
   * notified one never came through notify. Every synced watcher turns
   * unsynced at that point and catches up from the restored revision index
   * (or is canceled as compacted if the snapshot no longer holds them).
   */
  resync(): void {
    for (const w of this.watchers.values()) {
      if (w.synced) {
        w.nextRev = Math.max(w.nextRev, this.lastRev + 1);
        this.setSynced(w, false);
      }
      this.kick(w);
    }
    this.lastRev = this.source.revision();
  }

  /** Sends progress notifications to synced, drained watchers that asked for them and got nothing since the last tick. */
  progressTick(): void {
    const rev = this.source.revision();
    for (const w of this.watchers.values()) {
      if (w.opts.progressNotify && w.synced && w.queue.length === 0 && !w.sentSinceTick) {
        w.push({ watchId: w.id, header: { revision: rev }, events: [], progressNotify: true });
      }
      w.sentSinceTick = false;
    }
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.watchers.keys()]) this.cancel(id);
  }

  /** The consumer took a response: resume catch-up or answer a progress request. */
  drained(w: Watcher): void {
    if (!this.watchers.has(w.id)) return;
    if (!w.synced) {
      if (w.queuedEvents < this.watchBufferEventsMax) this.kick(w);
      return;
    }
    if (w.progressRequested && w.queue.length === 0) {
      w.progressRequested = false;
      w.push({ watchId: w.id, header: { revision: this.source.revision() }, events: [], progressNotify: true });
    }
  }

  private setSynced(w: Watcher, synced: boolean): void {
    if (w.synced === synced) return;
    w.synced = synced;
    const single = w.rangeEnd === undefined || w.rangeEnd.length === 0;
    if (synced) {
      if (single) {
        const k = w.key.toString('latin1');
        let set = this.byKey.get(k);
        if (!set) this.byKey.set(k, (set = new Set()));
        set.add(w);
      } else this.ranged.add(w);
    } else if (single) {
      const k = w.key.toString('latin1');
      const set = this.byKey.get(k);
      set?.delete(w);
      if (set && set.size === 0) this.byKey.delete(k);
    } else this.ranged.delete(w);
  }

  private kick(w: Watcher): void {
    if (w.stepping) return;
    w.stepping = true;
    this.schedule(() => {
      w.stepping = false;
      this.step(w);
    });
  }

  /** One bounded catch-up step of an unsynced watcher. */
  private step(w: Watcher): void {
    if (this.closed || !this.watchers.has(w.id) || w.synced) return;
    if (w.queuedEvents >= this.watchBufferEventsMax) return; // resumed by drained()
    // A watcher whose synced position is ahead of this (one that was synced
    // at the hub's revision) would have been skipped by notify; nextRev
    // always names the first revision not enqueued, so read from there.
    const current = this.source.revision();
    if (w.nextRev > current) {
      this.setSynced(w, true);
      this.drained(w);
      return;
    }
    const compact = this.source.compactRevision();
    if (w.nextRev < compact) {
      this.compacted(w, compact);
      return;
    }
    let got: { events: Event[]; nextRev: number };
    try {
      got = this.source.eventsFrom(w.nextRev, w.key, w.rangeEnd, this.catchupScanMax, w.opts.prevKv === true);
    } catch (e) {
      if (e instanceof KeelsonError && e.code === 'compacted') {
        this.compacted(w, e.compactRevision ?? compact);
        return;
      }
      // The keyspace is closed or swapping in a snapshot: the step is
      // dropped; resync() (after a restore) or close() picks the watcher up.
      if (e instanceof KeelsonError && e.code === 'closed') return;
      throw e;
    }
    const mine = w.select(got.events);
    w.nextRev = got.nextRev;
    if (mine.length > 0) w.push({ watchId: w.id, header: { revision: got.nextRev - 1 }, events: mine });
    if (w.nextRev > current) {
      this.setSynced(w, true);
      this.drained(w);
    } else {
      this.kick(w);
    }
  }

  private compacted(w: Watcher, compactRevision: number): void {
    w.push({
      watchId: w.id,
      header: { revision: this.source.revision() },
      events: [],
      compactRevision,
      canceled: true,
      cancelReason: new KeelsonError('compacted').message,
    });
    this.watchers.delete(w.id);
    this.setSynced(w, false);
    w.canceled = true;
  }
}
