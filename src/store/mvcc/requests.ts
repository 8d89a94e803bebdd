// The requests that travel through the Raft log to the keyspace, their
// results, and their wire codec. A proposer wraps a Request in a Proposal with
// an id of its own choosing, encodes it with encodeProposal, proposes the bytes,
// and waits for the keyspace to report the ApplyResult of that id.
//
// Everything here must be deterministic: the same committed bytes produce the
// same effects on every member, so a request carries every input it needs
// (a lease id is chosen by the proposer, an expiry decision by the leader).
import { Packr } from 'msgpackr';
import { KeelsonError } from '../errors.ts';

// ---------------------------------------------------------------------------
// Shapes shared with the Store interface (etcd v3's data model).
// ---------------------------------------------------------------------------

export interface KeyValue {
  key: Buffer;
  /** Main revision of the put that created the key (after its last deletion). */
  createRevision: number;
  /** Main revision of the last modification. */
  modRevision: number;
  /** Number of puts since creation; 1 for a new key. */
  version: number;
  /** Empty for keysOnly results. */
  value: Buffer;
  /** Lease id the key is attached to, 0 for none. */
  lease: number;
}

export interface ResponseHeader {
  /** The store's revision when the response was produced (a txn: after it). */
  revision: number;
}

export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';
export type SortOrder = 'none' | 'ascend' | 'descend';

