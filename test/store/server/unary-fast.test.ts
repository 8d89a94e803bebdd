// The unary fast path (src/store/server/unary-fast.ts) against grpc-js's own
// call handling: the same raw HTTP/2 requests go to a server with the fast
// path and to one without it, and the answers (HTTP/2 headers, grpc-status,
// grpc-message, the decoded response) must be the same. Also: the fast path
// really serves the calls (its counter), compressed requests and streaming
// methods stay on grpc-js, and grpc-timeout parsing.
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { serviceOf } from '../../../src/store/server/codec.ts';
import * as grpc from '@grpc/grpc-js';
import { grpcTimeoutMs, UnaryFastPath } from '../../../src/store/server/unary-fast.ts';
import { startServer, type ServerFixture } from './helpers.ts';

interface Answer {
  status: number | undefined;
  contentType: string | undefined;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  body: Buffer;
}

/** One raw gRPC call: `payload` is sent as-is (frame prefix included). */
function rawCall(port: number, path: string, payload: Buffer, extra: http2.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    const out: Answer = { status: undefined, contentType: undefined, grpcStatus: undefined, grpcMessage: undefined, body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) out.grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) out.grpcMessage = decodeURIComponent(String(h['grpc-message']));
    };
    req.on('response', (h) => {
      out.status = Number(h[':status']);
      out.contentType = h['content-type'];
      take(h);
    });
    req.on('trailers', take);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {}); // a reset shows as a missing grpc-status
    req.on('close', () => {
      out.body = Buffer.concat(chunks);
      session.close();
      resolve(out);
    });
    req.end(payload);
  });
}

function frame(message: Buffer, compressed = false): Buffer {
  const f = Buffer.alloc(5 + message.length);
  f[0] = compressed ? 1 : 0;
  f.writeUInt32BE(message.length, 1);
  message.copy(f, 5);
  return f;
}

const kv = serviceOf('etcdserverpb', 'KV');
const enc = (method: string, req: object) => kv[method]!.requestSerialize(req);
/** A response body decoded, without the header (member and cluster ids differ between the two servers). */
function decoded(method: string, a: Answer): unknown {
  if (a.body.length === 0) return null;
  const v = kv[method]!.responseDeserialize(a.body.subarray(5)) as Record<string, unknown>;
  const { header, ...rest } = v;
  return { ...rest, revision: (header as { revision: string }).revision };
}

const cases: { name: string; method: string; payload: () => Buffer; extra?: http2.OutgoingHttpHeaders }[] = [
  { name: 'put', method: 'Put', payload: () => frame(enc('Put', { key: Buffer.from('a'), value: Buffer.from('1') })) },
  { name: 'put with prev_kv', method: 'Put', payload: () => frame(enc('Put', { key: Buffer.from('a'), value: Buffer.from('2'), prev_kv: true })) },
  { name: 'range', method: 'Range', payload: () => frame(enc('Range', { key: Buffer.from('a') })) },
  { name: 'range, serializable, prefix', method: 'Range', payload: () => frame(enc('Range', { key: Buffer.from('a'), range_end: Buffer.from('b'), serializable: true })) },
  { name: 'txn', method: 'Txn', payload: () => frame(enc('Txn', { compare: [{ key: Buffer.from('a'), target: 'VERSION', result: 'EQUAL', version: '2' }], success: [{ request_put: { key: Buffer.from('b'), value: Buffer.from('x') } }] })) },
  { name: 'delete', method: 'DeleteRange', payload: () => frame(enc('DeleteRange', { key: Buffer.from('b'), prev_kv: true })) },
  { name: 'empty key (etcd error)', method: 'Put', payload: () => frame(enc('Put', { key: Buffer.alloc(0), value: Buffer.from('1') })) },
  { name: 'future revision (etcd error)', method: 'Range', payload: () => frame(enc('Range', { key: Buffer.from('a'), revision: '1000' })) },
  { name: 'compact', method: 'Compact', payload: () => frame(enc('Compact', { revision: '2' })) },
  { name: 'compacted revision (etcd error)', method: 'Range', payload: () => frame(enc('Range', { key: Buffer.from('a'), revision: '1' })) },
  { name: 'over the receive limit', method: 'Put', payload: () => frame(enc('Put', { key: Buffer.from('big'), value: Buffer.alloc(3 << 20, 1) })) },
  { name: 'no message', method: 'Range', payload: () => Buffer.alloc(0) },
  { name: 'two messages', method: 'Range', payload: () => Buffer.concat([frame(enc('Range', { key: Buffer.from('a') })), frame(enc('Range', { key: Buffer.from('a') }))]) },
  { name: 'truncated message', method: 'Range', payload: () => frame(enc('Range', { key: Buffer.from('a') })).subarray(0, 6) },
  { name: 'compressed flag under identity', method: 'Range', payload: () => frame(enc('Range', { key: Buffer.from('a') }), true) },
  { name: 'undecodable message', method: 'Range', payload: () => frame(Buffer.from([0x0a, 0xff, 0xff, 0xff])) },
  // Above the 16 KiB copy limit the answer goes out as prefix + message.
  { name: 'put of a 20 KiB value', method: 'Put', payload: () => frame(enc('Put', { key: Buffer.from('large'), value: Buffer.alloc(20_000, 7) })) },
  { name: 'range of a 20 KiB value', method: 'Range', payload: () => frame(enc('Range', { key: Buffer.from('large') })) },
  { name: 'gzip-compressed (grpc-js path)', method: 'Put', payload: () => frame(gzipSync(enc('Put', { key: Buffer.from('z'), value: Buffer.from('1') })), true), extra: { 'grpc-encoding': 'gzip' } },
];

