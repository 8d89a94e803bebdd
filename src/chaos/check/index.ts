// Runs every checker over a history.
import type { CheckResult, History } from '../history.ts';
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

export function checkAll(h: History, opts: CheckOptions = {}): CheckResult[] {
  return [
    checkLinearizability(h.kv, opts.linearizability),
    checkWatches(h),
    checkReads(h),
    checkLostWrites(h),
    checkLeases(h, opts.lease),
    checkConvergence(h.hashes),
  ];
}
