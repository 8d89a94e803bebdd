// Several gRPC messages of one server stream in one HTTP/2 write.
//
// grpc-js writes every message of a stream on its own: its length prefix is
// added in BaseServerInterceptingCall.serializeMessage and each message then
// goes through the stream machinery (a Writable write, an HTTP/2 DATA frame,
// a write callback) alone. A watch stream that fans one event out to 50
// watches pays that 50 times for bytes that could leave in one frame: the
// gRPC wire format is a byte stream of length-prefixed messages, and a
// receiver reads any number of them from one DATA frame.
//
// `PreFramed` carries bytes that are already a sequence of complete
// length-prefixed messages. Writing one to a server stream sends those bytes
// as they are. That needs one hook in grpc-js (serializeMessage passes a
// PreFramed through); `framedWritesAvailable` says whether it is installed.
// If a grpc-js version moves that method, the hook is not installed and
// callers write message by message as before.
import { createRequire } from 'node:module';

/** Bytes that are already whole gRPC messages, each with its 5-byte prefix. */
export class PreFramed {
  constructor(readonly bytes: Buffer) {}
}

/** The 5-byte gRPC message prefix (uncompressed) followed by the message, for each body. */
export function frameMessages(bodies: readonly Buffer[]): Buffer {
  let size = 0;
  for (const b of bodies) size += 5 + b.length;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const b of bodies) {
    out[off] = 0;
    out.writeUInt32BE(b.length, off + 1);
    b.copy(out, off + 5);
    off += 5 + b.length;
  }
  return out;
}

const hooked = Symbol.for('keelson.preFramed');

function install(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@grpc/grpc-js/build/src/server-interceptors.js') as { BaseServerInterceptingCall?: { prototype: Record<PropertyKey, unknown> } };
    const proto = mod.BaseServerInterceptingCall?.prototype;
    if (!proto || typeof proto.serializeMessage !== 'function') return false;
    if (proto[hooked]) return true;
    const original = proto.serializeMessage as (this: unknown, value: unknown) => Buffer;
    proto.serializeMessage = function serializeMessage(this: unknown, value: unknown): Buffer {
      return value instanceof PreFramed ? value.bytes : original.call(this, value);
    };
    proto[hooked] = true;
    return true;
  } catch {
    return false;
  }
}

/** Whether server streams accept PreFramed writes (the grpc-js hook is in place). */
export const framedWritesAvailable: boolean = install();
