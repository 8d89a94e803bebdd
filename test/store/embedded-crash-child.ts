// Child process of embedded-crash.test.ts: opens an EmbeddedStore member (a
// single member, or member 0 of a 3-member in-process cluster) and puts keys
// from many concurrent callers until killed, printing "ack <n>" for every
// acknowledged put. Usage: tsx embedded-crash-child.ts <dir> <single|cluster> <startAt>
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { EmbeddedCluster } from '../../src/store/embedded/cluster.ts';

const [dir, mode, startAt] = process.argv.slice(2);
let store: EmbeddedStore;
if (mode === 'single') {
  store = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0 });
} else {
  const c = new EmbeddedCluster({ size: 3, dir, tickMs: 25, leaseTickMs: 0 });
  store = await c.waitForLeader();
}
let next = Number(startAt);
process.stdout.write('ready\n');
const callers = 32;
await Promise.all(Array.from({ length: callers }, async () => {
  for (;;) {
    const n = next++;
    await store.put(Buffer.from(`key-${n}`), Buffer.alloc(256, n & 0xff));
    process.stdout.write(`ack ${n}\n`);
  }
}));
