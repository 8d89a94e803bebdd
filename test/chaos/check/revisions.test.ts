import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkReads, checkWatches } from '../../../src/chaos/check/revisions.ts';
import type { History } from '../../../src/chaos/history.ts';
import { de, get, history, pe, put, session } from './helpers.ts';

// The true past of these tests: rev 2 put ka=1, 3 put kb=1, 4 put ka=2 and kb=2 (one txn), 5 delete ka, 6 put ka=3.
const writes = () => [
  put('ka', '1', 0, 1, { revision: 2 }),
  put('kb', '1', 2, 3, { revision: 3 }),
  put('ka', '3', 10, 11, { revision: 6 }),
];
const full = () => [[pe('ka', '1', 2), pe('kb', '1', 3)], [pe('ka', '2', 4), pe('kb', '2', 4)], [de('ka', 5)], [pe('ka', '3', 6)]];

const violations = (h: History) => checkWatches(h).violations;

test('a complete, ordered watch passes', () => {
  assert.equal(violations(history({ kv: writes(), watches: [session(1, 2, full())], denseRevisions: true })), []);
});

test('a watch from a later revision and a resumed watch pass', () => {
  const h = history({
    kv: writes(),
    denseRevisions: true,
    watches: [
      session(1, 2, full()),
      session(2, 4, [[pe('ka', '2', 4), pe('kb', '2', 4)]], { end: 'error' }),
      session(2, 5, [[de('ka', 5)], [pe('ka', '3', 6)]], { session: 1 }),
    ],
  });
  assert.equal(violations(h), []);
});

test('a reordered event is caught', () => {
  const v = violations(history({ kv: writes(), watches: [session(1, 2, [[pe('ka', '1', 2), pe('kb', '1', 3)], [de('ka', 5)], [pe('ka', '2', 4), pe('kb', '2', 4)], [pe('ka', '3', 6)]])] }));
  assert.ok(v.some((x) => x.message.includes('out of order')), JSON.stringify(v));
});

test('a missing event is caught (against another watcher and against an acknowledged write)', () => {
  const w = full();
  w[3] = []; // drop put ka=3 @6 ...
  w.push([pe('kb', '9', 7)]); // ... but go past it
  const v = violations(history({ kv: writes(), watches: [session(1, 2, w)] }));
  assert.ok(v.some((x) => x.message.includes('missing') && x.detail!.some((d) => d.includes('ka=3 @6'))), JSON.stringify(v));
  // Without any other source, density catches it.
  const v2 = violations(history({ watches: [session(1, 2, [[pe('ka', '1', 2)], [pe('ka', '1', 4)]])], denseRevisions: true }));
  assert.ok(v2.some((x) => x.message.includes('missing') && x.detail!.some((d) => d.includes('revision 3'))), JSON.stringify(v2));
});

test('a gap across a reconnect is caught', () => {
  const h = history({
    kv: writes(),
    watches: [
      session(1, 2, full()),
      session(2, 2, [[pe('ka', '1', 2), pe('kb', '1', 3)]], { end: 'error' }),
      session(2, 4, [[de('ka', 5)], [pe('ka', '3', 6)]], { session: 1 }), // the store skipped rev 4 after the resume
    ],
  });
  const v = violations(h);
  assert.ok(v.some((x) => x.message.includes('watcher 2 session 1') && x.message.includes('missing')), JSON.stringify(v));
});

test('a duplicated event is caught', () => {
  const w = full();
  w.splice(2, 0, [pe('kb', '2', 4)]);
  const v = violations(history({ kv: writes(), watches: [session(1, 2, w)] }));
  assert.ok(v.some((x) => x.message.includes('duplicate')), JSON.stringify(v));
});

test('a revision split over two responses is caught', () => {
  const v = violations(history({ kv: writes(), watches: [session(1, 2, [[pe('ka', '1', 2), pe('kb', '1', 3)], [pe('ka', '2', 4)], [pe('kb', '2', 4)], [de('ka', 5)], [pe('ka', '3', 6)]])] }));
  assert.ok(v.some((x) => x.message.includes('not atomic')), JSON.stringify(v));
});

