// A minimal gRPC unary client for load generation: one HTTP/2 session per
// instance, requests encoded by hand (the few etcd messages the benchmarks
// send), responses checked for grpc-status 0 and otherwise not decoded.
// About a quarter of the CPU per call of a @grpc/grpc-js client, so that the
// load generator, which shares the machine with the members, takes less of
// it from them. Only for loopback plaintext benchmarks.
import http2 from 'node:http2';

/** Protobuf length-delimited field (wire type 2). */
function bytesField(field: number, v: Buffer): Buffer[] {
  return [varint((field << 3) | 2), varint(v.length), v];
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** etcdserverpb.PutRequest {key = 1, value = 2}. */
export function encodePut(key: Buffer, value: Buffer): Buffer {
  return Buffer.concat([...bytesField(1, key), ...bytesField(2, value)]);
}

/** etcdserverpb.RangeRequest {key = 1, serializable = 7}. */
export function encodeRange(key: Buffer, serializable: boolean): Buffer {
  return Buffer.concat([...bytesField(1, key), ...(serializable ? [Buffer.from([7 << 3, 1])] : [])]);
}

export class RawGrpcClient {
  private readonly session: http2.ClientHttp2Session;

  constructor(readonly endpoint: string) {
    this.session = http2.connect(`http://${endpoint}`);
    this.session.on('error', () => {
      // Calls in flight fail on their own streams.
    });
  }

  /** Calls `path` (e.g. /etcdserverpb.KV/Put) with an encoded request; resolves on grpc-status 0. */
  unary(path: string, message: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const frame = Buffer.allocUnsafe(5 + message.length);
      frame[0] = 0;
      frame.writeUInt32BE(message.length, 1);
      message.copy(frame, 5);
      const req = this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
      let status: string | undefined;
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']); // a trailers-only answer
      });
      req.on('trailers', (h) => {
        status = String(h['grpc-status']);
      });
      req.on('data', () => {});
      req.on('error', reject);
      req.on('close', () => (status === '0' ? resolve() : reject(new Error(`${path}: grpc-status ${status ?? 'none'}`))));
      req.end(frame);
    });
  }

  close(): void {
    this.session.close();
  }
}
