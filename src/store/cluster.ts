// ClusterStore: the Store of one member of a replicated cluster, plus what the
// etcd v3 Cluster and Maintenance services need (membership, leadership,
// alarms, snapshots). The embedded member (src/store/embedded.ts) implements
// it; the gRPC server (src/store/server) serves any ClusterStore.
import type { AlarmType, Member, ResponseHeader, Store } from './store.ts';

/** Header fields etcd puts in every response, beyond the revision. */
export interface ClusterHeader extends ResponseHeader {
  clusterId: number;
  memberId: number;
  raftTerm: number;
}

export interface MemberChangeResponse {
  header: ClusterHeader;
  /** The added member (memberAdd only). */
  member?: Member;
  members: Member[];
}

export interface AlarmMember {
  memberId: number;
  alarm: AlarmType;
}

export interface SnapshotStream {
  /** The revision and Raft index the snapshot covers. */
  revision: number;
  index: number;
  /** Total bytes the chunks will add up to. */
  sizeBytes: number;
  /** The snapshot's bytes in bounded chunks (at most 1 MiB each). */
  chunks: AsyncIterable<Buffer>;
}

export interface ClusterStore extends Store {
  readonly memberId: number;
  readonly clusterId: number;
  /** Current header values (revision, raft term) for a response made now. */
  header(): ClusterHeader;
  /** Adds a member (as a learner when asked) through a Raft configuration change. */
  memberAdd(peerUrls: string[], opts?: { isLearner?: boolean }): Promise<MemberChangeResponse>;
  memberRemove(id: number): Promise<MemberChangeResponse>;
  memberPromote(id: number): Promise<MemberChangeResponse>;
  memberUpdate(id: number, peerUrls: string[]): Promise<MemberChangeResponse>;
  /** Transfers leadership to `targetId`; resolves when it leads (or rejects on timeout). */
  moveLeader(targetId: number): Promise<{ header: ClusterHeader }>;
  /** action 'get' lists active alarms; memberId 0 / alarm undefined with 'get' = all. */
  alarm(action: 'get' | 'activate' | 'deactivate', memberId: number, alarm?: AlarmType): Promise<{ header: ClusterHeader; alarms: AlarmMember[] }>;
  /** A consistent copy of this member's state, streamed. */
  snapshot(): Promise<SnapshotStream>;
  /** The current leader's id, 0 when none is known. */
  leaderId(): number;
}
