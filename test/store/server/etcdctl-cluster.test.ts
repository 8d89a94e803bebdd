// etcdctl 3.4 against three Keelson etcd API servers, one per member of a
// 3-member in-process EmbeddedStore cluster: writes through a follower,
// member list / add --learner / remove, endpoint status across members, and
// move-leader (which etcdctl sends to the leader's endpoint).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCluster, type EmbeddedCluster } from '../../../src/store/embedded/cluster.ts';
import type { EmbeddedStore } from '../../../src/store/embedded.ts';
import { snapshotFileStatus } from '../../../src/store/embedded.ts';
import { EtcdServer } from '../../../src/store/server/server.ts';
import { parseSnapshotFile } from '../../../src/store/server/snapshot-file.ts';
import path from 'node:path';
import { tempDir } from '../mvcc/helpers.ts';

const etcdctlBin = process.env.KEELSON_ETCDCTL_BIN ?? '/usr/bin/etcdctl';
const commandTimeoutMs = 20_000;

function ctl(endpoints: string[], args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(etcdctlBin, [`--endpoints=${endpoints.join(',')}`, '--command-timeout=10s', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: commandTimeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

async function ok(endpoints: string[], args: string[]): Promise<string> {
  const r = await ctl(endpoints, args);
  assert.is(r.code, 0, `etcdctl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const hex = (id: number) => id.toString(16);

test('etcdctl against a 3-member cluster: follower writes, membership, status, move-leader', async () => {
  if (!fs.existsSync(etcdctlBin)) {
    console.log('skipped: /usr/bin/etcdctl is not installed');
    return;
  }
  const dir = tempDir('keelson-etcdctl-cluster-');
  let cluster: EmbeddedCluster | undefined;
  const servers: EtcdServer[] = [];
  try {
    cluster = await startCluster({ size: 3, dir, tickMs: 25, electionTicks: 10, leaseTickMs: 0 });
    const leader = await cluster.waitForLeader();
    const endpointOf = new Map<EmbeddedStore, string>();
    for (const m of cluster.running()) {
      const server = new EtcdServer({ store: m, closeGraceMs: 200 });
      servers.push(server);
      endpointOf.set(m, `127.0.0.1:${await server.listen('127.0.0.1', 0)}`);
    }
    const all = [...endpointOf.values()];
    const follower = await cluster.follower();
    const viaFollower = [endpointOf.get(follower) as string];

    assert.is(await ok(viaFollower, ['put', 'cluster/k', 'v']), 'OK\n');
    assert.is(await ok([endpointOf.get(leader) as string], ['get', 'cluster/k', '--print-value-only']), 'v\n');

    const list = await ok(viaFollower, ['member', 'list']);
    const lines = list.trim().split('\n');
    assert.is(lines.length, 3, list);
    for (const id of cluster.ids) assert.ok(lines.some((l) => l.startsWith(`${hex(id)}, started, m`)), list);

    const status = JSON.parse(await ok(all, ['endpoint', 'status', '-w', 'json'])) as { Status: { leader: string | number; header: { member_id: string | number } } }[];
    assert.is(status.length, 3);
    assert.ok(status.every((s) => Number(s.Status.leader) === leader.memberId));
    assert.is(status.filter((s) => Number(s.Status.header.member_id) === Number(s.Status.leader)).length, 1);

    const added = await ok(viaFollower, ['member', 'add', 'learner1', '--learner', '--peer-urls=http://127.0.0.1:9']);
    const m = /Member\s+([0-9a-f]+) added to cluster/.exec(added);
    assert.ok(m, added);
    const learnerId = (m as RegExpExecArray)[1];
    assert.match(await ok(viaFollower, ['member', 'list']), new RegExp(`${learnerId}, unstarted, , http://127.0.0.1:9, , true`));
    assert.match(await ok(viaFollower, ['member', 'remove', learnerId]), new RegExp(`Member\\s+${learnerId} removed from cluster`));
    assert.is((await ok(viaFollower, ['member', 'list'])).trim().split('\n').length, 3);

    // snapshot save from a follower: the file is the member's snapshot file, framed.
    const file = path.join(dir, 'saved.db');
    const saved = await ctl(viaFollower, ['snapshot', 'save', file]);
    assert.is(saved.code, 0, saved.stderr);
    const st = snapshotFileStatus(parseSnapshotFile(fs.readFileSync(file)));
    assert.is(st.memberId, follower.memberId);
    assert.is(st.members.length, 3);
    assert.ok(st.revision >= (await follower.range(Buffer.from('cluster/k'))).kvs[0].modRevision);

    const target = follower.memberId;
    assert.match(await ok(all, ['move-leader', hex(target)]), new RegExp(`Leadership transferred from ${hex(leader.memberId)} to ${hex(target)}`));
    const after = JSON.parse(await ok(all, ['endpoint', 'status', '-w', 'json'])) as { Status: { leader: string | number } }[];
    assert.ok(after.every((s) => Number(s.Status.leader) === target), JSON.stringify(after));
  } finally {
    for (const s of servers) await s.close();
    await cluster?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
