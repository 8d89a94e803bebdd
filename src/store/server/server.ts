// The etcd v3 gRPC API over any ClusterStore.
//
// Overview
// - One grpc-js server exposes the KV, Watch, Lease, Cluster and Maintenance
//   services of package etcdserverpb (protos in ./proto, written for
//   Keelson) plus grpc.health.v1. Each handler converts the wire request to
//   the Store's shapes (./codec.ts), calls the store, and converts back.
//   Every response carries etcd's ResponseHeader: the store's cluster id,
//   member id and Raft term, and the revision the operation produced or saw.
// - Failures go through one mapping (./errors.ts) to etcd's gRPC codes and
//   exact messages, so clients retry, fail over or give up as with etcd.
// - Consistency and forwarding are the store's job: the server hands
//   `serializable` to range() and lets a follower's store forward writes or
//   refuse them with "etcdserver: not leader".
// - Watch: one bidirectional stream carries many watches, each with a
//   per-stream id (etcd numbers them from 0). A watch gets a `created`
//   response first, then its events, one response per store response (the
//   store keeps the events of one revision together), and ends with a
//   `canceled` response (on request, or with compact_revision when its history
//   is gone). The responses of one event-loop run on one stream (an event
//   fanned out to all its watches) leave in one framed write
//   (./framed-writes.ts). Backpressure: each watch's pump waits for grpc-js
//   to drain the stream before it takes the next response from the store, so an
//   unread stream holds at most grpc-js's high-water mark of messages plus
//   one response per watch; behind that, the store's watch buffer is
//   bounded and falls back to catching up from disk. No watch ever makes a
//   writer wait.
// - Clients that send `hasleader: true` metadata (clientv3's
//   WithRequireLeader) are refused, and their streams ended, with
//   "etcdserver: no leader" while the member knows no leader.
// - Lease keep-alives on one stream are answered in order; reading pauses
//   while keepAliveQueueRequestsMax requests wait.
// - Snapshot streams the store's snapshot in chunks, padded and framed as
//   ./snapshot-file.ts describes, and, as etcd does, ends with one extra
//   message holding the SHA-256 of everything before it (etcdctl checks the
//   size it implies on save, and the hash on restore).
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { ClusterStore } from '../cluster.ts';
import { KeelsonError } from '../errors.ts';
import { limits } from '../mvcc/requests.ts';
import type { Member, WatchStream } from '../store.ts';
import {
  bytes, deleteIn, eventOut, int64, int64Checked, kvOut, NO_SUCH_LEASE, putIn, rangeIn, responseOpOut, serviceOf, txnIn,
  type HeaderOut, type Wire,
} from './codec.ts';
import { EtcdApiError, toGrpcError } from './errors.ts';
import { snapshotPadding } from './snapshot-file.ts';
import { frameMessages, framedWritesAvailable, PreFramed } from './framed-writes.ts';
import { encodeWatchEvents } from './watch-encode.ts';
import { UnaryFastPath } from './unary-fast.ts';

export interface EtcdServerOptions {
  store: ClusterStore;
  /** Watches open at once on one stream; creates beyond it are refused. Default 10,000. */
  streamWatchesMax?: number;
  /** Keep-alive requests of one stream waiting for their answer before reading pauses. Default 1,000. */
  keepAliveQueueRequestsMax?: number;
  /** Largest request message accepted, in bytes. Default: the store's request limit plus 512 KiB (as etcd). */
  requestMessageBytesMax?: number;
  /** How long close() lets calls finish before cutting them. Default 2,000 ms. */
  closeGraceMs?: number;
  /**
   * How often streams that require a leader are checked, in ms: a stream
   * whose client sent `hasleader: true` (clientv3's WithRequireLeader, which
   * Kubernetes uses for watches) ends with "etcdserver: no leader" once two
   * checks in a row saw no leader. 0 = no checks. Default 1,000.
   */
  leaderCheckMs?: number;
  /**
   * Serve the unary methods straight from the HTTP/2 streams
   * (unary-fast.ts) instead of through grpc-js's call machinery. Same
   * answers, less CPU per call. Default true; false is for side-by-side
   * tests and benchmarks.
   */
  unaryFastPath?: boolean;
}

