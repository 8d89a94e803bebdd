// The direct path for unary gRPC calls: the etcd v3 unary methods (Range,
// Put, Txn, ...) served straight from node:http2 streams, without
// @grpc/grpc-js's per-call machinery (interceptor chain, Metadata objects,
// stream decoder, call event tracking). That machinery costs about 45 us of
// server CPU per call on the 2-core benchmark machine (130 us against 86 us
// for the same call on bare node:http2), which is a large part of a put or a
// get's whole cost at the member that receives it.
//
// grpc-js still owns the listening sockets, the HTTP/2 sessions (keep-alive,
// shutdown, TLS) and every streaming method (Watch, LeaseKeepAlive,
// Snapshot). install() puts a dispatcher in front of grpc-js's 'stream'
// listener on each of the server's HTTP/2 servers: a call to a registered
// unary method that uses no compression is served here, anything else is
// handed to grpc-js untouched, so a request this path does not understand
// gets exactly grpc-js's answer.
//
// What a call gets here is what grpc-js would give it: the same request
// decoding and response encoding (the proto-loader method definitions), the
// same response headers and trailers, a trailers-only answer for an error
// (grpc-status plus grpc-message, URI-encoded as grpc-js does), RESOURCE_EXHAUSTED
// for a request above the receive limit, DEADLINE_EXCEEDED when the client's
// grpc-timeout passes first, and nothing at all for a call the client
// cancelled. test/store/server/unary-fast.test.ts checks the two paths side by
// side.
//
// grpc-js keeps its HTTP/2 servers in a private field (`http2Servers`, stable
// across the 1.x releases this project pins); when it is not there install()
// returns false and every call stays on grpc-js, which is slower but correct.
import type http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { frameMessages } from './framed-writes.ts';

export interface UnaryHandler {
  /** Serves one decoded request; `headers` are the call's HTTP/2 request headers (its metadata). */
  (request: unknown, headers: http2.IncomingHttpHeaders): Promise<unknown>;
}

interface Route {
  deserialize(b: Buffer): unknown;
  serialize(v: unknown): Buffer;
  handle: UnaryHandler;
}

export interface UnaryFastOptions {
  /** Largest request message accepted, in bytes (grpc-js's grpc.max_receive_message_length). */
  requestMessageBytesMax: number;
  /** The gRPC status and details for an error a handler threw or rejected with. */
  statusOf(e: unknown): { code: number; details: string };
}

const MESSAGE_PREFIX_BYTES = 5;
/** Above this a response's prefix and message go out as two writes instead of one copied buffer. */
const COPY_RESPONSE_BYTES_MAX = 16 * 1024;
/** grpc-timeout is at most 8 digits and a unit (the gRPC HTTP/2 protocol). */
const TIMEOUT_RE = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
/** Node's timers hold at most 2^31 - 1 ms; a longer deadline is as good as none. */
const TIMER_MS_MAX = 2 ** 31 - 1;

const responseHeaders = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  // What grpc-js advertises: a client may compress later requests, which
  // then take the grpc-js path (it decompresses).
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
};
const okTrailers = { 'grpc-status': '0', 'grpc-message': 'OK' };
const wrapped = Symbol('keelson.unaryFast');

/** The deadline a grpc-timeout header asks for, in ms, or null for none (absent, malformed or beyond a timer's range). */
export function grpcTimeoutMs(v: string | string[] | undefined): number | null {
  if (typeof v !== 'string') return null;
  const m = TIMEOUT_RE.exec(v);
  if (m === null) return null;
  const ms = Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
  return ms > TIMER_MS_MAX ? null : Math.max(0, Math.ceil(ms));
}

export class UnaryFastPath {
  private readonly routes = new Map<string, Route>();
  private readonly requestBytesMax: number;
  private readonly statusOf: UnaryFastOptions['statusOf'];
  /** Calls this path answered (tests and benchmarks read it). */
  served = 0;

  constructor(opts: UnaryFastOptions) {
    this.requestBytesMax = opts.requestMessageBytesMax;
    this.statusOf = opts.statusOf;
  }

  /** Serves `def` (a proto-loader method definition) with `handle` on this path. */
  add(def: grpc.MethodDefinition<unknown, unknown>, handle: UnaryHandler): void {
    if (def.requestStream || def.responseStream) throw new Error(`${def.path} is not a unary method`);
    this.routes.set(def.path, { deserialize: def.requestDeserialize, serialize: def.responseSerialize, handle });
  }

