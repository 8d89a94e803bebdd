// `keelson chaos`: run the chaos harness against a store cluster, or rerun
// the checkers on a saved history. Exit 0: every check passed; 1: a
// violation; 2: bad usage.
import path from 'node:path';
import { faultKinds, clusterFaults, type FaultKind } from '../chaos/faults.ts';
import { UsageError, type Command } from './command.ts';

const usage = `Usage: keelson chaos [options]

Starts a store cluster as separate processes on loopback with a fault proxy on
every member link, runs a recorded workload from many clients while faults are
injected on a seeded schedule, and checks the history (linearizability, watch,
lost writes, leases, convergence). See docs/chaos.md.

Options:
  --members 3|5            cluster size (default 3)
  --duration SECONDS       length of the fault phase (default 60)
  --faults LIST            comma list of: ${faultKinds.join(', ')}
                           (default: all; "none" for no faults)
  --seed N                 fixes the fault schedule and the workload's choices (default: random, printed)
  --report DIR             where summary.txt, report.json, timeline.svg, history.json and member logs go
                           (default: a new temporary directory)
  --target keelson|etcd    what the cluster runs (default keelson; etcd = /usr/bin/etcd, for comparison)
  --endpoints URLS         use an existing cluster (comma list of client URLs); only the compact fault applies
  --clients N              concurrent KV clients (default 8)
  --keys N                 hot keys (default 5)
  --check FILE             do not run: check a saved history.json and print the summary
  --quiet                  print only the summary

Exit code: 0 all checks passed, 1 a violation was found (or the run could not
complete: the message says which), 2 bad usage.`;

function parse(args: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (name === 'quiet') { out.set(name, 'true'); continue; }
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    out.set(name, value);
  }
  const known = new Set(['members', 'duration', 'faults', 'seed', 'report', 'target', 'endpoints', 'clients', 'keys', 'check', 'quiet']);
  for (const k of out.keys()) if (!known.has(k)) throw new UsageError(`unknown option --${k}`);
  return out;
}

function int(p: Map<string, string>, name: string, dflt: number, min: number, max: number): number {
  const raw = p.get(name);
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export const chaosCommand: Command = {
  name: 'chaos',
  summary: 'run the chaos harness against a store cluster',
  usage,
  async run(args) {
    // The harness and its checkers are loaded only when this command runs.
    const [{ checkAll }, { buildReport, readHistory, summaryText }, { runChaos }] = await Promise.all([
      import('../chaos/check/index.ts'), import('../chaos/report.ts'), import('../chaos/run.ts'),
    ]);
    const p = parse(args);
    const quiet = p.has('quiet');
    if (p.has('check')) {
      const file = p.get('check')!;
      let h;
      try { h = readHistory(file); } catch (e) { throw new UsageError(`--check: cannot read ${file}: ${(e as Error).message}`); }
      const report = buildReport({ target: 'saved history', members: 0, seed: 0, durationS: 0, faults: [], endpoints: [], plan: [], notes: [`checked ${path.resolve(file)}`] }, h, checkAll(h));
      console.log(summaryText(report));
      return report.passed ? 0 : 1;
    }
    const members = int(p, 'members', 3, 1, 9);
    if (members !== 3 && members !== 5) throw new UsageError(`--members must be 3 or 5, got ${members}`);
    const durationS = int(p, 'duration', 60, 5, 86_400);
    const target = p.get('target') ?? 'keelson';
    if (target !== 'keelson' && target !== 'etcd') throw new UsageError(`--target must be keelson or etcd, got "${target}"`);
    const rawFaults = p.get('faults');
    let faults: FaultKind[];
    if (rawFaults === undefined) faults = [...faultKinds];
    else if (rawFaults === 'none' || rawFaults === '') faults = [];
    else {
      faults = [];
      for (const f of rawFaults.split(',').map((s) => s.trim()).filter(Boolean)) {
        if (!(faultKinds as readonly string[]).includes(f)) throw new UsageError(`--faults: unknown fault "${f}" (known: ${faultKinds.join(', ')})`);
        if (!faults.includes(f as FaultKind)) faults.push(f as FaultKind);
      }
    }
    const seedRaw = p.get('seed');
    if (seedRaw !== undefined && !/^\d+$/.test(seedRaw)) throw new UsageError(`--seed must be a whole number, got "${seedRaw}"`);
    const seed = seedRaw !== undefined ? Number(seedRaw) % 2 ** 32 : Math.floor(Math.random() * 2 ** 31);
    let endpoints: string[] | undefined;
    if (p.has('endpoints')) {
      endpoints = p.get('endpoints')!.split(',').map((s) => s.trim()).filter(Boolean);
      if (endpoints.length === 0) throw new UsageError('--endpoints is empty');
      for (const e of endpoints) {
        let u: URL;
        try { u = new URL(e); } catch { throw new UsageError(`--endpoints: "${e}" is not a URL (e.g. http://127.0.0.1:2379)`); }
        if (u.protocol !== 'http:' || !u.port) throw new UsageError(`--endpoints: "${e}" must be http://host:port`);
      }
      const needCluster = faults.filter((f) => clusterFaults.has(f));
      if (rawFaults === undefined) faults = ['compact'];
      else if (needCluster.length) throw new UsageError(`--faults ${needCluster.join(',')} need a cluster the harness starts itself; with --endpoints only compact applies`);
    }
    const kvClients = int(p, 'clients', 8, 1, 256);
    const keys = int(p, 'keys', 5, 1, 10_000);
    const log = quiet ? () => {} : (l: string) => console.error(`[chaos] ${l}`);
    log(`seed ${seed}`);
    let report;
    try {
      report = await runChaos({ target, members, durationS, faults, seed, reportDir: p.get('report'), endpoints, kvClients, keys, log });
    } catch (e) {
      // The run could not complete (a cluster that never started, a report dir that cannot be written): no verdict.
      console.error(`keelson chaos: the run did not complete (seed ${seed}): ${(e as Error).message}`);
      return 1;
    }
    console.log(summaryText(report));
    return report.passed ? 0 : 1;
  },
};
