// Service-account tokens: JWTs the server signs for a service account (the
// TokenRequest API, `kubectl create token`, projected volumes) and verifies on
// every request that carries one.
//
// The signing key (ES256 by default, RS256 on request) is generated on first
// start into <dataDir>/pki/sa.key and reused afterwards, so tokens survive a
// restart and every API server on the same data dir signs with the same key.
// A token is accepted only if its signature, issuer, audience and expiry are
// right AND the service account (and the object the token is bound to, such as
// a pod) still exists with the same uid: deleting the account revokes its
// tokens at once, long before they expire.
import crypto, { type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { errors as joseErrors, exportJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { errors } from '../errors.ts';
import { bearerToken } from './bearer.ts';
import { readIfExists, writeFileOnce } from './files.ts';
import { wellKnown, type Authenticator, type UserInfo } from './types.ts';

export interface ServiceAccountRef {
  namespace: string;
  name: string;
  uid: string;
}

/** The object a token is bound to: the token dies with it. */
export interface BoundObjectRef {
  kind: 'Pod' | 'Secret' | 'Node';
  apiVersion?: string;
  name: string;
  uid: string;
}

export interface IssueOptions {
  /** Empty or absent: the server's own audiences. */
  audiences?: string[];
  expirationSeconds: number;
  boundObject?: BoundObjectRef;
  /** The node a pod-bound token's pod runs on, recorded in the claims as Kubernetes does. */
  node?: { name: string; uid: string };
}

export type SigningAlgorithm = 'ES256' | 'RS256';

export interface ServiceAccountTokensOptions {
  /** The key lives in <dataDir>/pki/sa.key. */
  dataDir: string;
  /** The `iss` claim; tokens of other issuers are refused. */
  issuer?: string;
  /** Audiences this server accepts (and puts in tokens issued without audiences). */
  audiences?: string[];
  /** Used only when the key is first generated; a stored key keeps its own algorithm. */
  algorithm?: SigningAlgorithm;
  /** Current time in ms since the epoch; injected for tests. */
  now?: () => number;
  /** Whether the service account still exists with this uid. Absent: not checked. */
  exists?: (namespace: string, name: string, uid: string) => Promise<boolean>;
  /** Whether the bound object still exists with this uid. Absent: not checked. */
  boundObjectExists?: (namespace: string, ref: BoundObjectRef) => Promise<boolean>;
}

export const defaultIssuer = 'https://kubernetes.default.svc.cluster.local';
/** TokenRequest limits (as in Kubernetes): at least 10 minutes, at most 2^32 seconds. */
export const tokenExpirationSecondsMin = 600;
export const tokenExpirationSecondsMax = 2 ** 32;
/** A JWT longer than this is not one of ours; refuse it before parsing. */
export const tokenBytesMax = 8 * 1024;
/** A TokenRequest without expirationSeconds gets a token of one hour. */
export const defaultTokenRequestExpirationSeconds = 3600;

interface KubernetesClaims {
  namespace: string;
  serviceaccount: { name: string; uid: string };
  pod?: { name: string; uid: string };
  secret?: { name: string; uid: string };
  node?: { name: string; uid: string };
}

interface Claims extends JWTPayload {
  'kubernetes.io'?: KubernetesClaims;
}

function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('base64url');
}

function algorithmOf(key: KeyObject, file: string): SigningAlgorithm {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  throw new Error(`service-account signing key ${file} must be an EC P-256 or RSA key, found ${key.asymmetricKeyType}`);
}

export class ServiceAccountTokens implements Authenticator {
  readonly issuer: string;
  readonly audiences: string[];
  readonly algorithm: SigningAlgorithm;
  readonly keyId: string;
  private readonly now: () => number;
  /**
   * Claims of tokens whose signature, issuer and audience were verified, in
   * insertion order for eviction. Time-dependent checks (exp, nbf) and the
   * existence checks run on every request all the same, so a cached token
   * still expires and is still revoked on time.
   */
  private readonly verified = new Map<string, Claims>();

  private constructor(
    private readonly privateKey: KeyObject,
    private readonly publicKey: KeyObject,
    private readonly opts: ServiceAccountTokensOptions,
    keyFile: string,
  ) {
    this.issuer = opts.issuer ?? defaultIssuer;
    this.audiences = opts.audiences && opts.audiences.length > 0 ? [...opts.audiences] : [this.issuer];
    this.algorithm = algorithmOf(privateKey, keyFile);
    this.keyId = keyId(publicKey);
    this.now = opts.now ?? Date.now;
  }

  /** Loads the signing key from the data dir, generating it on first start. */
  static open(opts: ServiceAccountTokensOptions): ServiceAccountTokens {
    const file = path.join(opts.dataDir, 'pki', 'sa.key');
    let pem = readIfExists(file);
    if (pem === undefined) {
      const alg = opts.algorithm ?? 'ES256';
      const { privateKey } = alg === 'ES256'
        ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      const fresh = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      // Another server on the same data dir may have written one meanwhile: use whichever is on disk.
      writeFileOnce(file, fresh, 0o600);
      pem = readIfExists(file)!;
    }
    let privateKey: KeyObject;
    try {
      privateKey = crypto.createPrivateKey(pem);
    } catch (e) {
      throw new Error(`service-account signing key ${file} cannot be read: ${(e as Error).message}`);
    }
    const tokens = new ServiceAccountTokens(privateKey, crypto.createPublicKey(privateKey), opts, file);
    if (opts.algorithm && opts.algorithm !== tokens.algorithm) {
      throw new Error(`service-account signing key ${file} is for ${tokens.algorithm}, but ${opts.algorithm} was asked for; remove the file to generate a new key (this invalidates every issued token)`);
    }
    return tokens;
  }

  /** Signs a token for `sa`. Throws a 422 StatusError for an out-of-range expiry. */
  async issue(sa: ServiceAccountRef, o: IssueOptions): Promise<string> {
    const exp = o.expirationSeconds;
    if (!Number.isInteger(exp) || exp < tokenExpirationSecondsMin) {
      throw errors.invalid('authentication.k8s.io', 'TokenRequest', sa.name, [{ reason: 'FieldValueInvalid', field: 'spec.expirationSeconds', message: `Invalid value: ${exp}: may not specify a duration less than 10 minutes` }]);
    }
    if (exp > tokenExpirationSecondsMax) {
      throw errors.invalid('authentication.k8s.io', 'TokenRequest', sa.name, [{ reason: 'FieldValueInvalid', field: 'spec.expirationSeconds', message: `Invalid value: ${exp}: may not specify a duration larger than 2^32 seconds` }]);
    }
    const audiences = o.audiences && o.audiences.length > 0 ? o.audiences : this.audiences;
    const k8s: KubernetesClaims = { namespace: sa.namespace, serviceaccount: { name: sa.name, uid: sa.uid } };
    if (o.boundObject) {
      const ref = { name: o.boundObject.name, uid: o.boundObject.uid };
      if (o.boundObject.kind === 'Pod') k8s.pod = ref;
      else if (o.boundObject.kind === 'Secret') k8s.secret = ref;
      else k8s.node = ref;
    }
    if (o.node && !k8s.node) k8s.node = { name: o.node.name, uid: o.node.uid };
    const iat = Math.floor(this.now() / 1000);
    return new SignJWT({ 'kubernetes.io': k8s } as Claims)
      .setProtectedHeader({ alg: this.algorithm, kid: this.keyId })
      .setIssuer(this.issuer)
      .setSubject(`${wellKnown.serviceAccountUserPrefix}${sa.namespace}:${sa.name}`)
      .setAudience(audiences)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + exp)
      .setJti(crypto.randomUUID())
      .sign(this.privateKey);
  }

  /**
   * Serves a TokenRequest (POST .../serviceaccounts/<name>/token): the spec's
   * audiences, expirationSeconds (default 3600, as in Kubernetes) and
   * boundObjectRef (kind Pod, Secret or Node) as they arrive from the client,
   * checked here; returns the token and its expiry as the status wants them.
   */
  async issueTokenRequest(sa: ServiceAccountRef, spec: { audiences?: unknown; expirationSeconds?: unknown; boundObjectRef?: unknown }): Promise<{ token: string; expirationTimestamp: string }> {
    const invalid = (field: string, message: string) => errors.invalid('authentication.k8s.io', 'TokenRequest', sa.name, [{ reason: 'FieldValueInvalid', field, message }]);
    let audiences: string[] | undefined;
    if (spec.audiences !== undefined && spec.audiences !== null) {
      if (!Array.isArray(spec.audiences) || spec.audiences.some((x) => typeof x !== 'string' || x === '')) throw invalid('spec.audiences', 'Invalid value: must be a list of non-empty strings');
      audiences = spec.audiences as string[];
    }
    const exp = spec.expirationSeconds ?? defaultTokenRequestExpirationSeconds;
    if (typeof exp !== 'number') throw invalid('spec.expirationSeconds', `Invalid value: ${JSON.stringify(exp)}: must be an integer`);
    let boundObject: BoundObjectRef | undefined;
    const ref = spec.boundObjectRef as Record<string, unknown> | undefined | null;
    if (ref !== undefined && ref !== null) {
      if (typeof ref !== 'object') throw invalid('spec.boundObjectRef', 'Invalid value: must be an object');
      if (ref.kind !== 'Pod' && ref.kind !== 'Secret' && ref.kind !== 'Node') {
        throw errors.invalid('authentication.k8s.io', 'TokenRequest', sa.name, [{ reason: 'FieldValueNotSupported', field: 'spec.boundObjectRef.kind', message: `Unsupported value: ${JSON.stringify(ref.kind)}: supported values: "Pod", "Secret", "Node"` }]);
      }
      if (typeof ref.name !== 'string' || ref.name === '') throw invalid('spec.boundObjectRef.name', 'Required value');
      boundObject = { kind: ref.kind, name: ref.name, uid: typeof ref.uid === 'string' ? ref.uid : '', ...(typeof ref.apiVersion === 'string' ? { apiVersion: ref.apiVersion } : {}) };
    }
    const token = await this.issue(sa, { audiences, expirationSeconds: exp, boundObject });
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number };
    return { token, expirationTimestamp: new Date(claims.exp * 1000).toISOString().replace('.000Z', 'Z') };
  }

  /** The OpenID discovery document (/.well-known/openid-configuration); `jwksUri` is where jwks() is served. */
  openidConfiguration(jwksUri: string): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: jwksUri,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [this.algorithm],
    };
  }

  /** The public key as a JWK set, for /openid/v1/jwks. */
  async jwks(): Promise<{ keys: JWK[] }> {
    const jwk = await exportJWK(this.publicKey);
    return { keys: [{ ...jwk, kid: this.keyId, alg: this.algorithm, use: 'sig' }] };
  }

  async authenticate(headers: IncomingHttpHeaders): Promise<UserInfo | null> {
    const token = bearerToken(headers);
    if (token === undefined) return null;
    return this.verify(token);
  }

  private async verifiedClaims(token: string): Promise<Claims> {
    const nowS = this.now() / 1000;
    const cached = this.verified.get(token);
    if (cached) {
      if (typeof cached.exp === 'number' && nowS >= cached.exp) {
        this.verified.delete(token);
        throw unauthorized('service account token has expired');
      }
      if (typeof cached.nbf === 'number' && nowS < cached.nbf) throw unauthorized('service account token is invalid: nbf claim check failed');
      return cached;
    }
    let payload: Claims;
    try {
      ({ payload } = await jwtVerify<Claims>(token, this.publicKey, {
        algorithms: [this.algorithm],
        issuer: this.issuer,
        audience: this.audiences,
        currentDate: new Date(this.now()),
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw unauthorized('service account token has expired');
      if (e instanceof joseErrors.JWTClaimValidationFailed) throw unauthorized(`service account token is invalid: ${e.claim} claim check failed`);
      if (e instanceof joseErrors.JOSEError) throw unauthorized('service account token is invalid');
      throw e;
    }
    if (this.verified.size >= verifiedTokensMax) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, payload);
    return payload;
  }

  /** Verifies a token; throws a 401 StatusError saying why (the message goes to the client only as "Unauthorized" if the caller wants; the reason is useful in logs). */
  async verify(token: string): Promise<UserInfo> {
    if (token.length > tokenBytesMax || token.split('.').length !== 3) throw errors.unauthorized();
    const payload = await this.verifiedClaims(token);
    const k8s = payload['kubernetes.io'];
    const sa = k8s?.serviceaccount;
    if (!k8s || typeof k8s.namespace !== 'string' || !sa || typeof sa.name !== 'string' || typeof sa.uid !== 'string') {
      throw unauthorized('service account token is missing its kubernetes.io claims');
    }
    if (payload.sub !== `${wellKnown.serviceAccountUserPrefix}${k8s.namespace}:${sa.name}`) {
      throw unauthorized('service account token subject does not match its claims');
    }
    if (this.opts.exists && !(await this.opts.exists(k8s.namespace, sa.name, sa.uid))) {
      throw unauthorized(`service account ${k8s.namespace}/${sa.name} (uid ${sa.uid}) no longer exists`);
    }
    const bound: BoundObjectRef | undefined = k8s.pod ? { kind: 'Pod', ...k8s.pod } : k8s.secret ? { kind: 'Secret', ...k8s.secret } : undefined;
    if (bound && this.opts.boundObjectExists && !(await this.opts.boundObjectExists(k8s.namespace, bound))) {
      throw unauthorized(`the ${bound.kind.toLowerCase()} ${k8s.namespace}/${bound.name} this token is bound to no longer exists`);
    }
    const extra: Record<string, string[]> = {};
    if (k8s.pod) {
      extra['authentication.kubernetes.io/pod-name'] = [k8s.pod.name];
      extra['authentication.kubernetes.io/pod-uid'] = [k8s.pod.uid];
    }
    if (k8s.node) {
      extra['authentication.kubernetes.io/node-name'] = [k8s.node.name];
      extra['authentication.kubernetes.io/node-uid'] = [k8s.node.uid];
    }
    if (typeof payload.jti === 'string') extra['authentication.kubernetes.io/credential-id'] = [`JTI=${payload.jti}`];
    return {
      username: `${wellKnown.serviceAccountUserPrefix}${k8s.namespace}:${sa.name}`,
      uid: sa.uid,
      groups: [wellKnown.serviceAccountsGroup, `${wellKnown.serviceAccountsGroup}:${k8s.namespace}`, wellKnown.allAuthenticated],
      extra,
    };
  }
}

/** Signature checks are the costly part of a request; a verified token's claims are remembered (up to this many tokens). */
export const verifiedTokensMax = 4096;
/** A 401 whose client-facing message stays "Unauthorized" (as Kubernetes answers) while the cause is kept for logs. */
function unauthorized(cause: string) {
  const e = errors.unauthorized();
  (e as { cause?: unknown }).cause = cause;
  return e;
}

/** The service-account user name, and parsing it back (for RBAC subjects and the admission plugins). */
export function serviceAccountUsername(namespace: string, name: string): string {
  return `${wellKnown.serviceAccountUserPrefix}${namespace}:${name}`;
}

export function parseServiceAccountUsername(username: string): { namespace: string; name: string } | undefined {
  if (!username.startsWith(wellKnown.serviceAccountUserPrefix)) return undefined;
  const rest = username.slice(wellKnown.serviceAccountUserPrefix.length);
  const colon = rest.indexOf(':');
  if (colon <= 0 || colon === rest.length - 1 || rest.indexOf(':', colon + 1) >= 0) return undefined;
  return { namespace: rest.slice(0, colon), name: rest.slice(colon + 1) };
}
