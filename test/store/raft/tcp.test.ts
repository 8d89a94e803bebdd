// TcpTransport on 127.0.0.1 with random ports: delivery, batching, reconnect
// after a peer restarts, a large snapshot streamed in chunks, refused
// handshakes, the per-peer queue bound, and mutual TLS.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { TcpTransport, type TcpTransportOptions } from '../../../src/store/raft/tcp.ts';
import type { TransportHandler } from '../../../src/store/raft/transport.ts';

class Recorder implements TransportHandler {
  calls: Array<{ from: number; data: Buffer }> = [];
  unreachable: number[] = [];
  snapshots: Array<{ peer: number; ok: boolean }> = [];
  onMessages(from: number, data: Buffer): void {
    this.calls.push({ from, data: Buffer.from(data) });
  }
  onUnreachable(peer: number): void {
    this.unreachable.push(peer);
  }
  onSnapshotStatus(peer: number, ok: boolean): void {
    this.snapshots.push({ peer, ok });
  }
  bytes(): Buffer {
    return Buffer.concat(this.calls.map((c) => c.data));
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A fake Raft message: a u32 total length then filler bytes, like the real format's framing. */
function msg(n: number, bytes = 16): Buffer {
  const b = Buffer.alloc(bytes, n & 0xff);
  b.writeUInt32LE(bytes, 0);
  return b;
}

async function member(id: number, extra: Partial<TcpTransportOptions> = {}, listen = 'http://127.0.0.1:0'): Promise<{ t: TcpTransport; h: Recorder; url: string }> {
  const t = new TcpTransport({ clusterId: 0xc1, memberId: id, listenUrls: [listen], random: () => 0.5, reconnectDelayMinMs: 10, reconnectDelayMaxMs: 100, ...extra });
  const [url] = await t.listen();
  const h = new Recorder();
  t.start(h);
  return { t, h, url: url! };
}

test('delivers batches both ways after the handshake', async () => {
  const a = await member(1);
  const b = await member(2);
  try {
    a.t.addPeer(2, [b.url]);
    b.t.addPeer(1, [a.url]);
    a.t.send(2, msg(1));
    b.t.send(1, msg(2));
    await until('both deliveries', () => a.h.calls.length > 0 && b.h.calls.length > 0);
    assert.equal(b.h.calls[0]!.from, 1);
    assert.equal(b.h.calls[0]!.data, msg(1));
    assert.equal(a.h.calls[0]!.from, 2);
    assert.equal(a.h.calls[0]!.data, msg(2));
    assert.equal(a.h.unreachable, []);
  } finally {
    await a.t.close();
    await b.t.close();
  }
});

test('batches sent in one turn are coalesced into few writes and arrive whole and in order', async () => {
  const a = await member(1);
  const b = await member(2);
  try {
    a.t.addPeer(2, [b.url]);
    await until('connected', () => a.t.isConnected(2));
    const sent: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const m = msg(i, 16 + (i % 50));
      sent.push(m);
      a.t.send(2, m);
    }
    const want = Buffer.concat(sent);
    await until('all bytes', () => b.h.bytes().length >= want.length);
    assert.ok(b.h.bytes().equals(want), 'same bytes in the same order');
    assert.ok(b.h.calls.length <= 20, `coalesced: ${b.h.calls.length} onMessages calls for 2000 sends`);
    // Every delivered batch holds whole messages only.
    for (const c of b.h.calls) {
      let off = 0;
      while (off < c.data.length) off += c.data.readUInt32LE(off);
      assert.is(off, c.data.length);
    }
  } finally {
    await a.t.close();
    await b.t.close();
  }
});

test('flush() writes what is queued before the turn ends; later sends still arrive whole and in order', async () => {
  const a = await member(1);
  const b = await member(2);
  try {
    a.t.addPeer(2, [b.url]);
    await until('connected', () => a.t.isConnected(2));
    const socket = (a.t as unknown as { peers: Map<number, { socket: net.Socket }> }).peers.get(2)!.socket;
    const sent: Buffer[] = [];
    for (let round = 0; round < 50; round++) {
      const before = socket.bytesWritten;
      for (let i = 0; i < 3; i++) {
        const m = msg(round * 3 + i, 20 + i);
        sent.push(m);
        a.t.send(2, m);
      }
      assert.is(socket.bytesWritten, before, 'send() only queues');
      a.t.flush();
      assert.ok(socket.bytesWritten > before, 'flush() wrote in the same turn');
      a.t.flush(); // nothing queued: a no-op
      const m = msg(1000 + round, 24); // after the flush: goes out at the end of the turn
      sent.push(m);
      a.t.send(2, m);
      if (round % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    const want = Buffer.concat(sent);
    await until('all bytes', () => b.h.bytes().length >= want.length);
    assert.ok(b.h.bytes().equals(want), 'same bytes in the same order');
  } finally {
    await a.t.close();
    await b.t.close();
  }
});

test('reconnects after the peer restarts on the same address', async () => {
  const a = await member(1);
  let b = await member(2);
  const port = Number(new URL(b.url).port);
  try {
    a.t.addPeer(2, [b.url]);
    a.t.send(2, msg(1));
    await until('first delivery', () => b.h.calls.length === 1);
    await b.t.close();
    await until('peer reported unreachable', () => a.h.unreachable.includes(2));
    // While down, sends are dropped and reported, never queued without bound.
    a.t.send(2, msg(2));
    b = await member(2, {}, `http://127.0.0.1:${port}`);
    await until('reconnected', () => a.t.isConnected(2));
    a.t.send(2, msg(3));
    await until('delivery after restart', () => b.h.calls.length > 0);
    assert.equal(b.h.bytes().subarray(-16), msg(3));
  } finally {
    await a.t.close();
    await b.t.close();
  }
});

test('a peer whose URL changes is dialled at the new address', async () => {
  const a = await member(1);
  const b1 = await member(2);
  const b2 = await member(2);
  try {
    a.t.addPeer(2, [b1.url]);
    a.t.send(2, msg(1));
    await until('delivery at the old address', () => b1.h.calls.length === 1);
    a.t.addPeer(2, [b2.url]);
    await until('connected to the new address', () => a.t.isConnected(2) && b2.h.calls.length === 0);
    await until('delivery at the new address', () => {
      a.t.send(2, msg(2));
      return b2.h.calls.length > 0;
    });
    assert.equal(b2.h.calls[0]!.data.subarray(0, 16), msg(2));
  } finally {
    await a.t.close();
    await b1.t.close();
    await b2.t.close();
  }
});

test('an unreachable peer is reported and sends to it are dropped', async () => {
  const a = await member(1);
  // A port nobody listens on: bind one, note it, close it.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  try {
    a.t.addPeer(2, [`http://127.0.0.1:${port}`]);
    a.t.send(2, msg(1));
    await until('unreachable', () => a.h.unreachable.includes(2));
    a.t.send(2, msg(2), true);
    assert.ok(a.h.snapshots.some((s) => s.peer === 2 && !s.ok), 'a snapshot to a down peer fails at once');
    assert.is(a.t.queuedBytes(2), 0);
    a.t.send(99, msg(3));
    assert.ok(a.h.unreachable.includes(99), 'unknown peers are reported too');
  } finally {
    await a.t.close();
  }
});

test('a large snapshot batch is streamed in chunks, acknowledged, and messages keep flowing', async () => {
  const a = await member(1, { snapshotChunkBytes: 256 * 1024 });
  const b = await member(2);
  try {
    a.t.addPeer(2, [b.url]);
    await until('connected', () => a.t.isConnected(2));
    const snap = Buffer.alloc(48 * 1024 * 1024);
    for (let i = 0; i < snap.length; i += 4096) snap.writeUInt32LE(i, i);
    snap.writeUInt32LE(snap.length, 0);
    a.t.send(2, snap, true);
    a.t.send(2, msg(7));
    await until('snapshot status', () => a.h.snapshots.length > 0, 30_000);
    assert.equal(a.h.snapshots, [{ peer: 2, ok: true }]);
    const got = b.h.calls.find((c) => c.data.length === snap.length);
    assert.ok(got, 'snapshot delivered in one onMessages call');
    assert.ok(got!.data.equals(snap), 'snapshot bytes intact');
    await until('small message', () => b.h.calls.some((c) => c.data.equals(msg(7))));
  } finally {
    await a.t.close();
    await b.t.close();
  }
});

test('a snapshot cut off part way is reported failed', async () => {
  const a = await member(1, { snapshotChunkBytes: 64 * 1024 });
  const b = await member(2);
  try {
    a.t.addPeer(2, [b.url]);
    await until('connected', () => a.t.isConnected(2));
    const snap = Buffer.alloc(64 * 1024 * 1024, 1);
    a.t.send(2, snap, true);
    await b.t.close();
    await until('snapshot status', () => a.h.snapshots.length > 0, 30_000);
    assert.equal(a.h.snapshots, [{ peer: 2, ok: false }]);
  } finally {
    await a.t.close();
    await b.t.close();
  }
});

test('a connection for another cluster or another member is refused', async () => {
  const logs: string[] = [];
  const b = await member(2, { log: (l) => logs.push(l) });
  const wrongCluster = new TcpTransport({ clusterId: 0xbad, memberId: 1, listenUrls: [], random: () => 0.5, reconnectDelayMinMs: 10, reconnectDelayMaxMs: 50 });
  const wrongMember = new TcpTransport({ clusterId: 0xc1, memberId: 1, listenUrls: [], random: () => 0.5, reconnectDelayMinMs: 10, reconnectDelayMaxMs: 50 });
  const h1 = new Recorder();
  const h2 = new Recorder();
  wrongCluster.start(h1);
  wrongMember.start(h2);
  try {
    wrongCluster.addPeer(2, [b.url]);
    wrongMember.addPeer(3, [b.url]); // thinks member 3 lives at b's address
    wrongCluster.send(2, msg(1));
    wrongMember.send(3, msg(1));
    await until('both refused', () => h1.unreachable.length > 0 && h2.unreachable.length > 0);
    assert.ok(!wrongCluster.isConnected(2));
    assert.ok(!wrongMember.isConnected(3));
    assert.equal(b.h.calls, [], 'nothing delivered');
    assert.ok(logs.some((l) => l.includes('cluster id')), logs.join('\n'));
    assert.ok(logs.some((l) => l.includes('meant for member')), logs.join('\n'));
    // Garbage instead of a handshake: the connection is closed, nothing delivered.
    const raw = net.connect(Number(new URL(b.url).port), '127.0.0.1');
    await new Promise<void>((r) => raw.once('connect', () => r()));
    raw.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await new Promise<void>((r) => raw.once('close', () => r()));
    assert.equal(b.h.calls, []);
  } finally {
    await wrongCluster.close();
    await wrongMember.close();
    await b.t.close();
  }
});

test('a removed member is refused', async () => {
  const a = await member(1);
  const b = await member(2);
  try {
    b.t.removePeer(1);
    a.t.addPeer(2, [b.url]);
    a.t.send(2, msg(1));
    await until('refused', () => a.h.unreachable.length > 0);
    assert.equal(b.h.calls, []);
  } finally {
    await a.t.close();
    await b.t.close();
  }
});

test('the per-peer queue is bounded in bytes: past it batches are dropped and the peer reported', async () => {
  // A peer that accepts the TCP connection but never answers the handshake,
  // so everything sent to it stays queued.
  const sockets: net.Socket[] = [];
  const mute = net.createServer((s) => {
    sockets.push(s);
    s.pause();
  });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
  const port = (mute.address() as net.AddressInfo).port;
  const a = await member(1, { peerQueueBytesMax: 64 * 1024 });
  try {
    a.t.addPeer(2, [`http://127.0.0.1:${port}`]);
    for (let i = 0; i < 100; i++) a.t.send(2, msg(i, 1024));
    assert.is(a.t.queuedBytes(2), 64 * 1024);
    assert.is(a.h.unreachable.filter((p) => p === 2).length, 36);
  } finally {
    await a.t.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  }
});

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('mutual TLS: members with certificates from the cluster CA talk; one without is refused', async () => {
  if (!haveOpenssl()) {
    console.log('skipped: no openssl');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-tls-'));
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const mk = (name: string, ca: string): void => {
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1');
  };
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=keelson-test-ca');
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '1', '-subj', '/CN=other-ca');
  mk('m1', 'ca');
  mk('m2', 'ca');
  mk('m3', 'other');
  const tlsOf = (n: string, ca = 'ca'): TcpTransportOptions['tls'] => ({ certFile: path.join(dir, `${n}.crt`), keyFile: path.join(dir, `${n}.key`), caFile: path.join(dir, `${ca}.crt`) });
  const a = await member(1, { tls: tlsOf('m1') }, 'https://127.0.0.1:0');
  const b = await member(2, { tls: tlsOf('m2') }, 'https://127.0.0.1:0');
  const c = await member(3, { tls: tlsOf('m3', 'other') }, 'https://127.0.0.1:0');
  try {
    assert.ok(b.url.startsWith('https://'));
    a.t.addPeer(2, [b.url]);
    a.t.send(2, msg(1));
    await until('tls delivery', () => b.h.calls.length > 0);
    assert.equal(b.h.calls[0]!.data, msg(1));
    c.t.addPeer(2, [b.url]);
    c.t.send(2, msg(2));
    await until('untrusted refused', () => c.h.unreachable.length > 0);
    assert.is(b.h.calls.length, 1);
  } finally {
    await a.t.close();
    await b.t.close();
    await c.t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
