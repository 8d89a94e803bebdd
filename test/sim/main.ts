// `npm run sim -- [--seed S | --seeds N [--from S]] [--members 3|5] [--steps T] [--profile mixed|churn] [--bug] [--trace]`
//
// Runs the deterministic simulation (test/sim/sim.ts). --seed S replays one
// seed exactly (with --trace, printing every fault and action); --seeds N
// runs seeds from..from+N-1. Without --members a seed's cluster size follows
// from the seed (even: 3, odd: 5), as in the CI slice. Exit code 0 when every
// seed passed, 1 when one failed, 2 on bad usage.
import { membersForSeed, runSeed, type SimResult, type SimStats } from './sim.ts';

const usage = `usage: npm run sim -- [--seed S | --seeds N [--from S]] [--members 3|5] [--steps T] [--bug] [--trace]
  --seed S      run (replay) one seed
  --seeds N     run N seeds, starting at --from (default 1)
  --members M   cluster size, 3 or 5 (default: 3 for even seeds, 5 for odd)
  --steps T     ticks of the fault phase (default 300), then the liveness phase
  --profile P   nemesis: mixed (default: every fault) or churn (leader churn, the Figure 8 schedule)
  --bug         run cores with testingBug 'commitPreviousTerm' (the checker must fail)
  --trace       print every fault and action`;

function bad(msg: string): never {
  console.error(`sim: ${msg}\n${usage}`);
  process.exit(2);
}

function intArg(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined || !/^\d+$/.test(v)) bad(`${name} needs a non-negative integer`);
  const n = Number(v);
  if (n < min || n > max) bad(`${name} must be in [${min}, ${max}]`);
  return n;
}

const args = process.argv.slice(2);
let seed: number | undefined;
let seeds: number | undefined;
let from = 1;
let members: 3 | 5 | undefined;
let steps = 300;
let bug = false;
let profile: 'mixed' | 'churn' = 'mixed';
let trace = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  switch (a) {
    case '--seed':
      seed = intArg(a, args[++i], 0, 2 ** 32 - 1);
      break;
    case '--seeds':
      seeds = intArg(a, args[++i], 1, 1_000_000);
      break;
    case '--from':
      from = intArg(a, args[++i], 0, 2 ** 32 - 1);
      break;
    case '--members': {
      const m = intArg(a, args[++i], 3, 5);
      if (m !== 3 && m !== 5) bad('--members must be 3 or 5');
      members = m;
      break;
    }
    case '--steps':
      steps = intArg(a, args[++i], 1, 1_000_000);
      break;
    case '--profile': {
      const v = args[++i];
      if (v !== 'mixed' && v !== 'churn') bad('--profile must be mixed or churn');
      profile = v;
      break;
    }
    case '--bug':
      bug = true;
      break;
    case '--trace':
      trace = true;
      break;
    case '-h':
    case '--help':
      console.log(usage);
      process.exit(0);
      break;
    default:
      bad(`unknown argument ${a}`);
  }
}
if (seed !== undefined && seeds !== undefined) bad('give --seed or --seeds, not both');

const list = seed !== undefined ? [seed] : Array.from({ length: seeds ?? 1 }, (_, i) => from + i);
const started = Date.now();
let failed = 0;
let firstFailure: SimResult | undefined;
const totals: Record<string, number> = {};
let seedsWithSnapshots = 0;
for (const s of list) {
  const m = members ?? membersForSeed(s);
  const r = runSeed({ seed: s, members: m, steps, trace, profile, ...(bug ? { testingBug: 'commitPreviousTerm' as const } : {}) });
  for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
  if (r.stats.snapshotsSent > 0) seedsWithSnapshots++;
  if (!r.ok) {
    failed++;
    firstFailure ??= r;
    console.log(`FAIL seed ${s} (${m} members) at step ${r.step} (event ${r.events}): ${r.failure}`);
    console.log(`  replay: npm run sim -- --seed ${s} --members ${m} --steps ${steps}${profile === 'churn' ? ' --profile churn' : ''}${bug ? ' --bug' : ''} --trace`);
  } else if (list.length === 1 || trace) {
    const st = r.stats;
    console.log(`ok seed ${s} (${m} members): ${st.ticks} ticks, ${r.events} events, ${st.elections} elections (max term ${st.maxTerm}), commit ${st.maxCommit}, ${st.proposalsCommitted} proposals committed, ${st.confChangesApplied} conf changes applied, ${st.snapshotsCreated} snapshots (${st.snapshotsSent} sent), ${st.readsServed} reads, ${st.crashes} crashes (${st.leaderKills} leader kills), ${st.partitions} partitions, ${st.messagesSent} messages (${st.messagesDropped} dropped, ${st.messagesDuplicated} duplicated)`);
  }
}
const secs = (Date.now() - started) / 1000;
if (list.length > 1) {
  const t = totals as unknown as SimStats;
  console.log(`totals: ${t.ticks} ticks, ${t.elections} elections, ${t.proposalsCommitted} proposals committed, ${t.confChangesApplied} conf changes applied, ${t.snapshotsCreated} snapshots created, ${t.snapshotsSent} sent (in ${seedsWithSnapshots} seeds), ${t.readsServed} reads served, ${t.crashes} crashes (${t.leaderKills} leader kills), ${t.partitions} partitions, ${t.messagesSent} messages (${t.messagesDropped} dropped, ${t.messagesDuplicated} duplicated)`);
}
console.log(`${list.length - failed}/${list.length} seeds passed in ${secs.toFixed(1)} s`);
process.exit(failed === 0 ? 0 : 1);
