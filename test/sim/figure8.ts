// The Raft paper's Figure 8 as a scripted scenario on the simulator: why a
// leader must not commit an entry of an earlier term by counting replicas
// (Raft paper 5.4.2). Five voters; with a correct core it ends safely, with
// the deliberately broken core (testingBug 'commitPreviousTerm') the checker
// must report the committed entry that a later leader overwrites.
//
//  1. L1 leads term a; entry X (index i) reaches L1 and F only.
//  2. The other three elect L2 (term b > a); L2 is cut off the moment it
//     leads, so its own entry at index i (term b) stays in its log alone.
//  3. L1, F and A are connected (B and L2 are not); L1 or F leads a term
//     c > b (call it L3) and replicates X to A before its own term-c entry.
//     The broken core commits X now, by counting L3, F and A; L3 is cut off
//     at once and applies X. A correct core commits only once its term-c
//     entry is on L3, F and A, so A then holds it.
//  4. L2, A and B are connected (L3 and F are not). With the broken core A's
//     last entry is X (term a < b), so L2 wins a term above c and overwrites
//     X: leader completeness (and, once applied, state machine safety) fails.
//     With a correct core A's log is ahead of L2's and L2 cannot win.
//  5. Everything heals; the liveness phase runs.
import { InvariantViolation, Simulation, type SimMember } from './sim.ts';

export interface ScenarioResult {
  ok: boolean;
  /** False when the schedule did not unfold as scripted (a timeout before the last act). */
  unfolded: boolean;
  failure?: string;
  trace: string[];
}

export function runFigure8(opts: { bug: boolean; seed?: number }): ScenarioResult {
  const sim = new Simulation({ seed: opts.seed ?? 8, members: 5, steps: 0, profile: 'none', ...(opts.bug ? { testingBug: 'commitPreviousTerm' as const } : {}) });
  sim.phase = 'script';
  const voters = sim.bootstrapVoters.map((id) => sim.members.get(id)!);
  const role = (m: SimMember) => (m.core ? m.core.status() : undefined);
  const isLeader = (m: SimMember) => role(m)?.role === 'leader';
  const step = (what: string, done: () => boolean, ticksMax: number): void => {
    if (!sim.runUntil(done, ticksMax)) throw new ScriptTimeout(`${what} did not happen within ${ticksMax} ticks (${sim.describe()})`);
    sim.trace(`script: ${what}`);
  };
  const partition = (...groups: SimMember[][]) => {
    sim.cut.clear();
    const side = new Map<number, number>();
    groups.forEach((g, k) => g.forEach((m) => side.set(m.id, k)));
    for (const a of sim.members.values()) for (const b of sim.members.values()) {
      if (a !== b && (side.get(a.id) === undefined || side.get(a.id) !== side.get(b.id))) sim.cut.add(`${a.id}>${b.id}`);
    }
  };
  let unfolded = false;
  try {
    step('a leader with everything applied', () => {
      const l = voters.find(isLeader);
      if (!l) return false;
      const c = l.core!.status().commit;
      return c > 0 && voters.every((m) => m.smIndex >= c);
    }, 400);
    const l1 = voters.find(isLeader)!;
    const [f, ...rest] = voters.filter((m) => m !== l1);
    const i = l1.core!.status().lastIndex + 1;
    // 1.
    partition([l1, f], rest);
    l1.core!.propose(Buffer.from('X'));
    sim.drive(l1);
    step(`X at index ${i} on L1=${l1.id} and F=${f.id} only`, () => f.written.log.some((e) => e.index === i), 100);
    // 2.
    step('L2 elected among the other three', () => rest.some(isLeader), 400);
    const l2 = rest.find(isLeader)!;
    sim.isolate(l2, 'L2, just elected');
    const termB = l2.core!.status().term;
    const [a, b] = rest.filter((m) => m !== l2);
    // 3.
    partition([l1, f, a]);
    let l3: SimMember | undefined;
    step(`L3 (L1 or F) leads a term above ${termB} and commits index ${i}`, () => {
      l3 = [l1, f].find((m) => {
        const s = role(m);
        return s !== undefined && s.role === 'leader' && s.term > termB && s.commit >= i;
      });
      return l3 !== undefined;
    }, 400);
    sim.isolate(l3!, 'L3, its commit moved');
    step(`L3=${l3!.id} applies index ${i}`, () => l3!.smIndex >= i, 100);
    // 4.
    partition([l2, a, b]);
    unfolded = true;
    sim.runUntil(() => false, 40 * 10);
    // 5.
    sim.livenessPhase();
    return { ok: true, unfolded, trace: sim.traceTail };
  } catch (e) {
    if (e instanceof ScriptTimeout) return { ok: true, unfolded: false, failure: e.message, trace: sim.traceTail };
    if (e instanceof InvariantViolation) return { ok: false, unfolded, failure: e.message, trace: sim.traceTail };
    throw e;
  }
}

class ScriptTimeout extends Error {}
