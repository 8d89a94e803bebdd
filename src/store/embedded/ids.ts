// Member and cluster ids, derived deterministically from what every member
// is configured with (like etcd: a member's id from its peer URLs and the
// cluster token, the cluster's id from its members' ids), so that members
// started from the same initial cluster agree without talking.
import { createHash } from 'node:crypto';

/** A positive id below 2^53 from a sha256 of the parts. */
function idOf(parts: string[]): number {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  const id = (h.readUInt32BE(0) & 0x1fffff) * 0x100000000 + h.readUInt32BE(4);
  return id === 0 ? 1 : id;
}

export interface InitialMember {
  /** Taken as given when set; derived from name, peer URLs and cluster token otherwise. */
  id?: number;
  name: string;
  peerUrls: string[];
  clientUrls?: string[];
}

export function memberIdOf(m: InitialMember, clusterToken: string): number {
  if (m.id !== undefined) {
    if (!Number.isSafeInteger(m.id) || m.id <= 0) throw new Error(`keelson: member id ${m.id} must be a positive integer below 2^53`);
    return m.id;
  }
  return idOf(['member', m.name, ...[...m.peerUrls].sort(), clusterToken]);
}

export function clusterIdOf(memberIds: number[], clusterToken: string): number {
  return idOf(['cluster', ...[...memberIds].sort((a, b) => a - b).map(String), clusterToken]);
}

/** An id for a member added at run time (unique with overwhelming probability). */
export function newMemberId(peerUrls: string[], clusterId: number, nowMs: number): number {
  return idOf(['added', ...[...peerUrls].sort(), String(clusterId), String(nowMs), String(Math.random())]);
}
