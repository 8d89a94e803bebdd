// RemoteStore: the Store (and as much of ClusterStore as the etcd v3 API
// carries) over the network, through the npm etcd3 client's raw gRPC
// clients, against a Keelson store server or a real etcd.
//
// Overview
// - Every request is one etcd v3 RPC built field by field, so no option of
//   the Store is lost to a higher-level builder. The connection pool of
//   etcd3 spreads calls over the endpoints and fails over on UNAVAILABLE.
// - Errors: etcd's message text is mapped back to KeelsonError codes. Fields
//   etcd does not put in an error are fetched: the compact revision of a
//   'compacted' read comes from a watch at revision 1 (which the server
//   cancels at once with compact_revision set), the current revision of a
//   'future revision' read from a count-only range.
// - 64-bit ids: the Store's lease and member ids are numbers. Lease ids are
//   chosen here, below 2^53, and granted explicitly, so they stay exact on
//   etcd too (which would otherwise pick ids up to 2^63). Member ids on
//   etcd are random 64-bit values: they are reported as the nearest number
//   and remembered, so that passing one back (memberRemove...) sends the
//   exact original.
// - Lease keep-alives share one keep-alive stream (reopened after a failure).
// - Watch: each Store watch is one gRPC watch stream. A watch without a start
//   revision starts right after the newest revision this client has seen,
//   so every write this client made after watch() returned is delivered, as
//   with a local store (a stream created "now" on the server could miss a
//   put sent on another call in the meantime). Responses queue up to
//   watchQueueResponsesMax; past that the stream is paused, which lets
//   HTTP/2 flow control hold the server back.
import { circuitBreaker, ConsecutiveBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, GRPCUnavailableError, type IOptions } from 'etcd3';
import type { AlarmMember, ClusterHeader, MemberChangeResponse, SnapshotStream } from '../cluster.ts';
import { KeelsonError, type StoreErrorCode } from '../errors.ts';
import type { Event } from '../mvcc/keyspace.ts';
import type { AlarmType, Compare, KeyValue, RequestOp, ResponseOp } from '../mvcc/requests.ts';
import type {
  CompactResponse, DeleteOptions, DeleteRangeResponse, HashKVResponse, LeaseGrantResponse, LeaseKeepAliveResponse,
  LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse, Member, MemberListResponse, PutOptions, PutResponse,
  RangeOptions, RangeResponse, StatusResponse, Store, TxnRequest, TxnResponse, WatchResponse, WatchStartOptions, WatchStream,
} from '../store.ts';
import { createHash } from 'node:crypto';

export interface RemoteStoreOptions {
  /** Client URLs (http://host:port or host:port). */
  endpoints: string[];
  /** Deadline of one unary call. Default 30,000 ms. */
  requestTimeoutMs?: number;
  /** Picks lease ids for grants without one (1 .. 2^53 - 2). Default: Math.random based. */
  leaseId?: () => number;
  /** Responses a watch holds for its reader before the stream is paused. Default 1,000. */
  watchQueueResponsesMax?: number;
  /** Extra options for the etcd3 client (TLS credentials, auth). */
  etcd3?: Partial<IOptions>;
}

type Wire = Record<string, unknown>;
type Service = 'KV' | 'Lease' | 'Cluster' | 'Maintenance';
interface Pool {
  exec(service: Service, method: string, req: Wire, opts?: { deadline?: number }): Promise<Wire>;
}
interface Duplex {
  on(event: string, fn: (arg: never) => void): Duplex;
  write(item: Wire): void;
  end(): void;
  cancel(): void;
  pause?(): void;
  resume?(): void;
}

/** Attempts at a fresh lease id when the chosen one is taken. */
const leaseIdAttemptsMax = 16;
/** leaseKeepAlive() calls waiting for their answer at once; more are refused. */
const keepAliveWaitingMax = 10_000;

