// Child process of the WAL crash test: appends entries from several concurrent
// appenders and prints each index once its sync() resolved ("ack <index>").
// The parent kills it with SIGKILL at a random moment and checks that every
// acknowledged entry survived. Usage: tsx wal-crash-child.ts <dir> <appenders>
import { Wal } from '../../src/native.ts';
import { encodeEntries, entryData } from './wal-helpers.ts';

const [dir, appendersArg] = process.argv.slice(2);
const wal = Wal.open({ dir: dir!, clusterId: 7, memberId: 1, segmentBytes: 64 * 1024 });
let next = wal.stats().lastIndex + 1;
const term = 1;
process.stdout.write(`ready ${next}\n`);

async function appender(): Promise<void> {
  for (;;) {
    const index = next++;
    wal.appendEntries(encodeEntries([{ index, term, data: entryData(index, term, 64) }]));
    await wal.sync();
    process.stdout.write(`ack ${index}\n`);
  }
}

const n = Number(appendersArg ?? '4');
await Promise.all(Array.from({ length: n }, () => appender()));
