// A member removed, wiped and added back - twice, the same member - rejoins a
// 3-member cluster of `keelson store serve` processes and catches up; then
// another member does, while the twice re-added one leads. After a re-add a
// member has a random id (from memberAdd) that no one can derive from its
// name, so a joiner must learn the real ids from the running members. Also:
// a joiner whose id the cluster does not know refuses to start (exit 2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Cluster, etcdctl, freePort, keelsonInProcess, tempDir, until, type Member } from './store-helpers.ts';
import { TcpTransport, fetchMemberList, type TcpTlsOptions } from '../../src/store/raft/tcp.ts';

const dir = tempDir('keelson-rejoin-');
let cluster: Cluster;
const small = ['--snapshot-count=40', '--experimental-snapshot-catchup-entries=10'];

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.is(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The hex id of the member listed with this peer URL, from `member list`. */
async function idOf(endpoints: string, m: Member): Promise<string> {
  const line = ok(await etcdctl(endpoints, 'member', 'list'), 'member list').split('\n').find((l) => l.split(', ')[3] === m.peerUrl);
  assert.ok(line, `no member with peer URL ${m.peerUrl}`);
  return line!.split(', ')[0]!;
}

test.before(async () => {
  cluster = await Cluster.create(dir, ['a', 'b', 'c']);
  await Promise.all(cluster.members.map((m) => cluster.start(m, small)));
  await until('a leader', async () => {
    const r = await etcdctl(cluster.endpoints(), 'endpoint', 'status', '-w', 'json');
    return r.code === 0 && (JSON.parse(r.stdout) as Array<{ Status: { leader: number } }>).every((s) => s.Status.leader !== 0);
  });
});

test.after(async () => {
  await cluster?.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A put, retried: right after a removal the cluster may be electing a new leader (puts are idempotent here). */
async function put(endpoints: string, key: string, value: string): Promise<void> {
  // In this process (the keelson CLI), not an etcdctl process per put: start-up dominates on a loaded machine.
  await until(`put ${key}`, async () => (await keelsonInProcess('store', 'put', key, value, `--endpoints=${endpoints}`)).code === 0);
}

/** Removes a member, wipes its data dir, writes while it is away, adds it back and starts it with `existing`; waits until it caught up. */
async function rejoin(victim: Member, round: number): Promise<void> {
  const live = cluster.endpoints(cluster.members.filter((m) => m !== victim));
  await put(live, `/round/${round}/before`, 'x');
  const oldId = await idOf(live, victim);
  ok(await etcdctl(live, 'member', 'remove', oldId), 'member remove');
  await cluster.kill(victim);
  fs.rmSync(victim.dataDir, { recursive: true, force: true });
  // Writes while it is away; with --snapshot-count=40 the log it would need
  // is soon compacted, so it catches up from a snapshot.
  for (let i = 0; i < 25; i++) await put(live, `/round/${round}/away/${i % 7}`, String(i));
  const add = ok(await etcdctl(live, 'member', 'add', victim.name, `--peer-urls=${victim.peerUrl}`), 'member add');
  const m = /Member\s+([0-9a-f]+) added to cluster\s+([0-9a-f]+)/.exec(add);
  assert.ok(m, add);
  const [, memberId, clusterId] = m!;
  assert.is.not(memberId, oldId, 'an id is never reused');
  await cluster.start(victim, [...small, '--initial-cluster-state=existing', `--member-id=${memberId}`, `--cluster-id=${clusterId}`]);
  await put(live, `/round/${round}/after`, 'y');
  await until(`${victim.name} caught up in round ${round}`, async () => {
    const r = await etcdctl(victim.endpoint, 'get', `/round/${round}/after`, '--consistency=s', '-w', 'json');
    return r.code === 0 && (JSON.parse(r.stdout) as { count?: number }).count === 1;
  }, 30_000);
  // Same hash at the same revision on every member.
  await until(`equal hashes in round ${round}`, async () => {
    const r = await etcdctl(cluster.endpoints(), 'endpoint', 'hashkv', '-w', 'json');
    if (r.code !== 0) return false;
    const hs = JSON.parse(r.stdout) as Array<{ HashKV: { header: { revision: number }; hash: number } }>;
    return hs.length === 3 && new Set(hs.map((h) => `${h.HashKV.header.revision}/${h.HashKV.hash}`)).size === 1;
  });
  assert.match(ok(await etcdctl(live, 'member', 'list'), 'member list'), new RegExp(`${memberId}, started, ${victim.name}, ${victim.peerUrl}`));
}

test('remove, wipe and re-add the same member twice, then another while it leads: each catches up', async () => {
  const [, b, c] = cluster.members as [Member, Member, Member];
  await rejoin(c, 1);
  await rejoin(c, 2);
  // c now has an id from memberAdd that no name derives. With c leading, a
  // joiner that guessed c's id could not answer it and would never catch up.
  const cId = await idOf(cluster.endpoints(), c);
  ok(await etcdctl(cluster.endpoints(), 'move-leader', cId), 'move-leader');
  await until('c leads', async () => {
    const s = JSON.parse((await etcdctl(cluster.endpoints(), 'endpoint', 'status', '-w', 'json')).stdout) as Array<{ Status: { leader: number } }>;
    return s.every((x) => x.Status.leader.toString(16) === cId);
  });
  await rejoin(b, 3);
});

test('a joiner whose id the cluster does not know refuses to start (exit 2)', async () => {
  const x = await cluster.define('x');
  const add = ok(await etcdctl(cluster.endpoints(), 'member', 'list', '-w', 'json'), 'member list');
  const clusterId = BigInt((JSON.parse(add) as { header: { cluster_id: number | string } }).header.cluster_id).toString(16);
  const err = await cluster
    .start(x, ['--initial-cluster-state=existing', '--member-id=abc123', `--cluster-id=${clusterId}`], `${cluster.initialCluster()}`)
    .then(() => null, (e: Error) => e);
  cluster.members = cluster.members.filter((m) => m !== x);
  assert.ok(err, 'x must not start');
  assert.match(err!.message, 'exited (2)');
  assert.match(err!.message, 'has no member abc123');
});

test('the member-list request over the peer transport: answer, wrong cluster, not ready, unreachable, TLS', async () => {
  const check = async (tlsOpts: TcpTlsOptions | undefined, scheme: string): Promise<void> => {
    const t = new TcpTransport({ clusterId: 7, memberId: 1, listenUrls: [`${scheme}://127.0.0.1:0`], tls: tlsOpts });
    try {
      const [url] = await t.listen();
      await fetchMemberList(url!, { clusterId: 7, tls: tlsOpts }).then(
        () => assert.unreachable('answered before its store was open'),
        (e: Error) => assert.match(e.message, 'not ready'),
      );
      const list = [{ id: 1, name: 'a', peerUrls: [url!], clientUrls: ['http://127.0.0.1:1'], isLearner: false }, { id: 0x1234, name: '', peerUrls: ['http://127.0.0.1:2'], clientUrls: [], isLearner: true }];
      t.serveMemberList(async () => list);
      assert.equal(await fetchMemberList(url!, { clusterId: 7, tls: tlsOpts }), list);
      await fetchMemberList(url!, { clusterId: 8, tls: tlsOpts }).then(
        () => assert.unreachable('answered another cluster'),
        (e: Error) => assert.match(e.message, 'cluster id mismatch'),
      );
    } finally {
      await t.close();
    }
  };
  await check(undefined, 'http');
  const closedPort = await freePort();
  await fetchMemberList(`http://127.0.0.1:${closedPort}`, { clusterId: 7, timeoutMs: 2000 }).then(
    () => assert.unreachable('nothing listens there'),
    (e: Error) => assert.ok(e.message.length > 0),
  );
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    console.log('TLS part skipped: no openssl');
    return;
  }
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=keelson-test-ca');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'peer.key', '-out', 'peer.csr', '-subj', '/CN=peer');
  run('x509', '-req', '-in', 'peer.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'peer.crt', '-days', '1');
  await check({ certFile: path.join(dir, 'peer.crt'), keyFile: path.join(dir, 'peer.key'), caFile: path.join(dir, 'ca.crt') }, 'https');
});

test.run();
