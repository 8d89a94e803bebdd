// Known-bad variants of a real recorded history, for the smoke test: each
// mutation plants one bug the store could have had, and the named checker
// must catch it.
import type { History, KvOp } from '../../src/chaos/history.ts';
import { latestExpiryMs } from '../../src/chaos/check/lease.ts';

export interface Mutation {
  name: string;
  checker: string;
  /** Returns false when the history has nothing to mutate this way. */
  apply(h: History): boolean;
}

const okGets = (h: History) => h.kv.filter((o) => o.kind === 'get' && o.outcome === 'ok' && !o.serializable && o.readValue !== null && o.revision !== undefined);
const okPuts = (h: History, key: string) => h.kv.filter((o) => o.kind === 'put' && o.key === key && o.outcome === 'ok' && o.lease === undefined).sort((a, b) => a.returnMs - b.returnMs);

function mainWatcher(h: History) {
  // The longest session of the watcher that started at revision 1 with prev_kv.
  return h.watches.filter((s) => s.prevKv && s.watcherId === 1).sort((a, b) => b.responses.length - a.responses.length)[0];
}

export const mutations: Mutation[] = [
  {
    name: 'a stale read', checker: 'linearizability',
    apply(h) {
      // A read that returns the value of write A although write B, which began after A returned, had returned
      // before the read began. Values are unique, so A's value can never come back: the read is stale whatever
      // else ran concurrently.
      const acked = (key: string) => h.kv.filter((o) => o.key === key && o.outcome === 'ok' && o.lease === undefined &&
        (o.kind === 'put' || (o.kind === 'cas' && o.succeeded)));
      for (const g of okGets(h)) {
        const ws = acked(g.key);
        for (const b of ws) {
          if (b.returnMs >= g.invokeMs) continue;
          const a = ws.find((x) => x.returnMs < b.invokeMs && x.value !== g.readValue && x.revision !== undefined);
          if (!a) continue;
          g.readValue = a.value!;
          g.readModRevision = a.revision;
          return true;
        }
      }
      return false;
    },
  },
  {
    name: 'a lost write', checker: 'lost-write',
    apply(h) {
      const f = h.finalState;
      if (!f) return false;
      for (const [key, v] of Object.entries(f.keys)) {
        if (!v) continue;
        // Acknowledged writes of the key: puts and CAS txns that succeeded.
        const puts = h.kv.filter((o) => o.key === key && o.outcome === 'ok' && o.revision !== undefined && o.lease === undefined &&
          (o.kind === 'put' || (o.kind === 'cas' && o.succeeded))).sort((a, b) => a.revision! - b.revision!);
        const last = puts[puts.length - 1];
        const before = puts[puts.length - 2];
        if (last && before && last.revision === v.modRevision) {
          f.keys[key] = { value: before.value!, modRevision: before.revision! };
          return true;
        }
      }
      return false;
    },
  },
  {
    name: 'a missing watch event', checker: 'watch',
    apply(h) {
      const s = mainWatcher(h);
      if (!s || s.responses.length < 10) return false;
      const r = s.responses[Math.floor(s.responses.length / 2)]!;
      r.events.splice(0, 1);
      return true;
    },
  },
  {
    name: 'a duplicated watch event', checker: 'watch',
    apply(h) {
      const s = mainWatcher(h);
      if (!s || s.responses.length < 10) return false;
      const i = Math.floor(s.responses.length / 3);
      s.responses[i + 1]!.events.unshift({ ...s.responses[i]!.events[0]! });
      return true;
    },
  },
  {
    name: 'a reordered watch event', checker: 'watch',
    apply(h) {
      const s = mainWatcher(h);
      if (!s || s.responses.length < 10) return false;
      const i = Math.floor(s.responses.length / 4);
      [s.responses[i], s.responses[i + 1]] = [s.responses[i + 1]!, s.responses[i]!];
      return true;
    },
  },
  {
    name: 'a wrong prev_kv', checker: 'watch',
    apply(h) {
      const s = mainWatcher(h);
      if (!s) return false;
      for (const r of s.responses.slice(Math.floor(s.responses.length / 2))) {
        for (const e of r.events) {
          if (e.prevKv) { e.prevKv = { value: 'not-the-previous-value', modRevision: e.prevKv.modRevision }; return true; }
        }
      }
      return false;
    },
  },
  {
    name: 'a key outliving its lease', checker: 'lease',
    apply(h) {
      const l = h.leases.find((x) => x.keys.length > 0);
      if (!l) return false;
      const key = l.keys[0]!;
      const at = latestExpiryMs(l, h.faults, 2000) + 60_000;
      const read: KvOp = { id: 1e9, client: 99, kind: 'get', key, readValue: `l${l.id}${key.slice(-1)}`, readModRevision: 1, invokeMs: at, returnMs: at + 1, outcome: 'ok' };
      h.kv.push(read);
      return true;
    },
  },
  {
    name: 'a key that expires early', checker: 'lease',
    apply(h) {
      for (const l of h.leases) {
        const put = h.kv.find((o) => o.kind === 'put' && o.lease === l.id && o.outcome === 'ok');
        if (!put) continue; // a revoke comes after the keep-alives, so it cannot explain this early read
        // Gone right after its put returned, long before the TTL could run out.
        const at = put.returnMs + 1;
        h.kv.push({ id: 1e9 + 1, client: 99, kind: 'get', key: put.key, readValue: null, readModRevision: 0, invokeMs: at, returnMs: at + 1, outcome: 'ok' });
        return true;
      }
      return false;
    },
  },
  {
    name: 'members that diverged', checker: 'convergence',
    apply(h) {
      if (!h.hashes || h.hashes.length < 2) return false;
      h.hashes[1]!.hash ^= 1;
      return true;
    },
  },
];
