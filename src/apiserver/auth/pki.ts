// TLS material of the API server, generated on first start into
// <dataDir>/pki/ and reused afterwards:
//   ca.crt, ca.key                 the cluster CA (10 years)
//   apiserver.crt, apiserver.key   the serving certificate (1 year), signed by the CA,
//                                  SANs: the requested hosts, localhost, 127.0.0.1, ::1 and the
//                                  in-cluster service names
//   admin.crt, admin.key           a client certificate CN=admin, O=system:masters (1 year)
// Keys are ECDSA P-256 (PKCS#8 PEM, mode 0600), signatures ECDSA-SHA256.
//
// On a later start the CA is kept as it is (replacing it would orphan every
// kubeconfig), while a leaf certificate is re-issued from the same CA when it
// expires within leafRenewBeforeMs, lacks a requested host, or was not issued
// by the current CA. Files are written so that a crash or a second server on
// the same data dir never leaves a half-written key (see files.ts).
//
// The x509 client-certificate authenticator lives here too: a peer
// certificate is accepted when the CA issued it (signature and issuer name),
// it is within its validity window, and it is meant for client auth; the user
// is its CN and the groups its O values, as in Kubernetes.
import 'reflect-metadata';
import crypto, { webcrypto } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { errors } from '../errors.ts';
import { readIfExists, writeFileOnce, writeFileReplace } from './files.ts';
import { wellKnown, type Authenticator, type UserInfo } from './types.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const alg: EcKeyGenParams & EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const dayMs = 24 * 60 * 60 * 1000;
export const caValidityMs = 3650 * dayMs;
export const leafValidityMs = 365 * dayMs;
export const leafRenewBeforeMs = 30 * dayMs;
/** Certificates start this far in the past so that a client whose clock is a little behind accepts them. */
export const notBeforeSkewMs = 60 * 60 * 1000;

export interface PkiOptions {
  /** Extra DNS names or IP addresses for the serving certificate. */
  hosts: string[];
  /** Current time in ms since the epoch; injected for tests. */
  now?: () => number;
}

export interface Pki {
  caCertPem: string;
  caKeyPem: string;
  certPem: string;
  keyPem: string;
  adminCertPem: string;
  adminKeyPem: string;
  /** The folder the files live in. */
  dir: string;
}

/** Names every serving certificate carries, whatever hosts are asked for. */
export const defaultServingHosts = ['localhost', '127.0.0.1', '::1', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'];

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKeyPem(pem: string, file: string): Promise<CryptoKey> {
  let der: Buffer;
  try {
    der = crypto.createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  } catch (e) {
    throw new Error(`${file}: not a readable private key: ${(e as Error).message}`);
  }
  try {
    return await webcrypto.subtle.importKey('pkcs8', der, alg, true, ['sign']);
  } catch (e) {
    throw new Error(`${file}: the key must be ECDSA P-256: ${(e as Error).message}`);
  }
}

function serialNumber(): string {
  const b = crypto.randomBytes(16);
  b[0]! &= 0x7f; // a positive INTEGER
  b[0]! |= 0x01; // and never a leading zero byte, which DER would have to strip
  return b.toString('hex');
}

function generalNames(hosts: string[]): x509.JsonGeneralName[] {
  const seen = new Set<string>();
  const out: x509.JsonGeneralName[] = [];
  for (const h of hosts) {
    const host = h.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
    if (host === '' || seen.has(host)) continue;
    seen.add(host);
    out.push({ type: net.isIP(host) ? 'ip' : 'dns', value: host });
  }
  return out;
}

function validateHosts(hosts: string[]): void {
  for (const h of hosts) {
    const host = h.trim().replace(/^\[(.*)\]$/, '$1');
    if (net.isIP(host)) continue;
    if (!/^(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(host)) {
      throw new Error(`invalid host for the serving certificate: ${JSON.stringify(h)} (a DNS name or an IP address)`);
    }
  }
}

async function createCa(now: number): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: ['keelson-ca'] }],
    notBefore: new Date(now - notBeforeSkewMs),
    notAfter: new Date(now + caValidityMs),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

interface LeafSpec {
  subject: x509.JsonName;
  usage: 'server' | 'client';
  hosts?: string[];
}

