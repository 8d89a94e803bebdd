// Lost writes, leases and convergence on known-good and known-bad histories.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkConvergence } from '../../../src/chaos/check/convergence.ts';
import { checkLeases } from '../../../src/chaos/check/lease.ts';
import { checkLostWrites } from '../../../src/chaos/check/lostwrite.ts';
import { cas, del, get, history, lease, put } from './helpers.ts';

test('lost write: surviving, overwritten and deleted writes pass', () => {
  const h = history({
    kv: [put('ka', '1', 0, 1, { revision: 2 }), put('ka', '2', 2, 3, { revision: 3 }), put('kb', '1', 0, 1, { revision: 4 }), del('kb', 1, 5, 6, { revision: 5 }),
      cas('kc', null, 'x', true, 0, 1, { revision: 6 })],
    finalState: { revision: 6, readMs: 10, keys: { ka: { value: '2', modRevision: 3 }, kb: null, kc: { value: 'x', modRevision: 6 } } },
  });
  const r = checkLostWrites(h);
  assert.equal(r.violations, []);
  assert.is(r.checked, 3);
});

test('lost write: an acknowledged write missing at the end is caught', () => {
  const older = history({
    kv: [put('ka', '1', 0, 1, { revision: 2 }), put('ka', '2', 2, 3, { revision: 3 })],
    finalState: { revision: 3, readMs: 10, keys: { ka: { value: '1', modRevision: 2 } } },
  });
  assert.ok(checkLostWrites(older).violations[0]!.message.includes('lost'));
  const gone = history({ kv: [cas('ka', null, '1', true, 0, 1, { revision: 2 })], finalState: { revision: 3, readMs: 10, keys: { ka: null } } });
  assert.ok(checkLostWrites(gone).violations[0]!.message.includes('nothing deleted it'));
  const changed = history({ kv: [put('ka', '1', 0, 1, { revision: 2 })], finalState: { revision: 3, readMs: 10, keys: { ka: { value: 'other', modRevision: 2 } } } });
  assert.is(checkLostWrites(changed).violations.length, 1);
});

test('lease: a key gone after its TTL and present before passes', () => {
  const h = history({
    kv: [put('kl', 'v', 100, 110, { lease: 7, revision: 2 }), get('kl', 'v', 1500, 1510), get('kl', null, 3500, 3510)],
    leases: [lease(7, 2, 0, 50, ['kl'], { keepAlives: [{ invokeMs: 1000, returnMs: 1010, outcome: 'ok', ttlS: 2 }] })],
  });
  assert.equal(checkLeases(h).violations, []);
});

test('lease: a key that expires early is caught (read and watch)', () => {
  const l = lease(7, 2, 0, 50, ['kl'], { keepAlives: [{ invokeMs: 1000, returnMs: 1010, outcome: 'ok', ttlS: 2 }] });
  const byRead = history({ kv: [put('kl', 'v', 100, 110, { lease: 7, revision: 2 }), get('kl', null, 2500, 2510)], leases: [l] });
  assert.ok(checkLeases(byRead).violations.some((v) => v.message.includes('already gone')));
  const byWatch = history({
    kv: [put('kl', 'v', 100, 110, { lease: 7, revision: 2 })], leases: [l],
    watches: [{ watcherId: 1, session: 0, key: 'k', rangeEnd: 'l', startRevision: 1, prevKv: false, openedMs: 0, end: 'closed',
      responses: [{ atMs: 120, events: [{ type: 'put', key: 'kl', value: 'v', modRevision: 2 }] }, { atMs: 1900, events: [{ type: 'delete', key: 'kl', modRevision: 3 }] }] }],
  });
  assert.ok(checkLeases(byWatch).violations.some((v) => v.message.includes('before the lease could expire')));
  // A revoke explains it.
  const revoked = history({ ...byRead, leases: [{ ...l, revoke: { invokeMs: 2000, returnMs: 2010, outcome: 'ok' } }] });
  assert.equal(checkLeases(revoked).violations, []);
});

test('lease: a key outliving its lease is caught; a fault in the window moves the bound', () => {
  const l = lease(7, 2, 0, 50, ['kl']);
  const h = history({ kv: [put('kl', 'v', 100, 110, { lease: 7, revision: 2 }), get('kl', 'v', 6000, 6010)], leases: [l] });
  assert.ok(checkLeases(h, { graceMs: 2000 }).violations.some((v) => v.message.includes('still present')));
  const withFault = history({ ...h, faults: [{ kind: 'kill-leader', startMs: 1000, endMs: 3000, detail: '' }] });
  assert.equal(checkLeases(withFault, { graceMs: 2000 }).violations, []);
  // No successful write between 2 s and 3.5 s: a leader change may hide there.
  const withGap = history({ ...h, kv: [...h.kv, put('kx', '1', 1900, 2000), put('kx', '2', 3400, 3500)] });
  assert.equal(checkLeases(withGap, { graceMs: 2000 }).violations, []);
});

test('convergence: equal hashes pass; a different hash, revision or a silent member is caught', () => {
  const m = (member: string, revision: number, hash: number) => ({ member, ok: true, revision, hash });
  assert.equal(checkConvergence([m('a', 9, 1), m('b', 9, 1), m('c', 9, 1)]).violations, []);
  assert.ok(checkConvergence([m('a', 9, 1), m('b', 9, 2), m('c', 9, 1)]).violations[0]!.message.includes('disagree'));
  assert.ok(checkConvergence([m('a', 9, 1), m('b', 8, 1)]).violations[0]!.message.includes('different revisions'));
  assert.is(checkConvergence([m('a', 9, 1), { member: 'b', ok: false, revision: 0, hash: 0, error: 'down' }]).violations.length, 1);
});

test.run();
