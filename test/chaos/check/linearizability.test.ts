import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkLinearizability } from '../../../src/chaos/check/linearizability.ts';
import type { KvOp } from '../../../src/chaos/history.ts';
import { cas, del, get, put } from './helpers.ts';

const ok = (ops: KvOp[]) => {
  const r = checkLinearizability(ops);
  assert.equal(r.violations, [], JSON.stringify(r.violations, null, 1));
  assert.equal(r.inconclusive, []);
};
const bad = (ops: KvOp[]) => {
  const r = checkLinearizability(ops);
  assert.is(r.violations.length, 1, 'expected one violation');
  return r.violations[0]!;
};

test('sequential puts, reads, deletes and CAS are linearizable', () => {
  ok([
    get('a', null, 0, 1),
    put('a', '1', 2, 3),
    get('a', '1', 4, 5),
    cas('a', '1', '2', true, 6, 7),
    cas('a', '1', '3', false, 8, 9),
    get('a', '2', 10, 11),
    del('a', 1, 12, 13),
    del('a', 0, 14, 15),
    cas('a', null, '4', true, 16, 17),
    get('a', '4', 18, 19),
  ]);
});

test('concurrent operations may take effect in either order', () => {
  ok([
    put('a', '1', 0, 10),
    put('a', '2', 1, 9),
    get('a', '1', 2, 12), // put 2 then put 1, read in between or after
    get('a', '1', 13, 14),
  ]);
});

test('an unknown write may take effect late or never', () => {
  ok([
    put('a', '1', 0, 1),
    put('a', 'x', 2, Infinity),
    get('a', '1', 3, 4),
    get('a', 'x', 50, 51), // took effect long after its client gave up
    put('a', '2', 60, 61),
    get('a', '2', 62, 63),
  ]);
  ok([put('a', '1', 0, 1), put('a', 'x', 2, Infinity), get('a', '1', 100, 101)]);
});

test('failed operations never happened', () => {
  ok([put('a', '1', 0, 1), put('a', 'x', 2, 3, { outcome: 'failed' }), get('a', '1', 4, 5)]);
});

test('a stale read is caught and the window is small', () => {
  const v = bad([
    put('b', '0', 0, 1),
    get('b', '0', 2, 3),
    put('a', '1', 0, 1),
    put('a', '2', 2, 3),
    get('a', '2', 4, 5),
    put('a', '3', 6, 7),
    get('a', '2', 8, 9), // stale: 3 was acknowledged before this read began
    get('a', '3', 10, 11),
  ]);
  assert.ok(v.message.includes('key a'));
  assert.ok(v.detail!.length <= 3, v.detail!.join('\n'));
  assert.ok(v.detail!.some((l) => l.includes('get a -> 2') && l.includes('[8.0')), v.detail!.join('\n'));
});

test('a lost write (acknowledged, then read absent) is caught', () => {
  bad([put('a', '1', 0, 1), get('a', null, 2, 3)]);
});

test('a read of a value never written is caught', () => {
  bad([put('a', '1', 0, 1), get('a', '7', 2, 3)]);
});

test('a CAS that succeeded against the wrong value is caught', () => {
  bad([put('a', '1', 0, 1), cas('a', '2', '3', true, 2, 3)]);
});

test('a CAS that failed although the value matched is caught', () => {
  bad([put('a', '1', 0, 1), cas('a', '1', '3', false, 2, 3)]);
});

test('a delete that reports the wrong count is caught', () => {
  bad([put('a', '1', 0, 1), del('a', 0, 2, 3)]);
});

test('hitting the step bound is inconclusive, not ok', () => {
  const ops: KvOp[] = [];
  for (let i = 0; i < 30; i++) ops.push(put('a', String(i), 0, 100));
  ops.push(get('a', '29', 101, 102));
  const r = checkLinearizability(ops, { stepsMax: 5 });
  assert.is(r.violations.length, 0);
  assert.is(r.inconclusive.length, 1);
});

