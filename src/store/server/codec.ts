// Loading the etcd v3 .proto files and converting between their wire objects
// and the Store's shapes. Shared by the gRPC server and anything else that
// speaks the protos directly (tests).
//
// 64-bit integers: protobuf int64/uint64 fields are loaded as decimal strings
// (longs: String), so no value is rounded on the way in. Keelson's revisions,
// lease ids and member ids are below 2^53 and become numbers; a value beyond
// that (a lease id another etcd member invented, a corrupt request) cannot
// name anything Keelson holds and is reported as such by the caller.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { KeelsonError } from '../errors.ts';
import type { Event } from '../mvcc/keyspace.ts';
import type { Compare, KeyValue, RequestOp, ResponseOp, SortOrder, SortTarget } from '../mvcc/requests.ts';
import type { RangeOptions } from '../store.ts';

const protoDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'proto');

export const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
  includeDirs: [protoDir],
};

let loaded: grpc.GrpcObject | undefined;

/** The loaded etcdserverpb, mvccpb and grpc.health.v1 packages (loaded once). */
export function protos(): grpc.GrpcObject {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(['rpc.proto', 'kv.proto', 'health.proto'], loaderOptions));
  return loaded;
}

export function serviceOf(pkg: string, name: string): grpc.ServiceDefinition {
  let o: unknown = protos();
  for (const part of pkg.split('.')) o = (o as Record<string, unknown>)[part];
  return ((o as Record<string, unknown>)[name] as grpc.ServiceClientConstructor).service;
}