const sideBySide = suite<{ fast?: ServerFixture; slow?: ServerFixture }>('unary fast path: the same answers as grpc-js');

sideBySide.before(async (ctx) => {
  ctx.fast = await startServer();
  ctx.slow = await startServer({}, { unaryFastPath: false });
});

sideBySide.after(async (ctx) => {
  await ctx.fast?.stop();
  await ctx.slow?.stop();
});

sideBySide('every case gets the same answer on both paths', async (ctx) => {
  for (const c of cases) {
    const a = await rawCall(ctx.fast!.port, kv[c.method]!.path, c.payload(), c.extra);
    const b = await rawCall(ctx.slow!.port, kv[c.method]!.path, c.payload(), c.extra);
    assert.is(a.status, b.status, `${c.name}: :status`);
    assert.is(a.contentType, b.contentType, `${c.name}: content-type`);
    assert.is(a.grpcStatus, b.grpcStatus, `${c.name}: grpc-status (${a.grpcMessage} / ${b.grpcMessage})`);
    assert.is(a.grpcMessage, b.grpcMessage, `${c.name}: grpc-message`);
    assert.equal(decoded(c.method, a), decoded(c.method, b), `${c.name}: response`);
    assert.ok(a.grpcStatus !== undefined, `${c.name}: answered`);
  }
  // The fast path served the plain successful ones.
  assert.ok(ctx.fast!.server.unaryFast!.served >= 6, `fast path served ${ctx.fast!.server.unaryFast!.served} calls`);
  assert.is(ctx.slow!.server.unaryFast, null);
});

sideBySide('a compressed request and the streaming methods stay on grpc-js', async (ctx) => {
  const fast = ctx.fast!.server.unaryFast!;
  const before = fast.served;
  const r = await rawCall(ctx.fast!.port, kv.Put!.path, frame(gzipSync(enc('Put', { key: Buffer.from('y'), value: Buffer.from('1') })), true), { 'grpc-encoding': 'gzip' });
  assert.is(r.grpcStatus, '0');
  assert.is(fast.served, before);
  // Watch is a bidirectional stream: the fast path never claims it.
  const watch = serviceOf('etcdserverpb', 'Watch');
  const w = await rawCall(ctx.fast!.port, watch.Watch!.path, frame(watch.Watch!.requestSerialize({ cancel_request: { watch_id: '1' } })));
  assert.is(w.grpcStatus, '0');
  assert.is(fast.served, before);
  // An unknown method gets grpc-js's UNIMPLEMENTED.
  const u = await rawCall(ctx.fast!.port, '/etcdserverpb.KV/Nope', frame(Buffer.alloc(0)));
  assert.is(u.grpcStatus, '12');
});

sideBySide('a client that gives up first gets nothing and breaks nothing', async (ctx) => {
  const session = http2.connect(`http://127.0.0.1:${ctx.fast!.port}`);
  for (let i = 0; i < 20; i++) {
    const req = session.request({ ':method': 'POST', ':path': kv.Put!.path, 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    req.end(frame(enc('Put', { key: Buffer.from(`c${i}`), value: Buffer.from('1') })));
    req.close(http2.constants.NGHTTP2_CANCEL);
  }
  session.close();
  const r = await rawCall(ctx.fast!.port, kv.Range!.path, frame(enc('Range', { key: Buffer.from('a') })));
  assert.is(r.grpcStatus, '0');
});

sideBySide.run();

const timeouts = suite('grpc-timeout');

timeouts('units and limits', () => {
  assert.is(grpcTimeoutMs('5S'), 5000);
  assert.is(grpcTimeoutMs('2H'), 7_200_000);
  assert.is(grpcTimeoutMs('3M'), 180_000);
  assert.is(grpcTimeoutMs('250m'), 250);
  assert.is(grpcTimeoutMs('1500u'), 2);
  assert.is(grpcTimeoutMs('10n'), 1);
  assert.is(grpcTimeoutMs('0m'), 0);
  assert.is(grpcTimeoutMs(undefined), null);
  assert.is(grpcTimeoutMs('5s'), null);
  assert.is(grpcTimeoutMs('123456789S'), null); // more than 8 digits
  assert.is(grpcTimeoutMs('99999999H'), null); // beyond a timer's range
  assert.is(grpcTimeoutMs(['5S']), null);
});

timeouts('a call still pending at its grpc-timeout gets DEADLINE_EXCEEDED', async () => {
  const server = new grpc.Server();
  const fast = new UnaryFastPath({ requestMessageBytesMax: 1 << 20, statusOf: () => ({ code: 13, details: 'unexpected' }) });
  fast.add(kv.Range!, () => new Promise(() => {})); // never answers
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  try {
    assert.ok(fast.install(server), 'installed');
    // Without the deadline the call would hang: give up on it after 5 s.
    let guard: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      rawCall(port, kv.Range!.path, frame(enc('Range', { key: Buffer.from('a') })), { 'grpc-timeout': '50m' }),
      new Promise<never>((_, reject) => { guard = setTimeout(() => reject(new Error('no answer 5 s after a 50 ms deadline')), 5000); }),
    ]).finally(() => clearTimeout(guard));
    assert.is(r.grpcStatus, String(grpc.status.DEADLINE_EXCEEDED));
    assert.is(r.grpcMessage, 'Deadline exceeded');
    assert.is(fast.served, 0);
  } finally {
    server.forceShutdown();
  }
});

timeouts.run();