export interface RangeRequest {
  key: Buffer;
  /**
   * etcd conventions: absent or empty = the single key; a single 0x00 byte =
   * every key >= key; otherwise the half-open interval [key, rangeEnd).
   */
  rangeEnd?: Buffer;
  /** Read at this revision; 0 or absent = the current revision. */
  revision?: number;
  /** At most this many kvs; 0 or absent = no limit. */
  limit?: number;
  countOnly?: boolean;
  keysOnly?: boolean;
  sortTarget?: SortTarget;
  sortOrder?: SortOrder;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** True when the limit cut the result short. */
  more: boolean;
  /** Number of keys in the range (ignoring limit and the min/max filters' effect on more). */
  count: number;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  lease?: number;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export type CompareTarget = 'value' | 'version' | 'create' | 'mod' | 'lease';
export type CompareResult = 'equal' | 'notEqual' | 'less' | 'greater';

export interface Compare {
  key: Buffer;
  /** As for range: compares every key in the range (all must hold). */
  rangeEnd?: Buffer;
  target: CompareTarget;
  result: CompareResult;
  /** For target 'value'. */
  value?: Buffer;
  /** For the numeric targets (version, create, mod, lease). */
  number?: number;
}

export type RequestOp =
  | ({ op: 'range' } & RangeRequest)
  | ({ op: 'put' } & PutRequest)
  | ({ op: 'deleteRange' } & DeleteRangeRequest)
  | ({ op: 'txn' } & TxnRequest);

export type ResponseOp =
  | ({ op: 'range' } & RangeResponse)
  | ({ op: 'put' } & PutResponse)
  | ({ op: 'deleteRange' } & DeleteRangeResponse)
  | ({ op: 'txn' } & TxnResponse);

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactResponse {
  header: ResponseHeader;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  id: number;
  /** Granted TTL in seconds. */
  ttl: number;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader;
}

export interface LeaseExpireResponse {
  header: ResponseHeader;
  /** The leases that existed and were revoked by this request. */
  revoked: number[];
}

export type AlarmType = 'NOSPACE' | 'CORRUPT';

export interface AlarmResponse {
  header: ResponseHeader;
  alarms: AlarmType[];
}

// ---------------------------------------------------------------------------
// Log requests.
// ---------------------------------------------------------------------------

export type Request =
  | ({ op: 'put' } & PutRequest)
  | ({ op: 'deleteRange' } & DeleteRangeRequest)
  | ({ op: 'txn' } & TxnRequest)
  | { op: 'compact'; revision: number; physical?: boolean }
  /** The proposer picks the id (non-zero, < 2^53) so that every member agrees on it. */
  | { op: 'leaseGrant'; leaseId: number; ttl: number }
  | { op: 'leaseRevoke'; leaseId: number }
  /** Decided by the leader's lessor from its clock; applied like a revoke of every listed lease that still exists. */
  | { op: 'leaseExpire'; leaseIds: number[] }
  /** Raised by a member that saw its quota exceeded (or a hash mismatch); cleared by an operator or when space is reclaimed. */
  | { op: 'alarm'; action: 'activate' | 'deactivate'; alarm: AlarmType };

export type Response =
  | PutResponse
  | DeleteRangeResponse
  | TxnResponse
  | CompactResponse
  | LeaseGrantResponse
  | LeaseRevokeResponse
  | LeaseExpireResponse
  | AlarmResponse;

/** What a proposer puts in a log entry. */
export interface Proposal {
  /** Chosen by the proposer (unique among its in-flight proposals) to match the result. */
  id: number;
  /**
   * The proposing member. Every member applies every entry and reports every
   * result; a member resolves only results whose `from` is itself, since ids
   * of different members may collide.
   */
  from?: number;
  req: Request;
}

export type ApplyResult =
  | { ok: true; response: Response }
  | { ok: false; error: KeelsonError };

// ---------------------------------------------------------------------------
// Limits.
// ---------------------------------------------------------------------------

export const limits = {
  /** Encoded size of one proposal. */
  requestBytesMax: 1.5 * 1024 * 1024,
  /** Operations in one txn branch, and compares in one txn. */
  txnOpsMax: 128,
  /**
   * lmdb's key limit is 1978 bytes (4 KiB pages). A stored key is the escaped
   * user key (worst case every byte is 0x00 and doubles), a 2-byte terminator,
   * a 12-byte revision and a tombstone byte: 2 * 981 + 15 = 1977 <= 1978.
   */
  keyBytesMax: 981,
  /** Lease TTL bound in seconds (etcd's MaxLeaseTTL). */
  leaseTtlSecondsMax: 9_000_000_000,
};

// ---------------------------------------------------------------------------
// Codec. Records are off so the bytes depend only on the value (every member
// decodes the same bytes the same way, whatever it decoded before).
// ---------------------------------------------------------------------------

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

// A plain put (the bulk of the log) has a fixed binary layout instead, since
// msgpack decoding is a large part of applying one:
//
//   0xc2 'P'  flags:1  id:f64  from:f64  lease:f64  keyLength:u32  key  value
//
// A msgpack proposal is a map, so it starts with a map byte (0x80-0x8f, 0xde,
// 0xdf), never with 0xc2 (msgpack's `false`), and the two formats cannot be
// confused. (0xc1, the byte msgpack never uses, marks the embedded store's
// member entries, which never reach the keyspace.) flags: bit 0 from present, 1 lease present, 2 prevKv, 3 ignoreValue,
// 4 ignoreLease (bits 2-4 each with bit 5-7 saying the flag is present, so
// `false` and absent decode as they were encoded). Numbers travel as float64,
// so every number msgpack could carry decodes to the same value; anything
// else (extra fields, other types) falls back to msgpack. Decoding yields
// the same object the msgpack path would, so validation and apply cannot
// tell the formats apart.
const PUT_MAGIC0 = 0xc2;
const PUT_MAGIC1 = 0x50;
const PUT_HEADER_BYTES = 2 + 1 + 8 + 8 + 8 + 4;
const PUT_FIELDS = new Set(['op', 'key', 'value', 'lease', 'prevKv', 'ignoreValue', 'ignoreLease']);
const PUT_FLAGS = ['prevKv', 'ignoreValue', 'ignoreLease'] as const;

function isOptBool(v: unknown): boolean {
  return v === undefined || typeof v === 'boolean';
}

/** The fixed put layout, or null when the proposal does not fit it exactly. */
function encodePut(p: Proposal): Buffer | null {
  const r = p.req as PutRequest & { op: string };
  if (r === null || typeof r !== 'object' || r.op !== 'put') return null;
  if (typeof p.id !== 'number' || !(p.from === undefined || typeof p.from === 'number')) return null;
  for (const k in p) if (k !== 'id' && k !== 'from' && k !== 'req') return null;
  if (!(r.key instanceof Uint8Array) || !(r.value instanceof Uint8Array)) return null;
  if (!(r.lease === undefined || typeof r.lease === 'number')) return null;
  if (!isOptBool(r.prevKv) || !isOptBool(r.ignoreValue) || !isOptBool(r.ignoreLease)) return null;
  for (const k in r) if (!PUT_FIELDS.has(k) || (r as unknown as Record<string, unknown>)[k] === undefined) return null;
  let flags = (p.from !== undefined ? 1 : 0) | (r.lease !== undefined ? 2 : 0);
  for (let i = 0; i < 3; i++) {
    const v = r[PUT_FLAGS[i]];
    if (v !== undefined) flags |= (1 << (5 + i)) | (v ? 1 << (2 + i) : 0);
  }
  const out = Buffer.allocUnsafe(PUT_HEADER_BYTES + r.key.length + r.value.length);
  out[0] = PUT_MAGIC0;
  out[1] = PUT_MAGIC1;
  out[2] = flags;
  out.writeDoubleBE(p.id, 3);
  out.writeDoubleBE(p.from ?? 0, 11);
  out.writeDoubleBE(r.lease ?? 0, 19);
  out.writeUInt32BE(r.key.length, 27);
  out.set(r.key, PUT_HEADER_BYTES);
  out.set(r.value, PUT_HEADER_BYTES + r.key.length);
  return out;
}

function decodePut(data: Buffer): Proposal {
  if (data.length < PUT_HEADER_BYTES || data[1] !== PUT_MAGIC1) throw new KeelsonError('bad request', 'undecodable proposal: truncated put');
  const flags = data[2];
  const keyLength = data.readUInt32BE(27);
  if (keyLength > data.length - PUT_HEADER_BYTES) throw new KeelsonError('bad request', 'undecodable proposal: put key length');
  const keyEnd = PUT_HEADER_BYTES + keyLength;
  // Views of the entry, as msgpack decodes bin fields.
  const req: { op: 'put' } & PutRequest = { op: 'put', key: data.subarray(PUT_HEADER_BYTES, keyEnd), value: data.subarray(keyEnd) };
  if (flags & 2) req.lease = data.readDoubleBE(19);
  for (let i = 0; i < 3; i++) if (flags & (1 << (5 + i))) req[PUT_FLAGS[i]] = (flags & (1 << (2 + i))) !== 0;
  const p: Proposal = { id: data.readDoubleBE(3), req };
  if (flags & 1) p.from = data.readDoubleBE(11);
  return p;
}

export function encodeProposal(p: Proposal): Buffer {
  return encodePut(p) ?? packr.pack(p);
}

/** Decodes and validates the shape of a proposal; throws KeelsonError('bad request') on garbage. */
export function decodeProposal(data: Buffer): Proposal {
  if (data.length > 0 && data[0] === PUT_MAGIC0) return decodePut(data);
  let p: unknown;
  try {
    p = packr.unpack(data);
  } catch (e) {
    throw new KeelsonError('bad request', `undecodable proposal: ${(e as Error).message}`);
  }
  if (typeof p !== 'object' || p === null || typeof (p as Proposal).id !== 'number') {
    throw new KeelsonError('bad request', 'proposal is not {id, req}');
  }
  // The request itself is checked by validateRequest, so that its error
  // reaches the proposer under its id.
  return p as Proposal;
}

// ---------------------------------------------------------------------------
// Validation: run by the proposer before proposing (so bad input never enters
// the log) and again by the keyspace at apply (so a bad entry that got in
// anyway fails the same way on every member).
// ---------------------------------------------------------------------------

function isBuf(b: unknown): b is Buffer {
  return b instanceof Uint8Array;
}

function checkKey(key: unknown, what: string): void {
  if (!isBuf(key)) throw new KeelsonError('bad request', `${what} must be bytes`);
  if (key.length === 0) throw new KeelsonError('empty key');
  if (key.length > limits.keyBytesMax) throw new KeelsonError('key too large', `${key.length} bytes > keyBytesMax ${limits.keyBytesMax}`);
}

function checkRangeEnd(end: unknown): void {
  if (end === undefined) return;
  if (!isBuf(end)) throw new KeelsonError('bad request', 'rangeEnd must be bytes');
  if (end.length > limits.keyBytesMax) throw new KeelsonError('key too large', `rangeEnd ${end.length} bytes > keyBytesMax ${limits.keyBytesMax}`);
}

function checkCount(n: unknown, what: string): void {
  if (n === undefined) return;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new KeelsonError('bad request', `${what} must be a non-negative integer`);
}

export function validateRange(r: RangeRequest): void {
  checkKey(r.key, 'key');
  checkRangeEnd(r.rangeEnd);
  checkCount(r.revision, 'revision');
  checkCount(r.limit, 'limit');
  checkCount(r.minModRevision, 'minModRevision');
  checkCount(r.maxModRevision, 'maxModRevision');
  checkCount(r.minCreateRevision, 'minCreateRevision');
  checkCount(r.maxCreateRevision, 'maxCreateRevision');
  if (r.sortTarget !== undefined && !['key', 'version', 'create', 'mod', 'value'].includes(r.sortTarget)) throw new KeelsonError('bad request', `unknown sortTarget ${String(r.sortTarget)}`);
  if (r.sortOrder !== undefined && !['none', 'ascend', 'descend'].includes(r.sortOrder)) throw new KeelsonError('bad request', `unknown sortOrder ${String(r.sortOrder)}`);
}

function validatePut(r: PutRequest): void {
  checkKey(r.key, 'key');
  if (r.ignoreValue) {
    if (r.value !== undefined && (!isBuf(r.value) || r.value.length > 0)) throw new KeelsonError('value provided');
  } else if (!isBuf(r.value)) throw new KeelsonError('bad request', 'value must be bytes');
  if (r.ignoreLease && r.lease) throw new KeelsonError('lease provided');
  checkCount(r.lease, 'lease');
}

function validateDelete(r: DeleteRangeRequest): void {
  checkKey(r.key, 'key');
  checkRangeEnd(r.rangeEnd);
}

function validateCompare(c: Compare): void {
  checkKey(c.key, 'compare key');
  checkRangeEnd(c.rangeEnd);
  if (!['value', 'version', 'create', 'mod', 'lease'].includes(c.target)) throw new KeelsonError('bad request', `unknown compare target ${String(c.target)}`);
  if (!['equal', 'notEqual', 'less', 'greater'].includes(c.result)) throw new KeelsonError('bad request', `unknown compare result ${String(c.result)}`);
  if (c.target === 'value') {
    if (!isBuf(c.value)) throw new KeelsonError('bad request', 'value compare needs value bytes');
  } else if (typeof c.number !== 'number' || !Number.isSafeInteger(c.number)) {
    throw new KeelsonError('bad request', `${c.target} compare needs an integer number`);
  }
}

function validateOp(op: RequestOp): void {
  switch (op?.op) {
    case 'range': return validateRange(op);
    case 'put': return validatePut(op);
    case 'deleteRange': return validateDelete(op);
    case 'txn': return validateTxn(op);
    default: throw new KeelsonError('bad request', `unknown txn operation ${String((op as { op?: unknown })?.op)}`);
  }
}

interface WriteSet {
  puts: Buffer[];
  dels: { key: Buffer; end: Buffer | undefined }[];
}

function inDeleteRange(k: Buffer, d: { key: Buffer; end: Buffer | undefined }): boolean {
  if (d.end === undefined || d.end.length === 0) return k.equals(d.key);
  if (d.end.length === 1 && d.end[0] === 0) return Buffer.compare(k, d.key) >= 0;
  return Buffer.compare(k, d.key) >= 0 && Buffer.compare(k, d.end) < 0;
}

/**
 * Rejects a txn branch that writes one key twice: two puts of a key, or a put
 * of a key that a delete in the same executed path also covers. The two
 * branches of a nested txn are exclusive, so each is checked on its own
 * against everything the enclosing path writes.
 */
function checkBranch(ops: RequestOp[], outer: WriteSet): void {
  const here: WriteSet = { puts: [...outer.puts], dels: [...outer.dels] };
  for (const op of ops) {
    if (op.op === 'put') {
      for (const p of here.puts) if (p.equals(op.key)) throw new KeelsonError('duplicate key');
      for (const d of here.dels) if (inDeleteRange(op.key, d)) throw new KeelsonError('duplicate key');
      here.puts.push(op.key);
    } else if (op.op === 'deleteRange') {
      const d = { key: op.key, end: op.rangeEnd };
      for (const p of here.puts) if (inDeleteRange(p, d)) throw new KeelsonError('duplicate key');
      here.dels.push(d);
    }
  }
  for (const op of ops) {
    if (op.op === 'txn') {
      checkBranch(op.success, here);
      checkBranch(op.failure, here);
    }
  }
}

export function validateTxn(t: TxnRequest): void {
  if (!Array.isArray(t.compare) || !Array.isArray(t.success) || !Array.isArray(t.failure)) throw new KeelsonError('bad request', 'txn needs compare, success and failure arrays');
  if (t.compare.length > limits.txnOpsMax || t.success.length > limits.txnOpsMax || t.failure.length > limits.txnOpsMax) {
    throw new KeelsonError('too many operations', `limit ${limits.txnOpsMax}`);
  }
  for (const c of t.compare) validateCompare(c);
  for (const op of t.success) validateOp(op);
  for (const op of t.failure) validateOp(op);
  checkBranch(t.success, { puts: [], dels: [] });
  checkBranch(t.failure, { puts: [], dels: [] });
}

function checkId(n: unknown, what: string): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) throw new KeelsonError('bad request', `${what} must be a positive integer`);
}

