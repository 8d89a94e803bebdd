// One chaos run: start the cluster (or take the given endpoints), run the
// workload while the fault plan plays, heal everything, read the final state
// and every member's hash, check the history, write the report.
//
// Phases: (1) safety phase: workload + faults for the duration; (2) heal:
// links healed, paused members continued, stopped members restarted, wait for
// a leader; (3) quiesce: the workload stops (in-flight ops end within their
// timeout), members catch up to one revision; (4) final reads: a linearizable
// range over the prefix, watchers drained up to that revision, HashKV of
// every member at it; (5) checks and report.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkAll } from './check/index.ts';
import { EndpointClient } from './client.ts';
import { LocalCluster, type Target } from './cluster.ts';
import { clusterFaults, planFaults, runPlan, type FaultKind } from './faults.ts';
import type { History, MemberHash } from './history.ts';
import { prefixEndString } from './history.ts';
import { buildReport, summaryText, writeReport, type Report } from './report.ts';
import { Workload } from './workload.ts';

export interface ChaosOptions {
  target: Target;
  members: number;
  durationS: number;
  faults: FaultKind[];
  seed: number;
  reportDir?: string;
  endpoints?: string[];
  kvClients?: number;
  keys?: number;
  watchers?: number;
  leaseWorkers?: number;
  heartbeatMs?: number;
  electionMs?: number;
  log?: (line: string) => void;
}

