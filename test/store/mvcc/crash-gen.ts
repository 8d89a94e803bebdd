// Deterministic log entries and batch sizes for the crash test: both the
// child and the checker derive them from the entry index alone.
import type { CommittedEntry } from '../../../src/store/raft/state-machine.ts';
import { encodeProposal, type Request } from '../../../src/store/mvcc/requests.ts';

function mix(n: number): number {
  let x = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Size of the batch that starts at this index. */
export function batchSize(first: number): number {
  return 1 + (mix(first) % 24);
}

export function requestFor(index: number): Request | null {
  const r = mix(index * 7 + 1) % 100;
  const key = Buffer.from(`k${mix(index) % 60}`);
  if (r < 3) return null; // an empty entry (a new leader's no-op)
  if (r < 60) return { op: 'put', key, value: Buffer.alloc(10 + (mix(index + 3) % 300), index % 251) };
  if (r < 75) return { op: 'deleteRange', key, rangeEnd: Buffer.from(`k${mix(index) % 60}~`) };
  if (r < 97) {
    return {
      op: 'txn',
      compare: [{ key, target: 'version', result: 'greater', number: 1 }],
      success: [{ op: 'put', key: Buffer.from(`t${index % 13}`), value: Buffer.from(`s${index}`) }, { op: 'deleteRange', key: Buffer.from('k5') }],
      failure: [{ op: 'put', key: Buffer.from(`f${index % 11}`), value: Buffer.from(`f${index}`) }],
    };
  }
  return { op: 'compact', revision: Math.floor(index / 2) };
}

export function entryFor(index: number): CommittedEntry {
  const req = requestFor(index);
  return { index, term: 1, data: req === null ? Buffer.alloc(0) : encodeProposal({ id: index, req }) };
}