test('watchers that disagree on a revision are caught', () => {
  const w = full();
  w[3] = [pe('ka', 'evil', 6)];
  const v = violations(history({ watches: [session(1, 2, full()), session(2, 2, w)] }));
  assert.ok(v.some((x) => x.message.includes('revision 6')), JSON.stringify(v));
});

test('prev_kv: correct passes, wrong or missing is caught', () => {
  const good = [[pe('ka', '1', 2, null), pe('kb', '1', 3, null)], [pe('ka', '2', 4, { value: '1', modRevision: 2 }), pe('kb', '2', 4, { value: '1', modRevision: 3 })],
    [de('ka', 5, { value: '2', modRevision: 4 })], [pe('ka', '3', 6, null)]];
  assert.equal(violations(history({ kv: writes(), watches: [session(1, 2, good, { prevKv: true })], denseRevisions: true })), []);
  const wrong = structuredClone(good);
  wrong[2]![0]!.prevKv = { value: '1', modRevision: 2 };
  const v = violations(history({ kv: writes(), watches: [session(1, 2, wrong, { prevKv: true })] }));
  assert.ok(v.some((x) => x.message.includes('prev_kv') && x.message.includes('previous version is 2 @4')), JSON.stringify(v));
  const missing = structuredClone(good);
  missing[1]![1]!.prevKv = null;
  assert.ok(violations(history({ kv: writes(), watches: [session(1, 2, missing, { prevKv: true })] })).some((x) => x.message.includes('without prev_kv')));
  const phantom = structuredClone(good);
  phantom[3]![0]!.prevKv = { value: '2', modRevision: 4 };
  assert.ok(violations(history({ kv: writes(), watches: [session(1, 2, phantom, { prevKv: true })] })).some((x) => x.message.includes('did not exist')));
});

test('reads at a revision: consistent passes, stale or phantom is caught', () => {
  const w = [session(1, 2, full())];
  const reads = [
    get('ka', '1', 0, 1, { revision: 3, readModRevision: 2 }),
    get('ka', '2', 0, 1, { revision: 4, readModRevision: 4, serializable: true }),
    get('ka', null, 0, 1, { revision: 5, readModRevision: 0 }),
  ];
  assert.equal(checkReads(history({ kv: [...writes(), ...reads], watches: w, denseRevisions: true })).violations, []);
  const stale = get('ka', '1', 0, 1, { revision: 5, readModRevision: 2, serializable: true });
  const v = checkReads(history({ kv: [...writes(), stale], watches: w })).violations;
  assert.ok(v.some((x) => x.message.includes('stale')), JSON.stringify(v));
  const phantom = get('kb', 'zzz', 0, 1, { revision: 4, readModRevision: 3 });
  assert.ok(checkReads(history({ kv: [...writes(), phantom], watches: w })).violations.some((x) => x.message.includes('revision 3 was put=1')));
  const absent = get('kb', null, 0, 1, { revision: 6, readModRevision: 0 });
  assert.ok(checkReads(history({ kv: [...writes(), absent], watches: w })).violations.some((x) => x.message.includes('absent')));
});

test('outside any watch coverage an unseen version is not a violation; inside it is', () => {
  // The watch covers revisions 2..3 only; a read of a version written at 9 (by an unknown-outcome put) is fine.
  const w = [session(1, 2, [[pe('ka', '1', 2), pe('kb', '1', 3)]])];
  const late = get('ka', 'u', 0, 1, { revision: 9, readModRevision: 9 });
  assert.equal(checkReads(history({ kv: [late], watches: w, denseRevisions: true })).violations, []);
  const absentLater = get('kb', null, 0, 1, { revision: 9, readModRevision: 0 });
  assert.equal(checkReads(history({ kv: [absentLater], watches: w, denseRevisions: true })).violations, []);
  const phantom = get('ka', 'zzz', 0, 1, { revision: 3, readModRevision: 3 });
  assert.ok(checkReads(history({ kv: [phantom], watches: w, denseRevisions: true })).violations.length > 0);
});

test.run();
