// The Store interface: the one way the apiserver and every other consumer
// talks to storage. Its shapes follow etcd v3 (keys and values are Buffers,
// revisions are numbers), so an embedded member, a remote etcd-API client and
// a real etcd can all stand behind it. Every implementation runs the shared
// contract suite (test/store/contract.ts).
//
// Errors are KeelsonErrors (src/store/errors.ts) with etcd's codes and
// messages. Watch responses arrive on a WatchStream; compaction of the
// requested history arrives as a canceled response with compactRevision set.
import type {
  AlarmType, CompactResponse, DeleteRangeResponse, KeyValue, LeaseGrantResponse, LeaseRevokeResponse,
  PutResponse, RangeResponse, ResponseHeader, SortOrder, SortTarget, TxnRequest, TxnResponse,
} from './mvcc/requests.ts';
import type { WatchOptions, WatchResponse } from './watch/hub.ts';

export type {
  AlarmType, Compare, CompactResponse, DeleteRangeResponse, KeyValue, LeaseGrantResponse, LeaseRevokeResponse,
  PutResponse, RangeResponse, RequestOp, ResponseHeader, ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResponse,
} from './mvcc/requests.ts';
export { prefixEnd } from './mvcc/requests.ts';
export type { Event } from './mvcc/keyspace.ts';
export type { WatchResponse } from './watch/hub.ts';
export { KeelsonError, isKeelsonError } from './errors.ts';

export interface RangeOptions {
  /** Absent/empty = the key alone; [0x00] = every key >= key; else [key, rangeEnd). See prefixEnd(). */
  rangeEnd?: Buffer;
  /** 0 or absent = current. */
  revision?: number;
  limit?: number;
  countOnly?: boolean;
  keysOnly?: boolean;
  /** Read locally without consensus (may be stale on a follower). */
  serializable?: boolean;
  sortTarget?: SortTarget;
  sortOrder?: SortOrder;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface PutOptions {
  lease?: number;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface DeleteOptions {
  rangeEnd?: Buffer;
  prevKv?: boolean;
}

export type WatchStartOptions = Omit<WatchOptions, 'key'>;

/** A live watch. Responses come in revision order; next() resolves null after cancel or a compaction cancel. */
export interface WatchStream extends AsyncIterable<WatchResponse> {
  readonly id: number;
  next(): Promise<WatchResponse | null>;
  cancel(): void;
  requestProgress(): void;
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader;
  id: number;
  /** Renewed TTL in seconds. */
  ttl: number;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  id: number;
  /** Remaining seconds; -1 when the lease does not exist (expired or revoked). */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

export interface LeaseLeasesResponse {
  header: ResponseHeader;
  leases: { id: number }[];
}

export interface StatusResponse {
  header: ResponseHeader;
  version: string;
  /** Bytes in use by the keyspace's databases. */
  dbSizeInUse: number;
  leader: number;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  compactRevision: number;
  /** Active alarms (NOSPACE, CORRUPT). */
  errors: AlarmType[];
  isLearner: boolean;
}

export interface Member {
  id: number;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface MemberListResponse {
  header: ResponseHeader;
  members: Member[];
}

export interface HashKVResponse {
  header: ResponseHeader;
  hash: number;
  compactRevision: number;
  /** The revision the hash covers. */
  hashRevision: number;
}

export interface Store {
  range(key: Buffer, opts?: RangeOptions): Promise<RangeResponse>;
  put(key: Buffer, value: Buffer, opts?: PutOptions): Promise<PutResponse>;
  deleteRange(key: Buffer, opts?: DeleteOptions): Promise<DeleteRangeResponse>;
  txn(req: TxnRequest): Promise<TxnResponse>;
  /** Compacts history below revision; physical = resolve only when the space is reclaimed. */
  compact(revision: number, opts?: { physical?: boolean }): Promise<CompactResponse>;
  /** Throws (synchronously) only on bad input; history errors arrive as a canceled response. */
  watch(key: Buffer, opts?: WatchStartOptions): WatchStream;
  /** ttl in seconds; id 0 or absent = the store picks one. */
  leaseGrant(ttl: number, id?: number): Promise<LeaseGrantResponse>;
  leaseRevoke(id: number): Promise<LeaseRevokeResponse>;
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse>;
  leaseTimeToLive(id: number, opts?: { keys?: boolean }): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(): Promise<LeaseLeasesResponse>;
  hashKV(revision?: number): Promise<HashKVResponse>;
  status(): Promise<StatusResponse>;
  members(): Promise<MemberListResponse>;
  close(): Promise<void>;
}

export type { KeyValue as StoreKeyValue };
