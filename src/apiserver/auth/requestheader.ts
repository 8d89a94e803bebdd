// The request-header authenticator, for API servers that sit behind the
// aggregator (or any authenticating proxy): the proxy has already
// authenticated the user and names it in X-Remote-User, X-Remote-Group and
// X-Remote-Extra-<key> headers. Those headers are believed only when the
// connection itself presents a client certificate from the proxy CA whose CN
// is one of the allowed proxy names; from anyone else they are ignored, so a
// client cannot claim an identity by sending the headers itself.
import type { IncomingHttpHeaders } from 'node:http';
import { CertificateAuthenticator, type PeerCertificate } from './pki.ts';
import type { Authenticator, UserInfo } from './types.ts';

export interface RequestHeaderOptions {
  /** The CA that signs the proxy's client certificate. */
  clientCaPem: string;
  /** CNs allowed to assert identities; empty = any certificate of that CA. */
  allowedNames?: string[];
  usernameHeaders?: string[];
  groupHeaders?: string[];
  extraHeaderPrefixes?: string[];
  now?: () => number;
}

/** The header names the aggregator sends, as in Kubernetes' default front-proxy setup. */
export const remoteHeaders = { user: 'x-remote-user', group: 'x-remote-group', extraPrefix: 'x-remote-extra-' } as const;

function all(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : v.split(/,\s*/)).map((x) => x.trim()).filter((x) => x !== '');
}

export class RequestHeaderAuthenticator implements Authenticator {
  private readonly certs: CertificateAuthenticator;
  private readonly allowed: Set<string>;
  private readonly users: string[];
  private readonly groups: string[];
  private readonly extras: string[];

  constructor(o: RequestHeaderOptions) {
    this.certs = new CertificateAuthenticator(o.clientCaPem, { now: o.now });
    this.allowed = new Set(o.allowedNames ?? []);
    this.users = (o.usernameHeaders ?? [remoteHeaders.user]).map((h) => h.toLowerCase());
    this.groups = (o.groupHeaders ?? [remoteHeaders.group]).map((h) => h.toLowerCase());
    this.extras = (o.extraHeaderPrefixes ?? [remoteHeaders.extraPrefix]).map((h) => h.toLowerCase());
  }

  async authenticate(headers: IncomingHttpHeaders, peerCertificate?: unknown): Promise<UserInfo | null> {
    let proxy: UserInfo | null;
    try {
      proxy = this.certs.authenticateCertificate(peerCertificate as PeerCertificate);
    } catch {
      // Not the proxy's certificate: leave the request to the other authenticators.
      return null;
    }
    if (!proxy) return null;
    if (this.allowed.size > 0 && !this.allowed.has(proxy.username)) return null;
    let username: string | undefined;
    for (const h of this.users) {
      const v = all(headers[h])[0];
      if (v) { username = v; break; }
    }
    if (!username) return null;
    const groups = this.groups.flatMap((h) => all(headers[h]));
    const extra: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(headers)) {
      const key = k.toLowerCase();
      const prefix = this.extras.find((p) => key.startsWith(p));
      if (!prefix || key.length === prefix.length) continue;
      let name: string;
      try {
        name = decodeURIComponent(key.slice(prefix.length));
      } catch {
        continue;
      }
      extra[name] = [...(extra[name] ?? []), ...all(v)];
    }
    return { username, groups, ...(Object.keys(extra).length ? { extra } : {}) };
  }
}

/** The headers a proxy sends to a backend for `user` (what the aggregator adds to a proxied request). */
export function remoteUserHeaders(user: UserInfo): Record<string, string | string[]> {
  const h: Record<string, string | string[]> = { [remoteHeaders.user]: user.username };
  if (user.groups.length) h[remoteHeaders.group] = [...user.groups];
  for (const [k, vs] of Object.entries(user.extra ?? {})) h[`${remoteHeaders.extraPrefix}${encodeURIComponent(k)}`] = [...vs];
  return h;
}
