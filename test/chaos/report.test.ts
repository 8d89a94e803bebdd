// The fault plan replays from its seed; the report's availability numbers and timeline.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planFaults, faultKinds } from '../../src/chaos/faults.ts';
import { availability, buildReport, quantile, readHistory, summaryText, timelineSvg, writeHistory } from '../../src/chaos/report.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { seededRandom } from '../../src/chaos/run.ts';
import type { History } from '../../src/chaos/history.ts';

test('the fault plan is a function of the seed and stays inside the duration', () => {
  const a = planFaults(faultKinds, 120_000, seededRandom(7));
  const b = planFaults(faultKinds, 120_000, seededRandom(7));
  const c = planFaults(faultKinds, 120_000, seededRandom(8));
  assert.equal(a, b);
  assert.not.equal(a, c);
  assert.ok(a.length >= 5);
  const planned = a.reduce((t, s) => t + s.quietMs + s.holdMs + 2500, 0);
  assert.ok(planned <= 118_000, `plan runs ${planned} ms`);
  assert.equal(planFaults([], 60_000, seededRandom(1)), []);
  assert.ok(planFaults(['kill-leader'], 60_000, seededRandom(1)).every((s) => s.kind === 'kill-leader'));
  for (let seed = 1; seed <= 20; seed++) {
    const kinds = new Set(planFaults(['kill-leader', 'partition'], 30_000, seededRandom(seed)).map((s) => s.kind));
    assert.is(kinds.size, 2, `seed ${seed}: a 30 s plan covers both kinds`);
  }
});

