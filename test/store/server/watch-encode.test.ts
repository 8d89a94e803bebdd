// The hand-written WatchResponse encoding must decode, with the service's own
// protobuf definitions, to exactly what the generic path (eventOut + the
// proto-loader serializer) produces. Seeded random events (puts, deletes,
// with and without prevKv, empty and long keys and values, revisions and
// ids past 2^31 and up to 2^53 - 1); KEELSON_SEED reproduces a run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Event } from '../../../src/store/mvcc/keyspace.ts';
import type { KeyValue } from '../../../src/store/mvcc/requests.ts';
import { eventOut, serviceOf, type HeaderOut } from '../../../src/store/server/codec.ts';
import { encodeEvent, encodeWatchEvents } from '../../../src/store/server/watch-encode.ts';
import { seededRandom } from '../../../src/chaos/run.ts';

const watch = serviceOf('etcdserverpb', 'Watch').Watch!;

test('encodeWatchEvents decodes to what the generic serializer writes', () => {
  const seed = Number(process.env.KEELSON_SEED ?? 20261202);
  const rand = seededRandom(seed);
  const int = () => {
    const r = rand();
    if (r < 0.2) return 0;
    if (r < 0.5) return Math.floor(rand() * 200);
    if (r < 0.8) return Math.floor(rand() * 2 ** 31) + 2 ** 31;
    return Number.MAX_SAFE_INTEGER - Math.floor(rand() * 1000);
  };
  const bytes = () => {
    const r = rand();
    const n = r < 0.2 ? 0 : r < 0.6 ? Math.floor(rand() * 20) : Math.floor(rand() * 70_000);
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
    return b;
  };
  const kv = (): KeyValue => ({ key: bytes().length > 0 ? bytes() : Buffer.from('k'), createRevision: int(), modRevision: int(), version: int(), value: bytes(), lease: int() });
  try {
    for (let round = 0; round < 200; round++) {
      const events: Event[] = [];
      const n = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < n; i++) events.push({ type: rand() < 0.7 ? 'put' : 'delete', kv: kv(), ...(rand() < 0.5 ? { prevKv: kv() } : {}) });
      const header: HeaderOut = { cluster_id: int(), member_id: int(), revision: int(), raft_term: int() };
      const watchId = rand() < 0.3 ? 0 : int();
      const mine = watch.responseDeserialize(encodeWatchEvents(header, watchId, events));
      const generic = watch.responseDeserialize(watch.responseSerialize({ header, watch_id: watchId, events: events.map(eventOut), canceled: false, compact_revision: 0, cancel_reason: '' }));
      assert.equal(mine, generic, `round ${round}`);
      // Memoized per KeyValue: the same bytes again, and a copy without
      // prevKv (as the hub makes for a watcher that did not ask) differs.
      for (const e of events) {
        assert.ok(encodeEvent(e) === encodeEvent(e));
        if (e.prevKv) assert.ok(!encodeEvent({ type: e.type, kv: e.kv }).equals(encodeEvent(e)));
      }
    }
  } catch (e) {
    console.error(`watch-encode test failed: seed=${seed} (rerun with KEELSON_SEED=${seed})`);
    throw e;
  }
});

test.run();
