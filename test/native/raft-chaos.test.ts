// A small randomized safety check of the Raft core: five members, random
// partitions, message loss, restarts, leadership transfers, membership of a
// learner, snapshots. Invariant: no two members ever apply different entries
// at the same index; after healing, everyone converges. Seeded; the seed is
// printed on failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isNativeError, messageTypes, type ConfChange } from '../../src/native.ts';
import { Cluster, encodeEntries, encodeMessage, type Entry } from './raft-harness.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

function runChaos(seed: number, steps: number, bug = false): void {
  const rnd = rng(seed);
  const ids = [1, 2, 3, 4, 5, 6];
  // Member 6 starts outside the configuration; membership changes add it as
  // a learner, promote it, remove it, or swap voters through joint consensus.
  const c = new Cluster(ids, (id) => ({ seed: seed * 31 + id, maxInflightMsgs: 8, ...(bug ? { testingBug: 'commitPreviousTerm' as const } : {}) }), [1, 2, 3, 4, 5]);
  const changes: Array<ConfChange> = [
    { changes: [{ type: 'addLearner', nodeId: 6 }] },
    { changes: [{ type: 'addNode', nodeId: 6 }] },
    { changes: [{ type: 'removeNode', nodeId: 6 }] },
    { changes: [{ type: 'addNode', nodeId: 6 }, { type: 'removeNode', nodeId: 5 }] },
    { changes: [{ type: 'addNode', nodeId: 5 }, { type: 'addLearner', nodeId: 6 }] },
  ];
  const chosen = new Map<number, string>();
  const seen = new Map<number, number>();
  let proposed = 0;
  const check = () => {
    for (const m of c.members.values()) {
      const from = seen.get(m.id) ?? 0;
      for (let i = from; i < m.applied.length; i++) {
        const e: Entry = m.applied[i];
        const key = `${e.term}:${e.type}:${e.data.toString('hex')}`;
        const have = chosen.get(e.index);
        if (have === undefined) chosen.set(e.index, key);
        else if (have !== key) throw new Error(`seed ${seed}: member ${m.id} applied ${key} at ${e.index}, another applied ${have}`);
      }
      seen.set(m.id, m.applied.length);
    }
  };
  let drop = 0;
  c.filter = (msg) => rnd() >= drop;
  for (let step = 0; step < steps; step++) {
    const r = rnd();
    if (r < 0.05) {
      c.heal();
      const a = ids[Math.floor(rnd() * ids.length)];
      c.isolate(a);
      if (rnd() < 0.5) c.isolate(ids[Math.floor(rnd() * ids.length)]);
    } else if (r < 0.1) {
      c.heal();
    } else if (r < 0.13) {
      drop = rnd() < 0.5 ? 0 : 0.2;
    } else if (r < 0.15) {
      const id = ids[Math.floor(rnd() * ids.length)];
      c.restart(id);
      seen.set(id, c.get(id).applied.length);
    } else if (r < 0.17) {
      const l = c.leader();
      if (l) {
        try {
          c.node(l).transferLeader(ids[Math.floor(rnd() * ids.length)]);
        } catch (e) {
          if (!isNativeError(e)) throw e;
        }
      }
    } else if (r < 0.2) {
      const l = c.leader();
      if (l) {
        try {
          c.node(l).proposeConfChange(changes[Math.floor(rnd() * changes.length)]);
        } catch (e) {
          if (!isNativeError(e)) throw e;
        }
      }
    } else if (r < 0.22) {
      for (const m of c.members.values()) {
        const s = m.node.status();
        if (s.applied > s.firstIndex + 5) {
          m.node.createSnapshot(s.applied - 2, Buffer.from(`snap@${s.applied - 2}`));
        }
      }
    } else if (r < 0.6) {
      const l = c.leader();
      const target = l && rnd() < 0.8 ? l : ids[Math.floor(rnd() * ids.length)];
      try {
        c.node(target).propose(Buffer.from(`p${proposed++}`));
      } catch (e) {
        if (!isNativeError(e)) throw e;
      }
    }
    c.tick(1);
    check();
  }
  // Liveness: heal everything and let the cluster settle.
  c.heal();
  drop = 0;
  c.filter = undefined;
  c.tick(80);
  check();
  const l = c.leader();
  assert.ok(l, `seed ${seed}: no leader after healing`);
  c.node(l).propose(Buffer.from('final'));
  c.tick(10);
  check();
  const cs = c.node(l).status().confState;
  const inConfig = new Set([...cs.voters, ...cs.learners]);
  if (process.env.KEELSON_RAFT_CHAOS_VERBOSE) {
    const confs = c.get(l).confStates.map((x) => `${x.voters.join(',')}|${x.votersOutgoing.join(',')}|${x.learners.join(',')}`);
    console.log(`seed ${seed}: applied ${c.node(l).status().applied}, term ${c.node(l).status().term}, configs ${confs.join(' ; ')}`);
  }
  const lens = [...c.members.values()].filter((m) => inConfig.has(m.id)).map((m) => m.node.status().applied);
  if (!lens.every((x) => x === lens[0])) console.error(JSON.stringify([...c.members.values()].map((m) => { const s = m.node.status(); return { id: m.id, role: s.role, term: s.term, lead: s.lead, commit: s.commit, applied: s.applied, first: s.firstIndex, last: s.lastIndex, progress: s.progress, snap: m.snapshot?.index }; }), null, 1));
  assert.ok(lens.every((x) => x === lens[0]), `seed ${seed}: members did not converge: ${lens}`);
}

