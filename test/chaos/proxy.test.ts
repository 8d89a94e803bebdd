import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { FaultProxy, LinkTable, procIdentifier } from '../../src/chaos/proxy.ts';

// Member "b" is an echo server that prefixes what it sends back with "b:".
async function withProxy(fn: (ctx: { links: LinkTable; connect: () => Promise<net.Socket>; received: Buffer[]; proxy: FaultProxy }) => Promise<void>, opts: { identify?: (s: net.Socket) => Promise<string | undefined> } = {}) {
  const received: Buffer[] = [];
  const server = net.createServer((s) => { s.on('data', (d: Buffer) => { received.push(d); s.write(Buffer.concat([Buffer.from('b:'), d])); }); s.on('error', () => {}); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const links = new LinkTable();
  let seed = 1;
  const proxy = new FaultProxy({
    member: 'b', target: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }, links,
    identify: opts.identify ?? (async () => 'a'), random: () => ((seed = (seed * 16807) % 2147483647) / 2147483647),
  });
  const port = await proxy.listen();
  const sockets: net.Socket[] = [];
  try {
    await fn({
      links, received, proxy,
      connect: () => new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
        s.on('error', reject);
        sockets.push(s);
      }),
    });
  } finally {
    for (const s of sockets) s.destroy();
    await proxy.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function collect(s: net.Socket): { text: () => string } {
  let t = '';
  s.on('data', (d: Buffer) => { t += d.toString(); });
  return { text: () => t };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(5); }
}

test('forwards both directions of a healthy link', async () => {
  await withProxy(async ({ connect }) => {
    const s = await connect();
    const got = collect(s);
    s.write('hello');
    await until(() => got.text() === 'b:hello', 'echo');
  });
});

test('a cut holds bytes in its direction only; the heal delivers them in order', async () => {
  await withProxy(async ({ connect, links, received }) => {
    const s = await connect();
    const got = collect(s);
    links.set('a', 'b', { cut: true });
    s.write('one');
    s.write('two');
    await sleep(100);
    assert.is(received.length, 0, 'nothing crosses a cut a->b');
    links.clear();
    await until(() => got.text() === 'b:onetwo' || got.text() === 'b:oneb:two', 'delivery after heal');
    // Asymmetric: b->a cut, a->b open.
    links.set('b', 'a', { cut: true });
    const before = got.text();
    s.write('three');
    await until(() => Buffer.concat(received).toString().endsWith('three'), 'a->b still open');
    await sleep(50);
    assert.is(got.text(), before, 'the reply is held');
    links.set('b', 'a', {});
    await until(() => got.text().endsWith('b:three'), 'reply after heal');
  });
});

test('delay holds every chunk at least delayMs and keeps the order under jitter', async () => {
  await withProxy(async ({ connect, links }) => {
    const s = await connect();
    const got = collect(s);
    links.set('a', 'b', { delayMs: 80, jitterMs: 40 });
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) { s.write(`${i},`); await sleep(3); }
    await until(() => got.text().replace(/b:/g, '') === '0,1,2,3,4,5,6,7,8,9,', 'all ten in order');
    assert.ok(Date.now() - t0 >= 80);
  });
});

test('loss resets the connection, both sides', async () => {
  await withProxy(async ({ connect, links, received }) => {
    const s = await connect();
    let closed = false;
    s.on('close', () => { closed = true; });
    links.set('a', 'b', { lossRate: 1 });
    s.write('lost');
    await until(() => closed, 'reset');
    assert.is(received.length, 0);
  });
});

test('an unknown source is forwarded untouched', async () => {
  await withProxy(async ({ connect, links }) => {
    links.set('a', 'b', { cut: true });
    const s = await connect();
    const got = collect(s);
    s.write('x');
    await until(() => got.text() === 'b:x', 'echo');
  }, { identify: async () => undefined });
});

test('procIdentifier finds the process that owns the client socket', async () => {
  const identify = procIdentifier(() => new Map([[process.pid, 'me']]));
  let name: string | undefined | null = null;
  await withProxy(async ({ connect }) => {
    const s = await connect();
    s.write('x');
    await until(() => name !== null, 'identify');
  }, { identify: async (sock) => { name = await identify(sock); return name; } });
  assert.is(name, 'me');
});

test.run();
