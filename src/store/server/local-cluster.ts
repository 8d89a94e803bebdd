// LocalClusterStore: a LocalKeyspaceStore (no Raft) dressed as a one-member
// ClusterStore, so the etcd API server can be served and tested before (and
// independently of) the replicated member. It is always the leader, its Raft
// term is 1, and membership changes only edit the list it reports: no member
// it "adds" ever joins. Tests and single-process tools only.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { AlarmMember, ClusterHeader, ClusterStore, MemberChangeResponse, SnapshotStream } from '../cluster.ts';
import { LocalKeyspaceStore, type LocalKeyspaceStoreOptions } from '../local.ts';
import type { AlarmType } from '../mvcc/requests.ts';
import type {
  CompactResponse, DeleteOptions, DeleteRangeResponse, HashKVResponse, LeaseGrantResponse, LeaseKeepAliveResponse,
  LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse, Member, MemberListResponse, PutOptions, PutResponse,
  RangeOptions, RangeResponse, StatusResponse, TxnRequest, TxnResponse, WatchStartOptions, WatchStream,
} from '../store.ts';
import { EtcdApiError } from './errors.ts';

export interface LocalClusterStoreOptions extends LocalKeyspaceStoreOptions {
  /** Default 1. */
  memberId?: number;
  /** Default 0x4b45454c (fixed, so tests can check it). */
  clusterId?: number;
  name?: string;
  peerUrls?: string[];
  clientUrls?: string[];
  /** Picks ids of added members. Default: random below 2^53. */
  newMemberId?: () => number;
}

export class LocalClusterStore implements ClusterStore {
  readonly local: LocalKeyspaceStore;
  readonly memberId: number;
  readonly clusterId: number;
  private readonly memberList: Member[];
  private readonly newMemberId: () => number;

  constructor(opts: LocalClusterStoreOptions) {
    this.local = new LocalKeyspaceStore(opts);
    this.memberId = opts.memberId ?? 1;
    this.clusterId = opts.clusterId ?? 0x4b45454c;
    this.memberList = [{ id: this.memberId, name: opts.name ?? 'local', peerUrls: opts.peerUrls ?? [], clientUrls: opts.clientUrls ?? [], isLearner: false }];
    this.newMemberId = opts.newMemberId ?? (() => 1 + Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 2)));
  }

  /** The advertised client URLs, once the server knows its port. */
  setClientUrls(urls: string[]): void {
    this.memberList[0].clientUrls = urls;
  }

  header(): ClusterHeader {
    return { clusterId: this.clusterId, memberId: this.memberId, revision: this.local.keyspace.revision(), raftTerm: 1 };
  }

  leaderId(): number {
    return this.memberId;
  }

  range(key: Buffer, opts?: RangeOptions): Promise<RangeResponse> { return this.local.range(key, opts); }
  put(key: Buffer, value: Buffer, opts?: PutOptions): Promise<PutResponse> { return this.local.put(key, value, opts); }
  deleteRange(key: Buffer, opts?: DeleteOptions): Promise<DeleteRangeResponse> { return this.local.deleteRange(key, opts); }
  txn(req: TxnRequest): Promise<TxnResponse> { return this.local.txn(req); }
  compact(revision: number, opts?: { physical?: boolean }): Promise<CompactResponse> { return this.local.compact(revision, opts); }
  watch(key: Buffer, opts?: WatchStartOptions): WatchStream { return this.local.watch(key, opts); }
  leaseGrant(ttl: number, id?: number): Promise<LeaseGrantResponse> { return this.local.leaseGrant(ttl, id); }
  leaseRevoke(id: number): Promise<LeaseRevokeResponse> { return this.local.leaseRevoke(id); }
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> { return this.local.leaseKeepAlive(id); }
  leaseTimeToLive(id: number, opts?: { keys?: boolean }): Promise<LeaseTimeToLiveResponse> { return this.local.leaseTimeToLive(id, opts); }
  leaseLeases(): Promise<LeaseLeasesResponse> { return this.local.leaseLeases(); }
  hashKV(revision?: number): Promise<HashKVResponse> { return this.local.hashKV(revision); }

  async status(): Promise<StatusResponse> {
    const s = await this.local.status();
    return { ...s, leader: this.memberId };
  }

  async members(): Promise<MemberListResponse> {
    return { header: this.header(), members: this.memberList.map((m) => ({ ...m })) };
  }

  private change(member?: Member): MemberChangeResponse {
    const out: MemberChangeResponse = { header: this.header(), members: this.memberList.map((m) => ({ ...m })) };
    if (member) out.member = { ...member };
    return out;
  }

  private find(id: number): Member {
    const m = this.memberList.find((x) => x.id === id);
    if (!m) throw new EtcdApiError(GrpcStatus.NOT_FOUND, 'etcdserver: member not found');
    return m;
  }

  async memberAdd(peerUrls: string[], opts: { isLearner?: boolean } = {}): Promise<MemberChangeResponse> {
    for (const u of peerUrls) {
      if (this.memberList.some((m) => m.peerUrls.includes(u))) throw new EtcdApiError(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists');
    }
    const m: Member = { id: this.newMemberId(), name: '', peerUrls: [...peerUrls], clientUrls: [], isLearner: opts.isLearner === true };
    this.memberList.push(m);
    return this.change(m);
  }

  async memberRemove(id: number): Promise<MemberChangeResponse> {
    const m = this.find(id);
    if (m.id === this.memberId) throw new EtcdApiError(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: re-configuration failed due to not enough started members');
    this.memberList.splice(this.memberList.indexOf(m), 1);
    return this.change();
  }

  async memberPromote(id: number): Promise<MemberChangeResponse> {
    const m = this.find(id);
    if (!m.isLearner) throw new EtcdApiError(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member');
    // The added member never runs, so it can never be in sync.
    throw new EtcdApiError(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member which is in sync with leader');
  }

  async memberUpdate(id: number, peerUrls: string[]): Promise<MemberChangeResponse> {
    this.find(id).peerUrls = [...peerUrls];
    return this.change();
  }

  async moveLeader(targetId: number): Promise<{ header: ClusterHeader }> {
    if (targetId === this.memberId) return { header: this.header() };
    this.find(targetId);
    throw new EtcdApiError(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: bad leader transferee');
  }

  async alarm(action: 'get' | 'activate' | 'deactivate', memberId: number, alarm?: AlarmType): Promise<{ header: ClusterHeader; alarms: AlarmMember[] }> {
    if (action === 'deactivate' && alarm && (memberId === 0 || memberId === this.memberId)) await this.local.disarm(alarm);
    if (action === 'activate') {
      // Only the store raises alarms (quota, corruption checks); an operator
      // may clear them but not invent them on a store without Raft.
      throw new EtcdApiError(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: alarms are raised by the store, not by request, on a local store');
    }
    const active = this.local.keyspace.alarms().filter((a) => alarm === undefined || a === alarm);
    return { header: this.header(), alarms: active.map((a) => ({ memberId: this.memberId, alarm: a })) };
  }

  async snapshot(): Promise<SnapshotStream> {
    const revision = this.local.keyspace.revision();
    const snap = await this.local.keyspace.snapshotStream();
    return { revision, index: snap.index, sizeBytes: snap.sizeBytes, chunks: snap.chunks };
  }

  close(): Promise<void> {
    return this.local.close();
  }
}
