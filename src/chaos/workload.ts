// The recorded workload: concurrent clients doing puts, deletes, CAS txns and
// linearizable and serializable reads on a small hot key set, watchers over
// the whole workload prefix (from the first revision, from "now", and short
// ones from random past revisions, all resuming after a broken stream from
// the last revision they saw + 1), and lease workers that grant a lease,
// attach keys, keep it alive for a while, then let it expire or revoke it and
// poll until its keys are gone. Every operation lands in the History with its
// invoke and return time and its outcome.
//
// Values are unique per run (client and sequence number), which the
// linearizability checker relies on to drop unknown writes nobody observed;
// CAS txns read the key in their failure branch and deletes ask for prev_kv,
// so every state-dependent op reports the value it saw.
import { CallError, type EndpointClient, type RawEvent, type RawWatchResponse } from './client.ts';
import type { History, KvOp, LeaseRec, WatchEventRec, WatchSessionRec } from './history.ts';
import { prefixEndString } from './history.ts';

export interface WorkloadOptions {
  prefix: string;
  /** Clients for the current endpoints; called again after membership changes. */
  clients: () => EndpointClient[];
  random: () => number;
  kvClients?: number;
  keys?: number;
  watchers?: number;
  leaseWorkers?: number;
  opTimeoutMs?: number;
  leaseTtlS?: number;
  /** Lease ids are chosen by the workload (so they fit a JS number and never collide across runs). */
  leaseIdBase?: number;
  /** Recording stops growing past this many kv ops (the run keeps going, unrecorded ops are not sent). */
  kvOpsMax?: number;
  /**
   * Bound on recorded watch events. Past it (or past kvOpsMax) the workload
   * sends nothing more, so the watchers have nothing more to record; the run's
   * remaining faults still play and the report notes it.
   */
  watchEventsMax?: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const str = (b: Buffer | undefined | null) => (b ? Buffer.from(b).toString('latin1') : '');
const buf = (s: string) => Buffer.from(s, 'latin1');

export class Workload {
  readonly history: History;
  private readonly t0 = performance.now();
  private stopping = false;
  private running: Promise<void>[] = [];
  private nextOpId = 1;
  private nextWatcherId = 1;
  private nextLeaseId: number;
  /** Highest revision any response showed; watchers from the past pick below it. */
  maxRevisionSeen = 1;
  compactRevision = 0;
  private openWatches = new Set<{ cancel(): void }>();
  private readonly o: Required<Omit<WorkloadOptions, 'log'>> & Pick<WorkloadOptions, 'log'>;

  constructor(opts: WorkloadOptions) {
    this.o = {
      kvClients: 8, keys: 5, watchers: 3, leaseWorkers: 1, opTimeoutMs: 3000, leaseTtlS: 3,
      leaseIdBase: 1 + Math.floor(opts.random() * 1e9) * 1000, kvOpsMax: 2_000_000, watchEventsMax: 10_000_000,
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as WorkloadOptions,
    };
    this.nextLeaseId = this.o.leaseIdBase;
    this.history = { kv: [], watches: [], leases: [], faults: [], prefix: opts.prefix };
  }

  now(): number { return performance.now() - this.t0; }

  private watchEvents = 0;
  /** The recording bounds were hit: no new operations. */
  full(): boolean {
    return this.history.kv.length >= this.o.kvOpsMax || this.watchEvents >= this.o.watchEventsMax;
  }

  keys(): string[] {
    return Array.from({ length: this.o.keys }, (_, i) => `${this.o.prefix}k${i}`);
  }

  clientsNow(): EndpointClient[] { return this.o.clients(); }

  /**
   * The i-th endpoint's client, skipping endpoints that just failed a call
   * (for suspectMs), so that clients spend the run on members that answer
   * rather than piling up unknown ops on a dead or cut-off one.
   */
  private client(i: number): EndpointClient {
    const cs = this.o.clients();
    const now = Date.now();
    for (let k = 0; k < cs.length; k++) {
      const c = cs[(((i + k) % cs.length) + cs.length) % cs.length]!;
      if ((this.suspectUntil.get(c.endpoint) ?? 0) <= now) return c;
    }
    return cs[((i % cs.length) + cs.length) % cs.length]!;
  }

  private readonly suspectUntil = new Map<string, number>();
  private static readonly suspectMs = 2000;

  private suspect(c: EndpointClient): void {
    this.suspectUntil.set(c.endpoint, Date.now() + Workload.suspectMs);
  }

  private seeRevision(r: unknown) {
    const n = Number(r);
    if (n > this.maxRevisionSeen) this.maxRevisionSeen = n;
  }

