// Each check of the simulation's checker (test/sim/sim.ts) fires on a
// hand-made violation, including those the injected core bug of sim.test.ts
// never reaches. Members are manipulated directly; no event runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { messageTypes } from '../../src/native.ts';
import type { Entry } from '../native/raft-harness.ts';
import { InvariantViolation, Simulation, type SimMember } from './sim.ts';

function fresh(): { sim: Simulation; a: SimMember; b: SimMember } {
  const sim = new Simulation({ seed: 1, members: 3, steps: 0, profile: 'none' });
  sim.phase = 'script';
  return { sim, a: sim.members.get(1)!, b: sim.members.get(2)! };
}

const entry = (index: number, term: number, data: string): Entry => ({ index, term, type: 0, data: Buffer.from(data) });

function violates(fn: () => void, what: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, InvariantViolation);
    assert.match((e as Error).message, what);
    return;
  }
  assert.unreachable(`expected a violation matching ${what}`);
}

test('election safety: two leaders of one term', () => {
  const { sim, a, b } = fresh();
  sim.recordLeader(a, 3);
  sim.recordLeader(a, 3);
  sim.recordLeader(b, 4);
  violates(() => sim.recordLeader(b, 3), /election safety: members 1 and 2 both lead term 3/);
});

test('log matching: a different entry, or a different previous term, at the same index and term', () => {
  const { sim, a, b } = fresh();
  a.written.log = [entry(1, 1, 'x'), entry(2, 2, 'y')];
  sim.checkLogMatching(a, a.written, 1);
  sim.checkLogMatching(a, a.written, 2);
  b.written.log = [entry(1, 1, 'x'), entry(2, 2, 'z')];
  sim.checkLogMatching(b, b.written, 1);
  violates(() => sim.checkLogMatching(b, b.written, 2), /log matching: member 2 holds a different entry at index 2 term 2/);
  const c = fresh();
  c.a.written.log = [entry(1, 1, 'x'), entry(2, 2, 'y')];
  c.sim.checkLogMatching(c.a, c.a.written, 2);
  c.b.written.log = [entry(1, 2, 'w'), entry(2, 2, 'y')];
  violates(() => c.sim.checkLogMatching(c.b, c.b.written, 2), /after term 2, another log after term 1/);
});

test('state machine safety: different entries applied at one index, also across lives', () => {
  const { sim, a, b } = fresh();
  sim.onApply(a, entry(1, 1, 'x'));
  violates(() => sim.onApply(b, entry(1, 1, 'y')), /state machine safety: member 2 .* applies a different entry/);
  const c = fresh();
  c.sim.onApply(c.a, entry(1, 1, 'x'));
  c.sim.onApply(c.a, entry(2, 1, 'y'));
  c.b.smDigest = 'forged';
  c.b.smIndex = 1;
  violates(() => c.sim.onApply(c.b, entry(2, 1, 'y')), /the same entry onto a different state/);
});

test('leader completeness: a new leader without a committed entry', () => {
  const { sim, a, b } = fresh();
  sim.stats.maxTerm = 2;
  sim.onApply(a, entry(1, 2, 'x'));
  b.written.log = [entry(1, 1, 'other')];
  sim.onLeader(b, 2); // the entry may have been committed in term 2 itself
  violates(() => sim.onLeader(b, 3), /leader completeness: member 2 leads term 3 without the entry committed at index 1/);
});

test('linearizable reads: a read index below what was committed before the read', () => {
  const { sim, a } = fresh();
  sim.stats.maxCommit = 7;
  sim.readsPending.set('r1', { minIndex: 7, at: 0 });
  sim.readsPending.set('r2', { minIndex: 7, at: 0 });
  sim.checkRead(a, 7, Buffer.from('r1'));
  violates(() => sim.checkRead(a, 6, Buffer.from('r2')), /linearizability: member 1 serves read r2 at index 6/);
});

test('durability: acks and votes before they are synced; a restart whose commit the durable log does not back', () => {
  const { sim, a } = fresh();
  a.synced.hardState = { term: 3, vote: 2, commit: 0 };
  a.synced.log = [entry(1, 3, 'x')];
  sim.checkDurableBeforeSend(a, messageTypes.MsgAppResp, false, 3, 1, 2);
  sim.checkDurableBeforeSend(a, messageTypes.MsgAppResp, true, 3, 9, 2); // a rejection promises nothing
  sim.checkDurableBeforeSend(a, messageTypes.MsgAppResp, false, 2, 9, 2); // an older term's ack: see checkDurableBeforeSend
  violates(() => sim.checkDurableBeforeSend(a, messageTypes.MsgAppResp, false, 3, 2, 2), /acknowledges index 2 to 2 with only 1 synced/);
  sim.checkDurableBeforeSend(a, messageTypes.MsgVoteResp, false, 3, 0, 2);
  violates(() => sim.checkDurableBeforeSend(a, messageTypes.MsgVoteResp, false, 3, 0, 3), /grants its term-3 vote to 3 before the vote is synced/);
  violates(() => sim.checkDurableBeforeSend(a, messageTypes.MsgVoteResp, false, 4, 0, 2), /grants its term-4 vote to 2 before the vote is synced/);
  sim.checkDurableBeforeSend(a, messageTypes.MsgVoteResp, false, 2, 0, 3); // the synced term 3 is past it: no second vote in term 2
  a.synced.hardState = { term: 3, vote: 2, commit: 2 };
  violates(() => sim.checkRestoredDisk(a), /restarts with commit 2 beyond its durable log 1/);
  const c = fresh();
  c.sim.onApply(c.a, entry(1, 3, 'x'));
  c.b.synced.hardState = { term: 3, vote: 2, commit: 1 };
  c.b.synced.log = [entry(1, 3, 'y')];
  violates(() => c.sim.checkRestoredDisk(c.b), /restarts with a committed entry at 1 that differs/);
});

test.run();
