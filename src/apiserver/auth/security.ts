// One call that builds every security piece of an API server from its
// options, so that `keelson apiserver` and `keelson up` wire them the same
// way: TLS material, the authenticator chain (client certificates, the token
// file, service-account tokens), the RBAC authorizer, the admission plugins
// (with RBAC escalation prevention) and the encryption config. Each piece
// stays usable on its own; this only fixes the order and the defaults.
import path from 'node:path';
import { defaultAdmissionPlugins, type AdmissionOptions, type AdmissionPlugin } from '../admission/index.ts';
import { loadEncryptionConfig, type EncryptionConfig } from '../encryption/index.ts';
import { UnionAuthenticator } from './bearer.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { CertificateAuthenticator, ensurePki, type Pki } from './pki.ts';
import { RbacAuthorizer, type RbacSource } from './rbac.ts';
import { ServiceAccountTokens, type BoundObjectRef } from './serviceaccount.ts';
import { TokenFileAuthenticator } from './tokenfile.ts';
import type { Authenticator } from './types.ts';

export interface SecurityOptions {
  dataDir: string;
  /** Extra names of the serving certificate. */
  hosts?: string[];
  /** --token-file. */
  tokenFile?: string;
  /** --encryption-config. */
  encryptionConfig?: string;
  /** Service-account token issuer and accepted audiences. */
  issuer?: string;
  audiences?: string[];
  /** Reads the server's RBAC objects (its watch cache). */
  rbacSource: RbacSource;
  /** Looks an object's uid up (null when it does not exist), to revoke tokens of deleted accounts and pods. */
  lookupUid?: (resource: 'serviceaccounts' | 'pods' | 'secrets' | 'nodes', namespace: string, name: string) => Promise<string | null>;
  admission?: Omit<AdmissionOptions, 'rbac'>;
  now?: () => number;
}

export interface Security {
  pki: Pki;
  authenticator: Authenticator;
  authorizer: RbacAuthorizer;
  serviceAccountTokens: ServiceAccountTokens;
  admissionPlugins: AdmissionPlugin[];
  encryption: EncryptionConfig | null;
  /** Writes a kubeconfig for the admin client certificate (CN admin, O system:masters). */
  writeAdminKubeconfig(file: string, server: string): void;
}

const boundResource: Record<BoundObjectRef['kind'], 'pods' | 'secrets' | 'nodes'> = { Pod: 'pods', Secret: 'secrets', Node: 'nodes' };

export async function createSecurity(opts: SecurityOptions): Promise<Security> {
  // Configuration files first: a mistake in them should stop the server
  // before it writes anything into the data dir.
  const tokenFile = opts.tokenFile ? TokenFileAuthenticator.fromFile(opts.tokenFile) : null;
  const encryption = opts.encryptionConfig ? loadEncryptionConfig(opts.encryptionConfig) : null;
  const pki = await ensurePki(opts.dataDir, { hosts: opts.hosts ?? [], now: opts.now });
  const lookup = opts.lookupUid;
  const serviceAccountTokens = ServiceAccountTokens.open({
    dataDir: opts.dataDir,
    issuer: opts.issuer,
    audiences: opts.audiences,
    now: opts.now,
    exists: lookup ? async (ns, name, uid) => (await lookup('serviceaccounts', ns, name)) === uid : undefined,
    boundObjectExists: lookup ? async (ns, ref) => (await lookup(boundResource[ref.kind], ref.kind === 'Node' ? '' : ns, ref.name)) === ref.uid : undefined,
  });
  const authenticators: Authenticator[] = [new CertificateAuthenticator(pki.caCertPem, { now: opts.now })];
  if (tokenFile) authenticators.push(tokenFile);
  authenticators.push(serviceAccountTokens);
  const authorizer = new RbacAuthorizer(opts.rbacSource);
  return {
    pki,
    authenticator: new UnionAuthenticator(authenticators),
    authorizer,
    serviceAccountTokens,
    admissionPlugins: defaultAdmissionPlugins({ ...opts.admission, rbac: authorizer }),
    encryption,
    writeAdminKubeconfig(file: string, server: string) {
      writeKubeconfig(path.resolve(file), { server, caCertPem: pki.caCertPem, clientCertPem: pki.adminCertPem, clientKeyPem: pki.adminKeyPem, user: 'admin', cluster: 'keelson' });
    },
  };
}