test('randomized partitions, loss, restarts, transfers and snapshots keep members consistent', () => {
  const base = Number(process.env.KEELSON_RAFT_CHAOS_SEED ?? 1);
  const runs = Number(process.env.KEELSON_RAFT_CHAOS_RUNS ?? 6);
  for (let i = 0; i < runs; i++) {
    const seed = base + i;
    try {
      runChaos(seed, 600);
    } catch (e) {
      console.error(`raft chaos failed with seed ${seed} (KEELSON_RAFT_CHAOS_SEED=${seed} KEELSON_RAFT_CHAOS_RUNS=1)`);
      throw e;
    }
  }
});

test('well-formed messages with random fields never crash a member', () => {
  const seed = Number(process.env.KEELSON_RAFT_CHAOS_SEED ?? 7);
  const rnd = rng(seed);
  const c = new Cluster([1, 2, 3]);
  const l = c.elect();
  for (let i = 0; i < 20; i++) c.node(l).propose(Buffer.from(`x${i}`));
  c.stabilize();
  const types = Object.values(messageTypes);
  const pick = <T,>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  let refused = 0;
  for (let i = 0; i < 4000; i++) {
    const to = pick([1, 2, 3]);
    const s = c.node(to).status();
    const near = (x: number) => Math.max(0, x + Math.floor(rnd() * 7) - 3);
    const type = pick(types);
    const term = type === messageTypes.MsgProp || type === messageTypes.MsgReadIndex ? 0 : Math.max(1, near(s.term));
    const index = rnd() < 0.1 ? 2 ** 40 : near(s.lastIndex);
    const count = type === messageTypes.MsgApp || type === messageTypes.MsgProp ? Math.floor(rnd() * 3) + (type === messageTypes.MsgProp ? 1 : 0) : 0;
    const ents: Entry[] = [];
    let et = type === messageTypes.MsgApp ? Math.max(0, near(s.term) - 1) : 0;
    for (let k = 0; k < count; k++) {
      if (type === messageTypes.MsgApp) et = Math.min(term, et + (rnd() < 0.3 ? 1 : 0));
      ents.push({ index: type === messageTypes.MsgApp ? index + 1 + k : 0, term: type === messageTypes.MsgApp ? Math.max(et, 0) : 0, type: rnd() < 0.1 ? 1 : 0, data: Buffer.from(`f${i}`) });
    }
    const msg = encodeMessage({
      type,
      to,
      from: pick([1, 2, 3, 9].filter((x) => x !== to)),
      term,
      logTerm: type === messageTypes.MsgApp ? Math.min(ents[0]?.term ?? term, near(s.term)) : near(s.term),
      index,
      commit: rnd() < 0.5 ? near(s.commit) : 0,
      rejectHint: near(s.lastIndex),
      reject: rnd() < 0.3,
      context: rnd() < 0.3 ? Buffer.alloc(8, i & 0xff) : undefined,
      entries: encodeEntries(ents),
      entryCount: ents.length,
    });
    try {
      c.node(to).step(msg);
    } catch (e) {
      if (!isNativeError(e, 'ERR_BAD_MESSAGE')) throw new Error(`seed ${seed}, message ${i}: ${String(e)}`);
      refused++;
    }
    if (i % 50 === 0) {
      try {
        c.stabilize(200);
      } catch (e) {
        // Forged messages can make members disagree forever (two leaders of
        // one term forwarding proposals to each other): not a crash.
        if (!isNativeError(e, 'ERR_BAD_MESSAGE') && !String(e).includes('did not stabilize')) throw e;
        c.queue = [];
      }
    }
  }
  assert.ok(refused > 0);
});

test.run();
