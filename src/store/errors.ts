// The one error class of the store layer. Every expected failure of a store
// operation (bad input, a compacted revision, a missing lease, a full disk
// quota) is a KeelsonError with a stable string `code` and a message that
// matches the text etcd's clients know, so the etcd API server can map it to a
// gRPC status in one place and the apiserver can map it to a Kubernetes Status.
// A broken internal invariant is not a KeelsonError: it is an assertion.

export type StoreErrorCode =
  | 'compacted' // required revision has been compacted (carries compactRevision)
  | 'future revision' // required revision is a future revision (carries currentRevision)
  | 'lease not found'
  | 'lease exists'
  | 'lease ttl too large'
  | 'duplicate key' // a key written twice in one txn
  | 'too many operations' // more than txnOpsMax operations in one txn branch
  | 'request too large' // encoded request above requestBytesMax
  | 'key too large' // key above keyBytesMax
  | 'empty key' // key not provided
  | 'value provided' // ignoreValue with a value
  | 'lease provided' // ignoreLease with a lease
  | 'key not found' // ignoreValue/ignoreLease on a key that does not exist
  | 'NOSPACE' // database space exceeded (quota alarm active)
  | 'bad request' // malformed request (wrong types, negative limits, ...)
  | 'watch canceled'
  | 'not leader' // an operation only the leader (lease primary) serves
  | 'timeout' // a replicated request not applied in time (no leader, proposal lost); it may still take effect
  | 'too many requests' // the leader's bound on uncommitted proposals is full; retry later
  | 'member not found'
  | 'member exists' // a member with this id is already in the cluster
  | 'peer url exists'
  | 'learner not ready' // promoting a learner that has not caught up with the leader
  | 'unhealthy cluster' // a membership change that would leave the cluster without a quorum
  | 'closed'; // operation on a closed store

const messages: Record<StoreErrorCode, string> = {
  'compacted': 'etcdserver: mvcc: required revision has been compacted',
  'future revision': 'etcdserver: mvcc: required revision is a future revision',
  'lease not found': 'etcdserver: requested lease not found',
  'lease exists': 'etcdserver: lease already exists',
  'lease ttl too large': 'etcdserver: too large lease TTL',
  'duplicate key': 'etcdserver: duplicate key given in txn request',
  'too many operations': 'etcdserver: too many operations in txn request',
  'request too large': 'etcdserver: request is too large',
  'key too large': 'etcdserver: key is too large',
  'empty key': 'etcdserver: key is not provided',
  'value provided': 'etcdserver: value is provided',
  'lease provided': 'etcdserver: lease is provided',
  'key not found': 'etcdserver: key not found',
  'NOSPACE': 'etcdserver: mvcc: database space exceeded',
  'bad request': 'etcdserver: bad request',
  'watch canceled': 'etcdserver: watch canceled',
  'not leader': 'etcdserver: not leader',
  'timeout': 'etcdserver: request timed out',
  'too many requests': 'etcdserver: too many requests',
  'member not found': 'etcdserver: member not found',
  'member exists': 'etcdserver: member ID already exist',
  'peer url exists': 'etcdserver: Peer URLs already exists',
  'learner not ready': 'etcdserver: can only promote a learner member which is in sync with leader',
  'unhealthy cluster': 'etcdserver: unhealthy cluster',
  'closed': 'etcdserver: store is closed',
};

export class KeelsonError extends Error {
  readonly code: StoreErrorCode;
  /** For 'compacted': the compact revision the caller must read at or above. */
  compactRevision?: number;
  /** For 'future revision': the store's current revision. */
  currentRevision?: number;

  constructor(code: StoreErrorCode, detail?: string, fields?: { compactRevision?: number; currentRevision?: number }) {
    super(detail ? `${messages[code]} (${detail})` : messages[code]);
    this.name = 'KeelsonError';
    this.code = code;
    if (fields?.compactRevision !== undefined) this.compactRevision = fields.compactRevision;
    if (fields?.currentRevision !== undefined) this.currentRevision = fields.currentRevision;
  }
}

export function isKeelsonError(e: unknown, code?: StoreErrorCode): e is KeelsonError {
  return e instanceof KeelsonError && (code === undefined || e.code === code);
}

/** Plain-object form of an error, for carrying a result across a boundary (apply results, tests). */
export function errorFields(e: KeelsonError): { code: StoreErrorCode; message: string; compactRevision?: number; currentRevision?: number } {
  return { code: e.code, message: e.message, compactRevision: e.compactRevision, currentRevision: e.currentRevision };
}
