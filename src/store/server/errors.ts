// Errors of the etcd v3 API: the one place where a store failure becomes a
// gRPC status. etcd's clients recognise an error by its gRPC code and its
// exact message text (clientv3 looks the message up in a table; the npm etcd3
// client matches substrings), so the message sent is etcd's text alone, with
// no detail appended, except for errors etcd has no fixed text for.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { KeelsonError, type StoreErrorCode } from '../errors.ts';

/**
 * An error with an explicit gRPC code and etcd message, for failures the
 * Store's error codes do not name (membership, leadership transfer). A
 * ClusterStore may throw it, or any Error whose message starts with one of
 * the etcd messages below.
 */
export class EtcdApiError extends Error {
  readonly grpcCode: GrpcStatus;
  constructor(grpcCode: GrpcStatus, message: string) {
    super(message);
    this.name = 'EtcdApiError';
    this.grpcCode = grpcCode;
  }
}

// Partial: a code added to the store later falls back to the message table.
const byCode: { [K in StoreErrorCode]?: GrpcStatus } = {
  'compacted': GrpcStatus.OUT_OF_RANGE,
  'future revision': GrpcStatus.OUT_OF_RANGE,
  'lease not found': GrpcStatus.NOT_FOUND,
  'lease exists': GrpcStatus.FAILED_PRECONDITION,
  'lease ttl too large': GrpcStatus.OUT_OF_RANGE,
  'duplicate key': GrpcStatus.INVALID_ARGUMENT,
  'too many operations': GrpcStatus.INVALID_ARGUMENT,
  'request too large': GrpcStatus.INVALID_ARGUMENT,
  'key too large': GrpcStatus.INVALID_ARGUMENT,
  'empty key': GrpcStatus.INVALID_ARGUMENT,
  'value provided': GrpcStatus.INVALID_ARGUMENT,
  'lease provided': GrpcStatus.INVALID_ARGUMENT,
  'key not found': GrpcStatus.INVALID_ARGUMENT,
  'NOSPACE': GrpcStatus.RESOURCE_EXHAUSTED,
  'bad request': GrpcStatus.INVALID_ARGUMENT,
  'watch canceled': GrpcStatus.CANCELLED,
  'not leader': GrpcStatus.UNAVAILABLE,
  'timeout': GrpcStatus.UNAVAILABLE,
  'too many requests': GrpcStatus.RESOURCE_EXHAUSTED,
  'member not found': GrpcStatus.NOT_FOUND,
  'member exists': GrpcStatus.FAILED_PRECONDITION,
  'peer url exists': GrpcStatus.FAILED_PRECONDITION,
  'learner not ready': GrpcStatus.FAILED_PRECONDITION,
  'unhealthy cluster': GrpcStatus.UNAVAILABLE,
  'closed': GrpcStatus.UNAVAILABLE,
};

/** Codes whose detail is kept in the message: etcd has no fixed text a client could match for them. */
const keepDetail = new Set<StoreErrorCode>(['bad request', 'key too large']);

/**
 * etcd's messages and codes for the failures of the Cluster and Maintenance
 * services (and the leadership errors), recognised by message prefix on
 * errors from any ClusterStore implementation.
 */
export const etcdMessages: [string, GrpcStatus][] = [
  ['etcdserver: member not found', GrpcStatus.NOT_FOUND],
  ['etcdserver: member ID already exist', GrpcStatus.FAILED_PRECONDITION],
  ['etcdserver: Peer URLs already exists', GrpcStatus.FAILED_PRECONDITION],
  ['etcdserver: member cannot remove itself', GrpcStatus.FAILED_PRECONDITION],
  ['etcdserver: re-configuration failed due to not enough started members', GrpcStatus.FAILED_PRECONDITION],
  ['etcdserver: unhealthy cluster', GrpcStatus.UNAVAILABLE],
  ['etcdserver: can only promote a learner member which is in sync with leader', GrpcStatus.FAILED_PRECONDITION],
  ['etcdserver: can only promote a learner member', GrpcStatus.FAILED_PRECONDITION],
  ['etcdserver: too many learner members in cluster', GrpcStatus.FAILED_PRECONDITION],
  ['etcdserver: rpc not supported for learner', GrpcStatus.UNAVAILABLE],
  ['etcdserver: bad leader transferee', GrpcStatus.FAILED_PRECONDITION],
  ['etcdserver: leadership transfer timeout', GrpcStatus.DEADLINE_EXCEEDED],
  ['etcdserver: not leader', GrpcStatus.UNAVAILABLE],
  ['etcdserver: no leader', GrpcStatus.UNAVAILABLE],
  ['etcdserver: leader changed', GrpcStatus.UNAVAILABLE],
  ['etcdserver: request timed out', GrpcStatus.UNAVAILABLE],
  ['etcdserver: server stopped', GrpcStatus.UNAVAILABLE],
  ['etcdserver: too many requests', GrpcStatus.RESOURCE_EXHAUSTED],
  ['etcdserver: corrupt cluster', GrpcStatus.DATA_LOSS],
];

export interface GrpcError {
  code: GrpcStatus;
  details: string;
}

/** The gRPC status for a failure; errors nobody expected become INTERNAL (etcd's choice too) and keep their text. */
export function toGrpcError(e: unknown): GrpcError {
  if (e instanceof EtcdApiError) return { code: e.grpcCode, details: e.message };
  if (e instanceof KeelsonError) {
    const code = byCode[e.code];
    if (code !== undefined) return { code, details: keepDetail.has(e.code) ? e.message : new KeelsonError(e.code).message };
  }
  const message = e instanceof Error ? e.message : String(e);
  for (const [text, code] of etcdMessages) if (message.startsWith(text)) return { code, details: text };
  return { code: GrpcStatus.INTERNAL, details: message };
}
