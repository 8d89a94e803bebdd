// No acknowledged write is lost. A write the store acknowledged at revision R
// on key k must (1) be in the watch history at R if any watch over k went past
// R (the revision checker proves this part: a watch session that passes R
// without it has a gap), and (2) survive in the final state unless something
// later overwrote or removed it: the final read of k must show a mod revision
// >= R (== R: the same value), or k absent with a later delete explaining it
// (a delete in the watch history after R, or a delete, CAS-free removal
// through a lease, or an unknown-outcome delete invoked after the write's
// invoke).
import type { CheckResult, History, KvOp, Violation } from '../history.ts';
import { describeOp } from '../history.ts';
import { buildReference } from './revisions.ts';

function writeRevision(op: KvOp): number | undefined {
  if (op.outcome !== 'ok' || op.revision === undefined) return undefined;
  if (op.kind === 'put') return op.revision;
  if (op.kind === 'cas' && op.succeeded) return op.revision;
  return undefined;
}

export function checkLostWrites(h: History): CheckResult {
  const violations: Violation[] = [];
  const inconclusive: string[] = [];
  let checked = 0;
  const final = h.finalState;
  if (!final) return { checker: 'lost-write', violations, inconclusive: ['no final state was read'], checked };
  const ref = buildReference(h, []);
  // The last acknowledged write per key.
  const lastWrite = new Map<string, { op: KvOp; rev: number }>();
  for (const op of h.kv) {
    const rev = writeRevision(op);
    if (rev === undefined || rev > final.revision) continue;
    const had = lastWrite.get(op.key);
    if (!had || had.rev < rev) lastWrite.set(op.key, { op, rev });
  }
  for (const [key, { op, rev }] of lastWrite) {
    checked++;
    if (!(key in final.keys)) { inconclusive.push(`key ${key}: not in the final read`); continue; }
    const f = final.keys[key];
    if (f) {
      if (f.modRevision < rev) {
        violations.push({ checker: 'lost-write', message: `key ${key}: acknowledged ${describeOp(op)} at revision ${rev}, but the final state has ${f.value} @${f.modRevision}: the write was lost` });
      } else if (f.modRevision === rev && f.value !== op.value) {
        violations.push({ checker: 'lost-write', message: `key ${key}: acknowledged ${describeOp(op)} at revision ${rev}, but the final state has ${f.value} at that same revision` });
      }
      continue;
    }
    // Absent: something must have removed it after R.
    const refDelete = (ref.byKey.get(key) ?? []).some((e) => e.type === 'delete' && e.revision > rev);
    const laterDelete = h.kv.some((o) => o.key === key && o.kind === 'delete' && o.outcome !== 'failed' && o.returnMs > op.invokeMs);
    const leased = h.leases.some((l) => l.keys.includes(key)) || op.lease !== undefined;
    if (!refDelete && !laterDelete && !leased) {
      violations.push({ checker: 'lost-write', message: `key ${key}: acknowledged ${describeOp(op)} at revision ${rev}, but the key is absent at the end and nothing deleted it` });
    }
  }
  return { checker: 'lost-write', violations, inconclusive, checked };
}
