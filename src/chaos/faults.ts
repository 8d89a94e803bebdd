// The fault schedule. The seed fixes the plan: which kinds of fault, in what
// order, held for how long, with what quiet time between, and the random
// choices inside each (which follower, which partition shape). Who the leader
// is at run time decides which member a role names, so the plan replays from
// the seed while the members it hits follow the cluster's own elections.
//
// Every fault heals at the end of its hold: killed members restart on their
// data, paused ones continue, links heal. Then the schedule waits (bounded)
// for the cluster to have a leader again before the quiet time starts.
import type { LocalCluster } from './cluster.ts';
import type { ElectionTrace, FaultRec } from './history.ts';
import type { Workload } from './workload.ts';

export const faultKinds = ['kill-leader', 'kill-follower', 'kill-majority', 'pause', 'partition', 'delay', 'loss', 'wipe', 'compact'] as const;
export type FaultKind = (typeof faultKinds)[number];
/** Faults that need the harness to own the member processes (not possible with --endpoints). */
export const clusterFaults: ReadonlySet<FaultKind> = new Set(['kill-leader', 'kill-follower', 'kill-majority', 'pause', 'partition', 'delay', 'loss', 'wipe']);

export interface PlannedFault {
  kind: FaultKind;
  /** Quiet time before the fault. */
  quietMs: number;
  holdMs: number;
  /** Random choices inside the fault, in [0, 1). */
  variant: number;
  pick: number;
}

