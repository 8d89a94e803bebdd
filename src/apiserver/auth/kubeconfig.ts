// Writing a kubeconfig that kubectl and client libraries read: one cluster
// (server URL plus the CA that signed its serving certificate, embedded), one
// user (a bearer token and/or a client certificate, embedded), one context
// made current. The file holds credentials, so it is written with mode 0600,
// atomically (a reader never sees half a file).
import { stringify } from 'yaml';
import { writeFileReplace } from './files.ts';

export interface KubeconfigOptions {
  /** https://host:port (or http:// on loopback when the server runs without TLS). */
  server: string;
  caCertPem: string;
  token?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Names of the user, cluster and context entries; default "admin" and "keelson". */
  user?: string;
  cluster?: string;
}

export function kubeconfigText(opts: KubeconfigOptions): string {
  let url: URL;
  try {
    url = new URL(opts.server);
  } catch {
    throw new Error(`kubeconfig: server ${JSON.stringify(opts.server)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`kubeconfig: server ${opts.server} must be an http(s) URL`);
  if ((opts.clientCertPem === undefined) !== (opts.clientKeyPem === undefined)) throw new Error('kubeconfig: a client certificate needs its key and the other way round');
  const user = opts.user ?? 'admin';
  const cluster = opts.cluster ?? 'keelson';
  const context = `${user}@${cluster}`;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const userEntry: Record<string, string> = {};
  if (opts.token !== undefined) {
    if (opts.token === '' || /\s/.test(opts.token)) throw new Error('kubeconfig: the token must be non-empty and without whitespace');
    userEntry.token = opts.token;
  }
  if (opts.clientCertPem !== undefined) {
    userEntry['client-certificate-data'] = b64(opts.clientCertPem);
    userEntry['client-key-data'] = b64(opts.clientKeyPem!);
  }
  const clusterEntry: Record<string, string> = { server: opts.server };
  if (url.protocol === 'https:') clusterEntry['certificate-authority-data'] = b64(opts.caCertPem);
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [{ name: cluster, cluster: clusterEntry }],
    users: [{ name: user, user: userEntry }],
    contexts: [{ name: context, context: { cluster, user } }],
    'current-context': context,
  };
  return stringify(doc, { lineWidth: 0 });
}

export function writeKubeconfig(path: string, opts: KubeconfigOptions): void {
  writeFileReplace(path, kubeconfigText(opts), 0o600);
}
