// Child process of commit-bounds.test.ts: applies N entries of B bytes each
// to a keyspace whose only commit trigger is the bound under test (the
// interval is an hour), waits one event-loop turn for a started commit to
// finish, then kills itself with SIGKILL, so that only committed batches
// survive. Entries go through apply(), as the Raft driver hands them over.
// Usage: tsx commit-bounds-child.ts <dir> <entries|bytes> <bound> <n> <valueBytes>
import { Keyspace } from '../../../src/store/mvcc/keyspace.ts';
import { encodeProposal } from '../../../src/store/mvcc/requests.ts';

const [dir, kind, bound, n, valueBytes] = process.argv.slice(2);
const ks = new Keyspace({
  dir: dir!,
  commitIntervalMs: 3_600_000,
  commitEntriesMax: kind === 'entries' ? Number(bound) : 1_000_000,
  commitBytesMax: kind === 'bytes' ? Number(bound) : 1 << 30,
});
const value = Buffer.alloc(Number(valueBytes), 0x61);
for (let i = 1; i <= Number(n); i++) {
  await ks.apply([{ index: i, term: 1, data: encodeProposal({ id: i, req: { op: 'put', key: Buffer.from(`k${i}`), value } }) }]);
}
await new Promise((r) => setTimeout(r, 50));
process.kill(process.pid, 'SIGKILL');