  /**
   * Puts the dispatcher in front of grpc-js on every HTTP/2 server `server`
   * has bound so far (call it after each bind). False when grpc-js's
   * internals are not as expected: calls then stay on grpc-js.
   */
  install(server: grpc.Server): boolean {
    const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
    if (!(servers instanceof Map)) return false;
    for (const h2 of servers.keys() as IterableIterator<http2.Http2Server & { [wrapped]?: true }>) {
      if (h2[wrapped]) continue;
      const originals = h2.listeners('stream') as ((...args: unknown[]) => void)[];
      if (originals.length === 0) return false;
      h2.removeAllListeners('stream');
      h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) => {
        const route = this.routes.get(headers[':path'] ?? '');
        if (route !== undefined && plainGrpc(headers)) this.serve(stream, headers, route);
        else for (const l of originals) l.call(h2, stream, headers, ...rest);
      });
      h2[wrapped] = true;
    }
    return true;
  }

  private serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, route: Route): void {
    let answered = false;
    let timer: NodeJS.Timeout | null = null;
    const chunks: Buffer[] = [];
    let bytes = 0;
    let declared = -1;
    const settle = (): boolean => {
      if (answered) return false;
      answered = true;
      if (timer !== null) clearTimeout(timer);
      return !stream.destroyed && !stream.closed;
    };
    const fail = (code: number, details: string): void => {
      if (!settle()) return;
      try {
        stream.respond({ ...responseHeaders, 'grpc-status': String(code), 'grpc-message': encodeURI(details) }, { endStream: true });
      } catch {
        // Reset by the client in the same turn: nobody to answer.
      }
    };
    const deadlineMs = grpcTimeoutMs(headers['grpc-timeout']);
    if (deadlineMs !== null) timer = setTimeout(() => fail(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'), deadlineMs);
    // A cancelled or broken call: its answer, if it ever comes, is dropped.
    stream.on('close', () => void settle());
    stream.on('error', () => void settle());
    stream.on('data', (chunk: Buffer) => {
      if (answered) return;
      bytes += chunk.length;
      chunks.push(chunk);
      // The limit applies to the length the prefix declares (as grpc-js
      // reports it) and, whatever that says, to the bytes held.
      if (declared < 0 && bytes >= MESSAGE_PREFIX_BYTES) declared = (chunks.length === 1 ? chunk : Buffer.concat(chunks)).readUInt32BE(1);
      const size = Math.max(declared, bytes - MESSAGE_PREFIX_BYTES);
      if (size > this.requestBytesMax) {
        chunks.length = 0;
        fail(GrpcStatus.RESOURCE_EXHAUSTED, `Received message larger than max (${size} vs ${this.requestBytesMax})`);
      }
    });
    stream.on('end', () => {
      if (answered) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      // grpc-js's answers for a unary call that does not carry exactly one
      // message (its wording). A set compressed flag under identity encoding
      // is read as uncompressed, as grpc-js does.
      const length = body.length >= MESSAGE_PREFIX_BYTES ? body.readUInt32BE(1) : -1;
      if (length < 0 || body.length - MESSAGE_PREFIX_BYTES < length) {
        fail(GrpcStatus.UNIMPLEMENTED, `Received no request message for server streaming method ${headers[':path']}`);
        return;
      }
      if (body.length - MESSAGE_PREFIX_BYTES > length) {
        fail(GrpcStatus.UNIMPLEMENTED, `Received a second request message for server streaming method ${headers[':path']}`);
        return;
      }
      let request: unknown;
      try {
        request = route.deserialize(body.subarray(MESSAGE_PREFIX_BYTES));
      } catch {
        fail(GrpcStatus.INTERNAL, 'Error deserializing request');
        return;
      }
      let pending: Promise<unknown>;
      try {
        pending = route.handle(request, headers);
      } catch (e) {
        const s = this.statusOf(e);
        fail(s.code, s.details);
        return;
      }
      pending.then(
        (response) => this.respond(stream, route, response, settle, fail),
        (e: unknown) => {
          const s = this.statusOf(e);
          fail(s.code, s.details);
        },
      );
    });
  }

  private respond(stream: http2.ServerHttp2Stream, route: Route, response: unknown, settle: () => boolean, fail: (code: number, details: string) => void): void {
    let message: Buffer;
    try {
      message = route.serialize(response);
    } catch {
      fail(GrpcStatus.INTERNAL, 'Error serializing response');
      return;
    }
    if (!settle()) return;
    this.served++;
    try {
      stream.respond(responseHeaders, { waitForTrailers: true });
    } catch {
      return; // reset by the client in the same turn
    }
    stream.once('wantTrailers', () => stream.sendTrailers(okTrailers));
    if (message.length <= COPY_RESPONSE_BYTES_MAX) {
      stream.end(frameMessages([message]));
    } else {
      const prefix = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES);
      prefix[0] = 0;
      prefix.writeUInt32BE(message.length, 1);
      stream.write(prefix);
      stream.end(message);
    }
  }
}

/** A POST with a gRPC content type and no request compression: the calls this path serves. */
function plainGrpc(headers: http2.IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  if (headers[':method'] !== 'POST' || typeof ct !== 'string' || !ct.startsWith('application/grpc')) return false;
  const enc = headers['grpc-encoding'];
  return enc === undefined || enc === 'identity';
}
