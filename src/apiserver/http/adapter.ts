// The thin node:http / node:https adapter around ApiServer.handle: reads the
// body (at most requestBodyBytesMax; larger is a 413 before the handler runs),
// passes the TLS peer certificate along for client-certificate
// authentication, and writes the response; a watch stream is written as its
// chunks arrive, waiting for 'drain' so a slow client backs up into the
// stream's bounded queue (which cuts it off) rather than into memory.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { errors } from '../errors.ts';
import type { ApiServer } from '../server.ts';

/** Largest request body accepted (Kubernetes' limit is 3 MiB as well). */
export const requestBodyBytesMax = 3 * 1024 * 1024;

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Requests on this listener run as this user, unauthenticated (loopback only). */
  trustedUser?: { username: string; groups: string[] };
  tls?: { key: string; cert: string; ca?: string; requestCert?: boolean; rejectUnauthorized?: boolean; minVersion?: 'TLSv1.2' | 'TLSv1.3' };
}

export interface Served {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, headers: Record<string, string | string[]>, body?: Buffer): void {
  if (body) headers['content-length'] = String(body.length);
  res.writeHead(status, headers);
  res.end(body);
}

export async function serve(api: ApiServer, opts: ServeOptions = {}): Promise<Served> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > requestBodyBytesMax) tooLarge = true;
    const fail413 = () => {
      const e = errors.tooLarge(`the request body is too large: limit is ${requestBodyBytesMax} bytes`);
      res.setHeader('connection', 'close');
      send(res, 413, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(e.toStatus())));
      req.resume();
    };
    if (tooLarge) { fail413(); return; }
    req.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > requestBodyBytesMax) { tooLarge = true; chunks.length = 0; fail413(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) return;
      const socket = req.socket as TLSSocket;
      const peer = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
      void api.handle({
        method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: chunks.length === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
        clientId: req.socket.remoteAddress, peerCertificate: peer, trustedUser: opts.trustedUser,
      }).then(async (r) => {
        if (!r.stream) { send(res, r.status, r.headers, req.method === 'HEAD' ? undefined : r.body); return; }
        const stream = r.stream;
        const headers = { ...r.headers };
        delete headers['transfer-encoding'];
        res.writeHead(r.status, headers);
        res.flushHeaders();
        const onClose = () => stream.end();
        res.on('close', onClose);
        for (;;) {
          await stream.ready();
          const cs = stream.drain();
          let ok = true;
          for (const c of cs) ok = res.write(c) && ok;
          if (cs.length === 0 && stream.closed) break;
          if (!ok && !res.destroyed) await new Promise((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
          if (res.destroyed) break;
        }
        res.off('close', onClose);
        res.end();
      }).catch((e) => {
        if (!res.headersSent) send(res, 500, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(errors.internal(String(e)).toStatus())));
        else res.destroy();
      });
    });
  };
  const server = opts.tls ? https.createServer(opts.tls, handler) : http.createServer(handler);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';
  return {
    port,
    url: `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