/** mulberry32: small, fast, and good enough to drive a schedule; one stream per purpose. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function retry<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try { return await fn(); } catch (e) { last = e; await sleep(200); }
  }
  throw new Error(`${what}: ${(last as Error)?.message ?? 'timed out'}`);
}

export async function runChaos(o: ChaosOptions): Promise<Report> {
  const log = o.log ?? (() => {});
  const reportDir = o.reportDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-chaos-'));
  fs.mkdirSync(reportDir, { recursive: true });
  const notes: string[] = [];
  const planRandom = seededRandom(o.seed);
  const workRandom = seededRandom(o.seed ^ 0x9e3779b9);
  const netRandom = seededRandom(o.seed ^ 0x85ebca6b);
  const plan = planFaults(o.faults, o.durationS * 1000, planRandom);
  let cluster: LocalCluster | null = null;
  let external: EndpointClient[] = [];
  const onSignal = () => { void cluster?.stop().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (o.endpoints) {
      external = o.endpoints.map((e) => new EndpointClient(e));
    } else {
      cluster = new LocalCluster({
        target: o.target, members: o.members, dir: path.join(reportDir, 'cluster'), token: `chaos-${o.seed}-${process.pid}`,
        random: netRandom, heartbeatMs: o.heartbeatMs, electionMs: o.electionMs, log,
      });
      log(`starting ${o.members} ${o.target} members in ${path.join(reportDir, 'cluster')}`);
      await cluster.start();
      log(`cluster up: ${cluster.members.map((m) => `${m.name} ${m.clientUrl}`).join(', ')}; leader ${await cluster.leader()}`);
    }
    const clients = () => (cluster ? cluster.members.filter((m) => m.state !== 'removed').map((m) => m.client) : external);
    const prefix = `/chaos/${o.seed}-${Date.now().toString(36)}/`;
    const workload = new Workload({
      prefix, clients, random: workRandom, kvClients: o.kvClients, keys: o.keys, watchers: o.watchers, leaseWorkers: o.leaseWorkers,
      log,
    });
    const h: History = workload.history;
    // A fresh cluster written only by this workload has a dense revision history.
    h.denseRevisions = cluster !== null;
    log(`workload on ${prefix} for ${o.durationS} s; ${plan.length} faults planned`);
    const t0 = Date.now();
    workload.start();
    const deadline = t0 + o.durationS * 1000;
    await runPlan(plan, { cluster, workload, now: () => workload.now(), log, deadline }, h.faults);
    while (Date.now() < deadline) await sleep(100);

    // Heal.
    if (cluster) {
      cluster.links.clear();
      for (const m of cluster.members) {
        if (m.state === 'paused') cluster.resume(m.name);
        if (m.state === 'stopped') cluster.restart(m.name);
      }
      try { await cluster.waitHealthy(30_000); } catch (e) { notes.push(`after healing: ${(e as Error).message}`); }
    }
    log('stopping the workload');
    await workload.stop();

    // Quiesce: every member at the same revision (bounded).
    const members = cluster ? cluster.members.filter((m) => m.state !== 'removed').map((m) => ({ name: m.name, client: m.client })) : external.map((c) => ({ name: c.endpoint, client: c }));
    let finalRev = 0;
    const quiesceEnd = Date.now() + 30_000;
    while (Date.now() < quiesceEnd) {
      const revs = await Promise.all(members.map((m) => m.client.status(1000).then((s) => Number(s.header.revision), () => -1)));
      if (revs.every((r) => r > 0 && r === revs[0])) { finalRev = revs[0]!; break; }
      await sleep(200);
    }
    if (finalRev === 0) notes.push('members did not reach one revision within 30 s after the run');

    // Final state.
    const touched = new Set(h.kv.map((op) => op.key));
    try {
      const readMs = workload.now();
      // A linearizable range over the prefix, from whichever member answers (tried in turn).
      let turn = 0;
      const res = await retry('final read', 20_000, () => members[turn++ % members.length]!.client.range(
        { key: Buffer.from(prefix, 'latin1'), range_end: Buffer.from(prefixEndString(prefix), 'latin1') }, 5000));
      const keys: Record<string, { value: string; modRevision: number } | null> = {};
      for (const k of touched) keys[k] = null;
      for (const kv of res.kvs) keys[Buffer.from(kv.key).toString('latin1')] = { value: Buffer.from(kv.value).toString('latin1'), modRevision: Number(kv.mod_revision) };
      h.finalState = { revision: Number(res.header.revision), readMs, keys };
      if (finalRev === 0) finalRev = h.finalState.revision;
    } catch (e) {
      notes.push(`final read failed: ${(e as Error).message}`);
    }
    await workload.closeWatchers(finalRev, 15_000);

    // Hashes at one revision.
    const hashes: MemberHash[] = [];
    if (finalRev > 0) {
      for (const m of members) {
        try {
          const r = await retry(`hash ${m.name}`, 10_000, () => m.client.hashKV(finalRev, 3000));
          hashes.push({ member: m.name, ok: true, revision: finalRev, hash: Number(r.hash), compactRevision: Number(r.compact_revision) });
        } catch (e) {
          hashes.push({ member: m.name, ok: false, revision: finalRev, hash: 0, error: (e as Error).message });
        }
      }
      h.hashes = hashes;
    }

    if (workload.full()) notes.push('the recording bounds were reached: the workload stopped early (see kvOpsMax, watchEventsMax)');
    if (cluster) {
      for (const line of cluster.unexpectedExits) notes.push(line);
      if (cluster.unidentified > 0) notes.push(`${cluster.unidentified} peer connections could not be attributed to a member and were forwarded untouched (typically a member dialing as it was killed)`);
    }
    log('checking the history');
    const checks = checkAll(h);
    const report = buildReport({
      target: o.endpoints ? `${o.target} (endpoints)` : o.target, members: o.endpoints ? o.endpoints.length : o.members, seed: o.seed,
      durationS: o.durationS, faults: o.faults, endpoints: members.map((m) => m.name), plan, notes,
    }, h, checks);
    writeReport(reportDir, report, h);
    log(`report in ${reportDir}`);
    return report;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const c of external) c.close();
    if (cluster) {
      await cluster.stop();
      // Keep the member logs, not their data.
      for (const m of cluster.members) fs.rmSync(m.dataDir, { recursive: true, force: true });
    }
  }
}

export { summaryText };
