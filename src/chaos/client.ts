// A small etcd v3 API client for the harness, one per endpoint. It is not the
// project's remote Store: the harness needs every call's raw outcome (which
// gRPC status, after how long), a hard deadline per call, and watch responses
// exactly as they arrived (one response = one batch of events), so it speaks
// the wire API directly through grpc-js.
//
// Outcome rule: an error that proves the request was refused before it could
// take effect (INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE,
// NOT_FOUND, or UNAVAILABLE with no connection ever established) is
// 'failed'; every other error, a deadline above all, is 'unknown': the
// request may have been committed anyway.
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The etcd v3 API definitions the store server serves (src/store/server/proto);
// loaded here with the harness's own options (longs and enums as strings).
const protoDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'store', 'server', 'proto');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
let pkg: Any;
function services(): Any {
  if (!pkg) {
    const def = protoLoader.loadSync(['rpc.proto', 'kv.proto'], { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir] });
    pkg = (grpc.loadPackageDefinition(def) as Any).etcdserverpb;
  }
  return pkg;
}

export class CallError extends Error {
  constructor(message: string, readonly code: number | undefined, readonly definite: boolean) {
    super(message);
  }
}

const definiteCodes = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION, grpc.status.OUT_OF_RANGE, grpc.status.NOT_FOUND]);

function wrap(e: Any): CallError {
  const code: number | undefined = typeof e?.code === 'number' ? e.code : undefined;
  const details = String(e?.details || e?.message || e);
  // UNAVAILABLE before any connection existed: the request never left this process.
  const neverSent = code === grpc.status.UNAVAILABLE && details.startsWith('No connection established');
  return new CallError(details, code, neverSent || (code !== undefined && definiteCodes.has(code)));
}

export interface RawKv { key: Buffer; value: Buffer; create_revision: string; mod_revision: string; version: string; lease: string }
export interface RawEvent { type: 'PUT' | 'DELETE'; kv: RawKv; prev_kv: RawKv | null }
export interface RawWatchResponse {
  header: { revision: string; member_id: string } | null;
  watch_id: string; created: boolean; canceled: boolean; compact_revision: string; cancel_reason: string; fragment: boolean;
  events: RawEvent[];
}

export interface WatchHandle {
  cancel(): void;
}

export class EndpointClient {
  private readonly kv: Any;
  private readonly watchSvc: Any;
  private readonly leaseSvc: Any;
  private readonly cluster: Any;
  private readonly maint: Any;
  private readonly channelOptions = {
    // Reconnect fast: members die and come back within seconds in a run.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
  };

  constructor(readonly endpoint: string) {
    const s = services();
    const creds = grpc.credentials.createInsecure();
    const target = endpoint.replace(/^https?:\/\//, '');
    this.kv = new s.KV(target, creds, this.channelOptions);
    const channel = this.kv.getChannel();
    const opts = { ...this.channelOptions, channelOverride: channel };
    this.watchSvc = new s.Watch(target, creds, opts);
    this.leaseSvc = new s.Lease(target, creds, opts);
    this.cluster = new s.Cluster(target, creds, opts);
    this.maint = new s.Maintenance(target, creds, opts);
  }

  private unary<T>(svc: Any, method: string, req: Any, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      svc[method](req, { deadline: new Date(Date.now() + timeoutMs) }, (err: Any, res: T) => (err ? reject(wrap(err)) : resolve(res)));
    });
  }

  range(req: Any, timeoutMs: number) { return this.unary<Any>(this.kv, 'Range', req, timeoutMs); }
  put(req: Any, timeoutMs: number) { return this.unary<Any>(this.kv, 'Put', req, timeoutMs); }
  deleteRange(req: Any, timeoutMs: number) { return this.unary<Any>(this.kv, 'DeleteRange', req, timeoutMs); }
  txn(req: Any, timeoutMs: number) { return this.unary<Any>(this.kv, 'Txn', req, timeoutMs); }
  compact(revision: number, timeoutMs: number) { return this.unary<Any>(this.kv, 'Compact', { revision: String(revision), physical: false }, timeoutMs); }
  leaseGrant(ttlS: number, id: number, timeoutMs: number) { return this.unary<Any>(this.leaseSvc, 'LeaseGrant', { TTL: String(ttlS), ID: String(id) }, timeoutMs); }
  leaseRevoke(id: number, timeoutMs: number) { return this.unary<Any>(this.leaseSvc, 'LeaseRevoke', { ID: String(id) }, timeoutMs); }
  memberList(timeoutMs: number) { return this.unary<Any>(this.cluster, 'MemberList', {}, timeoutMs); }
  memberAdd(peerUrls: string[], timeoutMs: number) { return this.unary<Any>(this.cluster, 'MemberAdd', { peerURLs: peerUrls, isLearner: false }, timeoutMs); }
  memberRemove(id: string, timeoutMs: number) { return this.unary<Any>(this.cluster, 'MemberRemove', { ID: id }, timeoutMs); }
  status(timeoutMs: number) { return this.unary<Any>(this.maint, 'Status', {}, timeoutMs); }
  hashKV(revision: number, timeoutMs: number) { return this.unary<Any>(this.maint, 'HashKV', { revision: String(revision) }, timeoutMs); }

  /** One keep-alive round trip on its own stream (a stuck stream must not hide later renewals). */
  leaseKeepAliveOnce(id: number, timeoutMs: number): Promise<{ ttlS: number }> {
    return new Promise((resolve, reject) => {
      const call = this.leaseSvc.LeaseKeepAlive({ deadline: new Date(Date.now() + timeoutMs) });
      let done = false;
      call.on('data', (r: Any) => {
        if (done) return;
        done = true;
        call.cancel();
        const ttl = Number(r.TTL);
        if (ttl <= 0) reject(new CallError('lease not found', grpc.status.NOT_FOUND, true));
        else resolve({ ttlS: ttl });
      });
      call.on('error', (e: Any) => { if (!done) { done = true; reject(wrap(e)); } });
      call.on('end', () => { if (!done) { done = true; reject(new CallError('keep-alive stream ended', undefined, false)); } });
      call.write({ ID: String(id) });
    });
  }

  /** Opens one watch stream; onResponse sees every response, onEnd fires once. */
  watch(create: { key: Buffer; rangeEnd: Buffer; startRevision: number; prevKv: boolean }, onResponse: (r: RawWatchResponse) => void, onEnd: (why: string) => void): WatchHandle {
    // requireLeader: a member cut off from the leader ends the stream instead of going silent, so the watcher moves on.
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    const call = this.watchSvc.Watch(md);
    let ended = false;
    const end = (why: string) => { if (!ended) { ended = true; onEnd(why); } };
    call.on('data', (r: RawWatchResponse) => onResponse(r));
    call.on('error', (e: Any) => end(String(e?.details || e?.message || e)));
    call.on('end', () => end('stream ended'));
    call.write({ create_request: { key: create.key, range_end: create.rangeEnd, start_revision: String(create.startRevision), prev_kv: create.prevKv, progress_notify: false } });
    return { cancel: () => { ended = true; call.cancel(); } };
  }

  close(): void {
    this.kv.close();
  }
}
