// Runs every checker over a history.
import type { CheckResult, History, KvOp } from '../history.ts';
import { checkConvergence } from './convergence.ts';
import { checkLeases, type LeaseCheckOptions } from './lease.ts';
import { checkLinearizability, type LinearizabilityOptions } from './linearizability.ts';
import { checkLostWrites } from './lostwrite.ts';
import { checkReads, checkWatches } from './revisions.ts';

export { checkConvergence, checkLeases, checkLinearizability, checkLostWrites, checkReads, checkWatches };

export interface CheckOptions {
  linearizability?: LinearizabilityOptions;
  lease?: LeaseCheckOptions;
}

/**
 * The kv ops the linearizability checker sees: the history's, plus for every
 * key written with a lease one delete of unknown outcome invoked with the
 * first such put, because the lease's expiry or revoke deletes it at a time no
 * client chose (the lease checker holds that time to the TTL bounds).
 */
export function linearizabilityOps(h: History): KvOp[] {
  const extra: KvOp[] = [];
  const seen = new Set<string>();
  let id = h.kv.reduce((m, op) => Math.max(m, op.id), 0) + 1;
  for (const op of h.kv) {
    if (op.kind !== 'put' || op.lease === undefined || seen.has(op.key)) continue;
    seen.add(op.key);
    extra.push({ id: id++, client: -1, kind: 'delete', key: op.key, invokeMs: op.invokeMs, returnMs: Infinity, outcome: 'unknown', error: `lease ${op.lease} expiry or revoke` });
  }
  return extra.length ? [...h.kv, ...extra] : h.kv;
}

export function checkAll(h: History, opts: CheckOptions = {}): CheckResult[] {
  return [
    checkLinearizability(linearizabilityOps(h), opts.linearizability),
    checkWatches(h),
    checkReads(h),
    checkLostWrites(h),
    checkLeases(h, opts.lease),
    checkConvergence(h.hashes),
  ];
}
