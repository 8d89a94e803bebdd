// Convergence: once the faults have healed and the writes stopped, every
// member reports the same keyspace hash (HashKV) at the same revision. A
// member that cannot answer is a violation too: the harness heals everything
// and waits before it asks, so a member still down is itself a finding.
import type { CheckResult, MemberHash, Violation } from '../history.ts';

export function checkConvergence(hashes: MemberHash[] | undefined): CheckResult {
  const violations: Violation[] = [];
  if (!hashes || hashes.length === 0) return { checker: 'convergence', violations, inconclusive: ['no member hashes were taken'], checked: 0 };
  const line = (m: MemberHash) => m.ok ? `${m.member}: hash ${m.hash} at revision ${m.revision}` : `${m.member}: no answer (${m.error ?? 'error'})`;
  const down = hashes.filter((m) => !m.ok);
  for (const m of down) violations.push({ checker: 'convergence', message: `member ${m.member} gave no hash: ${m.error ?? 'error'}` });
  const up = hashes.filter((m) => m.ok);
  const revs = new Set(up.map((m) => m.revision));
  const sums = new Set(up.map((m) => m.hash));
  if (revs.size > 1) {
    violations.push({ checker: 'convergence', message: `members at different revisions: ${[...revs].join(', ')}`, detail: hashes.map(line) });
  } else if (sums.size > 1) {
    violations.push({ checker: 'convergence', message: `members disagree on the keyspace hash at revision ${[...revs][0]}`, detail: hashes.map(line) });
  }
  return { checker: 'convergence', violations, inconclusive: [], checked: hashes.length };
}
