// Child process of crash.test.ts: applies deterministic batches to a keyspace
// as fast as it can (pipelined applies, physical compaction in between) until
// it is killed. Usage: tsx crash-child.ts <dir>
import { Keyspace } from '../../../src/store/mvcc/keyspace.ts';
import { batchSize, entryFor } from './crash-gen.ts';

// Small commits, so that kills land before, inside and after many of them.
const ks = new Keyspace({ dir: process.argv[2], compactionBatchKeysMax: 5, commitEntriesMax: 37 });
let next = ks.appliedIndex() + 1;
process.stdout.write(`ready ${next - 1}\n`);
const inflight: Promise<void>[] = [];
for (;;) {
  const n = batchSize(next);
  const batch = [];
  for (let i = 0; i < n; i++) batch.push(entryFor(next + i));
  next += n;
  inflight.push(ks.apply(batch));
  if (inflight.length >= 4) await inflight.shift();
  if (next % 7 === 0) ks.compactStep();
}
