// Garbage on the wire: random bytes (and random but well-typed requests) sent
// to every unary method must each get a gRPC status, write nothing they
// should not, and leave the server serving. Seeded; the seed is printed on
// failure (KEELSON_FUZZ_SEED reproduces a run).
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { protos } from '../../../src/store/server/codec.ts';
import { startServer } from './helpers.ts';

/** Requests per run: enough to reach odd corners, few enough for a loaded machine. */
const requestsMax = 400;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const methods = [
  '/etcdserverpb.KV/Range', '/etcdserverpb.KV/Put', '/etcdserverpb.KV/DeleteRange', '/etcdserverpb.KV/Txn', '/etcdserverpb.KV/Compact',
  '/etcdserverpb.Lease/LeaseGrant', '/etcdserverpb.Lease/LeaseRevoke', '/etcdserverpb.Lease/LeaseTimeToLive', '/etcdserverpb.Lease/LeaseLeases',
  '/etcdserverpb.Cluster/MemberAdd', '/etcdserverpb.Cluster/MemberRemove', '/etcdserverpb.Cluster/MemberUpdate', '/etcdserverpb.Cluster/MemberList', '/etcdserverpb.Cluster/MemberPromote',
  '/etcdserverpb.Maintenance/Alarm', '/etcdserverpb.Maintenance/Status', '/etcdserverpb.Maintenance/Defragment', '/etcdserverpb.Maintenance/Hash',
  '/etcdserverpb.Maintenance/HashKV', '/etcdserverpb.Maintenance/MoveLeader',
];

test('random bytes and random requests to every unary method: a status each, the server keeps serving', async () => {
  const seed = Number(process.env.KEELSON_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rand = prng(seed);
  const fx = await startServer();
  const raw = new grpc.Client(`127.0.0.1:${fx.port}`, grpc.credentials.createInsecure());
  const p = protos() as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const kv = new p.etcdserverpb.KV(`127.0.0.1:${fx.port}`, grpc.credentials.createInsecure());
  try {
    const codes = new Map<string, number>();
    for (let i = 0; i < requestsMax; i++) {
      const method = methods[Math.floor(rand() * methods.length)];
      const len = Math.floor(rand() * 64);
      const body = Buffer.alloc(len);
      for (let j = 0; j < len; j++) body[j] = Math.floor(rand() * 256);
      const code = await new Promise<number>((resolve) => {
        raw.makeUnaryRequest(method, (x: Buffer) => x, (x: Buffer) => x, body, { deadline: Date.now() + 10_000 }, (err) => resolve(err ? err.code : 0));
      });
      assert.ok(code !== grpc.status.DEADLINE_EXCEEDED && code !== grpc.status.UNAVAILABLE, `seed ${seed}: ${method} with ${body.toString('hex')} got ${grpc.status[code]}`);
      codes.set(grpc.status[code], (codes.get(grpc.status[code]) ?? 0) + 1);
      // Destructive calls are refused or harmless on a one-member store;
      // keep the member itself there.
    }
    const members = await new Promise<any>((resolve, reject) => new p.etcdserverpb.Cluster(`127.0.0.1:${fx.port}`, grpc.credentials.createInsecure()).MemberList({}, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r)))); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.ok(members.members.some((m: { ID: string }) => m.ID === '1'), `seed ${seed}`);
    const put = await new Promise<any>((resolve, reject) => kv.Put({ key: Buffer.from('still'), value: Buffer.from('ok') }, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r)))); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.ok(Number(put.header.revision) > 0, `seed ${seed}`);
  } catch (e) {
    console.error(`fuzz seed ${seed}`);
    throw e;
  } finally {
    raw.close();
    kv.close();
    await fx.stop();
  }
});

