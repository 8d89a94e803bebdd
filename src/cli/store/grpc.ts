// A small etcd v3 gRPC client for the CLI and the benchmark: raw @grpc/grpc-js
// over the API definitions the etcd3 package ships, so the same bytes go to a
// Keelson member and to etcd. Every call has a deadline; an endpoint that
// cannot be reached within it is reported as unreachable (CLI exit code 2).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

export type Service = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance';

let pkgCache: Record<Service, grpc.ServiceClientConstructor> | null = null;

function services(): Record<Service, grpc.ServiceClientConstructor> {
  if (pkgCache) return pkgCache;
  const require = createRequire(import.meta.url);
  const protoDir = path.join(path.dirname(require.resolve('etcd3')), '..', 'proto');
  const def = protoLoader.loadSync(path.join(protoDir, 'rpc.proto'), {
    keepCase: true,
    // int64 fields arrive as decimal strings: member ids use all 64 bits.
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Record<Service, grpc.ServiceClientConstructor> };
  pkgCache = pkg.etcdserverpb;
  return pkgCache;
}

export interface ClientTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** The endpoint could not be reached (connection refused, timed out). */
export class UnreachableError extends Error {}

/** The server answered with an error (etcd's message, e.g. "etcdserver: mvcc: required revision has been compacted"). */
export class ServerError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

function hostPort(endpoint: string): string {
  const e = endpoint.trim();
  if (/^[a-z]+:\/\//.test(e)) {
    const u = new URL(e);
    return `${u.hostname.includes(':') ? `[${u.hostname}]` : u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '2379')}`;
  }
  return e;
}

export function credentials(t: ClientTls | undefined, endpoint: string): grpc.ChannelCredentials {
  if (!t || (!t.caFile && !t.certFile && !endpoint.startsWith('https://'))) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    t.caFile ? fs.readFileSync(t.caFile) : null,
    t.keyFile ? fs.readFileSync(t.keyFile) : null,
    t.certFile ? fs.readFileSync(t.certFile) : null,
  );
}

type Clients = Record<Service, grpc.Client>;

/** Clients for one endpoint: one channel shared by the five services. */
export class EndpointClient {
  readonly address: string;
  private readonly clients: Clients;
  private readonly channel: grpc.Channel;

  constructor(readonly endpoint: string, private readonly timeoutMs: number, tlsOpts?: ClientTls, channelOptions: grpc.ChannelOptions = {}) {
    this.address = hostPort(endpoint);
    const svc = services();
    const creds = credentials(tlsOpts, endpoint);
    const kv = new svc.KV(this.address, creds, { 'grpc.max_receive_message_length': 2 * 1024 * 1024 * 1024 - 1, ...channelOptions });
    this.channel = kv.getChannel() as grpc.Channel;
    const opts = { channelOverride: this.channel };
    this.clients = {
      KV: kv,
      Watch: new svc.Watch(this.address, creds, opts),
      Lease: new svc.Lease(this.address, creds, opts),
      Cluster: new svc.Cluster(this.address, creds, opts),
      Maintenance: new svc.Maintenance(this.address, creds, opts),
    };
  }

  unary<T = any>(service: Service, method: string, req: object, timeoutMs = this.timeoutMs): Promise<T> {
    const client = this.clients[service] as unknown as Record<string, Function>;
    const fn = client[method];
    if (typeof fn !== 'function') throw new Error(`no method ${service}.${method}`);
    return new Promise<T>((resolve, reject) => {
      fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
        if (err) reject(this.wrap(err));
        else resolve(res);
      });
    });
  }

  /** A bidirectional stream (Watch, LeaseKeepAlive). */
  duplex(service: Service, method: string): grpc.ClientDuplexStream<any, any> {
    const client = this.clients[service] as unknown as Record<string, Function>;
    return client[method]!.call(client) as grpc.ClientDuplexStream<any, any>;
  }

  /** A server stream (Snapshot). */
  serverStream(service: Service, method: string, req: object): grpc.ClientReadableStream<any> {
    const client = this.clients[service] as unknown as Record<string, Function>;
    return client[method]!.call(client, req) as grpc.ClientReadableStream<any>;
  }

  wrap(err: grpc.ServiceError): Error {
    if (err.code === grpc.status.UNAVAILABLE || (err.code === grpc.status.DEADLINE_EXCEEDED && this.channel.getConnectivityState(false) !== grpc.connectivityState.READY)) {
      const details = err.details || err.message;
      const last = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/.exec(details);
      return new UnreachableError(`${this.endpoint} is unreachable (${last ? last[1] : details})`);
    }
    return new ServerError(err.code, err.details || err.message);
  }

  close(): void {
    for (const c of Object.values(this.clients)) c.close();
  }
}

/**
 * Clients for a list of endpoints. Calls go to the first endpoint that
 * answers; an endpoint found unreachable is skipped for the rest of the
 * command.
 */
export class EtcdClient {
  readonly endpoints: EndpointClient[];
  private preferred = 0;

  constructor(endpoints: string[], readonly timeoutMs: number, readonly tlsOpts?: ClientTls) {
    this.endpoints = endpoints.map((e) => new EndpointClient(e, timeoutMs, tlsOpts));
  }

  async unary<T = any>(service: Service, method: string, req: object): Promise<T> {
    let last: Error | null = null;
    for (let n = 0; n < this.endpoints.length; n++) {
      const i = (this.preferred + n) % this.endpoints.length;
      try {
        const r = await this.endpoints[i]!.unary<T>(service, method, req);
        this.preferred = i;
        return r;
      } catch (e) {
        if (!(e instanceof UnreachableError)) throw e;
        last = e;
      }
    }
    throw last ?? new UnreachableError('no endpoints');
  }

  /** The endpoint streams should use: the first that answers a cheap call. */
  async pick(): Promise<EndpointClient> {
    let last: Error | null = null;
    for (let n = 0; n < this.endpoints.length; n++) {
      const i = (this.preferred + n) % this.endpoints.length;
      try {
        await this.endpoints[i]!.unary('Maintenance', 'Status', {});
        this.preferred = i;
        return this.endpoints[i]!;
      } catch (e) {
        if (!(e instanceof UnreachableError)) throw e;
        last = e;
      }
    }
    throw last ?? new UnreachableError('no endpoints');
  }

  close(): void {
    for (const e of this.endpoints) e.close();
  }
}