  start(): void {
    for (let c = 0; c < this.o.kvClients; c++) this.running.push(this.kvWorker(c));
    // Watcher 1: everything from revision 1. Watcher 2: from "now". The rest: short watches from random past revisions.
    if (this.o.watchers >= 1) this.longWatchers.push(this.longWatcher(1, true));
    if (this.o.watchers >= 2) this.longWatchers.push(this.longWatcher(0, false));
    for (let w = 2; w < this.o.watchers; w++) this.running.push(this.pastWatcher(w));
    for (let l = 0; l < this.o.leaseWorkers; l++) this.running.push(this.leaseWorker(l));
  }

  /** Stops issuing operations; waits for the ones in flight (each bounded by opTimeoutMs). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
  }

  /** Closes the long watchers once they have caught up with revision (or after waitMs). */
  async closeWatchers(revision: number, waitMs: number): Promise<void> {
    const end = Date.now() + waitMs;
    while (Date.now() < end && this.watchTargets.some((w) => w.lastRev < revision)) await sleep(50);
    for (const w of this.watchTargets) if (w.lastRev < revision) this.o.log?.(`watcher ${w.id} still at revision ${w.lastRev} of ${revision} at the end`);
    this.watchersDone = true;
    await Promise.all(this.longWatchers);
    for (const w of this.openWatches) w.cancel();
    for (const s of this.history.watches) if (s.end === 'open') s.end = 'closed';
  }

  private watchTargets: { id: number; lastRev: number }[] = [];
  /** The long watchers run on after stop() until closeWatchers(). */
  private longWatchers: Promise<void>[] = [];
  private watchersDone = false;

  private record(op: Omit<KvOp, 'id'>): KvOp {
    const full = { id: this.nextOpId++, ...op } as KvOp;
    this.history.kv.push(full);
    return full;
  }

  private async call<T>(op: KvOp, fn: () => Promise<T>, onOk: (r: T) => void): Promise<boolean> {
    try {
      const r = await fn();
      op.returnMs = this.now();
      op.outcome = 'ok';
      onOk(r);
      return true;
    } catch (e) {
      const ce = e instanceof CallError ? e : new CallError(String(e), undefined, false);
      op.error = ce.message;
      if (ce.definite) { op.outcome = 'failed'; op.returnMs = this.now(); } else { op.outcome = 'unknown'; op.returnMs = Infinity; }
      return false;
    }
  }

  private async kvWorker(c: number): Promise<void> {
    const r = this.o.random;
    let endpoint = c;
    let seq = 0;
    const lastSeen = new Map<string, string | null>();
    const keys = this.keys();
    const t = this.o.opTimeoutMs;
    while (!this.stopping && !this.full()) {
      const key = keys[Math.floor(r() * keys.length)]!;
      const x = r();
      const cl = this.client(endpoint);
      const base = { client: c, key, invokeMs: this.now(), returnMs: Infinity, outcome: 'unknown' as const };
      let ok: boolean;
      if (x < 0.25) {
        const value = `c${c}-${seq++}`;
        const op = this.record({ ...base, kind: 'put', value });
        ok = await this.call(op, () => cl.put({ key: buf(key), value: buf(value) }, t), (res) => { op.revision = Number(res.header.revision); this.seeRevision(op.revision); });
      } else if (x < 0.45) {
        const value = `c${c}-${seq++}`;
        const expect = lastSeen.has(key) ? lastSeen.get(key)! : null;
        const op = this.record({ ...base, kind: 'cas', value, expect });
        const compare = expect === null
          ? { result: 'EQUAL', target: 'VERSION', key: buf(key), version: '0' }
          : { result: 'EQUAL', target: 'VALUE', key: buf(key), value: buf(expect) };
        ok = await this.call(op, () => cl.txn({
          compare: [compare],
          success: [{ request_put: { key: buf(key), value: buf(value) } }],
          failure: [{ request_range: { key: buf(key) } }],
        }, t), (res) => {
          op.succeeded = res.succeeded;
          op.revision = Number(res.header.revision);
          this.seeRevision(op.revision);
          if (res.succeeded) lastSeen.set(key, value);
          else {
            const kv = res.responses?.[0]?.response_range?.kvs?.[0];
            op.readValue = kv ? str(kv.value) : null;
            lastSeen.set(key, op.readValue);
          }
        });
      } else if (x < 0.5) {
        const op = this.record({ ...base, kind: 'delete' });
        ok = await this.call(op, () => cl.deleteRange({ key: buf(key), prev_kv: true }, t), (res) => {
          op.deleted = Number(res.deleted);
          op.revision = Number(res.header.revision);
          this.seeRevision(op.revision);
          const kv = res.prev_kvs?.[0];
          op.readValue = kv ? str(kv.value) : null;
          lastSeen.set(key, null);
        });
      } else {
        const serializable = x >= 0.85;
        const op = this.record({ ...base, kind: 'get', serializable });
        ok = await this.call(op, () => cl.range({ key: buf(key), serializable }, t), (res) => {
          const kv = res.kvs?.[0];
          op.readValue = kv ? str(kv.value) : null;
          op.readModRevision = kv ? Number(kv.mod_revision) : 0;
          op.revision = Number(res.header.revision);
          this.seeRevision(op.revision);
          lastSeen.set(key, op.readValue);
        });
      }
      if (!ok) { this.suspect(cl); endpoint++; await sleep(20); }
    }
  }

