// Failover behaviour of the embedded store's request path: a write a
// follower forwarded to a leader that then vanished is answered with the
// indeterminate timeout as soon as the new leader's first entry is applied
// (not at the request deadline), and a write made after that goes through.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { startCluster } from '../../src/store/embedded/cluster.ts';
import { isKeelsonError } from '../../src/store/errors.ts';
import { tempDir } from './mvcc/helpers.ts';

test('a forwarded write lost with its leader fails fast as "possibly due to previous leader failure"', async () => {
  const dir = tempDir('keelson-failover-');
  // A deadline far past anything the test waits for: an answer is the fast path.
  const cluster = await startCluster({ size: 3, dir, tickMs: 25, electionTicks: 10, leaseTickMs: 0, requestTimeoutMs: 120_000 });
  try {
    const leader = await cluster.waitForLeader();
    const follower = await cluster.follower();
    await follower.put(Buffer.from('k'), Buffer.from('before'));
    const leaderId = leader.memberId;
    // The leader hears nobody any more (the follower's proposal is dropped on
    // the way) but the followers still hear each other and elect a new one.
    for (const id of cluster.ids) if (id !== leaderId) cluster.network.cut(id, leaderId, true);
    const lost = follower.put(Buffer.from('k'), Buffer.from('lost')).then(() => 'ok', (e: unknown) => e);
    const r = await lost;
    assert.ok(isKeelsonError(r, 'timeout'), `expected the timeout outcome, got ${String(r)}`);
    assert.match((r as Error).message, 'possibly due to previous leader failure');
    // The write after it succeeds on the new leader.
    await follower.put(Buffer.from('k'), Buffer.from('after'));
    const got = await follower.range(Buffer.from('k'));
    assert.is(got.kvs[0]!.value.toString(), 'after');
  } finally {
    await cluster.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