interface KeepAliveWaiter {
  resolve: (r: Wire) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

// etcd's texts (and grpc-js's oversize-message text), most specific first.
const errorTexts: [string, StoreErrorCode][] = [
  ['required revision has been compacted', 'compacted'],
  ['required revision is a future revision', 'future revision'],
  ['requested lease not found', 'lease not found'],
  ['lease already exists', 'lease exists'],
  ['too large lease TTL', 'lease ttl too large'],
  ['duplicate key given in txn request', 'duplicate key'],
  ['too many operations in txn request', 'too many operations'],
  ['request is too large', 'request too large'],
  ['larger than max', 'request too large'],
  ['key is too large', 'key too large'],
  ['key is not provided', 'empty key'],
  ['value is provided', 'value provided'],
  ['lease is provided', 'lease provided'],
  ['etcdserver: key not found', 'key not found'],
  ['database space exceeded', 'NOSPACE'],
  ['etcdserver: not leader', 'not leader'],
  ['etcdserver: no leader', 'not leader'],
  ['etcdserver: leader changed', 'not leader'],
  ['etcdserver: request timed out', 'timeout'],
  ['etcdserver: too many requests', 'too many requests'],
  ['etcdserver: member not found', 'member not found'],
  ['etcdserver: member ID already exist', 'member exists'],
  ['etcdserver: Peer URLs already exists', 'peer url exists'],
  ['learner member which is in sync with leader', 'learner not ready'],
  ['etcdserver: unhealthy cluster', 'unhealthy cluster'],
  ['etcdserver: bad request', 'bad request'],
  ['etcdserver: store is closed', 'closed'],
];

/** The KeelsonError for an etcd error, or the error itself when it is not one the Store names. */
export function fromEtcdError(e: unknown): unknown {
  if (e instanceof KeelsonError) return e;
  const message = e instanceof Error ? e.message : String(e);
  for (const [text, code] of errorTexts) {
    if (message.includes(text)) {
      const detail = code === 'bad request' || code === 'key too large' ? message.slice(message.indexOf(text) + text.length).replace(/^[\s(]+|\)$/g, '') : '';
      return new KeelsonError(code, detail || undefined);
    }
  }
  return e;
}

/**
 * A failure that says the request never took effect: the endpoint is not
 * reachable, or its member is not (or no longer) the leader. Only these are
 * retried on another endpoint and count against an endpoint's health; a
 * timed-out or refused request is not repeated (it may have been applied,
 * or would fail again).
 */
function unreachable(e: Error): boolean {
  if (!(e instanceof GRPCUnavailableError)) return false;
  return !e.message.includes('etcdserver:') || /etcdserver: (not leader|no leader|leader changed)/.test(e.message);
}

const num = (v: unknown): number => (v === undefined || v === null || v === '' ? 0 : Number(v));
const buf = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v) : Buffer.alloc(0));

function kvIn(kv: Wire): KeyValue {
  return {
    key: buf(kv.key),
    createRevision: num(kv.create_revision),
    modRevision: num(kv.mod_revision),
    version: num(kv.version),
    value: buf(kv.value),
    lease: num(kv.lease),
  };
}

function eventIn(e: Wire): Event {
  const type = e.type === 1 || e.type === 'DELETE' || e.type === 'Delete' ? 'delete' : 'put';
  const out: Event = { type, kv: kvIn(e.kv as Wire) };
  if (e.prev_kv) out.prevKv = kvIn(e.prev_kv as Wire);
  return out;
}

const sortOrders = { none: 0, ascend: 1, descend: 2 } as const;
const sortTargets = { key: 0, version: 1, create: 2, mod: 3, value: 4 } as const;
const compareResults = { equal: 0, greater: 1, less: 2, notEqual: 3 } as const;
const compareTargets = { version: 0, create: 1, mod: 2, value: 3, lease: 4 } as const;
const compareFields = { version: 'version', create: 'create_revision', mod: 'mod_revision', lease: 'lease' } as const;

/**
 * range_end only when there is one: etcd tells "absent" (the key alone) from
 * "present but empty" (every key >= key), and protobufjs sends an empty
 * Buffer as a present field.
 */
function withEnd(w: Wire, end: Buffer | undefined): Wire {
  if (end !== undefined && end.length > 0) w.range_end = end;
  return w;
}

function rangeOut(key: Buffer, o: RangeOptions): Wire {
  return withEnd({
    key,
    limit: o.limit ?? 0,
    revision: o.revision ?? 0,
    sort_order: sortOrders[o.sortOrder ?? 'none'],
    sort_target: sortTargets[o.sortTarget ?? 'key'],
    serializable: o.serializable === true,
    keys_only: o.keysOnly === true,
    count_only: o.countOnly === true,
    min_mod_revision: o.minModRevision ?? 0,
    max_mod_revision: o.maxModRevision ?? 0,
    min_create_revision: o.minCreateRevision ?? 0,
    max_create_revision: o.maxCreateRevision ?? 0,
  }, o.rangeEnd);
}

function putOut(key: Buffer, value: Buffer, o: PutOptions): Wire {
  return { key, value, lease: o.lease ?? 0, prev_kv: o.prevKv === true, ignore_value: o.ignoreValue === true, ignore_lease: o.ignoreLease === true };
}