test('availability: time from each leader kill to the first write invoked after it that succeeded', () => {
  const w = (id: number, t0: number, t1: number) => ({ id, client: 0, kind: 'put' as const, key: 'k', value: `${id}`, invokeMs: t0, returnMs: t1, outcome: 'ok' as const });
  const h: History = {
    kv: [w(1, 0, 5), w(2, 900, 2100), w(3, 1200, 1500), w(4, 5000, 5200), { ...w(5, 5100, Infinity), outcome: 'unknown' }],
    watches: [], leases: [], prefix: 'k',
    faults: [
      { kind: 'kill-leader', startMs: 1000, endMs: 2000, detail: 'SIGKILL leader m1' },
      { kind: 'kill-leader', startMs: 4000, endMs: 4500, detail: 'SIGKILL leader m2' },
      { kind: 'kill-leader', startMs: 4200, endMs: 4300, detail: 'skipped: no leader' },
      { kind: 'partition', startMs: 100, endMs: 200, detail: '' },
    ],
  };
  const a = availability(h);
  assert.equal(a.recoveriesMs, [500, 1200]);
  assert.is(a.p50Ms, 500);
  assert.is(a.maxMs, 1200);
  h.faults.push({ kind: 'kill-leader', startMs: 6000, endMs: 6100, detail: 'SIGKILL leader m3' });
  const b = availability(h);
  assert.equal(b.recoveriesMs, [500, 1200, null]);
  assert.is(b.p99Ms, null, 'a kill writes never recovered from has no p99');
  assert.is(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
  assert.is(quantile([1, 2, 3, 4], 0.5), 2);

  const report = buildReport({ target: 't', members: 3, seed: 1, durationS: 7, faults: ['kill-leader'], endpoints: [], plan: [], notes: [] }, h, []);
  const svg = timelineSvg(report);
  assert.ok(svg.startsWith('<svg') && svg.trim().endsWith('</svg>'));
  assert.ok(svg.includes('SIGKILL leader m1'), 'faults are marked with their details');
  assert.is((svg.match(/<polyline/g) ?? []).length, 4);
  assert.ok(summaryText(report).includes('3 leader kills'));
});

test('availability: each leader kill split into detection, election and client recovery, measured from the SIGKILL', () => {
  const w = (id: number, t0: number, t1: number) => ({ id, client: 0, kind: 'put' as const, key: 'k', value: `${id}`, invokeMs: t0, returnMs: t1, outcome: 'ok' as const });
  const h: History = {
    // #2 was invoked after the fault started but before the SIGKILL: it does not count.
    kv: [w(1, 0, 5), w(2, 1005, 1010), w(3, 1020, 2500), w(4, 6100, 6300)],
    watches: [], leases: [], prefix: 'k',
    faults: [
      { kind: 'kill-leader', startMs: 1000, endMs: 2000, detail: 'SIGKILL leader m1', election: { killMs: 1010, oldTerm: 2, detectMs: 2210, electedMs: 2230, newLeader: 'm2', newTerm: 3, polls: 100 } },
      // Not observed: the split has no parts, the total still counts.
      { kind: 'kill-leader', startMs: 6000, endMs: 7000, detail: 'SIGKILL leader m2', election: { killMs: 6000, oldTerm: 3, polls: 4 } },
    ],
  };
  const a = availability(h);
  assert.equal(a.recoveriesMs, [1490, 300]);
  assert.equal(a.kills[0], { atMs: 1010, totalMs: 1490, detectionMs: 1200, electionMs: 20, clientsMs: 270, newLeader: 'm2' });
  assert.equal(a.kills[1], { atMs: 6000, totalMs: 300, detectionMs: null, electionMs: null, clientsMs: null });
  assert.equal(a.split.map((p) => p.part), ['detection', 'election', 'clients']);
  assert.is(a.split[0]!.p50Ms, 1200);
  assert.is(a.split[0]!.p99Ms, null, 'a part not observed for every kill has no p99');
  const text = summaryText(buildReport({ target: 't', members: 3, seed: 1, durationS: 7, faults: ['kill-leader'], endpoints: [], plan: [], notes: [] }, h, []));
  assert.ok(/detection\s+p50 1200 ms/.test(text), text);
});

test('history.json is written piece by piece and reads back the same (unknown returns included)', () => {
  const h: History = {
    kv: [
      { id: 1, client: 0, kind: 'put', key: 'k', value: 'a', invokeMs: 1, returnMs: 2, outcome: 'ok', revision: 2 },
      { id: 2, client: 1, kind: 'get', key: 'k', invokeMs: 3, returnMs: Infinity, outcome: 'unknown' },
    ],
    watches: [
      { watcherId: 1, session: 0, key: 'k', rangeEnd: 'l', startRevision: 1, prevKv: true, openedMs: 0, end: 'closed',
        responses: [{ atMs: 2, events: [{ type: 'put', key: 'k', modRevision: 2, value: 'a', createRevision: 2, version: 1, lease: 0, prevKv: null }] }, { atMs: 3, events: [] }] },
      { watcherId: 2, session: 0, key: 'k', rangeEnd: 'l', startRevision: 5, prevKv: false, openedMs: 4, end: 'error', responses: [] },
    ],
    leases: [{ id: 7, ttlS: 3, grantInvokeMs: 1, grantReturnMs: 2, keepAlives: [{ invokeMs: 3, returnMs: Infinity, outcome: 'unknown' }], keys: ['k'] }],
    faults: [{ kind: 'kill-leader', startMs: 1, endMs: 2, detail: 'd', election: { killMs: 1, oldTerm: 2, polls: 3 } }],
    finalState: { revision: 2, readMs: 9, keys: { k: { value: 'a', modRevision: 2 } } },
    denseRevisions: true,
    prefix: 'k',
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaos-history-'));
  try {
    const file = path.join(dir, 'history.json');
    writeHistory(file, h);
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).kv[1].returnMs, null, 'valid JSON, Infinity as null');
    assert.equal(readHistory(file), h);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a 30-minute history (hundreds of thousands of operations) builds its report and timeline', () => {
  const kv: History['kv'] = [];
  for (let i = 0; i < 400_000; i++) {
    kv.push({ id: i, client: i % 8, kind: 'put', key: 'k', value: `${i}`, invokeMs: i * 4.5, returnMs: i * 4.5 + 3, outcome: 'ok' });
  }
  const h: History = { kv, watches: [], leases: [], prefix: 'k', faults: [] };
  const report = buildReport({ target: 't', members: 3, seed: 1, durationS: 1800, faults: [], endpoints: [], plan: [], notes: [] }, h, []);
  assert.is(report.timeline.length, 1800);
  assert.ok(timelineSvg(report).startsWith('<svg'));
});

test.run();
