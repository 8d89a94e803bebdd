// The `keelson store` client commands against `keelson store serve`
// processes: output formats, snapshot save -> status -> restore into a new
// 3-member cluster with the same keyspace hash, and the error paths (bad
// flags, unreachable endpoint, corrupt snapshot, existing data dir: exit 2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, keelson as keelsonProcess, keelsonInProcess as keelson, tempDir, until } from './store-helpers.ts';
import { UsageError } from '../../src/cli/command.ts';
import { parseServeArgs } from '../../src/cli/store/serve.ts';

const dir = tempDir('keelson-store-cli-');
let source: Cluster;
let restored: Cluster | null = null;

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.is(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test.before(async () => {
  source = await Cluster.create(path.join(dir, 'src'), ['solo'], 'keelson-src');
  fs.mkdirSync(source.dir, { recursive: true });
  await source.startAll();
  await until('leader', async () => (await keelson('store', 'put', 'ready', '1', `--endpoints=${source.endpoints()}`)).code === 0);
});

test.after(async () => {
  await source?.stopAll();
  await restored?.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('client commands: put/get/del, txn from a file, lease, member list and endpoint status in every format', async () => {
  const e = `--endpoints=${source.endpoints()}`;
  assert.is(ok(await keelson('store', 'put', '/cli/a', '1', e), 'put'), 'OK\n');
  ok(await keelson('store', 'put', '/cli/b', '2', e), 'put');
  assert.is(ok(await keelson('store', 'get', '/cli/', '--prefix', e), 'get'), '/cli/a\n1\n/cli/b\n2\n');
  const json = JSON.parse(ok(await keelson('store', 'get', '/cli/a', '-w', 'json', e), 'get json')) as { kvs: Array<{ key: string; value: string }>; header: { revision: number } };
  assert.is(Buffer.from(json.kvs[0]!.key, 'base64').toString(), '/cli/a');
  assert.ok(json.header.revision > 0);
  const txnFile = path.join(dir, 'txn.txt');
  fs.writeFileSync(txnFile, 'value("/cli/a") = "1"\n\nput /cli/a one\n\nput /cli/a other\n');
  assert.is(ok(await keelson('store', 'txn', `--file=${txnFile}`, e), 'txn'), 'SUCCESS\n\nOK\n');
  const lease = /lease ([0-9a-f]+) granted with TTL\(30s\)/.exec(ok(await keelson('store', 'lease', 'grant', '30', e), 'grant'))![1]!;
  ok(await keelson('store', 'put', '/cli/l', 'x', `--lease=${lease}`, e), 'put --lease');
  assert.match(ok(await keelson('store', 'lease', 'timetolive', lease, '--keys', e), 'ttl'), 'attached keys([/cli/l])');
  ok(await keelson('store', 'lease', 'revoke', lease, e), 'revoke');
  assert.is(ok(await keelson('store', 'del', '/cli/', '--prefix', e), 'del'), '2\n');
  const table = ok(await keelson('store', 'member', 'list', '-w', 'table', e), 'member list');
  assert.match(table, '| IS LEARNER |');
  assert.match(table, ' solo ');
  const status = JSON.parse(ok(await keelson('store', 'endpoint', 'status', '-w', 'json', e), 'status')) as Array<{ Status: { leader: number; header: { member_id: number } } }>;
  assert.is(status[0]!.Status.leader, status[0]!.Status.header.member_id);
  assert.match(ok(await keelson('store', 'endpoint', 'health', e), 'health'), 'is healthy');
  // --cluster: every member's advertised client URLs (full URLs, scheme included).
  const all = JSON.parse(ok(await keelson('store', 'endpoint', 'status', '--cluster', '-w', 'json', e), 'status --cluster')) as Array<{ Endpoint: string }>;
  assert.equal(all.map((x) => x.Endpoint), [`http://${source.members[0]!.endpoint}`]);
});

test('snapshot save, status, and restore into a new 3-member cluster with the same hash', async () => {
  const e = `--endpoints=${source.endpoints()}`;
  const puts = path.join(dir, 'puts.txt');
  fs.writeFileSync(puts, `\n${Array.from({ length: 50 }, (_, i) => `put /snap/${i} value-${i}`).join('\n')}\n\n`);
  assert.is(ok(await keelson('store', 'txn', `--file=${puts}`, e), 'txn'), `SUCCESS\n${'\nOK\n'.repeat(50)}`);
  const file = path.join(dir, 'backup.snap');
  assert.match(ok(await keelson('store', 'snapshot', 'save', file, e), 'save'), `Snapshot saved at ${file}`);
  const st = JSON.parse(ok(await keelson('store', 'snapshot', 'status', file, '-w', 'json'), 'status')) as { revision: number; hash: string };
  assert.ok(st.revision >= 2, JSON.stringify(st));
  const before = ok(await keelson('store', 'endpoint', 'hash', `--rev=${st.revision}`, e), 'hash').trim().split(', ')[1];

  restored = await Cluster.create(path.join(dir, 'new'), ['r1', 'r2', 'r3'], 'keelson-restored');
  for (const m of restored.members) {
    ok(await keelson('store', 'snapshot', 'restore', file, `--data-dir=${m.dataDir}`, `--name=${m.name}`,
      `--initial-cluster=${restored.initialCluster()}`, `--initial-advertise-peer-urls=${m.peerUrl}`, '--initial-cluster-token=keelson-restored'), 'restore');
  }
  // A restore never writes over an existing data dir.
  const again = await keelson('store', 'snapshot', 'restore', file, `--data-dir=${restored.members[0]!.dataDir}`, '--name=r1', `--initial-cluster=${restored.initialCluster()}`);
  assert.is(again.code, 2, again.stderr);
  assert.match(again.stderr, 'already exists');
  await restored.startAll();
  const re = `--endpoints=${restored.endpoints()}`;
  await until('restored cluster serves', async () => (await keelson('store', 'get', '/snap/49', re)).stdout === '/snap/49\nvalue-49\n');
  const hashes = ok(await keelson('store', 'endpoint', 'hash', `--rev=${st.revision}`, re), 'hash').trim().split('\n').map((l) => l.split(', ')[1]);
  assert.equal(hashes, [before, before, before]);
  ok(await keelson('store', 'put', '/snap/new', 'x', re), 'write to the restored cluster');
});

test('NOSPACE: past --quota-backend-bytes writes fail, the alarm shows, deleting and compacting clears it', async () => {
  const small = await Cluster.create(path.join(dir, 'quota'), ['q'], 'keelson-quota');
  try {
    await small.start(small.members[0]!, ['--quota-backend-bytes=262144']);
    const e = `--endpoints=${small.endpoints()}`;
    const { EndpointClient } = await import('../../src/cli/store/grpc.ts');
    const c = new EndpointClient(small.members[0]!.endpoint, 10_000);
    let failure = '';
    try {
      for (let i = 0; i < 2000 && failure === ''; i++) {
        await c.unary('KV', 'Put', { key: Buffer.from(`/q/${i % 50}`), value: Buffer.alloc(2000, i) }).catch((err: Error) => (failure = err.message));
      }
    } finally {
      c.close();
    }
    assert.match(failure, 'database space exceeded');
    // The alarm is raised through the log, just after the refused write.
    await until('alarm listed', async () => ok(await keelson('store', 'alarm', 'list', e), 'alarm list').includes('alarm:NOSPACE'), 10_000);
    const health = await keelson('store', 'endpoint', 'health', e);
    assert.is(health.code, 2, 'unhealthy while the alarm is active');
    const status = JSON.parse(ok(await keelson('store', 'get', '/q/0', '-w', 'json', e), 'get')) as { header: { revision: number } };
    ok(await keelson('store', 'del', '/q/', '--prefix', e), 'del is allowed');
    ok(await keelson('store', 'compact', String(status.header.revision + 1), e), 'compact is allowed');
    ok(await keelson('store', 'alarm', 'disarm', e), 'disarm');
    await until('writes work again', async () => (await keelson('store', 'put', '/q/after', 'x', e)).code === 0);
    assert.is(ok(await keelson('store', 'alarm', 'list', e), 'alarm list'), '');
  } finally {
    await small.stopAll();
  }
});

test('--backend-batch-interval and --backend-batch-limit: etcd defaults, durations, bounds', () => {
  const d = parseServeArgs([]);
  assert.equal([d.backendBatchIntervalMs, d.backendBatchLimit], [100, 10_000]);
  const c = parseServeArgs(['--backend-batch-interval=250ms', '--backend-batch-limit=500']);
  assert.equal([c.backendBatchIntervalMs, c.backendBatchLimit], [250, 500]);
  assert.is(parseServeArgs(['--backend-batch-interval=2s']).backendBatchIntervalMs, 2000);
  for (const bad of [['--backend-batch-interval=0ms'], ['--backend-batch-interval=11s'], ['--backend-batch-interval=soon'], ['--backend-batch-limit=0'], ['--backend-batch-limit=2000000']]) {
    assert.throws(() => parseServeArgs(bad), (e: unknown) => e instanceof UsageError, bad[0]);
  }
});

test('bad flags, unreachable endpoints and corrupt snapshot files exit with 2 and a clear message', async () => {
  // Through the real command once, for the exit code of the process itself.
  const bad = await keelsonProcess('store', 'get', 'k', '--no-such-flag');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, 'unknown flag --no-such-flag');
  const badServe = await keelson('store', 'serve', '--initial-cluster-state=maybe');
  assert.is(badServe.code, 2);
  assert.match(badServe.stderr, '--initial-cluster-state must be new or existing');
  // The subcommand's own usage follows, not the whole command list.
  assert.match(badServe.stderr, 'Usage: keelson store serve');
  assert.not.match(badServe.stderr, 'Client commands');
  const badRev = await keelson('store', 'get', 'k', '--rev=abc');
  assert.is(badRev.code, 2);
  const unreachable = await keelson('store', 'get', 'k', '--endpoints=127.0.0.1:1', '--dial-timeout=1s', '--command-timeout=1s');
  assert.is(unreachable.code, 2);
  assert.match(unreachable.stderr, '127.0.0.1:1 is unreachable');
  const corrupt = path.join(dir, 'corrupt.snap');
  const good = fs.readFileSync(path.join(dir, 'backup.snap'));
  const flipped = Buffer.from(good);
  flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
  fs.writeFileSync(corrupt, flipped);
  const st = await keelson('store', 'snapshot', 'status', corrupt);
  assert.is(st.code, 2);
  assert.match(st.stderr, 'checksum mismatch');
  const target = path.join(dir, 'never');
  const rs = await keelson('store', 'snapshot', 'restore', corrupt, `--data-dir=${target}`, '--name=x', '--initial-cluster=x=http://127.0.0.1:1');
  assert.is(rs.code, 2);
  assert.ok(!fs.existsSync(target), 'nothing written');
  fs.writeFileSync(corrupt, good.subarray(0, good.length - 100));
  assert.is((await keelson('store', 'snapshot', 'status', corrupt)).code, 2);
  const help = await keelson('store', 'snapshot', '--help');
  assert.is(help.code, 0);
  assert.match(help.stdout, 'snapshot restore FILE');
  for (const sub of ['serve', 'put', 'get', 'del', 'watch', 'txn', 'lease', 'compact', 'member', 'endpoint', 'move-leader', 'alarm']) {
    const h = await keelson('store', sub, '--help');
    assert.is(h.code, 0, `${sub} --help`);
    assert.match(h.stdout, 'Usage: keelson store');
  }
});

test.run();