function deleteOut(key: Buffer, o: DeleteOptions): Wire {
  return withEnd({ key, prev_kv: o.prevKv === true }, o.rangeEnd);
}

function compareOut(c: Compare): Wire {
  const out = withEnd({ key: c.key, target: compareTargets[c.target], result: compareResults[c.result] }, c.rangeEnd);
  if (c.target === 'value') out.value = c.value ?? Buffer.alloc(0);
  else out[compareFields[c.target]] = c.number ?? 0;
  return out;
}

function opOut(op: RequestOp): Wire {
  switch (op.op) {
    case 'range': return { request_range: rangeOut(op.key, op) };
    case 'put': return { request_put: putOut(op.key, op.value, op) };
    case 'deleteRange': return { request_delete_range: deleteOut(op.key, op) };
    case 'txn': return { request_txn: txnOut(op) };
  }
}

function txnOut(t: TxnRequest): Wire {
  return { compare: t.compare.map(compareOut), success: t.success.map(opOut), failure: t.failure.map(opOut) };
}

function rangeResIn(r: Wire): RangeResponse {
  return { header: { revision: num((r.header as Wire)?.revision) }, kvs: ((r.kvs as Wire[]) ?? []).map(kvIn), more: r.more === true, count: num(r.count) };
}

function putResIn(r: Wire): PutResponse {
  const out: PutResponse = { header: { revision: num((r.header as Wire)?.revision) } };
  if (r.prev_kv) out.prevKv = kvIn(r.prev_kv as Wire);
  return out;
}

function deleteResIn(r: Wire): DeleteRangeResponse {
  return { header: { revision: num((r.header as Wire)?.revision) }, deleted: num(r.deleted), prevKvs: ((r.prev_kvs as Wire[]) ?? []).map(kvIn) };
}

function txnResIn(r: Wire): TxnResponse {
  return { header: { revision: num((r.header as Wire)?.revision) }, succeeded: r.succeeded === true, responses: ((r.responses as Wire[]) ?? []).map(opResIn) };
}

function opResIn(r: Wire): ResponseOp {
  if (r.response_range) return { op: 'range', ...rangeResIn(r.response_range as Wire) };
  if (r.response_put) return { op: 'put', ...putResIn(r.response_put as Wire) };
  if (r.response_delete_range) return { op: 'deleteRange', ...deleteResIn(r.response_delete_range as Wire) };
  if (r.response_txn) return { op: 'txn', ...txnResIn(r.response_txn as Wire) };
  throw new Error('keelson: txn response op of unknown kind');
}

function alarmOf(v: unknown): AlarmType | undefined {
  if (v === 1 || v === 'NOSPACE' || v === 'Nospace') return 'NOSPACE';
  if (v === 2 || v === 'CORRUPT' || v === 'Corrupt') return 'CORRUPT';
  return undefined;
}

export class RemoteStore implements Store {
  readonly endpoints: string[];
  private readonly client: Etcd3;
  private readonly requestTimeoutMs: number;
  private readonly leaseIdGen: () => number;
  private readonly watchQueueResponsesMax: number;
  private readonly watches = new Set<RemoteWatch>();
  /** Exact (decimal) forms of 64-bit member ids seen, by their number. */
  private readonly memberIds = new Map<number, string>();
  private last: { clusterId: number; memberId: number; revision: number; raftTerm: number } = { clusterId: 0, memberId: 0, revision: 0, raftTerm: 0 };
  private lastLeader = 0;
  private nextWatchId = 1;
  private kaStream: Duplex | null = null;
  private kaOpening: Promise<Duplex> | null = null;
  /** Waiting keep-alive calls by lease id (decimal), oldest first. */
  private readonly kaWaiters = new Map<string, KeepAliveWaiter[]>();
  private kaWaiting = 0;
  private closed = false;

