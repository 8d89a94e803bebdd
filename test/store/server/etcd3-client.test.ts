// The npm etcd3 client's own high-level API (not RemoteStore) against the
// Keelson server: what a Node program written for etcd does (KV builders,
// watchers sharing one stream, leases with automatic keep-alive, locks,
// elections, software transactions).
import { Etcd3 } from 'etcd3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type ServerFixture } from './helpers.ts';

const s = suite<{ fx?: ServerFixture; client?: Etcd3 }>('npm etcd3 client against the Keelson server', {});
s.before.each(async (ctx) => {
  ctx.fx = await startServer();
  ctx.client = new Etcd3({ hosts: ctx.fx.endpoint });
});
s.after.each(async (ctx) => {
  ctx.client?.close();
  await ctx.fx?.stop();
});
const C = (ctx: { client?: Etcd3 }) => ctx.client as Etcd3;

function within<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, rej) => { t = setTimeout(() => rej(new Error(`not within ${ms} ms`)), ms); })]).finally(() => clearTimeout(t));
}

s('KV builders: put, get, getAll with prefix, delete', async (ctx) => {
  const c = C(ctx);
  await c.put('a/1').value('one');
  await c.put('a/2').value('two');
  assert.is(await c.get('a/1').string(), 'one');
  assert.equal(await c.getAll().prefix('a/').strings(), { 'a/1': 'one', 'a/2': 'two' });
  assert.is(await c.getAll().prefix('a/').count(), 2);
  await c.delete().prefix('a/');
  assert.equal(await c.getAll().prefix('a/').keys(), []);
  const ok = await c.if('x', 'Create', '==', 0).then(c.put('x').value('1')).commit();
  assert.ok(ok.succeeded);
});

s('watchers share one stream: puts and deletes arrive, unwatch works', async (ctx) => {
  const c = C(ctx);
  const w1 = await c.watch().key('w1').create();
  const w2 = await c.watch().prefix('w2/').withPreviousKV().create();
  const seen: string[] = [];
  const done = new Promise<void>((resolve) => {
    w1.on('put', (kv) => { seen.push(`w1 put ${kv.value.toString()}`); });
    w2.on('put', (kv, prev) => { seen.push(`w2 put ${kv.key.toString()} prev=${prev?.value.toString() ?? '-'}`); });
    w2.on('delete', (kv) => { seen.push(`w2 delete ${kv.key.toString()}`); if (seen.length >= 4) resolve(); });
  });
  await c.put('w1').value('a');
  await c.put('w2/x').value('1');
  await c.put('w2/x').value('2');
  await c.delete().key('w2/x');
  await within(done);
  assert.equal(seen, ['w1 put a', 'w2 put w2/x prev=-', 'w2 put w2/x prev=1', 'w2 delete w2/x']);
  await w1.cancel();
  await w2.cancel();
});

s('leases: grant, attached keys, keep-alive, revoke', async (ctx) => {
  const c = C(ctx);
  const lease = c.lease(30);
  await lease.put('lk').value('v');
  const id = await lease.grant();
  assert.ok(id.length > 0);
  await lease.keepaliveOnce();
  assert.is(await c.get('lk').string(), 'v');
  await lease.revoke();
  assert.is(await c.get('lk').string(), null);
});

s('locks exclude each other; elections elect one leader', async (ctx) => {
  const c = C(ctx);
  // etcd3's lock does not wait: a second acquire fails while the first holds it.
  const first = c.lock('the-lock').ttl(10);
  await first.acquire();
  const second = await c.lock('the-lock').ttl(10).acquire().then(() => 'acquired', (e: Error) => e.constructor.name);
  assert.is(second, 'EtcdLockFailedError');
  await first.release();
  const third = c.lock('the-lock').ttl(10);
  await third.acquire();
  await third.release();
  const e = c.election('the-election', 10);
  const camp = e.campaign('alice');
  await within(new Promise<void>((resolve, reject) => { camp.on('elected', () => resolve()); camp.on('error', reject); }));
  assert.is(await e.leader(), 'alice');
  await camp.resign();
});

s('software transactional memory: concurrent increments all land', async (ctx) => {
  const c = C(ctx);
  await c.put('n').value('0');
  await Promise.all(Array.from({ length: 5 }, () => c.stm({ retries: 50 }).transact(async (tx) => {
    const v = Number(await tx.get('n').string());
    await tx.put('n').value(String(v + 1));
  })));
  assert.is(await c.get('n').string(), '5');
});

s.run();
