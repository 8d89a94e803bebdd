// The CI slice of the benchmarks: each `npm run bench:*` script, run briefly
// with its results going to a temporary directory (KEELSON_BENCH_RESULTS),
// must finish, write its results file, and report work actually done. This
// checks that the benchmarks work, not how fast anything is: the numbers of a
// one-second run on a shared machine mean nothing, and performance is never
// asserted in tests. bench:store needs etcd (Debian etcd-server); without
// /usr/bin/etcd its case is skipped, as the other etcd tests are.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { etcdBinary } from '../store/client/etcd-cluster.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const benchTimeoutMs = 5 * 60 * 1000;
const outputKeptBytesMax = 64 * 1024;

/** Runs one npm bench script with its results in a fresh directory; returns that directory. */
async function runBench(script: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `keelson-bench-slice-${script.replace(':', '-')}-`));
  const child = spawn('npm', ['run', '-s', script, '--', ...args], {
    cwd: root,
    env: { ...process.env, ...env, KEELSON_BENCH_RESULTS: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > outputKeptBytesMax) out = out.slice(-outputKeptBytesMax);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const timer = setTimeout(() => child.kill('SIGKILL'), benchTimeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  assert.is(code, 0, `${script} ${args.join(' ')} exited ${code}:\n${out.slice(-4000)}`);
  return dir;
}

function readJson(dir: string, file: string): any {
  const p = path.join(dir, file);
  assert.ok(fs.existsSync(p), `${file} written to the results directory`);
  return JSON.parse(fs.readFileSync(p, 'utf8'));
}

const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('bench:raft commits entries on every member', async () => {
  const dir = await runBench('bench:raft', ['--seconds', '1', '--warmup', '0']);
  dirs.push(dir);
  const r = readJson(dir, 'raft.json');
  assert.is(r.members.length, 3);
  for (const m of r.members) assert.ok(m.committed > 0, `member ${m.id} committed entries`);
});

test('bench:wal measures the fdatasync floor and durable appends', async () => {
  const dir = await runBench('bench:wal', ['--seconds=1', '--blockOps=20', '--singleOps=200']);
  dirs.push(dir);
  const r = readJson(dir, 'wal.json');
  assert.ok(r.floor.opsPerSec > 0);
  assert.is(r.wal.single.entries, 200);
  assert.ok(r.wal.single.fdatasyncs > 0);
});

test('bench:mvcc runs every case', async () => {
  const dir = await runBench('bench:mvcc', []);
  dirs.push(dir);
  const r = readJson(dir, 'mvcc.json');
  assert.ok(r.results.length >= 5, 'several cases');
  for (const c of r.results) assert.ok(c.ops > 0 && c.perSecond > 0, `${c.name}: work done`);
});

test('bench:embedded: puts, ranges and watch fan-out on one and three members', async () => {
  const dir = await runBench('bench:embedded', [], { SECONDS: '0.5' });
  dirs.push(dir);
  const r = readJson(dir, 'embedded.json');
  const targets = Object.keys(r.throughput);
  assert.is(targets.length, 2);
  for (const t of targets) {
    const x = r.throughput[t];
    for (const callers of [1, 100, 1000]) assert.ok(x[`puts_${callers}_callers`].putsPerSecond > 0, `${t}: puts with ${callers} callers`);
    assert.ok(x.range_1_key_per_second > 0 && x.range_1000_keys_per_second > 0, `${t}: ranges`);
    assert.ok(x.watch_1000_watchers_events_per_second > 0, `${t}: watch events delivered`);
    assert.ok(x.wal.fdatasyncs > 0, `${t}: puts were synced`);
  }
});

const haveEtcd = fs.existsSync(etcdBinary);
if (haveEtcd) {
  test('bench:store drives Keelson and etcd with the same load and reports ratios', async () => {
    const dir = await runBench('bench:store', ['--seconds', '1', '--warmup', '0']);
    dirs.push(dir);
    const r = readJson(dir, 'store.json');
    assert.ok(r.rows.length >= 7, 'every row');
    for (const row of r.rows) {
      assert.ok(row.keelson > 0 && row.etcd > 0, `${row.name}: both systems measured`);
      assert.ok(Math.abs(row.ratio - row.keelson / row.etcd) < 1e-9, `${row.name}: ratio`);
    }
    assert.ok(fs.existsSync(path.join(dir, 'store.svg')), 'chart written');
  });
} else {
  test(`bench:store (skipped: ${etcdBinary} is not installed)`, () => {});
}

test('bench:apiserver: creates over HTTPS (closed and open loop), LIST and watch fan-out', async () => {
  const dir = await runBench('bench:apiserver', [
    '--only', 'creates,list,fanout', '--write', '1', '--seconds', '1', '--warmup', '0', '--clients', '10', '--rate', '200',
    '--list', '1000', '--watchers', '10', '--events', '20',
  ]);
  dirs.push(dir);
  const r = readJson(dir, 'apiserver-embedded.json');
  for (const k of ['closedLoop', 'openLoop', 'getsClosedLoop']) {
    const run = r.creates[k];
    assert.is(run.errors, 0, `${k}: no errors (${run.firstError ?? ''})`);
    assert.ok(run.created > 0, `${k}: requests answered`);
    assert.ok(run.serverCpuMsPerCreate > 0, `${k}: server CPU measured`);
  }
  assert.is(r.creates.openLoop.dropped, 0);
  assert.is(r.list[0].pods, 1000);
  assert.ok(r.list[0].bytes > 0);
  assert.is(r.fanout.delivered, 10 * 20);
});

test.run();