test('random well-typed requests: never INTERNAL (an unexpected exception), and the store stays consistent', async () => {
  const seed = Number(process.env.KEELSON_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rand = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const fx = await startServer();
  const p = protos() as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const addr = `127.0.0.1:${fx.port}`;
  const creds = grpc.credentials.createInsecure();
  const c: Record<string, any> = { KV: new p.etcdserverpb.KV(addr, creds), Lease: new p.etcdserverpb.Lease(addr, creds), Maintenance: new p.etcdserverpb.Maintenance(addr, creds) }; // eslint-disable-line @typescript-eslint/no-explicit-any
  const keys = [Buffer.alloc(0), Buffer.from([0]), Buffer.from('a'), Buffer.from('b'), Buffer.from('a\xff'), Buffer.alloc(982, 0x61)];
  const nums = [0, 1, 2, -1, 5, 1_000_000, '9223372036854775807', '-9223372036854775808', '9007199254740993'];
  const key = () => pick(keys);
  const n = () => pick(nums);
  const op = (depth: number): Record<string, unknown> => {
    const r = rand();
    if (r < 0.3) return { request_range: { key: key(), range_end: key(), limit: n(), revision: n(), sort_order: pick([0, 1, 2, 9]), sort_target: pick([0, 3, 4, 9]) } };
    if (r < 0.6) return { request_put: { key: key(), value: Buffer.from('v'), lease: n(), prev_kv: rand() < 0.5, ignore_value: rand() < 0.2, ignore_lease: rand() < 0.2 } };
    if (r < 0.85 || depth > 1) return { request_delete_range: { key: key(), range_end: key(), prev_kv: rand() < 0.5 } };
    return { request_txn: txn(depth + 1) };
  };
  const txn = (depth: number) => ({
    compare: Array.from({ length: Math.floor(rand() * 3) }, () => {
      const field = pick(['version', 'create_revision', 'mod_revision', 'lease', 'value']);
      return { key: key(), range_end: key(), target: pick([0, 1, 2, 3, 4, 7]), result: pick([0, 1, 2, 3, 8]), [field]: field === 'value' ? pick([Buffer.from('v'), Buffer.alloc(0)]) : n() };
    }),
    success: Array.from({ length: Math.floor(rand() * 4) }, () => op(depth)),
    failure: Array.from({ length: Math.floor(rand() * 3) }, () => op(depth)),
  });
  const calls: [string, string, () => Record<string, unknown>][] = [
    ['KV', 'Range', () => ({ key: key(), range_end: key(), limit: n(), revision: n(), sort_order: pick([0, 1, 2, 5]), sort_target: pick([0, 1, 2, 3, 4, 6]), min_mod_revision: n(), max_create_revision: n(), count_only: rand() < 0.3, keys_only: rand() < 0.3 })],
    ['KV', 'Put', () => op(0).request_put as Record<string, unknown> ?? { key: key() }],
    ['KV', 'DeleteRange', () => ({ key: key(), range_end: key(), prev_kv: true })],
    ['KV', 'Txn', () => txn(0)],
    ['KV', 'Compact', () => ({ revision: n(), physical: rand() < 0.5 })],
    ['Lease', 'LeaseGrant', () => ({ TTL: n(), ID: n() })],
    ['Lease', 'LeaseRevoke', () => ({ ID: n() })],
    ['Lease', 'LeaseTimeToLive', () => ({ ID: n(), keys: true })],
    ['Maintenance', 'HashKV', () => ({ revision: n() })],
    ['Maintenance', 'Alarm', () => ({ action: pick([0, 1, 2, 5]), memberID: n(), alarm: pick([0, 1, 2, 7]) })],
  ];
  try {
    for (let i = 0; i < requestsMax; i++) {
      const [svc, method, make] = pick(calls);
      const req = make();
      const err = await new Promise<grpc.ServiceError | null>((resolve) => c[svc][method](req, { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null) => resolve(e)));
      if (err) assert.ok(err.code !== grpc.status.INTERNAL && err.code !== grpc.status.UNKNOWN && err.code !== grpc.status.DEADLINE_EXCEEDED, `seed ${seed}: ${svc}.${method} ${JSON.stringify(req).slice(0, 400)} -> ${grpc.status[err.code]} ${err.details}`);
      // Compacting everything away every time would make most reads fail alike.
      if (method === 'Compact' && rand() < 0.5) await fx.store.put(Buffer.from('filler'), Buffer.from('x'));
    }
    const h1 = await fx.store.hashKV(0);
    const h2 = await fx.store.hashKV(h1.hashRevision);
    assert.is(h1.hash, h2.hash, `seed ${seed}`);
  } catch (e) {
    console.error(`fuzz seed ${seed}`);
    throw e;
  } finally {
    for (const x of Object.values(c)) x.close();
    await fx.stop();
  }
});

test.run();