// Seeded randomized histories from a real sequential register: every one is
// linearizable; one read changed to a value nobody wrote is not.
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomHistory(seed: number, n: number, reveal = false): KvOp[] {
  const r = rng(seed);
  let value: string | null = null;
  const ops: KvOp[] = [];
  // Each op takes effect at time i*10 (its linearization point); its interval
  // reaches up to 35 ms either side, so ops overlap several neighbours.
  for (let i = 0; i < n; i++) {
    const at = i * 10;
    const t0 = at - r() * 35, t1 = at + r() * 35;
    const x = r();
    const client = Math.floor(r() * 5);
    if (x < 0.3) { value = `v${i}`; ops.push(put('a', value, t0, t1, { client })); }
    else if (x < 0.4) { const d = value === null ? 0 : 1; const prev = value; value = null; ops.push(del('a', d, t0, t1, { client, ...(reveal ? { readValue: prev } : {}) })); }
    else if (x < 0.55) {
      const expect = r() < 0.5 ? value : 'nope';
      const okc = expect === value;
      const seen = value;
      if (okc) value = `c${i}`;
      ops.push(cas('a', expect, `c${i}`, okc, t0, t1, { client, ...(reveal && !okc ? { readValue: seen } : {}) }));
    } else if (x < 0.6) {
      // unknown put that took effect
      value = `u${i}`; ops.push(put('a', value, t0, Infinity, { client }));
    } else ops.push(get('a', value, t0, t1, { client }));
  }
  return ops;
}

test('many pending unknown deletes stay cheap, and one that explains a read is used', () => {
  const ops: KvOp[] = [put('a', '0', 0, 1)];
  for (let i = 0; i < 40; i++) ops.push(del('a', 0, 2 + i, Infinity, { client: i }));
  for (let i = 0; i < 200; i++) {
    const t = 100 + i * 10;
    ops.push(put('a', `p${i}`, t, t + 3, { client: 50 }), get('a', `p${i}`, t + 4, t + 5, { client: 51 }));
  }
  ops.push(get('a', null, 3000, 3001, { client: 52 })); // one of the unknown deletes took effect late
  const r = checkLinearizability(ops, { stepsMax: 200_000 });
  assert.equal(r.violations, []);
  assert.equal(r.inconclusive, []);
});

test('seeded random linearizable histories pass; a corrupted read fails', () => {
  const base = Number(process.env.CHAOS_TEST_SEED ?? 1);
  for (let s = base; s < base + 30; s++) {
    const ops = randomHistory(s, 120, s % 2 === 0);
    const r = checkLinearizability(ops);
    assert.equal(r.violations.length, 0, `seed ${s}: ${JSON.stringify(r.violations)}`);
    assert.equal(r.inconclusive.length, 0, `seed ${s}: inconclusive`);
    const gets = ops.filter((o) => o.kind === 'get');
    if (gets.length === 0) continue;
    const victim = gets[Math.floor(gets.length / 2)]!;
    const corrupted = ops.map((o) => (o === victim ? { ...o, readValue: 'never-written' } : o));
    const r2 = checkLinearizability(corrupted);
    assert.equal(r2.violations.length, 1, `seed ${s}: corrupted read not caught`);
    assert.ok(r2.violations[0]!.detail!.some((l) => l.includes('never-written')), `seed ${s}: window misses the bad read`);
  }
});

test('an unknown write that only a failed CAS observed is kept', () => {
  ok([
    put('a', '1', 0, 1),
    put('a', 'u', 2, Infinity),
    cas('a', '1', 'x', false, 5, 6, { readValue: 'u' }),
    get('a', 'u', 7, 8),
  ]);
  bad([put('a', '1', 0, 1), cas('a', '1', 'x', false, 5, 6, { readValue: 'zzz' })]);
});

test('many pending unknown writes nobody observed stay cheap', () => {
  const ops: KvOp[] = [put('a', '0', 0, 1)];
  for (let i = 0; i < 60; i++) ops.push(put('a', `u${i}`, 2 + i, Infinity, { client: i }));
  for (let i = 0; i < 200; i++) {
    const t = 100 + i * 10;
    ops.push(put('a', `p${i}`, t, t + 3), get('a', `p${i}`, t + 4, t + 5), cas('a', 'nope', 'q', false, t + 6, t + 7, { readValue: `p${i}` }));
  }
  const r = checkLinearizability(ops, { stepsMax: 100_000 });
  assert.equal(r.violations, []);
  assert.equal(r.inconclusive, []);
});

test.run();