/** A wire int64 (string, number or absent) as a safe integer, or null when it is outside ±(2^53 - 1). */
export function int64(v: unknown): number | null {
  if (v === undefined || v === null || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

/** A wire int64 that must be a safe integer (revisions, limits): anything else is a bad request. */
export function int64Checked(v: unknown, what: string): number {
  const n = int64(v);
  if (n === null) throw new KeelsonError('bad request', `${what} ${String(v)} is out of range`);
  return n;
}

export function bytes(v: unknown): Buffer {
  if (v === undefined || v === null) return Buffer.alloc(0);
  return Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array);
}

/** Empty range_end is "the key alone", which the Store spells as absent. */
function rangeEnd(v: unknown): Buffer | undefined {
  const b = bytes(v);
  return b.length === 0 ? undefined : b;
}

// Wire objects are loosely typed (what proto-loader hands over); the shapes
// below name only the fields read.
export type Wire = Record<string, unknown>;

const sortOrders: SortOrder[] = ['none', 'ascend', 'descend'];
const sortTargets: SortTarget[] = ['key', 'version', 'create', 'mod', 'value'];

export function rangeIn(r: Wire): RangeOptions & { key: Buffer } {
  const sortOrder = sortOrders[Number(r.sort_order ?? 0)];
  const sortTarget = sortTargets[Number(r.sort_target ?? 0)];
  if (sortOrder === undefined || sortTarget === undefined) throw new KeelsonError('bad request', 'invalid sort option');
  const out: RangeOptions & { key: Buffer } = {
    key: bytes(r.key),
    rangeEnd: rangeEnd(r.range_end),
    limit: int64Checked(r.limit, 'limit'),
    revision: int64Checked(r.revision, 'revision'),
    serializable: r.serializable === true,
    keysOnly: r.keys_only === true,
    countOnly: r.count_only === true,
    minModRevision: int64Checked(r.min_mod_revision, 'min_mod_revision'),
    maxModRevision: int64Checked(r.max_mod_revision, 'max_mod_revision'),
    minCreateRevision: int64Checked(r.min_create_revision, 'min_create_revision'),
    maxCreateRevision: int64Checked(r.max_create_revision, 'max_create_revision'),
  };
  // etcd sorts ascending when a target other than the key is named with no order.
  if (sortOrder !== 'none' || sortTarget !== 'key') {
    out.sortOrder = sortOrder === 'none' ? 'ascend' : sortOrder;
    out.sortTarget = sortTarget;
  }
  // A negative limit or revision means "none"/"current" to etcd.
  if ((out.limit ?? 0) < 0) out.limit = 0;
  if ((out.revision ?? 0) < 0) out.revision = 0;
  return out;
}

export interface PutIn {
  key: Buffer;
  value: Buffer;
  lease: number;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

/**
 * Stands for a lease id no Keelson lease has: a negative id, or one beyond
 * 2^53 - 1. Generated ids stay below it and the server refuses to grant it.
 */
export const NO_SUCH_LEASE = Number.MAX_SAFE_INTEGER;

export function putIn(r: Wire): PutIn {
  const lease = int64(r.lease);
  return {
    key: bytes(r.key),
    value: bytes(r.value),
    lease: lease === null || lease < 0 ? NO_SUCH_LEASE : lease,
    prevKv: r.prev_kv === true,
    ignoreValue: r.ignore_value === true,
    ignoreLease: r.ignore_lease === true,
  };
}

export function deleteIn(r: Wire): { key: Buffer; rangeEnd?: Buffer; prevKv: boolean } {
  return { key: bytes(r.key), rangeEnd: rangeEnd(r.range_end), prevKv: r.prev_kv === true };
}

const compareResults: Compare['result'][] = ['equal', 'greater', 'less', 'notEqual'];
const compareTargets: Compare['target'][] = ['version', 'create', 'mod', 'value', 'lease'];
const numberField: Record<string, string> = { version: 'version', create: 'create_revision', mod: 'mod_revision', lease: 'lease' };

export function compareIn(c: Wire): Compare {
  const result = compareResults[Number(c.result ?? 0)];
  const target = compareTargets[Number(c.target ?? 0)];
  if (result === undefined || target === undefined) throw new KeelsonError('bad request', 'invalid compare');
  const out: Compare = { key: bytes(c.key), rangeEnd: rangeEnd(c.range_end), target, result };
  if (target === 'value') out.value = bytes(c.value);
  else {
    // A compare names its value by the oneof member; an unset member is 0,
    // and a lease id beyond 2^53 can equal no Keelson lease.
    const n = int64(c[numberField[target]]);
    out.number = n === null ? NO_SUCH_LEASE : n;
  }
  return out;
}

export function requestOpIn(op: Wire): RequestOp {
  switch (op.request) {
    case 'request_range': {
      const { serializable: _s, ...r } = rangeIn(op.request_range as Wire);
      return { op: 'range', ...r };
    }
    case 'request_put': {
      const p = putIn(op.request_put as Wire);
      return { op: 'put', key: p.key, value: p.value, lease: p.lease, prevKv: p.prevKv, ignoreValue: p.ignoreValue, ignoreLease: p.ignoreLease };
    }
    case 'request_delete_range':
      return { op: 'deleteRange', ...deleteIn(op.request_delete_range as Wire) };
    case 'request_txn':
      return { op: 'txn', ...txnIn(op.request_txn as Wire) };
    default:
      throw new KeelsonError('bad request', 'empty request op');
  }
}

export function txnIn(t: Wire): { compare: Compare[]; success: RequestOp[]; failure: RequestOp[] } {
  return {
    compare: ((t.compare as Wire[]) ?? []).map(compareIn),
    success: ((t.success as Wire[]) ?? []).map(requestOpIn),
    failure: ((t.failure as Wire[]) ?? []).map(requestOpIn),
  };
}

// ---------------------------------------------------------------------------
// Out: Store shapes to wire objects. Numbers are accepted for int64 fields.
// ---------------------------------------------------------------------------

export interface HeaderOut {
  cluster_id: number;
  member_id: number;
  revision: number;
  raft_term: number;
}

export function kvOut(kv: KeyValue): Wire {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  };
}

export function eventOut(e: Event): Wire {
  const out: Wire = { type: e.type === 'put' ? 0 : 1, kv: kvOut(e.kv) };
  if (e.prevKv) out.prev_kv = kvOut(e.prevKv);
  return out;
}

/**
 * A txn's inner responses carry a header with only the revision, and a
 * nested txn's header is empty, exactly as etcd answers (the outer
 * response's header is the full one).
 */
export function responseOpOut(r: ResponseOp): Wire {
  const h = { cluster_id: 0, member_id: 0, revision: r.header.revision, raft_term: 0 };
  switch (r.op) {
    case 'range':
      return { response_range: { header: h, kvs: r.kvs.map(kvOut), more: r.more, count: r.count } };
    case 'put':
      return { response_put: { header: h, prev_kv: r.prevKv ? kvOut(r.prevKv) : null } };
    case 'deleteRange':
      return { response_delete_range: { header: h, deleted: r.deleted, prev_kvs: r.prevKvs.map(kvOut) } };
    case 'txn':
      return { response_txn: { header: { ...h, revision: 0 }, succeeded: r.succeeded, responses: r.responses.map(responseOpOut) } };
  }
}