  constructor(opts: RemoteStoreOptions) {
    if (opts.endpoints.length === 0) throw new KeelsonError('bad request', 'no endpoints');
    this.endpoints = opts.endpoints;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.leaseIdGen = opts.leaseId ?? (() => 1 + Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 2)));
    this.watchQueueResponsesMax = opts.watchQueueResponsesMax ?? 1000;
    this.client = new Etcd3({
      hosts: opts.endpoints,
      grpcOptions: { 'grpc.max_receive_message_length': -1 },
      faultHandling: {
        host: () => circuitBreaker(handleWhen(unreachable), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        global: retry(handleWhen(unreachable), { maxAttempts: opts.endpoints.length }),
      },
      ...opts.etcd3,
    });
  }

  /** A RemoteStore that has made one round trip (so it knows the cluster's header and revision). */
  static async connect(opts: RemoteStoreOptions): Promise<RemoteStore> {
    const s = new RemoteStore(opts);
    try {
      await s.status();
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  get memberId(): number {
    return this.last.memberId;
  }

  get clusterId(): number {
    return this.last.clusterId;
  }

  /** The header of the newest response seen. */
  header(): ClusterHeader {
    return { ...this.last };
  }

  /** The leader named by the last status() answer; 0 before one. */
  leaderId(): number {
    return this.lastLeader;
  }

  /**
   * The client's connection pool, called with the methods' names as the
   * protos spell them (the typed wrappers of etcd3 misname HashKV).
   */
  private get pool(): Pool {
    return (this.client as unknown as { pool: Pool }).pool;
  }

  /** Records the response header (cluster identity, newest revision). */
  private saw(h: unknown): void {
    if (!h || typeof h !== 'object') return;
    const w = h as Wire;
    const rev = num(w.revision);
    this.last = {
      clusterId: num(w.cluster_id) || this.last.clusterId,
      memberId: num(w.member_id) || this.last.memberId,
      revision: Math.max(this.last.revision, rev),
      raftTerm: num(w.raft_term) || this.last.raftTerm,
    };
  }

  private async call(service: Service, method: string, req: Wire): Promise<Wire> {
    if (this.closed) throw new KeelsonError('closed');
    try {
      const r = await this.pool.exec(service, method, req, { deadline: Date.now() + this.requestTimeoutMs });
      this.saw(r.header);
      return r;
    } catch (e) {
      throw fromEtcdError(e);
    }
  }

  /** Fills in what etcd leaves out of a revision error (see the overview). */
  private async enrich(e: unknown, key: Buffer): Promise<never> {
    if (e instanceof KeelsonError && e.code === 'compacted' && e.compactRevision === undefined) {
      e.compactRevision = await this.compactRevision().catch(() => 0);
    } else if (e instanceof KeelsonError && e.code === 'future revision' && e.currentRevision === undefined) {
      e.currentRevision = await this.currentRevision(key).catch(() => 0);
    }
    throw e;
  }

  private async currentRevision(key: Buffer): Promise<number> {
    const r = await this.call('KV', 'Range', { key, count_only: true });
    return num((r.header as Wire)?.revision);
  }

  /**
   * The store's compact revision. A read at revision 1 tells whether
   * anything was compacted; if so, a watch from revision 1 is canceled by
   * the server at once with the compact revision in it.
   */
  async compactRevision(): Promise<number> {
    try {
      await this.call('KV', 'Range', { key: Buffer.from([0]), revision: 1, count_only: true, serializable: true });
      return 0;
    } catch (e) {
      if (!(e instanceof KeelsonError && e.code === 'compacted')) {
        if (e instanceof KeelsonError && e.code === 'future revision') return 0;
        throw e;
      }
    }
    const w = new RemoteWatch(this, this.client, 0, Buffer.from([0]), { startRevision: 1 }, 8);
    try {
      for (let i = 0; i < 8; i++) {
        const r = await w.next();
        if (r === null) break;
        if (r.compactRevision !== undefined) return r.compactRevision;
      }
      throw new Error('keelson: no compact revision in a watch below the compaction point');
    } finally {
      w.cancel();
    }
  }

  async range(key: Buffer, opts: RangeOptions = {}): Promise<RangeResponse> {
    try {
      return rangeResIn(await this.call('KV', 'Range', rangeOut(key, opts)));
    } catch (e) {
      return this.enrich(e, key);
    }
  }

  async put(key: Buffer, value: Buffer, opts: PutOptions = {}): Promise<PutResponse> {
    return putResIn(await this.call('KV', 'Put', putOut(key, value, opts)));
  }

  async deleteRange(key: Buffer, opts: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    return deleteResIn(await this.call('KV', 'DeleteRange', deleteOut(key, opts)));
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    try {
      return txnResIn(await this.call('KV', 'Txn', txnOut(req)));
    } catch (e) {
      return this.enrich(e, req.compare[0]?.key ?? Buffer.from([0]));
    }
  }

  async compact(revision: number, opts: { physical?: boolean } = {}): Promise<CompactResponse> {
    try {
      const r = await this.call('KV', 'Compact', { revision, physical: opts.physical === true });
      return { header: { revision: num((r.header as Wire)?.revision) } };
    } catch (e) {
      return this.enrich(e, Buffer.from([0]));
    }
  }

  watch(key: Buffer, opts: WatchStartOptions = {}): WatchStream {
    if (this.closed) throw new KeelsonError('closed');
    if (!(key instanceof Uint8Array) || key.length === 0) throw new KeelsonError('empty key');
    const start = opts.startRevision ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) throw new KeelsonError('bad request', 'startRevision must be a non-negative integer');
    const w = new RemoteWatch(this, this.client, this.nextWatchId++, key, opts, this.watchQueueResponsesMax);
    this.watches.add(w);
    return w;
  }

  /** @internal Used by RemoteWatch. */
  lastRevision(): number {
    return this.last.revision;
  }

  /** @internal */
  watchEnded(w: RemoteWatch): void {
    this.watches.delete(w);
  }

  /** @internal */
  sawHeader(h: unknown): void {
    this.saw(h);
  }

  async leaseGrant(ttl: number, id = 0): Promise<LeaseGrantResponse> {
    for (let attempt = 0; ; attempt++) {
      const leaseId = id !== 0 ? id : this.leaseIdGen();
      try {
        const r = await this.call('Lease', 'LeaseGrant', { TTL: ttl, ID: leaseId });
        if (typeof r.error === 'string' && r.error !== '') throw fromEtcdError(new Error(r.error));
        return { header: { revision: num((r.header as Wire)?.revision) }, id: num(r.ID), ttl: num(r.TTL) };
      } catch (e) {
        // A generated id that happens to be taken: pick another.
        if (id === 0 && e instanceof KeelsonError && e.code === 'lease exists' && attempt + 1 < leaseIdAttemptsMax) continue;
        throw e;
      }
    }
  }

  async leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    const r = await this.call('Lease', 'LeaseRevoke', { ID: id });
    return { header: { revision: num((r.header as Wire)?.revision) } };
  }

  /**
   * One keep-alive stream serves every leaseKeepAlive() of this client:
   * each call writes the lease id and takes the next answer for that id
   * (answers for one id come in order). A stream that fails fails its
   * waiting calls; the next call opens a new one.
   */
  private keepAliveStream(): Promise<Duplex> {
    if (this.kaStream) return Promise.resolve(this.kaStream);
    this.kaOpening ??= (async () => {
      const s = (await this.client.leaseClient.leaseKeepAlive()) as unknown as Duplex;
      const drop = (e: unknown) => {
        if (this.kaStream !== s) return;
        this.kaStream = null;
        this.failKeepAlives(e);
      };
      s.on('data', (r: never) => { if (this.kaStream === s) this.onKeepAlive(r as Wire); });
      s.on('error', (e: never) => drop(fromEtcdError(e)));
      s.on('end', () => drop(new KeelsonError('timeout', 'keep-alive stream ended')));
      this.kaStream = s;
      return s;
    })().finally(() => { this.kaOpening = null; });
    return this.kaOpening;
  }

  private onKeepAlive(r: Wire): void {
    const key = String(r.ID);
    const list = this.kaWaiters.get(key);
    const w = list?.shift();
    if (list && list.length === 0) this.kaWaiters.delete(key);
    if (!w) return; // its caller timed out
    clearTimeout(w.timer);
    this.kaWaiting--;
    w.resolve(r);
  }

  private failKeepAlives(e: unknown): void {
    const all = [...this.kaWaiters.values()].flat();
    this.kaWaiters.clear();
    this.kaWaiting = 0;
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }

  async leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    if (this.closed) throw new KeelsonError('closed');
    if (this.kaWaiting >= keepAliveWaitingMax) throw new KeelsonError('too many requests', `${this.kaWaiting} keep-alives waiting`);
    let stream: Duplex;
    try {
      stream = await this.keepAliveStream();
    } catch (e) {
      throw fromEtcdError(e);
    }
    const key = String(id);
    const r = await new Promise<Wire>((resolve, reject) => {
      const w: KeepAliveWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const list = this.kaWaiters.get(key);
          const i = list?.indexOf(w) ?? -1;
          if (list && i >= 0) {
            list.splice(i, 1);
            if (list.length === 0) this.kaWaiters.delete(key);
            this.kaWaiting--;
          }
          reject(new KeelsonError('timeout', 'keep-alive not answered'));
        }, this.requestTimeoutMs),
      };
      let list = this.kaWaiters.get(key);
      if (!list) this.kaWaiters.set(key, (list = []));
      list.push(w);
      this.kaWaiting++;
      stream.write({ ID: id });
    });
    this.saw(r.header);
    const ttl = num(r.TTL);
    // etcd answers a keep-alive of a lease it does not hold with TTL 0.
    if (ttl <= 0) throw new KeelsonError('lease not found');
    return { header: { revision: num((r.header as Wire)?.revision) }, id, ttl };
  }

  async leaseTimeToLive(id: number, opts: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    let r: Wire;
    try {
      r = await this.call('Lease', 'LeaseTimeToLive', { ID: id, keys: opts.keys === true });
    } catch (e) {
      if (e instanceof KeelsonError && e.code === 'lease not found') return { header: { revision: this.last.revision }, id, ttl: -1, grantedTtl: 0, keys: [] };
      throw e;
    }
    return {
      header: { revision: num((r.header as Wire)?.revision) },
      id,
      ttl: num(r.TTL),
      grantedTtl: num(r.grantedTTL),
      keys: ((r.keys as unknown[]) ?? []).map(buf),
    };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    const r = await this.call('Lease', 'LeaseLeases', {});
    return { header: { revision: num((r.header as Wire)?.revision) }, leases: ((r.leases as Wire[]) ?? []).map((l) => ({ id: num(l.ID) })) };
  }

  async hashKV(revision = 0): Promise<HashKVResponse> {
    const r = await this.call('Maintenance', 'HashKV', { revision });
    const headerRev = num((r.header as Wire)?.revision);
    return {
      header: { revision: headerRev },
      hash: num(r.hash) >>> 0,
      compactRevision: num(r.compact_revision),
      hashRevision: num(r.hash_revision) || (revision !== 0 ? revision : headerRev),
    };
  }

  async status(): Promise<StatusResponse> {
    const r = await this.call('Maintenance', 'Status', {});
    this.lastLeader = this.memberNum(r.leader);
    const errors: AlarmType[] = [];
    for (const e of (r.errors as string[]) ?? []) {
      if (e.includes('NOSPACE') && !errors.includes('NOSPACE')) errors.push('NOSPACE');
      if (e.includes('CORRUPT') && !errors.includes('CORRUPT')) errors.push('CORRUPT');
    }
    return {
      header: { revision: num((r.header as Wire)?.revision) },
      version: String(r.version ?? ''),
      dbSizeInUse: num(r.dbSizeInUse) || num(r.dbSize),
      leader: this.lastLeader,
      raftIndex: num(r.raftIndex),
      raftTerm: num(r.raftTerm),
      raftAppliedIndex: num(r.raftAppliedIndex) || num(r.raftIndex),
      compactRevision: await this.compactRevision(),
      errors: errors.sort(),
      isLearner: r.isLearner === true,
    };
  }

  /** A wire member id as a number, remembering its exact form. */
  private memberNum(v: unknown): number {
    const n = num(v);
    if (n !== 0) this.memberIds.set(n, String(v));
    return n;
  }

  private memberWire(id: number): string {
    return this.memberIds.get(id) ?? String(id);
  }

  private memberIn(m: Wire): Member {
    return {
      id: this.memberNum(m.ID),
      name: String(m.name ?? ''),
      peerUrls: (m.peerURLs as string[]) ?? [],
      clientUrls: (m.clientURLs as string[]) ?? [],
      isLearner: m.isLearner === true,
    };
  }

  async members(): Promise<MemberListResponse> {
    const r = await this.call('Cluster', 'MemberList', {});
    return { header: { revision: num((r.header as Wire)?.revision) }, members: ((r.members as Wire[]) ?? []).map((m) => this.memberIn(m)) };
  }

  private change(r: Wire): MemberChangeResponse {
    const out: MemberChangeResponse = { header: this.header(), members: ((r.members as Wire[]) ?? []).map((m) => this.memberIn(m)) };
    if (r.member) out.member = this.memberIn(r.member as Wire);
    return out;
  }

  async memberAdd(peerUrls: string[], opts: { isLearner?: boolean } = {}): Promise<MemberChangeResponse> {
    return this.change(await this.call('Cluster', 'MemberAdd', { peerURLs: peerUrls, isLearner: opts.isLearner === true }));
  }

  async memberRemove(id: number): Promise<MemberChangeResponse> {
    return this.change(await this.call('Cluster', 'MemberRemove', { ID: this.memberWire(id) }));
  }

  async memberPromote(id: number): Promise<MemberChangeResponse> {
    return this.change(await this.call('Cluster', 'MemberPromote', { ID: this.memberWire(id) }));
  }

  async memberUpdate(id: number, peerUrls: string[]): Promise<MemberChangeResponse> {
    return this.change(await this.call('Cluster', 'MemberUpdate', { ID: this.memberWire(id), peerURLs: peerUrls }));
  }

  /**
   * Leadership transfer must be asked of the leader itself, so this finds
   * the endpoint whose member leads (a status call on each) and asks there.
   */
  async moveLeader(targetId: number): Promise<{ header: ClusterHeader }> {
    if (this.closed) throw new KeelsonError('closed');
    for (const ep of this.endpoints) {
      const one = new RemoteStore({ endpoints: [ep], requestTimeoutMs: this.requestTimeoutMs });
      try {
        const s = await one.status().catch(() => null);
        if (s === null || s.leader === 0 || s.leader !== one.memberId) continue;
        await one.call('Maintenance', 'MoveLeader', { targetID: this.memberWire(targetId) });
        return { header: one.header() };
      } finally {
        await one.close();
      }
    }
    throw new KeelsonError('not leader', 'no endpoint is the leader');
  }

  async alarm(action: 'get' | 'activate' | 'deactivate', memberId: number, alarm?: AlarmType): Promise<{ header: ClusterHeader; alarms: AlarmMember[] }> {
    const r = await this.call('Maintenance', 'Alarm', {
      action: { get: 0, activate: 1, deactivate: 2 }[action],
      memberID: memberId === 0 ? 0 : this.memberWire(memberId),
      alarm: alarm === 'NOSPACE' ? 1 : alarm === 'CORRUPT' ? 2 : 0,
    });
    const alarms: AlarmMember[] = [];
    for (const a of (r.alarms as Wire[]) ?? []) {
      const t = alarmOf(a.alarm);
      if (t) alarms.push({ memberId: this.memberNum(a.memberID), alarm: t });
    }
    return { header: this.header(), alarms };
  }

  /**
   * The server's snapshot. etcd ends the stream with the SHA-256 of the
   * data; it is checked here and not passed on, so the chunks are the
   * snapshot alone. The Raft index is not on the wire (index 0).
   */
  async snapshot(): Promise<SnapshotStream> {
    if (this.closed) throw new KeelsonError('closed');
    const stream = (await this.client.maintenance.snapshot().catch((e) => { throw fromEtcdError(e); })) as unknown as Duplex;
    // A small queue between the gRPC stream and the reader; the stream is
    // paused while it is full.
    const queue: Wire[] = [];
    let waiter: (() => void) | null = null;
    let failure: unknown = null;
    let done = false;
    const wake = () => {
      const w = waiter;
      waiter = null;
      w?.();
    };
    stream.on('data', (m: never) => {
      queue.push(m as Wire);
      if (queue.length >= 4) stream.pause?.();
      wake();
    });
    stream.on('error', (e: never) => {
      failure = fromEtcdError(e);
      wake();
    });
    stream.on('end', () => {
      done = true;
      wake();
    });
    const take = async (): Promise<Wire | null> => {
      for (;;) {
        const m = queue.shift();
        if (m !== undefined) {
          if (queue.length < 2) stream.resume?.();
          return m;
        }
        if (failure) throw failure;
        if (done) return null;
        await new Promise<void>((r) => { waiter = r; });
      }
    };
    const first = await take();
    if (first === null) throw new KeelsonError('bad request', 'empty snapshot stream');
    this.saw(first.header);
    const firstBlob = buf(first.blob);
    const sizeBytes = num(first.remaining_bytes) + firstBlob.length;
    const revision = num((first.header as Wire)?.revision);
    async function* chunks(): AsyncIterable<Buffer> {
      const sha = createHash('sha256');
      let got = 0;
      let m: Wire | null = first;
      while (m !== null && got < sizeBytes) {
        const b = buf(m.blob);
        const data = b.subarray(0, sizeBytes - got);
        sha.update(data);
        got += data.length;
        if (data.length > 0) yield data;
        if (got < sizeBytes) m = await take();
      }
      if (got !== sizeBytes) throw new KeelsonError('bad request', `snapshot stream ended after ${got} of ${sizeBytes} bytes`);
      const trailer = await take();
      if (trailer !== null && !buf(trailer.blob).equals(sha.digest())) throw new KeelsonError('bad request', 'snapshot checksum mismatch');
    }
    return { revision, index: 0, sizeBytes, chunks: chunks() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.cancel();
    const ka = this.kaStream;
    this.kaStream = null;
    ka?.end();
    this.failKeepAlives(new KeelsonError('closed'));
    this.client.close();
  }
}