async function createLeaf(ca: x509.X509Certificate, caKey: CryptoKey, spec: LeafSpec, now: number): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([spec.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (spec.hosts) extensions.push(new x509.SubjectAlternativeNameExtension(generalNames(spec.hosts), false));
  const notAfter = Math.min(now + leafValidityMs, ca.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: spec.subject,
    issuer: ca.subject,
    notBefore: new Date(now - notBeforeSkewMs),
    notAfter: new Date(notAfter),
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

function parseCert(pem: string, file: string): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(pem);
  } catch (e) {
    throw new Error(`${file}: not a readable certificate: ${(e as Error).message}`);
  }
}

/** Whether a stored leaf can be kept: issued by this CA, matching its key, not near expiry, and carrying every wanted host. */
function leafUsable(certPem: string, keyPem: string, ca: crypto.X509Certificate, now: number, hosts?: string[]): boolean {
  let cert: crypto.X509Certificate;
  let key: crypto.KeyObject;
  try {
    cert = new crypto.X509Certificate(certPem);
    key = crypto.createPrivateKey(keyPem);
  } catch {
    return false;
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey) || !cert.checkPrivateKey(key)) return false;
  if (Date.parse(cert.validTo) - now < leafRenewBeforeMs || Date.parse(cert.validFrom) > now) return false;
  if (hosts) {
    // DNS names are compared with the SAN entries themselves (so that a
    // wanted wildcard name is found as such); IPs through checkIP, which
    // copes with the many spellings of an IPv6 address.
    const dnsNames = new Set((cert.subjectAltName ?? '').split(/,\s*/).filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4).toLowerCase()));
    for (const h of hosts) {
      const host = h.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
      if (host === '') continue;
      const ok = net.isIP(host) ? cert.checkIP(host) !== undefined : dnsNames.has(host);
      if (!ok) return false;
    }
  }
  return true;
}

/** Creates the CA and the certificates on first start and returns them; on later starts reuses (or renews) them. */
export async function ensurePki(dataDir: string, opts: PkiOptions): Promise<Pki> {
  validateHosts(opts.hosts);
  const now = (opts.now ?? Date.now)();
  const dir = path.join(dataDir, 'pki');
  const file = (n: string) => path.join(dir, n);

  let caCertPem = readIfExists(file('ca.crt'));
  let caKeyPem = readIfExists(file('ca.key'));
  if (caCertPem === undefined && caKeyPem === undefined) {
    const fresh = await createCa(now);
    // The key goes first: a CA certificate on disk without its key would be unusable.
    writeFileOnce(file('ca.key'), fresh.keyPem, 0o600);
    writeFileOnce(file('ca.crt'), fresh.certPem, 0o644);
    caCertPem = readIfExists(file('ca.crt'));
    caKeyPem = readIfExists(file('ca.key'));
  }
  if (caCertPem === undefined || caKeyPem === undefined) {
    throw new Error(`${dir}: ca.crt and ca.key must both exist or both be absent (found only ${caCertPem === undefined ? 'ca.key' : 'ca.crt'}); restore the missing file, or remove the folder to start a new CA`);
  }
  const caCert = parseCert(caCertPem, file('ca.crt'));
  if (!caCert.checkPrivateKey(crypto.createPrivateKey(caKeyPem))) throw new Error(`${dir}: ca.key does not belong to ca.crt`);
  if (!caCert.ca) throw new Error(`${file('ca.crt')}: not a CA certificate`);
  if (Date.parse(caCert.validTo) <= now) throw new Error(`${file('ca.crt')}: the CA certificate expired on ${caCert.validTo}`);
  const caKey = await importKeyPem(caKeyPem, file('ca.key'));
  const ca = new x509.X509Certificate(caCertPem);

  const servingHosts = [...opts.hosts, ...defaultServingHosts];
  const leaf = async (name: string, spec: LeafSpec): Promise<{ certPem: string; keyPem: string }> => {
    const certPem = readIfExists(file(`${name}.crt`));
    const keyPem = readIfExists(file(`${name}.key`));
    if (certPem !== undefined && keyPem !== undefined && leafUsable(certPem, keyPem, caCert, now, spec.hosts)) return { certPem, keyPem };
    const fresh = await createLeaf(ca, caKey, spec, now);
    // The key first, then the certificate: a reader that sees the new
    // certificate also finds its key.
    writeFileReplace(file(`${name}.key`), fresh.keyPem, 0o600);
    writeFileReplace(file(`${name}.crt`), fresh.certPem, 0o644);
    return fresh;
  };
  const serving = await leaf('apiserver', { subject: [{ CN: ['keelson-apiserver'] }], usage: 'server', hosts: servingHosts });
  const admin = await leaf('admin', { subject: [{ CN: ['admin'] }, { O: [wellKnown.mastersGroup] }], usage: 'client' });
  return { caCertPem, caKeyPem, certPem: serving.certPem, keyPem: serving.keyPem, adminCertPem: admin.certPem, adminKeyPem: admin.keyPem, dir };
}

