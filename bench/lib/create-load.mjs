// The create load generator of bench:apiserver (plain JavaScript, run as its
// own process so that it does not share the server's event loop): a client
// of the HTTPS listener with a bearer token, as a controller would be.
//
// MODE "closed": CLIENTS loops each POST a pod and wait for the answer, for
// SECONDS (the most the server does). MODE "open": pods are due at RATE per
// second whatever the server does, sent over at most CLIENTS connections; the
// latency of each counts from when it was due, so time spent waiting for a
// free connection is latency too. A create that waits more than QUEUE_MAX
// behind the others is counted as dropped rather than queued. MODE "get": the
// closed loop GETs one existing pod (GET_NAME) instead, the cost of a request
// without the write. WARMUP seconds at the start are run but not counted.
//
// Requests go over keep-alive TLS connections with a minimal HTTP/1.1 client
// (below): node:https costs about 0.3 CPU ms per request on this machine,
// which the load generator would take from the server it measures on two
// cores. The client writes a fixed request head and reads the status line,
// Content-Length or chunked framing, and nothing else; one request at a time
// per connection.
import tls from 'node:tls';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const env = process.env;
const target = new URL(env.URL);
const clients = Number(env.CLIENTS), seconds = Number(env.SECONDS), warmup = Number(env.WARMUP);
const mode = env.MODE, rate = Number(env.RATE), queueMax = Number(env.QUEUE_MAX);
/** The largest response head or body the client accepts (a pod or a Status is a few KiB). */
const responseBytesMax = 1024 * 1024;
const lat = [];
let errors = 0, dropped = 0, seq = 0, firstError = '', newConnections = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 5 });

const CRLF2 = Buffer.from('\r\n\r\n');

/** One keep-alive TLS connection carrying one request at a time. */
class Connection {
  constructor() {
    newConnections++;
    this.chunks = [];
    this.size = 0;
    this.done = null;
    this.closed = false;
    this.socket = tls.connect({ host: target.hostname, port: Number(target.port), ca: env.CA });
    this.socket.setNoDelay(true);
    this.socket.on('data', (d) => this.onData(d));
    this.socket.on('error', (e) => this.fail(String(e)));
    this.socket.on('close', () => this.fail('connection closed'));
  }

  /** Sends one request; resolves with '' for the wanted status, else a description of what came back. */
  request(text, want) {
    this.want = want;
    return new Promise((resolve) => {
      this.done = resolve;
      this.socket.write(text);
    });
  }

  fail(err) {
    this.closed = true;
    const done = this.done;
    this.done = null;
    if (done) done(err);
  }

  onData(d) {
    this.chunks.push(d);
    this.size += d.length;
    if (this.size > responseBytesMax) {
      this.fail('response too large');
      this.socket.destroy();
      return;
    }
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const end = this.complete(buf);
    if (end < 0) {
      this.chunks = [buf];
      return;
    }
    const rest = buf.subarray(end);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    const status = Number(buf.toString('latin1', 9, 12));
    const done = this.done;
    this.done = null;
    if (done) done(status === this.want ? '' : `${status} ${buf.toString('utf8', 0, Math.min(end, 500))}`);
  }

  /** The end offset of the first whole response in buf, or -1. */
  complete(buf) {
    const headEnd = buf.indexOf(CRLF2);
    if (headEnd < 0) return -1;
    const head = buf.toString('latin1', 0, headEnd).toLowerCase();
    const cl = /\r\ncontent-length: *(\d+)/.exec(head);
    if (cl) {
      const end = headEnd + 4 + Number(cl[1]);
      return buf.length >= end ? end : -1;
    }
    if (!/\r\ntransfer-encoding: *chunked/.test(head)) return headEnd + 4;
    let at = headEnd + 4;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd < 0) return -1;
      const n = parseInt(buf.toString('latin1', at, lineEnd), 16);
      if (n === 0) return buf.length >= lineEnd + 4 ? lineEnd + 4 : -1;
      at = lineEnd + 2 + n + 2;
      if (at > buf.length) return -1;
    }
  }
}

const idle = [];
const auth = `authorization: Bearer ${env.TOKEN}\r\nhost: ${target.host}\r\n`;

function body() {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p-' + env.TAG + '-' + (seq++), labels: { app: 'bench' } }, spec: { containers: [{ name: 'c', image: 'registry.example/app:1.0' }] } });
}

async function post(b) {
  let c = idle.pop();
  while (c && c.closed) c = idle.pop();
  c ??= new Connection();
  let err;
  if (mode === 'get') {
    seq++;
    err = await c.request(`GET ${target.pathname}/${env.GET_NAME} HTTP/1.1\r\n${auth}\r\n`, 200);
  } else {
    err = await c.request(`POST ${target.pathname} HTTP/1.1\r\n${auth}content-type: application/json\r\ncontent-length: ${Buffer.byteLength(b)}\r\n\r\n${b}`, 201);
  }
  if (!c.closed) idle.push(c);
  return err;
}

function record(counted, due, err) {
  if (!counted) return;
  if (err) { errors++; firstError ||= err; }
  lat.push(performance.now() - due);
}

async function closed(t0, end) {
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const s = performance.now();
      const err = await post(mode === 'get' ? '' : body());
      record(s >= t0, s, err);
    }
  }));
}

function open(t0, end) {
  return new Promise((resolve) => {
    const start = performance.now(), total = Math.round((end - start) / 1000 * rate);
    const waiting = []; let issued = 0, inflight = 0;
    const pump = () => {
      while (inflight < clients && waiting.length) {
        const due = waiting.shift(); inflight++;
        post(body()).then((err) => { inflight--; record(due >= t0, due, err); pump(); if (issued >= total && inflight === 0 && !waiting.length) resolve(); });
      }
    };
    const tick = () => {
      const now = performance.now();
      while (issued < total && start + issued * 1000 / rate <= now) {
        const due = start + issued * 1000 / rate; issued++;
        if (waiting.length >= queueMax) { if (due >= t0) dropped++; continue; }
        waiting.push(due);
      }
      pump();
      if (issued < total) setTimeout(tick, 1);
      else if (inflight === 0 && !waiting.length) resolve();
    };
    tick();
  });
}

const start = performance.now(), t0 = start + warmup * 1000, end = t0 + seconds * 1000;
const cpu0 = process.cpuUsage();
// The client's own stalls and new TLS connections, counted after the warm-up like the latencies.
setTimeout(() => { loopDelay.enable(); newConnections = 0; }, warmup * 1000);
if (mode === 'open') await open(t0, end); else await closed(t0, end);
const el = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
lat.sort((a, b) => a - b);
const p = (q) => lat.length ? +lat[Math.min(lat.length - 1, Math.floor(q / 100 * lat.length))].toFixed(2) : null;
for (const c of idle) c.socket.destroy();
const out = { mode, clients, seconds: +el.toFixed(2), created: lat.length - errors, errors, dropped, perSecond: Math.round((lat.length - errors) / el),
  latencyMs: { p50: p(50), p90: p(90), p99: p(99), max: lat.length ? +lat[lat.length - 1].toFixed(2) : null }, clientCpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2) };
if (mode === 'open') Object.assign(out, { ratePerSecond: rate });
if (firstError) Object.assign(out, { firstError });
Object.assign(out, { requestsTotal: seq, clientNewConnections: newConnections, clientEventLoopDelayMaxMs: +(loopDelay.max / 1e6).toFixed(1) });
process.stdout.write(JSON.stringify(out));