/** True when the client asked to be told as soon as the cluster has no leader. */
function requiresLeader(call: { metadata: grpc.Metadata }): boolean {
  return call.metadata.get('hasleader').some((v) => String(v) === 'true');
}

/** requiresLeader() for a call's raw HTTP/2 headers (the unary fast path). */
function headersRequireLeader(headers: NodeJS.Dict<string | string[]>): boolean {
  const v = headers.hasleader;
  return Array.isArray(v) ? v.includes('true') : v === 'true';
}

/** The function a handler made by EtcdServer.unary() serves, for the fast path. */
const unaryFn = Symbol('keelson.unaryFn');
type UnaryFn = (req: Wire) => Promise<Wire>;

const noLeader = () => new EtcdApiError(grpc.status.UNAVAILABLE, 'etcdserver: no leader');

/** PEM material for serving over TLS. */
export interface EtcdServerTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA bundle that client certificates must chain to. */
  ca?: string | Buffer;
  /** Require and verify a client certificate (etcd's --client-cert-auth). */
  clientCertAuth?: boolean;
}

type ServiceErrorLike = Error & { code: grpc.status; details: string };

function serviceError(e: unknown): ServiceErrorLike {
  const g = toGrpcError(e);
  return Object.assign(new Error(g.details), { code: g.code, details: g.details });
}