/**
 * Throws the KeelsonError the request deserves, or returns normally. Any
 * other exception while looking at a malformed request (a null where an
 * object belongs) is reported as 'bad request' too: a garbage log entry must
 * fail cleanly on every member, never break the state machine.
 */
export function validateRequest(req: Request): void {
  try {
    validateRequestShape(req);
  } catch (e) {
    if (e instanceof KeelsonError) throw e;
    throw new KeelsonError('bad request', `malformed request: ${(e as Error).message}`);
  }
}

function validateRequestShape(req: Request): void {
  switch (req?.op) {
    case 'put': return validatePut(req);
    case 'deleteRange': return validateDelete(req);
    case 'txn': return validateTxn(req);
    case 'compact': return checkCount(req.revision, 'revision');
    case 'leaseGrant':
      checkId(req.leaseId, 'lease id');
      checkCount(req.ttl, 'ttl');
      if (req.ttl > limits.leaseTtlSecondsMax) throw new KeelsonError('lease ttl too large');
      return;
    case 'leaseRevoke': return checkId(req.leaseId, 'lease id');
    case 'leaseExpire':
      if (!Array.isArray(req.leaseIds)) throw new KeelsonError('bad request', 'leaseIds must be an array');
      for (const id of req.leaseIds) checkId(id, 'lease id');
      return;
    case 'alarm':
      if (req.action !== 'activate' && req.action !== 'deactivate') throw new KeelsonError('bad request', 'alarm action');
      if (req.alarm !== 'NOSPACE' && req.alarm !== 'CORRUPT') throw new KeelsonError('bad request', 'alarm type');
      return;
    default:
      throw new KeelsonError('bad request', `unknown request ${String((req as { op?: unknown })?.op)}`);
  }
}

/** Encodes and checks the size limit; the proposer's single entry point. */
export function encodeChecked(p: Proposal): Buffer {
  validateRequest(p.req);
  const b = encodeProposal(p);
  if (b.length > limits.requestBytesMax) throw new KeelsonError('request too large', `${b.length} bytes > requestBytesMax ${limits.requestBytesMax}`);
  return b;
}

/** True for requests that may add data and so are refused while the NOSPACE alarm is active. */
export function needsSpace(req: Request): boolean {
  if (req.op === 'put' || req.op === 'leaseGrant') return true;
  if (req.op === 'txn') return hasPut(req.success) || hasPut(req.failure);
  return false;
}

function hasPut(ops: RequestOp[]): boolean {
  return ops.some((o) => o.op === 'put' || (o.op === 'txn' && (hasPut(o.success) || hasPut(o.failure))));
}

/** The smallest key greater than every key with this prefix; [0x00] when there is none (all 0xff). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