/** One Store watch over one gRPC watch stream (see the overview). */
class RemoteWatch implements WatchStream {
  readonly id: number;
  private readonly store: RemoteStore;
  private readonly client: Etcd3;
  private readonly key: Buffer;
  private readonly opts: WatchStartOptions;
  private readonly queueMax: number;
  private readonly queue: WatchResponse[] = [];
  private waiter: ((r: WatchResponse | null) => void) | null = null;
  private stream: Duplex | null = null;
  private pendingWrites: Wire[] = [];
  private paused = false;
  private done = false;
  /** True when the start revision was implied (0 asked): a compacted cancel then just restarts "now". */
  private implied: boolean;

  constructor(store: RemoteStore, client: Etcd3, id: number, key: Buffer, opts: WatchStartOptions, queueMax: number) {
    this.store = store;
    this.client = client;
    this.id = id;
    this.key = key;
    this.opts = opts;
    this.queueMax = queueMax;
    const asked = opts.startRevision ?? 0;
    // "From now" is from the revision after the newest one this client has
    // seen, even when that is 0 (an empty store): the server's own "now" is
    // when the watch request gets there, which a put sent meanwhile on
    // another call may already have passed.
    this.implied = asked === 0;
    void this.open(asked === 0 ? store.lastRevision() + 1 : asked);
  }