function memberOut(m: Member): Wire {
  return { ID: m.id, name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

const alarmNames = ['NONE', 'NOSPACE', 'CORRUPT'] as const;

/** Resolves when the stream can take more, or once it is gone (so no writer hangs on a dead call). */
function drained(call: NodeJS.EventEmitter & { writableNeedDrain?: boolean; destroyed?: boolean }): Promise<void> {
  if (call.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('close', done);
      call.off('error', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('close', done);
    call.on('error', done);
    call.on('cancelled', done);
  });
}

export class EtcdServer {
  readonly store: ClusterStore;
  private readonly server: grpc.Server;
  private readonly streamWatchesMax: number;
  private readonly keepAliveQueueRequestsMax: number;
  private readonly closeGraceMs: number;
  /** Ends each open stream (watch, keep-alive, snapshot) at close. */
  private readonly streams = new Set<() => void>();
  /** Fails each open stream that requires a leader (see leaderCheckMs). */
  private readonly leaderStreams = new Set<(e: Error) => void>();
  private leaderTimer: NodeJS.Timeout | null = null;
  private leaderlessChecks = 0;
  private closed = false;
  /** Unary calls served without grpc-js's call machinery; null when turned off. */
  readonly unaryFast: UnaryFastPath | null;

  constructor(opts: EtcdServerOptions) {
    this.store = opts.store;
    this.streamWatchesMax = opts.streamWatchesMax ?? 10_000;
    this.keepAliveQueueRequestsMax = opts.keepAliveQueueRequestsMax ?? 1000;
    this.closeGraceMs = opts.closeGraceMs ?? 2000;
    const leaderCheckMs = opts.leaderCheckMs ?? 1000;
    if (leaderCheckMs > 0) this.leaderTimer = setInterval(() => this.checkLeader(), leaderCheckMs).unref();
    const requestMessageBytesMax = opts.requestMessageBytesMax ?? limits.requestBytesMax + 512 * 1024;
    this.unaryFast = opts.unaryFastPath === false ? null : new UnaryFastPath({ requestMessageBytesMax, statusOf: toGrpcError });
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': requestMessageBytesMax,
      'grpc.max_send_message_length': -1,
      // Channelz keeps per-call counters and listeners on every stream for a
      // debugging service Keelson does not serve: pure per-request overhead.
      'grpc.enable_channelz': 0,
    });
    this.addService(serviceOf('etcdserverpb', 'KV'), {
      Range: this.unary((r) => this.range(r)),
      Put: this.unary((r) => this.put(r)),
      DeleteRange: this.unary((r) => this.deleteRange(r)),
      Txn: this.unary((r) => this.txn(r)),
      Compact: this.unary((r) => this.compact(r)),
    });
    this.addService(rawWatchResponses(serviceOf('etcdserverpb', 'Watch')), {
      Watch: (call: grpc.ServerDuplexStream<Wire, Wire>) => this.watch(call),
    });
    this.addService(serviceOf('etcdserverpb', 'Lease'), {
      LeaseGrant: this.unary((r) => this.leaseGrant(r)),
      LeaseRevoke: this.unary((r) => this.leaseRevoke(r)),
      LeaseKeepAlive: (call: grpc.ServerDuplexStream<Wire, Wire>) => this.leaseKeepAlive(call),
      LeaseTimeToLive: this.unary((r) => this.leaseTimeToLive(r)),
      LeaseLeases: this.unary(async () => {
        const l = await this.store.leaseLeases();
        return { header: this.header(l.header.revision), leases: l.leases.map((x) => ({ ID: x.id })) };
      }),
    });
    this.addService(serviceOf('etcdserverpb', 'Cluster'), {
      MemberAdd: this.unary(async (r) => {
        const res = await this.store.memberAdd(r.peerURLs as string[], { isLearner: r.isLearner === true });
        return { header: this.header(), member: res.member ? memberOut(res.member) : null, members: res.members.map(memberOut) };
      }),
      MemberRemove: this.unary(async (r) => this.members(await this.store.memberRemove(this.memberId(r.ID)))),
      MemberUpdate: this.unary(async (r) => this.members(await this.store.memberUpdate(this.memberId(r.ID), r.peerURLs as string[]))),
      MemberPromote: this.unary(async (r) => this.members(await this.store.memberPromote(this.memberId(r.ID)))),
      MemberList: this.unary(async () => this.members(await this.store.members())),
    });
    this.addService(serviceOf('etcdserverpb', 'Maintenance'), {
      Alarm: this.unary((r) => this.alarm(r)),
      Status: this.unary(() => this.status()),
      // lmdb reuses freed pages in place, so there is no fragmentation to
      // undo: Defragment succeeds and does nothing (docs/etcd-api.md).
      Defragment: this.unary(async () => ({ header: this.header() })),
      Hash: this.unary(async () => {
        const h = await this.store.hashKV(0);
        return { header: this.header(h.header.revision), hash: h.hash };
      }),
      HashKV: this.unary(async (r) => {
        const h = await this.store.hashKV(int64Checked(r.revision, 'revision'));
        return { header: this.header(h.header.revision), hash: h.hash, compact_revision: h.compactRevision, hash_revision: h.hashRevision };
      }),
      Snapshot: (call: grpc.ServerWritableStream<Wire, Wire>) => void this.snapshot(call),
      MoveLeader: this.unary(async (r) => {
        await this.store.moveLeader(this.memberId(r.targetID));
        return { header: this.header() };
      }),
    });
    this.addService(serviceOf('grpc.health.v1', 'Health'), {
      Check: (_call: grpc.ServerUnaryCall<Wire, Wire>, cb: grpc.sendUnaryData<Wire>) => cb(null, { status: this.closed ? 2 : 1 }),
      Watch: (call: grpc.ServerWritableStream<Wire, Wire>) => {
        call.write({ status: this.closed ? 2 : 1 });
        call.end();
      },
    });
  }

  /**
   * Listens on host:port (port 0 = a free one) and resolves with the bound
   * port. Plain HTTP/2 unless `tls` is given (etcd's --cert-file,
   * --key-file, --trusted-ca-file, --client-cert-auth).
   */
  listen(host = '127.0.0.1', port = 0, opts: { tls?: EtcdServerTls } = {}): Promise<number> {
    const creds = opts.tls
      ? grpc.ServerCredentials.createSsl(
        opts.tls.ca !== undefined ? Buffer.from(opts.tls.ca) : null,
        [{ private_key: Buffer.from(opts.tls.key), cert_chain: Buffer.from(opts.tls.cert) }],
        opts.tls.clientCertAuth === true,
      )
      : grpc.ServerCredentials.createInsecure();
    if (opts.tls?.clientCertAuth && opts.tls.ca === undefined) return Promise.reject(new Error('clientCertAuth needs the CA that signs client certificates (ca)'));
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, creds, (err, bound) => {
        if (err) reject(err);
        else {
          this.unaryFast?.install(this.server);
          resolve(bound);
        }
      });
    });
  }

  /** Ends every stream, lets unary calls finish for closeGraceMs, then cuts the rest. Does not close the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.leaderTimer) clearInterval(this.leaderTimer);
    for (const end of [...this.streams]) end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, this.closeGraceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private header(revision?: number): HeaderOut {
    const h = this.store.header();
    return { cluster_id: h.clusterId, member_id: h.memberId, revision: revision ?? h.revision, raft_term: h.raftTerm };
  }

  private checkLeader(): void {
    if (this.store.leaderId() !== 0) {
      this.leaderlessChecks = 0;
      return;
    }
    // Two checks in a row, so that a leader change in progress is not an outage.
    if (++this.leaderlessChecks < 2) return;
    for (const fail of [...this.leaderStreams]) fail(noLeader());
  }

  /**
   * For a stream whose client requires a leader: refuses it at once when
   * there is none, else registers it to be failed when the leader is lost.
   * Returns false when refused.
   */
  private leaderGuard(call: grpc.ServerDuplexStream<Wire, Wire>, fail: (e: Error) => void): (() => void) | false {
    if (!requiresLeader(call)) return () => {};
    if (this.store.leaderId() === 0) {
      fail(noLeader());
      return false;
    }
    this.leaderStreams.add(fail);
    return () => this.leaderStreams.delete(fail);
  }

  /** Adds a service to grpc-js, and its unary() methods to the fast path. */
  private addService(def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
    this.server.addService(def, impl);
    if (this.unaryFast === null) return;
    for (const [name, handler] of Object.entries(impl)) {
      const fn = (handler as { [unaryFn]?: UnaryFn })[unaryFn];
      if (fn === undefined) continue;
      this.unaryFast.add(def[name] as grpc.MethodDefinition<unknown, unknown>, (req, headers) => this.callUnary(fn, headersRequireLeader(headers), req as Wire));
    }
  }

  /** Runs a unary method for either path; a call that asked for a leader fails at once without one. */
  private callUnary(fn: UnaryFn, leaderRequired: boolean, req: Wire): Promise<Wire> {
    if (leaderRequired && this.store.leaderId() === 0) throw noLeader();
    return fn(req);
  }

  private unary(fn: UnaryFn): grpc.handleUnaryCall<Wire, Wire> {
    const handler: grpc.handleUnaryCall<Wire, Wire> & { [unaryFn]?: UnaryFn } = (call, cb) => {
      let p: Promise<Wire>;
      try {
        p = this.callUnary(fn, requiresLeader(call), call.request);
      } catch (e) {
        cb(serviceError(e));
        return;
      }
      p.then((r) => cb(null, r), (e) => cb(serviceError(e)));
    };
    handler[unaryFn] = fn;
    return handler;
  }

  private memberId(v: unknown): number {
    const id = int64(v);
    if (id === null || id <= 0) throw new KeelsonError('bad request', `member id ${String(v)} is not a Keelson member id`);
    return id;
  }

  private members(res: { members: Member[] }): Wire {
    return { header: this.header(), members: res.members.map(memberOut) };
  }

  // ---------------------------------------------------------------- KV

  private async range(r: Wire): Promise<Wire> {
    const req = rangeIn(r);
    const res = await this.store.range(req.key, req);
    return { header: this.header(res.header.revision), kvs: res.kvs.map(kvOut), more: res.more, count: res.count };
  }

  private async put(r: Wire): Promise<Wire> {
    const p = putIn(r);
    const res = await this.store.put(p.key, p.value, { lease: p.lease, prevKv: p.prevKv, ignoreValue: p.ignoreValue, ignoreLease: p.ignoreLease });
    return { header: this.header(res.header.revision), prev_kv: res.prevKv ? kvOut(res.prevKv) : null };
  }

  private async deleteRange(r: Wire): Promise<Wire> {
    const d = deleteIn(r);
    const res = await this.store.deleteRange(d.key, { rangeEnd: d.rangeEnd, prevKv: d.prevKv });
    return { header: this.header(res.header.revision), deleted: res.deleted, prev_kvs: res.prevKvs.map(kvOut) };
  }

  private async txn(r: Wire): Promise<Wire> {
    const res = await this.store.txn(txnIn(r));
    return { header: this.header(res.header.revision), succeeded: res.succeeded, responses: res.responses.map(responseOpOut) };
  }

  private async compact(r: Wire): Promise<Wire> {
    const res = await this.store.compact(int64Checked(r.revision, 'revision'), { physical: r.physical === true });
    return { header: this.header(res.header.revision) };
  }

  // ---------------------------------------------------------------- Watch

  private watch(call: grpc.ServerDuplexStream<Wire, Wire>): void {
    const watches = new Map<number, WatchStream>();
    let nextId = 0;
    let ended = false;
    // The responses sent in one synchronous run (typically one event fanned
    // out to every watch on this stream) are framed into one write
    // (framed-writes.ts); every sender's promise settles when that write is
    // taken, or, when grpc-js asks for it, once the stream has drained.
    let outbox: Buffer[] = [];
    let outboxBytes = 0;
    let outboxSent: Promise<void> | null = null;
    let outboxRelease: () => void = () => {};
    const flushOutbox = () => {
      if (outbox.length === 0) return;
      const bodies = outbox;
      const release = outboxRelease;
      outbox = [];
      outboxBytes = 0;
      outboxSent = null;
      if (call.writableEnded || call.destroyed) return release();
      if (call.write(new PreFramed(frameMessages(bodies)) as unknown as Wire)) release();
      else void drained(call).then(release);
    };
    /** A response object, or an events response already encoded (watch-encode.ts). */
    const send = async (msg: Wire | Buffer): Promise<void> => {
      if (ended) return;
      if (!framedWritesAvailable) {
        if (!call.write(msg as Wire)) await drained(call);
        return;
      }
      const body = Buffer.isBuffer(msg) ? msg : serializeWatchResponse(msg);
      outbox.push(body);
      outboxBytes += body.length;
      if (outboxSent === null) {
        outboxSent = new Promise<void>((r) => { outboxRelease = r; });
        queueMicrotask(flushOutbox);
      }
      const sent = outboxSent;
      if (outboxBytes >= watchWriteBytesMax) flushOutbox();
      await sent;
    };
    let unguard = () => {};
    const stop = () => {
      ended = true;
      this.streams.delete(end);
      unguard();
      for (const w of watches.values()) w.cancel();
      watches.clear();
    };
    const end = () => {
      if (ended) return;
      stop();
      flushOutbox();
      call.end();
    };
    const fail = (e: Error) => {
      if (ended) return;
      stop();
      call.emit('error', serviceError(e));
    };
    const guard = this.leaderGuard(call, fail);
    if (guard === false) return;
    unguard = guard;
    this.streams.add(end);

    const pump = async (id: number, w: WatchStream): Promise<void> => {
      for (;;) {
        const r = await w.next();
        if (r === null) {
          // Canceled by the client (or the stream ended): confirm it as etcd does.
          if (!ended) await send({ header: this.header(), watch_id: id, canceled: true });
          break;
        }
        if (r.events.length > 0 && r.canceled !== true && !r.compactRevision) {
          await send(encodeWatchEvents(this.header(r.header.revision), id, r.events));
          continue;
        }
        await send({
          header: this.header(r.header.revision),
          watch_id: id,
          events: r.events.map(eventOut),
          canceled: r.canceled === true,
          compact_revision: r.compactRevision ?? 0,
          // etcd says "compacted" by compact_revision alone, with no reason text.
          cancel_reason: r.compactRevision ? '' : r.cancelReason ?? '',
        });
        if (r.canceled) break; // the store removed the watch (compacted history)
      }
      if (watches.get(id) === w) watches.delete(id);
    };

    const create = (c: Wire) => {
      let id = int64(c.watch_id) ?? -1;
      const refuse = (reason: string) => void send({ header: this.header(), watch_id: id, created: true, canceled: true, cancel_reason: reason });
      if (watches.size >= this.streamWatchesMax) return refuse(`etcdserver: too many watches on one stream (streamWatchesMax ${this.streamWatchesMax})`);
      if (id < 0) return refuse('etcdserver: bad watch id');
      if (id === 0) {
        while (watches.has(nextId)) nextId++;
        id = nextId++;
      } else if (watches.has(id)) return refuse('mvcc: watcher ID already exists');
      const filters = (c.filters as number[] | undefined) ?? [];
      const rangeEnd = bytes(c.range_end);
      let w: WatchStream;
      try {
        const start = int64Checked(c.start_revision, 'start_revision');
        w = this.store.watch(bytes(c.key), {
          rangeEnd: rangeEnd.length === 0 ? undefined : rangeEnd,
          startRevision: start < 0 ? 0 : start,
          prevKv: c.prev_kv === true,
          noPut: filters.includes(0),
          noDelete: filters.includes(1),
          progressNotify: c.progress_notify === true,
        });
      } catch (e) {
        return refuse(toGrpcError(e).details);
      }
      watches.set(id, w);
      // Written before the pump starts, so `created` precedes the watch's events.
      void send({ header: this.header(), watch_id: id, created: true });
      void pump(id, w).catch(() => w.cancel());
    };

    call.on('data', (req: Wire) => {
      if (ended) return;
      switch (req.request_union) {
        case 'create_request':
          create(req.create_request as Wire);
          break;
        case 'cancel_request': {
          const id = int64((req.cancel_request as Wire).watch_id);
          const w = id === null ? undefined : watches.get(id);
          if (w) w.cancel(); // the pump confirms with a canceled response
          break;
        }
        case 'progress_request':
          if (watches.size === 0) void send({ header: this.header(), watch_id: -1 });
          for (const w of watches.values()) w.requestProgress();
          break;
        default:
          break;
      }
    });
    call.on('end', end);
    call.on('error', end);
    call.on('cancelled', end);
  }

  // ---------------------------------------------------------------- Lease

  private async leaseGrant(r: Wire): Promise<Wire> {
    const ttl = int64Checked(r.TTL, 'TTL');
    const id = int64(r.ID);
    if (id === null || id < 0 || id === NO_SUCH_LEASE) throw new KeelsonError('bad request', `lease id ${String(r.ID)} is outside 1..2^53-2`);
    const res = await this.store.leaseGrant(ttl, id);
    return { header: this.header(res.header.revision), ID: res.id, TTL: res.ttl, error: '' };
  }

  /** A wire lease id as a Keelson one; ids no Keelson lease can have are not found. */
  private leaseId(v: unknown): number {
    const id = int64(v);
    if (id === null || id <= 0 || id === NO_SUCH_LEASE) throw new KeelsonError('lease not found');
    return id;
  }

  private async leaseRevoke(r: Wire): Promise<Wire> {
    const res = await this.store.leaseRevoke(this.leaseId(r.ID));
    return { header: this.header(res.header.revision) };
  }

  private async leaseTimeToLive(r: Wire): Promise<Wire> {
    let id: number;
    try {
      id = this.leaseId(r.ID);
    } catch {
      return { header: this.header(), ID: r.ID, TTL: -1, grantedTTL: 0, keys: [] };
    }
    const t = await this.store.leaseTimeToLive(id, { keys: r.keys === true });
    return { header: this.header(t.header.revision), ID: t.id, TTL: t.ttl, grantedTTL: t.grantedTtl, keys: t.keys };
  }

  private leaseKeepAlive(call: grpc.ServerDuplexStream<Wire, Wire>): void {
    let ended = false;
    let waiting = 0;
    let chain: Promise<void> = Promise.resolve();
    let unguard = () => {};
    const end = () => {
      if (ended) return;
      ended = true;
      this.streams.delete(end);
      unguard();
      call.end();
    };
    const fail = (e: Error) => {
      if (ended) return;
      ended = true;
      this.streams.delete(end);
      unguard();
      call.emit('error', serviceError(e));
    };
    const guard = this.leaderGuard(call, fail);
    if (guard === false) return;
    unguard = guard;
    this.streams.add(end);
    const answer = async (req: Wire): Promise<void> => {
      if (ended) return;
      let ttl = 0;
      let revision: number | undefined;
      try {
        const res = await this.store.leaseKeepAlive(this.leaseId(req.ID));
        ttl = res.ttl;
        revision = res.header.revision;
      } catch (e) {
        // etcd answers a keep-alive of a missing lease with TTL 0, not an error.
        if (!(e instanceof KeelsonError && e.code === 'lease not found')) {
          fail(e as Error);
          return;
        }
      }
      if (ended) return;
      if (!call.write({ header: this.header(revision), ID: req.ID, TTL: ttl })) await drained(call);
    };
    call.on('data', (req: Wire) => {
      if (ended) return;
      waiting++;
      if (waiting >= this.keepAliveQueueRequestsMax) call.pause();
      chain = chain.then(() => answer(req)).finally(() => {
        waiting--;
        if (waiting < this.keepAliveQueueRequestsMax && call.isPaused()) call.resume();
      });
    });
    call.on('end', () => void chain.then(end));
    call.on('error', end);
    call.on('cancelled', end);
  }

  // ---------------------------------------------------------------- Maintenance

  private async alarm(r: Wire): Promise<Wire> {
    const action = (['get', 'activate', 'deactivate'] as const)[Number(r.action ?? 0)];
    if (action === undefined) throw new KeelsonError('bad request', 'unknown alarm action');
    const type = Number(r.alarm ?? 0);
    const alarm = type === 1 ? 'NOSPACE' : type === 2 ? 'CORRUPT' : undefined;
    if (action !== 'get' && alarm === undefined) throw new KeelsonError('bad request', 'alarm type must be NOSPACE or CORRUPT');
    const memberId = int64(r.memberID);
    if (memberId === null) throw new KeelsonError('bad request', 'member id out of range');
    const res = await this.store.alarm(action, memberId, alarm);
    return { header: this.header(), alarms: res.alarms.map((a) => ({ memberID: a.memberId, alarm: alarmNames.indexOf(a.alarm) })) };
  }

  private async status(): Promise<Wire> {
    const s = await this.store.status();
    return {
      header: this.header(s.header.revision),
      version: s.version,
      dbSize: s.dbSizeInUse,
      leader: s.leader,
      raftIndex: s.raftIndex,
      raftTerm: s.raftTerm,
      raftAppliedIndex: s.raftAppliedIndex,
      // etcd's text form of an AlarmMember, which etcdctl prints as it is.
      errors: s.errors.map((a) => `memberID:${this.store.memberId} alarm:${a} `),
      dbSizeInUse: s.dbSizeInUse,
      isLearner: s.isLearner,
    };
  }

  private async snapshot(call: grpc.ServerWritableStream<Wire, Wire>): Promise<void> {
    let ended = false;
    const end = () => {
      ended = true;
      this.streams.delete(end);
    };
    this.streams.add(end);
    call.on('cancelled', end);
    call.on('error', end);
    try {
      const snap = await this.store.snapshot();
      const padding = snapshotPadding(snap.sizeBytes);
      const total = snap.sizeBytes + padding.length;
      const sha = createHash('sha256');
      let sent = 0;
      const write = async (blob: Buffer) => {
        sha.update(blob);
        sent += blob.length;
        if (!call.write({ header: this.header(snap.revision), remaining_bytes: total - sent, blob })) await drained(call);
      };
      for await (const chunk of snap.chunks) {
        if (ended) return;
        await write(chunk);
      }
      if (sent !== snap.sizeBytes) throw new Error(`snapshot stream gave ${sent} bytes, announced ${snap.sizeBytes}`);
      if (ended) return;
      await write(padding);
      if (ended) return;
      call.write({ header: this.header(snap.revision), remaining_bytes: 0, blob: sha.digest() });
      end();
      call.end();
    } catch (e) {
      if (ended) return;
      end();
      call.emit('error', serviceError(e));
    }
  }
}

/** Bytes a framed watch write gathers before it is written without waiting for the end of the run. */
const watchWriteBytesMax = 1024 * 1024;

/** The generic WatchResponse serializer, for the responses that are not pre-encoded (created, canceled, progress). */
function serializeWatchResponse(v: Wire): Buffer {
  return serviceOf('etcdserverpb', 'Watch').Watch!.responseSerialize(v);
}

/**
 * The Watch service with a response serializer that passes an already
 * encoded WatchResponse (a Buffer from encodeWatchEvents) through as it is.
 */
function rawWatchResponses(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const m = def.Watch!;
  const serialize = m.responseSerialize;
  return { ...def, Watch: { ...m, responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : serialize(v)) } };
}
