// Raft core throughput: three members in one process, an in-memory transport
// driven from JavaScript, 256-byte entries proposed with proposeBatch.
// Counts entries committed (handed out for apply) on every member per second.
//
// What is measured is the native core plus the N-API seam and the routing
// loop: no disk, no sockets. "Persisting" a Ready is calling advance().
//
// Usage: npm run bench:raft [-- --seconds 5 --batch 4096 --entry 256]
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { RaftNode, type RaftConfig, type RaftNode as Core } from '../src/native.ts';
import { resultsDir } from './lib/results.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const seconds = Number(args.get('seconds') ?? 5);
const warmupSeconds = Number(args.get('warmup') ?? 1);
const batchEntries = Number(args.get('batch') ?? 2048);
const entryBytes = Number(args.get('entry') ?? 256);
const snapshotEveryBatches = 32;

const ids = [1, 2, 3];
function config(id: number): RaftConfig {
  return {
    id,
    voters: ids,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxSizePerMsgBytes: 4 << 20,
    maxInflightMsgs: 64,
    maxInflightBytes: 256 << 20,
    maxUncommittedEntriesBytes: 512 << 20,
    seed: id,
  };
}

const nodes = new Map<number, Core>(ids.map((id) => [id, new RaftNode(config(id))]));
const committed = new Map<number, number>(ids.map((id) => [id, 0]));
let counting = false;
let inbox: Array<{ to: number; data: Buffer }> = [];

function pump(): boolean {
  let moved = false;
  for (const [id, n] of nodes) {
    if (!n.hasReady()) continue;
    moved = true;
    const rd = n.ready();
    if (counting) committed.set(id, committed.get(id)! + rd.committedCount);
    for (const m of rd.messages) inbox.push(m);
    n.advance();
  }
  if (inbox.length) {
    moved = true;
    const q = inbox;
    inbox = [];
    for (const { to, data } of q) nodes.get(to)!.step(data);
  }
  return moved;
}

// Elect member 1.
nodes.get(1)!.campaign();
for (let i = 0; i < 100 && nodes.get(1)!.status().role !== 'leader'; i++) pump();
while (pump());
const leader = nodes.get(1)!;
if (leader.status().role !== 'leader') throw new Error('bench: no leader');

// One records buffer reused for every batch: [u32 length][bytes] x batch.
const payload = Buffer.alloc(entryBytes, 0x61);
const records = Buffer.alloc(batchEntries * (4 + entryBytes));
for (let i = 0; i < batchEntries; i++) {
  records.writeUInt32LE(entryBytes, i * (4 + entryBytes));
  payload.copy(records, i * (4 + entryBytes) + 4);
}

let batches = 0;
// A real host returns to the event loop between socket reads and disk
// writes; so does the bench, which also lets finalizers of handed-out
// buffers run (N-API defers them to the event loop).
const yieldEveryBatches = Number(args.get('yield-every') ?? 2);
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
async function runFor(ms: number): Promise<number> {
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  while (now < end) {
    leader.proposeBatch(records, batchEntries);
    batches++;
    // Two routing rounds per batch keep the pipeline full without letting
    // uncommitted entries pile up.
    pump();
    pump();
    if (batches % yieldEveryBatches === 0) await yieldToLoop();
    if (batches % snapshotEveryBatches === 0) {
      for (const n of nodes.values()) {
        const s = n.status();
        if (s.applied > s.firstIndex + batchEntries) n.createSnapshot(s.applied, Buffer.alloc(0));
      }
    }
    now = process.hrtime.bigint();
  }
  while (pump());
  return Number(process.hrtime.bigint() - start) / 1e9;
}

await runFor(warmupSeconds * 1000);
counting = true;
const cpuBefore = process.cpuUsage();
const elapsed = await runFor(seconds * 1000);
const cpu = process.cpuUsage(cpuBefore);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
counting = false;

const perMember = ids.map((id) => ({ id, role: nodes.get(id)!.status().role, committed: committed.get(id)!, perSecond: committed.get(id)! / elapsed }));
const clusterRate = Math.min(...perMember.map((m) => m.perSecond));
const result = {
  benchmark: 'raft-core',
  date: new Date().toISOString(),
  host: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version },
  params: { members: ids.length, entryBytes, batchEntries, yieldEveryBatches, seconds: elapsed, maxSizePerMsgBytes: config(1).maxSizePerMsgBytes, maxInflightMsgs: config(1).maxInflightMsgs },
  members: perMember,
  committedEntriesPerSecond: Math.round(clusterRate),
  committedMiBPerSecond: Number(((clusterRate * entryBytes) / (1 << 20)).toFixed(1)),
  // The machine may be shared: per second of this process's CPU time is the
  // steadier figure (the bench is single-threaded apart from the GC).
  cpuSeconds: Number(cpuSeconds.toFixed(2)),
  committedEntriesPerCpuSecond: Math.round((clusterRate * elapsed) / cpuSeconds),
  loadAverage: os.loadavg()[0],
  target: 1_000_000,
};

console.log(`Raft core, ${ids.length} members in one process, ${entryBytes}-byte entries, batches of ${batchEntries}, ${elapsed.toFixed(2)} s`);
console.log('member  role      committed     entries/s');
for (const m of perMember) console.log(`${String(m.id).padEnd(7)} ${m.role.padEnd(9)} ${String(m.committed).padStart(10)} ${Math.round(m.perSecond).toLocaleString('en-US').padStart(13)}`);
console.log(`committed on all members: ${result.committedEntriesPerSecond.toLocaleString('en-US')} entries/s (${result.committedMiBPerSecond} MiB/s payload); target ${result.target.toLocaleString('en-US')}`);
console.log(`per CPU second: ${result.committedEntriesPerCpuSecond.toLocaleString('en-US')} entries (cpu ${result.cpuSeconds} s over ${elapsed.toFixed(2)} s, load average ${result.loadAverage.toFixed(2)})`);

writeFileSync(path.join(resultsDir(), 'raft.json'), JSON.stringify(result, null, 2) + '\n');
