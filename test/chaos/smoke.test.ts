// The CI chaos smoke: a 3-member Keelson cluster as separate processes, 30 s
// of the recorded workload with leader kills and partitions, and every
// checker must report zero violations. Then the recorded history gets one
// planted bug at a time (a stale read, a lost write, a missing, duplicated or
// reordered watch event, a wrong prev_kv, a key outliving its lease or
// expiring early, diverged members) and the checker for it must catch each.
// The seed is fixed (CHAOS_SEED overrides it) and printed on failure with the
// report directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runChaos } from '../../src/chaos/run.ts';
import { readHistory, summaryText } from '../../src/chaos/report.ts';
import { checkAll } from '../../src/chaos/check/index.ts';
import { mutations } from './mutate.ts';

test('chaos smoke: 3 Keelson members, leader kills and a partition, zero violations', async () => {
  const seed = Number(process.env.CHAOS_SEED ?? 20261202);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-chaos-smoke-'));
  const report = await runChaos({
    target: 'keelson', members: 3, durationS: 30, faults: ['kill-leader', 'partition'], seed, reportDir: dir,
    kvClients: 6, watchers: 3, leaseWorkers: 1,
  });
  const summary = summaryText(report);
  const where = `seed ${seed}, report in ${dir}\n${summary}`;
  assert.equal(report.violations, [], where);
  assert.ok(report.faults.some((f) => f.kind === 'kill-leader' && !f.detail.startsWith('skipped')), `no leader was killed; ${where}`);
  assert.ok(report.faults.some((f) => f.kind === 'partition'), `no partition; ${where}`);
  assert.ok(report.ops.byOutcome.ok! > 100, `too few ops; ${where}`);
  // Liveness: a store that answers nothing passes every safety check, so each kind of op must also succeed.
  for (const kind of ['put', 'cas', 'delete', 'get', 'get-serializable']) {
    assert.ok((report.ops.byKind[kind]?.ok ?? 0) > 0, `no ${kind} succeeded; ${where}`);
  }
  assert.ok(report.leases.keys > 0, `no key could be attached to a lease; ${where}`);
  assert.ok(report.watch.events > 0, `no watch events; ${where}`);
  for (const c of report.checks) assert.ok(c.checked > 0 || c.checker === 'lease', `${c.checker} checked nothing; ${where}`);
  assert.ok(fs.existsSync(path.join(dir, 'timeline.svg')));

  // The same real history with one planted bug at a time: each must be caught by its checker.
  const file = path.join(dir, 'history.json');
  for (const m of mutations) {
    const h = readHistory(file);
    assert.ok(m.apply(h), `${m.name}: nothing to mutate in this history; ${where}`);
    const found = checkAll(h).find((c) => c.checker === m.checker)!;
    assert.ok(found.violations.length > 0, `${m.name} was not caught by the ${m.checker} checker; ${where}`);
  }
  // Keep the report of a failing run; remove a passing one.
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
