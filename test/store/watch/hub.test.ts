import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { LocalKeyspaceStore, type LocalKeyspaceStoreOptions } from '../../../src/store/local.ts';
import { prefixEnd } from '../../../src/store/mvcc/requests.ts';
import type { WatchResponse, Watcher } from '../../../src/store/watch/hub.ts';
import { b, tempDir } from '../mvcc/helpers.ts';

interface Env {
  store: LocalKeyspaceStore;
  /** Runs scheduled catch-up steps until none is left (bounded). */
  run(): void;
  close(): Promise<void>;
}

function env(opts: Partial<LocalKeyspaceStoreOptions> = {}): Env {
  const dir = tempDir('keelson-watch-');
  const queue: (() => void)[] = [];
  const store = new LocalKeyspaceStore({ dir, leaseTickMs: 0, schedule: (fn) => queue.push(fn), ...opts });
  return {
    store,
    run() {
      for (let i = 0; i < 100_000 && queue.length > 0; i++) (queue.shift() as () => void)();
      assert.is(queue.length, 0, 'catch-up terminates');
    },
    async close() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Takes every response available now (running catch-up steps in between). */
async function take(e: Env, w: Watcher): Promise<WatchResponse[]> {
  const out: WatchResponse[] = [];
  for (let i = 0; i < 100_000; i++) {
    e.run();
    if (w.pending() === 0) break;
    out.push((await w.next()) as WatchResponse);
  }
  return out;
}

const flat = (rs: WatchResponse[]) => rs.flatMap((r) => r.events.map((ev) => `${ev.type}:${ev.kv.key}:${ev.kv.modRevision}`));

test('watch a key from now: events, prevKv, filters', async () => {
  const e = env();
  try {
    const s = e.store;
    const w = s.hub.watch({ key: b('a'), prevKv: true });
    const noPut = s.hub.watch({ key: b('a'), noPut: true });
    const other = s.hub.watch({ key: b('b') });
    await s.put(b('a'), b('1'));
    await s.put(b('a'), b('2'));
    await s.deleteRange(b('a'));
    const rs = await take(e, w);
    assert.equal(flat(rs), ['put:a:1', 'put:a:2', 'delete:a:3']);
    assert.is(rs[1].events[0].prevKv?.value.toString(), '1');
    assert.is(rs[2].events[0].prevKv?.value.toString(), '2');
    assert.equal(rs.map((r) => r.header.revision), [1, 2, 3]);
    assert.equal(flat(await take(e, noPut)), ['delete:a:3']);
    assert.equal(await take(e, other), []);
    const plain = s.hub.watch({ key: b('a') });
    await s.put(b('a'), b('3'));
    const [r] = await take(e, plain);
    assert.is(r.events[0].prevKv, undefined, 'no prevKv unless asked for');
  } finally {
    await e.close();
  }
});

test('all events of one revision arrive in one response; prefix watch', async () => {
  const e = env();
  try {
    const s = e.store;
    const w = s.watch(b('p/'), { rangeEnd: prefixEnd(b('p/')) });
    await s.txn({ compare: [], success: [{ op: 'put', key: b('p/1'), value: b('x') }, { op: 'put', key: b('q'), value: b('x') }, { op: 'put', key: b('p/2'), value: b('x') }], failure: [] });
    const rs = await take(e, w as Watcher);
    assert.is(rs.length, 1);
    assert.equal(flat(rs), ['put:p/1:1', 'put:p/2:1']);
  } finally {
    await e.close();
  }
});

test('a watch from the past catches up in bounded steps, then goes live, in order without duplicates', async () => {
  const e = env({ catchupScanMax: 3 });
  try {
    const s = e.store;
    for (let i = 0; i < 20; i++) await s.put(b(`k${i % 4}`), b(`${i}`));
    const w = s.hub.watch({ key: b('k'), rangeEnd: prefixEnd(b('k')), startRevision: 5, prevKv: true });
    assert.not.ok(w.synced);
    const first = await take(e, w);
    assert.ok(first.length >= 5, 'several catch-up responses');
    assert.ok(w.synced);
    await s.put(b('k1'), b('live'));
    const live = await take(e, w);
    const all = flat([...first, ...live]);
    assert.equal(all, [...Array.from({ length: 16 }, (_, i) => `put:k${(i + 4) % 4}:${i + 5}`), 'put:k1:21']);
    // prevKv is the version before the event's revision.
    assert.is(first[0].events[0].prevKv?.value.toString(), '0');
    // Every response's header revision covers its events.
    for (const r of [...first, ...live]) for (const ev of r.events) assert.ok(ev.kv.modRevision <= r.header.revision);
  } finally {
    await e.close();
  }
});

test('a slow watcher holds a bounded queue, falls back to catch-up, and loses nothing', async () => {
  const e = env({ watchBufferEventsMax: 5, catchupScanMax: 4 });
  try {
    const s = e.store;
    const w = s.hub.watch({ key: b('k'), rangeEnd: prefixEnd(b('k')) });
    let maxQueued = 0;
    for (let i = 0; i < 200; i++) {
      await s.put(b(`k${i % 7}`), b(`${i}`));
      if (i % 3 === 0) await s.deleteRange(b(`k${(i + 1) % 7}`));
      maxQueued = Math.max(maxQueued, w.queuedEvents);
      e.run();
    }
    assert.ok(maxQueued <= 5 + 4, `queue bounded (max ${maxQueued})`);
    assert.not.ok(w.synced, 'fell back to catch-up');
    const rs = await take(e, w);
    assert.ok(w.synced);
    const revs = rs.flatMap((r) => r.events.map((ev) => ev.kv.modRevision));
    const expect = Array.from({ length: s.keyspace.revision() }, (_, i) => i + 1);
    assert.equal([...new Set(revs)], expect, 'every revision, in order');
    assert.is(revs.length, new Set(rs.flatMap((r) => r.events.map((ev) => `${ev.kv.key}@${ev.kv.modRevision}`))).size, 'no duplicates');
  } finally {
    await e.close();
  }
});

test('watching compacted history, or falling behind a compaction, cancels with the compact revision', async () => {
  const e = env({ watchBufferEventsMax: 2, catchupScanMax: 2 });
  try {
    const s = e.store;
    for (let i = 0; i < 10; i++) await s.put(b('k'), b(`${i}`));
    await s.compact(6, { physical: true });
    const w = s.hub.watch({ key: b('k'), startRevision: 5 });
    const [r] = await take(e, w);
    assert.equal([r.canceled, r.compactRevision], [true, 6]);
    assert.is(await w.next(), null);
    // Resuming at exactly the compact revision works.
    const ok = s.hub.watch({ key: b('k'), startRevision: 6 });
    assert.equal(flat(await take(e, ok)), ['put:k:6', 'put:k:7', 'put:k:8', 'put:k:9', 'put:k:10']);
    const slow = s.hub.watch({ key: b('k') });
    for (let i = 0; i < 10; i++) await s.put(b('k'), b(`${i}`));
    await s.compact(18, { physical: true });
    const rs = await take(e, slow);
    const last = rs.at(-1) as WatchResponse;
    assert.equal([last.canceled, last.compactRevision], [true, 18]);
    assert.is(s.hub.size(), 1);
  } finally {
    await e.close();
  }
});

test('cancel ends the stream; progress notifications carry the revision', async () => {
  const e = env();
  try {
    const s = e.store;
    const w = s.hub.watch({ key: b('a'), progressNotify: true });
    await s.put(b('z'), b('1'));
    w.requestProgress();
    let rs = await take(e, w);
    assert.equal(rs.map((r) => [r.progressNotify, r.header.revision, r.events.length]), [[true, 1, 0]]);
    s.hub.progressTick(); // the progress response counted as sent
    s.hub.progressTick();
    rs = await take(e, w);
    assert.equal(rs.map((r) => [r.progressNotify, r.header.revision]), [[true, 1]]);
    const pending = w.next();
    w.cancel();
    assert.is(await pending, null);
    assert.is(s.hub.size(), 0);
    // Iteration ends after cancel.
    const it = s.hub.watch({ key: b('a') });
    await s.put(b('a'), b('x'));
    const seen: number[] = [];
    for await (const r of it) {
      seen.push(r.header.revision);
      it.cancel();
    }
    assert.equal(seen, [2]);
  } finally {
    await e.close();
  }
});

test('resume after a disconnect from the last seen revision + 1 gives exactly the rest', async () => {
  const e = env();
  try {
    const s = e.store;
    const w = s.hub.watch({ key: b('k'), rangeEnd: prefixEnd(b('k')) });
    for (let i = 0; i < 5; i++) await s.put(b(`k${i}`), b('x'));
    const got = await take(e, w);
    const lastRev = got[2].events.at(-1)?.kv.modRevision as number;
    w.cancel();
    for (let i = 5; i < 8; i++) await s.put(b(`k${i}`), b('x'));
    const r = s.hub.watch({ key: b('k'), rangeEnd: prefixEnd(b('k')), startRevision: lastRev + 1 });
    assert.equal(flat(await take(e, r)), ['put:k3:4', 'put:k4:5', 'put:k5:6', 'put:k6:7', 'put:k7:8']);
  } finally {
    await e.close();
  }
});

test('after a snapshot restore, synced watchers catch up on the revisions the snapshot brought', async () => {
  const a = env();
  const c = env();
  try {
    for (const e of [a, c]) for (let i = 0; i < 3; i++) await e.store.put(b(`k${i}`), b('same'));
    for (let i = 3; i < 8; i++) await c.store.put(b(`k${i}`), b('later'));
    const w = a.store.hub.watch({ key: b('k'), rangeEnd: prefixEnd(b('k')) });
    const snap = await c.store.keyspace.snapshot();
    await a.store.keyspace.restore(snap.index, snap.data);
    assert.equal(flat(await take(a, w)), ['put:k3:4', 'put:k4:5', 'put:k5:6', 'put:k6:7', 'put:k7:8']);
    assert.ok(w.synced);
  } finally {
    await a.close();
    await c.close();
  }
});

test.run();
