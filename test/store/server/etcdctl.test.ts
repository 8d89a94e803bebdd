// etcdctl 3.4 (Debian's etcd-client, /usr/bin/etcdctl) against the Keelson
// etcd API server on a local store: the commands operators use, with their
// output and exit codes checked as etcdctl prints them for etcd.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readU64 } from '../../../src/store/mvcc/encoding.ts';
import { LocalClusterStore } from '../../../src/store/server/local-cluster.ts';
import { parseSnapshotFile } from '../../../src/store/server/snapshot-file.ts';
import { startServer, type ServerFixture } from './helpers.ts';

const etcdctlBin = process.env.KEELSON_ETCDCTL_BIN ?? '/usr/bin/etcdctl';
/** One etcdctl invocation's bound (the machine is shared and loaded). */
const commandTimeoutMs = 20_000;

interface Result { code: number; stdout: string; stderr: string }

const s = suite<{ fx?: ServerFixture }>('etcdctl 3.4 against the Keelson server', {});

function ctl(fx: ServerFixture, args: string[], input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(etcdctlBin, [`--endpoints=127.0.0.1:${fx.port}`, '--command-timeout=10s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeout: commandTimeoutMs,
    }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function ok(fx: ServerFixture, args: string[], input?: string): Promise<string> {
  const r = await ctl(fx, args, input);
  assert.is(r.code, 0, `etcdctl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Runs a long-lived etcdctl (watch) until its output contains `want` or timeoutMs passes; `poke` runs every pokeMs meanwhile. */
async function until(fx: ServerFixture, args: string[], want: string, poke?: () => Promise<unknown>, timeoutMs = 15_000, pokeMs = 300): Promise<string> {
  const child = spawn(etcdctlBin, [`--endpoints=127.0.0.1:${fx.port}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const deadline = Date.now() + timeoutMs;
  try {
    while (!out.includes(want) && Date.now() < deadline) {
      if (poke) await poke();
      await new Promise((r) => setTimeout(r, pokeMs));
    }
  } finally {
    child.kill('SIGKILL');
  }
  return out;
}

s.before.each(async (ctx) => {
  ctx.fx = await startServer();
});
s.after.each(async (ctx) => {
  await ctx.fx?.stop();
});
const F = (ctx: { fx?: ServerFixture }) => ctx.fx as ServerFixture;

s('put, get (--prefix, --rev, --keys-only, -w json with the header), del --prefix', async (ctx) => {
  const fx = F(ctx);
  assert.is(await ok(fx, ['put', 'foo', 'bar']), 'OK\n');
  const r1 = (await fx.store.range(Buffer.from('foo'))).header.revision;
  await ok(fx, ['put', 'foo', 'baz']);
  await ok(fx, ['put', 'foo/a', '1']);
  await ok(fx, ['put', 'foo/b', '2']);
  assert.is(await ok(fx, ['get', 'foo']), 'foo\nbaz\n');
  assert.is(await ok(fx, ['get', 'foo', `--rev=${r1}`]), 'foo\nbar\n');
  assert.is(await ok(fx, ['get', 'foo/', '--prefix']), 'foo/a\n1\nfoo/b\n2\n');
  assert.is(await ok(fx, ['get', 'foo', '--prefix', '--keys-only']), 'foo\n\nfoo/a\n\nfoo/b\n\n');
  const j = JSON.parse(await ok(fx, ['get', 'foo', '-w', 'json']));
  assert.equal([j.header.cluster_id, j.header.member_id, j.header.raft_term], [fx.store.clusterId, fx.store.memberId, 1]);
  assert.is(j.header.revision, fx.store.header().revision);
  assert.is(Buffer.from(j.kvs[0].value, 'base64').toString(), 'baz');
  assert.is(await ok(fx, ['del', 'foo/', '--prefix']), '2\n');
  assert.is(await ok(fx, ['get', 'foo/', '--prefix']), '');
});

s('txn from standard input: both branches', async (ctx) => {
  const fx = F(ctx);
  await ok(fx, ['put', 'k', 'v1']);
  const yes = await ok(fx, ['txn'], 'value("k") = "v1"\n\nput k v2\nget k\n\nput k never\n\n');
  assert.is(yes, 'SUCCESS\n\nOK\n\nk\nv2\n');
  const no = await ok(fx, ['txn'], 'value("k") = "v1"\n\nput k never\n\nget k\n\n');
  assert.is(no, 'FAILURE\n\nk\nv2\n');
});

s('watch --rev --prev-kv replays history; a live watch sees new puts and deletes', async (ctx) => {
  const fx = F(ctx);
  const r1 = (await fx.store.put(Buffer.from('w'), Buffer.from('a'))).header.revision;
  await fx.store.put(Buffer.from('w'), Buffer.from('b'));
  const hist = await until(fx, ['watch', 'w', `--rev=${r1}`, '--prev-kv'], 'w\nb\n');
  assert.ok(hist.startsWith('PUT\nw\na\nPUT\nw\na\nw\nb\n'), hist);
  let n = 0;
  const live = await until(fx, ['watch', 'live/', '--prefix'], 'DELETE\nlive/x', async () => {
    // Until the watch is up, keep writing: etcdctl prints nothing on creation.
    await fx.store.put(Buffer.from(`live/${n++}`), Buffer.from('v'));
    if (n > 3) await fx.store.deleteRange(Buffer.from('live/x'));
    await fx.store.put(Buffer.from('live/x'), Buffer.from('x'));
  });
  assert.match(live, /PUT\nlive\/\d+\nv\n/);
  assert.ok(live.includes('DELETE\nlive/x\n'), live);
});

s('lease grant, put --lease, timetolive --keys, keep-alive --once, list, revoke deletes the keys', async (ctx) => {
  const fx = F(ctx);
  const grant = await ok(fx, ['lease', 'grant', '60']);
  const m = /^lease ([0-9a-f]+) granted with TTL\(60s\)\n$/.exec(grant);
  assert.ok(m, grant);
  const id = (m as RegExpExecArray)[1];
  await ok(fx, ['put', `--lease=${id}`, 'lk1', 'v']);
  await ok(fx, ['put', `--lease=${id}`, 'lk2', 'v']);
  assert.match(await ok(fx, ['lease', 'timetolive', id, '--keys']), new RegExp(`^lease ${id} granted with TTL\\(60s\\), remaining\\(\\d+s\\), attached keys\\(\\[lk1 lk2\\]\\)\\n$`));
  assert.is(await ok(fx, ['lease', 'keep-alive', '--once', id]), `lease ${id} keepalived with TTL(60)\n`);
  assert.is(await ok(fx, ['lease', 'list']), `found 1 leases\n${id}\n`);
  assert.is(await ok(fx, ['lease', 'revoke', id]), `lease ${id} revoked\n`);
  assert.is(await ok(fx, ['get', 'lk', '--prefix']), '');
  assert.is(await ok(fx, ['lease', 'timetolive', id]), `lease ${id} already expired\n`);
  const again = await ctl(fx, ['lease', 'revoke', id]);
  assert.is.not(again.code, 0);
  assert.ok(again.stderr.includes('etcdserver: requested lease not found'), again.stderr);
  const ka = await ctl(fx, ['lease', 'keep-alive', '--once', id]);
  assert.is.not(ka.code, 0);
  assert.ok(ka.stderr.includes('requested lease not found'), ka.stderr);
});

s('lock: etcdctl runs a command while holding a lock (sessions: lease keep-alive stream, txn, watch)', async (ctx) => {
  const fx = F(ctx);
  assert.is(await ok(fx, ['lock', 'the-lock', '--', 'echo', 'locked-ok']), 'locked-ok\n');
  // The session's lease is revoked on exit, so the lock key is gone.
  assert.is(await ok(fx, ['get', 'the-lock', '--prefix', '--keys-only']), '');
});

s('compaction: reads below it fail with etcd\'s message', async (ctx) => {
  const fx = F(ctx);
  const r1 = (await fx.store.put(Buffer.from('c'), Buffer.from('1'))).header.revision;
  const r2 = (await fx.store.put(Buffer.from('c'), Buffer.from('2'))).header.revision;
  assert.is(await ok(fx, ['compaction', String(r2), '--physical']), `compacted revision ${r2}\n`);
  const below = await ctl(fx, ['get', 'c', `--rev=${r1}`]);
  assert.is.not(below.code, 0);
  assert.ok(below.stderr.includes('Error: etcdserver: mvcc: required revision has been compacted'), below.stderr);
  assert.is(await ok(fx, ['get', 'c', `--rev=${r2}`]), 'c\n2\n');
});

s('member list, endpoint status / health / hashkv, alarm list, defrag, move-leader to itself', async (ctx) => {
  const fx = F(ctx);
  await fx.store.put(Buffer.from('x'), Buffer.from('y'));
  assert.is(await ok(fx, ['member', 'list']), `1, started, local, , ${fx.endpoint}, false\n`);
  const st = JSON.parse(await ok(fx, ['endpoint', 'status', '-w', 'json']));
  assert.is(st[0].Status.header.member_id, 1);
  assert.is(st[0].Status.leader, 1);
  assert.ok(st[0].Status.dbSize > 0);
  assert.match(await ok(fx, ['endpoint', 'status']), new RegExp(`^127\\.0\\.0\\.1:${fx.port}, 1, keelson-[^,]+, [^,]+, true, false, 1, \\d+, \\d+, \\n$`));
  // etcdctl 3.4 prints the health lines on standard error.
  const health = await ctl(fx, ['endpoint', 'health']);
  assert.is(health.code, 0, health.stderr);
  assert.match(health.stdout + health.stderr, new RegExp(`127\\.0\\.0\\.1:${fx.port} is healthy: successfully committed proposal`));
  const h = await fx.store.hashKV(0);
  assert.is(await ok(fx, ['endpoint', 'hashkv']), `127.0.0.1:${fx.port}, ${h.hash}\n`);
  assert.is(await ok(fx, ['alarm', 'list']), '');
  assert.match(await ok(fx, ['defrag']), /Finished defragmenting etcd member/);
  assert.match(await ok(fx, ['move-leader', '1']), /Leadership transferred from 1 to 1/);
});

s('snapshot save: etcdctl accepts the stream; the file holds a restorable keyspace snapshot', async (ctx) => {
  const fx = F(ctx);
  for (let i = 0; i < 50; i++) await fx.store.put(Buffer.from(`s/${i}`), Buffer.alloc(100, i));
  const file = path.join(fx.dir, 'saved.db');
  const r = await ctl(fx, ['snapshot', 'save', file]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `Snapshot saved at ${file}\n`);
  const data = parseSnapshotFile(fs.readFileSync(file));
  const dir = fs.mkdtempSync(path.join(fx.dir, 'restore-'));
  const restored = new LocalClusterStore({ dir, leaseTickMs: 0 });
  try {
    await restored.local.keyspace.restore(readU64(data, 8), data);
    assert.is((await restored.hashKV(0)).hash, (await fx.store.hashKV(0)).hash);
  } finally {
    await restored.close();
  }
});

if (fs.existsSync(etcdctlBin)) s.run();
else {
  const skip = suite('etcdctl 3.4 (skipped: /usr/bin/etcdctl is not installed)');
  skip('nothing to run', () => {});
  skip.run();
}