  private toEvent(e: RawEvent, prevKv: boolean): WatchEventRec {
    const ev: WatchEventRec = {
      type: e.type === 'DELETE' ? 'delete' : 'put',
      key: str(e.kv.key),
      modRevision: Number(e.kv.mod_revision),
    };
    if (ev.type === 'put') {
      ev.value = str(e.kv.value);
      ev.createRevision = Number(e.kv.create_revision);
      ev.version = Number(e.kv.version);
      ev.lease = Number(e.kv.lease);
    }
    if (prevKv) ev.prevKv = e.prev_kv && e.prev_kv.key && e.prev_kv.key.length > 0 ? { value: str(e.prev_kv.value), modRevision: Number(e.prev_kv.mod_revision) } : null;
    return ev;
  }

  /**
   * One watch session until it ends. Resolves with the last revision it
   * delivered and how it ended. startRevision 0 = from the next revision.
   */
  private watchSession(watcherId: number, session: number, endpoint: number, startRevision: number, prevKv: boolean, until: () => boolean, target?: { lastRev: number }): Promise<{ last: number; start: number; end: WatchSessionRec['end']; compactRevision?: number }> {
    return new Promise((resolve) => {
      const prefix = this.o.prefix;
      const rec: WatchSessionRec = {
        watcherId, session, key: prefix, rangeEnd: prefixEndString(prefix), startRevision, prevKv, openedMs: this.now(), responses: [], end: 'open',
      };
      this.history.watches.push(rec);
      let last = startRevision > 0 ? startRevision - 1 : 0;
      let finished = false;
      const finish = (end: WatchSessionRec['end'], compactRevision?: number) => {
        if (finished) return;
        finished = true;
        clearInterval(poll);
        this.openWatches.delete(handle);
        handle.cancel();
        if (rec.end === 'open') rec.end = end;
        if (compactRevision !== undefined) rec.compactRevision = compactRevision;
        resolve({ last, start: rec.startRevision, end, compactRevision });
      };
      const onResponse = (r: RawWatchResponse) => {
        if (r.created) {
          if (startRevision === 0 && r.header) {
            // From "now": the session starts after the revision the store had when it created the watch.
            rec.startRevision = Number(r.header.revision) + 1;
            last = rec.startRevision - 1;
          }
          return;
        }
        if (r.canceled) {
          const cr = Number(r.compact_revision);
          finish(cr > 0 ? 'compacted' : 'error', cr > 0 ? cr : undefined);
          return;
        }
        if (r.events.length === 0) return;
        const events = r.events.map((e) => this.toEvent(e, prevKv));
        rec.responses.push({ atMs: this.now(), events });
        this.watchEvents += events.length;
        for (const e of events) last = Math.max(last, e.modRevision);
        if (target) target.lastRev = Math.max(target.lastRev, last);
        this.seeRevision(last);
      };
      const handle = this.client(endpoint).watch(
        { key: buf(prefix), rangeEnd: buf(prefixEndString(prefix)), startRevision, prevKv }, onResponse, () => finish('error'));
      this.openWatches.add(handle);
      const poll = setInterval(() => { if (until()) finish('closed'); }, 50);
    });
  }

  private async longWatcher(startRevision: number, prevKv: boolean): Promise<void> {
    const id = this.nextWatcherId++;
    const target = { id, lastRev: 0 };
    this.watchTargets.push(target);
    let endpoint = id;
    let from = startRevision;
    // "From now" as an explicit revision, so that every session of the chain has a known start.
    while (from === 0 && !this.watchersDone) {
      try {
        const res = await this.client(endpoint).range({ key: buf(this.o.prefix), count_only: true }, this.o.opTimeoutMs);
        from = Number(res.header.revision) + 1;
      } catch { endpoint++; await sleep(100); }
    }
    for (let session = 0; !this.watchersDone; session++) {
      const r = await this.watchSession(id, session, endpoint, from, prevKv, () => this.watchersDone, target);
      if (this.watchersDone) break;
      if (r.end === 'compacted') {
        // History below the compaction point is gone: continue from it (the checker starts a new chain).
        from = (r.compactRevision ?? 0) + 1;
      } else {
        // Resume right after the last revision delivered; a session that delivered nothing resumes where it started.
        from = r.last >= r.start ? r.last + 1 : r.start;
      }
      endpoint++;
      await sleep(100);
    }
  }