/** Issues a client certificate from the CA (for other components: the scheduler, nodes, tests). */
export async function issueClientCertificate(pki: Pick<Pki, 'caCertPem' | 'caKeyPem'>, user: { username: string; groups?: string[] }, opts: { now?: () => number } = {}): Promise<{ certPem: string; keyPem: string }> {
  const ca = new x509.X509Certificate(pki.caCertPem);
  const caKey = await importKeyPem(pki.caKeyPem, 'CA key');
  const subject: x509.JsonName = [{ CN: [user.username] }];
  for (const g of user.groups ?? []) subject.push({ O: [g] });
  return createLeaf(ca, caKey, { subject, usage: 'client' }, (opts.now ?? Date.now)());
}

/** Options for node:https.createServer: serve the certificate, ask for (but do not require) a client certificate. */
export function tlsServerOptions(pki: Pick<Pki, 'caCertPem' | 'certPem' | 'keyPem'>): { key: string; cert: string; ca: string; requestCert: true; rejectUnauthorized: false; minVersion: 'TLSv1.2' } {
  return { key: pki.keyPem, cert: pki.certPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
}

/** A peer certificate as Node hands it out: tls.TLSSocket.getPeerX509Certificate(), or getPeerCertificate() (its `raw` DER). */
export type PeerCertificate = crypto.X509Certificate | { raw?: Buffer } | null | undefined;

/**
 * The x509 client-certificate authenticator. As an Authenticator it reads the
 * peer certificate the handler chain passes along and ignores the headers.
 */
export class CertificateAuthenticator implements Authenticator {
  private readonly ca: crypto.X509Certificate;
  private readonly now: () => number;

  constructor(caCertPem: string, opts: { now?: () => number } = {}) {
    this.ca = new crypto.X509Certificate(caCertPem);
    this.now = opts.now ?? Date.now;
  }

  async authenticate(_headers: unknown, peerCertificate?: unknown): Promise<UserInfo | null> {
    return this.authenticateCertificate(peerCertificate as PeerCertificate);
  }

  /** null when no certificate was presented; a 401 when one was but it is not acceptable. */
  authenticateCertificate(peer: PeerCertificate): UserInfo | null {
    let cert: crypto.X509Certificate;
    if (!peer || typeof peer !== 'object') return null;
    if (peer instanceof crypto.X509Certificate) cert = peer;
    else if (peer.raw && peer.raw.length > 0) {
      try {
        cert = new crypto.X509Certificate(peer.raw);
      } catch {
        throw errors.unauthorized();
      }
    } else return null; // getPeerCertificate() returns {} when the client sent none
    if (!cert.checkIssued(this.ca) || !cert.verify(this.ca.publicKey)) throw errors.unauthorized();
    const now = this.now();
    if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) throw errors.unauthorized();
    if (cert.ca) throw errors.unauthorized();
    const eku = cert.keyUsage; // Node names the extended key usage OIDs keyUsage
    if (eku && eku.length > 0 && !eku.includes(x509.ExtendedKeyUsage.clientAuth) && !eku.includes('2.5.29.37.0')) throw errors.unauthorized();
    const name = new x509.X509Certificate(cert.raw).subjectName;
    const cn = name.getField('CN');
    if (cn.length !== 1 || cn[0] === '') throw errors.unauthorized();
    return { username: cn[0]!, groups: [...name.getField('O'), wellKnown.allAuthenticated] };
  }
}