  private async open(startRevision: number): Promise<void> {
    let stream: Duplex;
    try {
      stream = (await this.client.watchClient.watch()) as unknown as Duplex;
    } catch (e) {
      this.fail(fromEtcdError(e));
      return;
    }
    if (this.done) {
      stream.end();
      return;
    }
    this.stream = stream;
    // Events of a stream this watch has let go of (a restart) are ignored.
    stream.on('data', (r: never) => { if (this.stream === stream) this.onData(r as Wire); });
    stream.on('error', (e: never) => { if (this.stream === stream) this.fail(fromEtcdError(e)); });
    stream.on('end', () => { if (this.stream === stream) this.fail(new KeelsonError('watch canceled', 'stream ended by the server')); });
    const filters: number[] = [];
    if (this.opts.noPut) filters.push(0);
    if (this.opts.noDelete) filters.push(1);
    stream.write({
      create_request: withEnd({
        key: this.key,
        start_revision: startRevision,
        progress_notify: this.opts.progressNotify === true,
        filters,
        prev_kv: this.opts.prevKv === true,
      }, this.opts.rangeEnd),
    });
    for (const w of this.pendingWrites) stream.write(w);
    this.pendingWrites = [];
  }

  private onData(r: Wire): void {
    if (this.done) return;
    this.store.sawHeader(r.header);
    const events = ((r.events as Wire[]) ?? []).map(eventIn);
    const compact = num(r.compact_revision);
    const canceled = r.canceled === true;
    if (r.created === true && !canceled) return; // the watch exists now; nothing to report
    if (canceled && compact > 0 && this.implied) {
      // The revision right after what this client saw is gone already:
      // "from now" is what was asked, so start again from the server's now.
      this.implied = false;
      this.stream?.end();
      this.stream = null;
      void this.open(0);
      return;
    }
    const out: WatchResponse = { watchId: this.id, header: { revision: num((r.header as Wire)?.revision) }, events };
    if (canceled) {
      out.canceled = true;
      out.cancelReason = String(r.cancel_reason ?? '') || (compact > 0 ? new KeelsonError('compacted').message : 'canceled');
      if (compact > 0) out.compactRevision = compact;
    } else if (events.length === 0) out.progressNotify = true;
    this.push(out);
    if (canceled) this.finish();
  }

  private push(r: WatchResponse): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(r);
      return;
    }
    this.queue.push(r);
    if (this.queue.length >= this.queueMax && !this.paused) {
      this.paused = true;
      this.stream?.pause?.();
    }
  }

  private fail(e: unknown): void {
    if (this.done) return;
    this.push({ watchId: this.id, header: { revision: this.store.lastRevision() }, events: [], canceled: true, cancelReason: e instanceof Error ? e.message : String(e) });
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const s = this.stream;
    this.stream = null;
    s?.end();
    this.store.watchEnded(this);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(null);
    }
  }

  next(): Promise<WatchResponse | null> {
    const r = this.queue.shift();
    if (r !== undefined) {
      if (this.paused && this.queue.length < this.queueMax / 2) {
        this.paused = false;
        this.stream?.resume?.();
      }
      return Promise.resolve(r);
    }
    if (this.done) return Promise.resolve(null);
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  cancel(): void {
    this.finish();
  }

  requestProgress(): void {
    if (this.done) return;
    const req = { progress_request: {} };
    if (this.stream) this.stream.write(req);
    else this.pendingWrites.push(req);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    for (;;) {
      const r = await this.next();
      if (r === null) return;
      yield r;
    }
  }
}
