// A member removed, wiped and added back - twice, the same member - rejoins a
// 3-member cluster of `keelson store serve` processes and catches up. The
// second round is the one that matters: after the first, the member has a
// random id (from memberAdd) that no one can derive from its name, so a
// joiner must learn the real ids from the running members. Also: a joiner
// whose id the cluster does not know refuses to start (exit 2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { Cluster, etcdctl, tempDir, until, type Member } from './store-helpers.ts';

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

test('remove, wipe and re-add the same member twice: it catches up both times', async () => {
  const [a, b, c] = cluster.members as [Member, Member, Member];
  const live = cluster.endpoints([a, b]);
  for (let round = 1; round <= 2; round++) {
    ok(await etcdctl(live, 'put', `/round/${round}/before`, 'x'), 'put before remove');
    const oldId = await idOf(live, c);
    ok(await etcdctl(live, 'member', 'remove', oldId), 'member remove');
    await cluster.kill(c);
    fs.rmSync(c.dataDir, { recursive: true, force: true });
    // Enough writes while it is away that it catches up from a snapshot.
    for (let i = 0; i < 50; i++) ok(await etcdctl(live, 'put', `/round/${round}/away/${i % 7}`, String(i)), 'put while away');
    const add = ok(await etcdctl(live, 'member', 'add', 'c', `--peer-urls=${c.peerUrl}`), 'member add');
    const m = /Member\s+([0-9a-f]+) added to cluster\s+([0-9a-f]+)/.exec(add);
    assert.ok(m, add);
    const [, memberId, clusterId] = m!;
    assert.is.not(memberId, oldId, 'an id is never reused');
    await cluster.start(c, [...small, '--initial-cluster-state=existing', `--member-id=${memberId}`, `--cluster-id=${clusterId}`]);
    ok(await etcdctl(live, 'put', `/round/${round}/after`, 'y'), 'put after rejoin');
    await until(`c caught up in round ${round}`, async () => {
      const r = await etcdctl(c.endpoint, 'get', `/round/${round}/after`, '--consistency=s', '-w', 'json');
      return r.code === 0 && (JSON.parse(r.stdout) as { count?: number }).count === 1;
    }, 30_000);
    // Same hash at the same revision on every member.
    await until(`equal hashes in round ${round}`, async () => {
      const r = await etcdctl(cluster.endpoints(), 'endpoint', 'hashkv', '-w', 'json');
      if (r.code !== 0) return false;
      const hs = JSON.parse(r.stdout) as Array<{ HashKV: { header: { revision: number }; hash: number } }>;
      return hs.length === 3 && new Set(hs.map((h) => `${h.HashKV.header.revision}/${h.HashKV.hash}`)).size === 1;
    });
    assert.match(ok(await etcdctl(live, 'member', 'list'), 'member list'), new RegExp(`${memberId}, started, c, ${c.peerUrl}`));
  }
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

test.run();