  /** Short watches from random past revisions, each until it has caught up with where the run was when it opened. */
  private async pastWatcher(w: number): Promise<void> {
    const r = this.o.random;
    while (!this.stopping && !this.full()) {
      const low = Math.max(this.compactRevision + 1, 1);
      const high = this.maxRevisionSeen;
      const from = low + Math.floor(r() * Math.max(1, high - low + 1));
      const goal = high;
      const id = this.nextWatcherId++;
      const deadline = Date.now() + 3000;
      await this.watchSession(id, 0, w + id, from, r() < 0.5, () => this.stopping || this.watchersDone || Date.now() > deadline || this.lastOf(id) >= goal);
      await sleep(200 + r() * 800);
    }
  }

  private lastOf(watcherId: number): number {
    for (let i = this.history.watches.length - 1; i >= 0; i--) {
      const s = this.history.watches[i]!;
      if (s.watcherId !== watcherId) continue;
      const resp = s.responses[s.responses.length - 1];
      return resp ? resp.events[resp.events.length - 1]!.modRevision : 0;
    }
    return 0;
  }

  private async leaseWorker(l: number): Promise<void> {
    const r = this.o.random;
    const t = this.o.opTimeoutMs;
    let endpoint = l;
    while (!this.stopping && !this.full()) {
      const id = this.nextLeaseId++;
      const grantInvokeMs = this.now();
      let ttlS: number;
      try {
        const g = await this.client(endpoint).leaseGrant(this.o.leaseTtlS, id, t);
        ttlS = Number(g.TTL);
      } catch {
        endpoint++;
        await sleep(200);
        continue; // the lease may exist; no key is attached to it, so nothing to check
      }
      const rec: LeaseRec = { id, ttlS, grantInvokeMs, grantReturnMs: this.now(), keepAlives: [], keys: [] };
      this.history.leases.push(rec);
      for (const suffix of ['a', 'b']) {
        const key = `${this.o.prefix}lease/${id}/${suffix}`;
        const value = `l${id}${suffix}`;
        const op = this.record({ client: 1000 + l, kind: 'put', key, value, lease: id, invokeMs: this.now(), returnMs: Infinity, outcome: 'unknown' });
        const ok = await this.call(op, () => this.client(endpoint).put({ key: buf(key), value: buf(value), lease: String(id) }, t), (res) => { op.revision = Number(res.header.revision); this.seeRevision(op.revision); });
        if (ok) rec.keys.push(key);
        else endpoint++;
      }
      // Keep it alive for 1-4 TTLs' worth of renewals, one per third of the TTL.
      const renewals = Math.floor(r() * 4 * 3);
      for (let i = 0; i < renewals && !this.stopping; i++) {
        await sleep((ttlS * 1000) / 3);
        const k = { invokeMs: this.now(), returnMs: Infinity, outcome: 'unknown' as KvOp['outcome'], ttlS: undefined as number | undefined, abandonedMs: undefined as number | undefined };
        rec.keepAlives.push(k);
        try {
          const res = await this.client(endpoint).leaseKeepAliveOnce(id, Math.min(t, (ttlS * 1000) / 2));
          k.returnMs = this.now(); k.outcome = 'ok'; k.ttlS = res.ttlS;
        } catch (e) {
          if (e instanceof CallError && e.definite) { k.returnMs = this.now(); k.outcome = 'failed'; break; }
          k.abandonedMs = this.now();
          endpoint++;
        }
      }
      if (r() < 0.3) {
        const rv = { invokeMs: this.now(), returnMs: Infinity, outcome: 'unknown' as KvOp['outcome'] };
        rec.revoke = rv;
        try { await this.client(endpoint).leaseRevoke(id, t); rv.returnMs = this.now(); rv.outcome = 'ok'; } catch (e) {
          if (e instanceof CallError && e.definite) { rv.returnMs = this.now(); rv.outcome = 'failed'; } else endpoint++;
        }
      }
      // Poll the keys with linearizable reads until they are gone (bounded: TTL + 10 s).
      const pollEnd = Date.now() + ttlS * 1000 + 10_000;
      const left = new Set(rec.keys);
      while (left.size > 0 && Date.now() < pollEnd && !this.stopping) {
        await sleep(300);
        for (const key of [...left]) {
          const op = this.record({ client: 1000 + l, kind: 'get', key, invokeMs: this.now(), returnMs: Infinity, outcome: 'unknown' });
          const ok = await this.call(op, () => this.client(endpoint).range({ key: buf(key) }, t), (res) => {
            const kv = res.kvs?.[0];
            op.readValue = kv ? str(kv.value) : null;
            op.readModRevision = kv ? Number(kv.mod_revision) : 0;
            op.revision = Number(res.header.revision);
            if (!kv) left.delete(key);
          });
          if (!ok) endpoint++;
        }
      }
    }
  }
}
