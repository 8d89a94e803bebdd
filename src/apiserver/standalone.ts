// A complete API server process on a Store: TLS material and the admin
// kubeconfig in the data dir, authentication (client certificates, a static
// token file, service-account JWTs) with impersonation, RBAC fed from the
// watch cache with the bootstrap roles, the default admission chain (with RBAC
// escalation prevention), all built by the auth layer's createSecurity, optional encryption at rest,
// an HTTPS listener and, when asked for, a plain-HTTP listener on loopback.
// `keelson apiserver` and `keelson up` are thin shells around this.
import path from 'node:path';
import type { Store } from '../store/store.ts';
import { bootstrapRbac, createSecurity, impersonate, issueClientCertificate, selfSubjectRulesReview, tlsServerOptions } from './auth/index.ts';
import { serve, type Served } from './http/adapter.ts';
import type { KObject } from './resources/types.ts';
import { ApiServer } from './server.ts';

export interface StandaloneOptions {
  store: Store;
  /** Holds pki/ and admin.kubeconfig. */
  dataDir: string;
  /** Address of the HTTPS listener. Default 127.0.0.1. */
  bindAddress?: string;
  /** HTTPS port; 0 = pick a free one. */
  port: number;
  tokenFile?: string;
  encryptionConfig?: string;
  /** Plain-HTTP port on 127.0.0.1 without authentication (trusted local clients); absent = none. */
  insecurePort?: number;
  /** Extra names or addresses for the serving certificate. */
  hosts?: string[];
  /** Bookmark period for watches (tests shorten it). */
  bookmarkIntervalMs?: number;
}

export interface Standalone {
  api: ApiServer;
  url: string;
  insecureUrl?: string;
  kubeconfig: string;
  close(): Promise<void>;
}

export async function startStandalone(o: StandaloneOptions): Promise<Standalone> {
  const host = o.bindAddress ?? '127.0.0.1';
  let api: ApiServer | null = null;
  const cached = (group: string, resource: string, ns?: string): any[] => api?.registry(group, resource)?.cache.list(ns).map((c) => c.obj) ?? [];
  const rbacGroup = 'rbac.authorization.k8s.io';
  const security = await createSecurity({
    dataDir: o.dataDir,
    hosts: [...(o.hosts ?? []), ...(host !== '0.0.0.0' && host !== '::' ? [host] : [])],
    tokenFile: o.tokenFile,
    encryptionConfig: o.encryptionConfig,
    rbacSource: {
      clusterRoles: () => cached(rbacGroup, 'clusterroles'),
      clusterRoleBindings: () => cached(rbacGroup, 'clusterrolebindings'),
      roles: (ns: string) => cached(rbacGroup, 'roles', ns),
      roleBindings: (ns: string) => cached(rbacGroup, 'rolebindings', ns),
    },
    lookupUid: async (resource, ns, name) => {
      const reg = api?.registry('', resource);
      return reg ? ((await reg.read(ns, name))?.obj.metadata?.uid ?? null) : null;
    },
  });
  const encryption = security.encryption;
  // The aggregator's identity towards backends (they trust X-Remote-* only from this certificate).
  const proxyClientCert = await issueClientCertificate(security.pki, { username: 'front-proxy-client' });
  const rbac = bootstrapRbac();
  api = new ApiServer({
    store: o.store,
    authenticator: security.authenticator,
    authorizer: security.authorizer,
    admissionPlugins: security.admissionPlugins,
    transformerFor: encryption ? (g, r) => encryption.transformerFor(g, r) : undefined,
    tokenIssuer: security.serviceAccountTokens,
    reviews: {
      rules: (user, ns) => selfSubjectRulesReview(security.authorizer, user, ns),
      impersonate: (headers, user) => impersonate(headers, user, security.authorizer),
    },
    proxyClientCert,
    bootstrapObjects: [...rbac.clusterRoles, ...rbac.clusterRoleBindings] as KObject[],
    rootCaBundle: security.pki.caCertPem,
    bookmarkIntervalMs: o.bookmarkIntervalMs,
  });
  await api.start();
  const listeners: Served[] = [];
  try {
    const https = await serve(api, { host, port: o.port, tls: tlsServerOptions(security.pki) });
    listeners.push(https);
    let insecureUrl: string | undefined;
    if (o.insecurePort !== undefined) {
      const plain = await serve(api, { host: '127.0.0.1', port: o.insecurePort, trustedUser: { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] } });
      listeners.push(plain);
      insecureUrl = plain.url;
    }
    const url = `https://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${https.port}`;
    const kubeconfig = path.join(o.dataDir, 'admin.kubeconfig');
    security.writeAdminKubeconfig(kubeconfig, url);
    return {
      api, url, insecureUrl, kubeconfig,
      async close() {
        await Promise.all(listeners.map((l) => l.close()));
        await api!.stop();
      },
    };
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    await api.stop();
    throw e;
  }
}