/** The plan for a run: faults until the planned time reaches durationMs (minus a tail with no fault). */
export function planFaults(kinds: readonly FaultKind[], durationMs: number, random: () => number): PlannedFault[] {
  const plan: PlannedFault[] = [];
  if (kinds.length === 0) return plan;
  // A leader kill or partition and its recovery take ~2-4 s on loopback; budget 2.5 s of recovery per fault.
  const recoveryMs = 2500;
  let t = 0;
  // Every requested kind comes once first (in a seeded order), so a short run still covers them all when it has room.
  const first = [...kinds];
  for (let i = first.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [first[i], first[j]] = [first[j]!, first[i]!];
  }
  for (let i = 0; i < 10_000; i++) {
    const kind = i < first.length ? first[i]! : kinds[Math.floor(random() * kinds.length)]!;
    const quietMs = Math.round(1000 + random() * 2000);
    const holdMs = kind === 'compact' ? 0 : Math.round(1000 + random() * 2500);
    const step = { kind, quietMs, holdMs, variant: random(), pick: random() };
    if (t + quietMs + holdMs + recoveryMs > durationMs - 2000) break;
    t += quietMs + holdMs + recoveryMs;
    plan.push(step);
  }
  return plan;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FaultRunner {
  cluster: LocalCluster | null;
  workload: Workload;
  now: () => number;
  log: (line: string) => void;
  /** The run's end; no fault starts after it. */
  deadline: number;
}

export async function runPlan(plan: PlannedFault[], r: FaultRunner, faults: FaultRec[]): Promise<void> {
  for (const step of plan) {
    if (Date.now() + step.quietMs + step.holdMs > r.deadline) break;
    await sleep(step.quietMs);
    const startMs = r.now();
    let detail: string;
    const out: InjectOut = {};
    try {
      detail = await inject(step, r, out);
    } catch (e) {
      detail = `failed: ${(e as Error).message}`;
    }
    const rec: FaultRec = { kind: step.kind, startMs, endMs: r.now(), detail, ...(out.election ? { election: out.election } : {}) };
    faults.push(rec);
    // The fault itself ended above; the election watch may outlast it (bounded by electionWatchMs).
    if (out.watching) await out.watching;
    r.log(`fault ${step.kind} at ${(startMs / 1000).toFixed(1)} s: ${detail} (${((rec.endMs - startMs) / 1000).toFixed(1)} s)`);
    if (r.cluster) {
      try { await r.cluster.waitHealthy(30_000); } catch (e) { r.log(`after ${step.kind}: ${(e as Error).message}`); }
    }
  }
}

/** How often the survivors are asked for their leader and term after a leader kill, and for how long at most. */
const electionPollMs = 10;
const electionWatchMs = 10_000;

/**
 * Watches the survivors of a leader kill until one names a leader in a
 * higher term (or electionWatchMs passed): records when the first one stopped
 * naming the killed leader (its election timeout fired) and when the first
 * one named the new leader. Only Status calls, on the members still running.
 */
async function watchElection(c: LocalCluster, killedName: string, killedId: string, trace: ElectionTrace, now: () => number): Promise<void> {
  const end = Date.now() + electionWatchMs;
  while (Date.now() < end) {
    const survivors = c.running().filter((m) => m.name !== killedName);
    const answers = await Promise.all(survivors.map((m) => m.client.status(250).then((s) => ({ lead: String(s.leader), term: Number(s.raftTerm) }), () => null)));
    const at = now();
    for (const a of answers) {
      if (!a) continue;
      trace.polls++;
      if (trace.detectMs === undefined && (a.lead !== killedId || a.term > trace.oldTerm)) trace.detectMs = at;
      if (a.term > trace.oldTerm && a.lead !== '0') {
        trace.detectMs ??= at;
        trace.electedMs = at;
        trace.newTerm = a.term;
        trace.newLeader = c.members.find((m) => m.id === a.lead)?.name ?? a.lead;
        return;
      }
    }
    await sleep(electionPollMs);
  }
}

interface InjectOut {
  election?: ElectionTrace;
  watching?: Promise<void>;
}

async function inject(step: PlannedFault, r: FaultRunner, out: InjectOut = {}): Promise<string> {
  const c = r.cluster;
  if (step.kind === 'compact') {
    const w = r.workload;
    const rev = Math.max(w.compactRevision + 1, w.maxRevisionSeen - Math.floor(50 + step.variant * 200));
    if (rev <= w.compactRevision || rev < 2) return 'skipped: too few revisions';
    const clients = r.workload.clientsNow();
    let last: unknown;
    for (const cl of clients) {
      try {
        await cl.compact(rev, 5000);
        w.compactRevision = Math.max(w.compactRevision, rev);
        return `compacted at revision ${rev}`;
      } catch (e) { last = e; if (String((e as Error).message).includes('compacted')) return `revision ${rev} already compacted`; }
    }
    return `compaction at ${rev} failed: ${(last as Error)?.message}`;
  }
  if (!c) return 'skipped: needs a cluster the harness started';
  const names = c.running().map((m) => m.name);
  const leader = await c.leader();
  const followers = names.filter((n) => n !== leader);
  const pickOf = <T>(xs: T[], x: number) => xs[Math.floor(x * xs.length) % xs.length]!;
  switch (step.kind) {
    case 'kill-leader': {
      if (!leader) return 'skipped: no leader';
      const lm = c.members.find((m) => m.name === leader)!;
      let oldTerm = 0;
      try { oldTerm = Number((await lm.client.status(1000)).raftTerm); } catch { /* the trace then counts any term as higher */ }
      // The signal goes out synchronously inside kill(): killMs is the SIGKILL.
      const trace: ElectionTrace = { killMs: r.now(), oldTerm, polls: 0 };
      const killed = c.kill(leader);
      out.election = trace;
      if (lm.id) out.watching = watchElection(c, leader, lm.id, trace, r.now);
      await killed;
      await sleep(step.holdMs);
      c.restart(leader);
      return `SIGKILL leader ${leader}, restarted after ${step.holdMs} ms`;
    }
    case 'kill-follower': {
      if (followers.length === 0) return 'skipped: no follower running';
      const f = pickOf(followers, step.pick);
      await c.kill(f);
      await sleep(step.holdMs);
      c.restart(f);
      return `SIGKILL follower ${f}, restarted after ${step.holdMs} ms`;
    }
    case 'kill-majority': {
      const n = c.members.filter((m) => m.state !== 'removed').length;
      const k = Math.floor(n / 2) + 1;
      const order = [...names].sort((a, b) => (a === leader ? -1 : b === leader ? 1 : 0));
      const start = step.pick < 0.5 ? 0 : 1; // half the time the leader survives
      const victims = order.slice(start, start + k);
      if (victims.length < k) victims.push(...order.slice(0, k - victims.length));
      await Promise.all(victims.map((v) => c.kill(v)));
      await sleep(step.holdMs);
      for (const v of victims) c.restart(v);
      return `SIGKILL ${victims.join(',')} (majority of ${n}), restarted after ${step.holdMs} ms`;
    }
    case 'pause': {
      const target = step.variant < 0.5 && leader ? leader : pickOf(followers.length ? followers : names, step.pick);
      c.pause(target);
      await sleep(step.holdMs);
      c.resume(target);
      return `SIGSTOP ${target}${target === leader ? ' (leader)' : ''}, SIGCONT after ${step.holdMs} ms`;
    }
    case 'partition': {
      const all = c.members.filter((m) => m.state !== 'removed').map((m) => m.name);
      let detail: string;
      if (step.variant < 1 / 3 && leader) {
        for (const o of all) if (o !== leader) { c.links.set(leader, o, { cut: true }); c.links.set(o, leader, { cut: true }); }
        detail = `leader ${leader} isolated`;
      } else if (step.variant < 2 / 3) {
        const shuffled = [...all].sort((a, b) => hash(a, step.pick) - hash(b, step.pick));
        const minority = shuffled.slice(0, Math.floor((all.length - 1) / 2) || 1);
        const majority = all.filter((x) => !minority.includes(x));
        for (const a of minority) for (const b of majority) { c.links.set(a, b, { cut: true }); c.links.set(b, a, { cut: true }); }
        detail = `symmetric split {${minority.join(',')}} | {${majority.join(',')}}`;
      } else {
        const x = leader ?? pickOf(all, step.pick);
        const outbound = step.pick < 0.5;
        for (const o of all) if (o !== x) c.links.set(outbound ? x : o, outbound ? o : x, { cut: true });
        detail = `asymmetric: ${outbound ? `${x} cannot send` : `${x} cannot receive`}${x === leader ? ' (leader)' : ''}`;
      }
      await sleep(step.holdMs);
      c.links.clear();
      return `${detail}, healed after ${step.holdMs} ms`;
    }
    case 'delay': {
      const all = c.members.filter((m) => m.state !== 'removed').map((m) => m.name);
      const delayMs = Math.round(30 + step.pick * 170);
      const onlyLeader = step.variant < 0.5 && leader;
      for (const a of all) for (const b of all) {
        if (a !== b && (!onlyLeader || a === leader || b === leader)) c.links.set(a, b, { delayMs, jitterMs: Math.round(delayMs / 2) });
      }
      await sleep(step.holdMs);
      c.links.clear();
      return `${delayMs} ms (+${Math.round(delayMs / 2)} jitter) on ${onlyLeader ? `the leader ${leader}'s links` : 'every link'} for ${step.holdMs} ms`;
    }
    case 'loss': {
      const all = c.members.filter((m) => m.state !== 'removed').map((m) => m.name);
      const lossRate = Math.round((0.02 + step.pick * 0.18) * 100) / 100;
      const lossy: string[] = [];
      let i = 0;
      for (const a of all) for (const b of all) {
        if (a === b) continue;
        if (hash(`${a}${b}`, step.variant) % 2 === 0 || (i++ === 0)) { c.links.set(a, b, { lossRate }); lossy.push(`${a}->${b}`); }
      }
      const resetsBefore = c.lossResets;
      await sleep(step.holdMs);
      c.links.clear();
      return `loss ${lossRate} per chunk on ${lossy.join(' ')} for ${step.holdMs} ms (${c.lossResets - resetsBefore} connections reset)`;
    }
    case 'wipe': {
      if (c.running().length !== c.members.length) return 'skipped: not every member is up';
      if (followers.length === 0) return 'skipped: no follower';
      const f = pickOf(followers, step.pick);
      await c.wipe(f, 15_000);
      return `wiped follower ${f}: member remove, data deleted, member add, started empty`;
    }
  }
}

function hash(s: string, salt: number): number {
  let h = Math.floor(salt * 0x7fffffff) | 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x9e3779b1);
  return (h >>> 0);
}
