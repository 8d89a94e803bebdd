// Bearer tokens: pulling the token out of the Authorization header, and the
// union of authenticators the handler chain calls.
import type { IncomingHttpHeaders } from 'node:http';
import { errors, isStatusError, StatusError } from '../errors.ts';
import { wellKnown, type Authenticator, type UserInfo } from './types.ts';

/** Longer headers are refused before any parsing or hashing work. */
export const bearerTokenBytesMax = 16 * 1024;

/**
 * The bearer token of a request: undefined when there is no Authorization
 * header or it uses another scheme (Basic), so that other authenticators get
 * their turn; a 401 when the header says Bearer but carries no usable token.
 */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const raw = headers.authorization;
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return undefined;
  if (value.length > bearerTokenBytesMax) throw errors.unauthorized();
  const trimmed = value.trim();
  const space = trimmed.indexOf(' ');
  const scheme = space < 0 ? trimmed : trimmed.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') return undefined;
  const token = space < 0 ? '' : trimmed.slice(space + 1).trim();
  if (token === '' || /\s/.test(token)) throw errors.unauthorized();
  return token;
}

export interface UnionOptions {
  /** Add system:authenticated to every user that is not anonymous (as Kubernetes does after its authenticators). Default true. */
  addAuthenticatedGroup?: boolean;
}

/**
 * Asks each authenticator in order. The first user wins. When none accepts
 * the request but at least one rejected a credential, the request is
 * unauthenticated with a 401: a presented token that nobody knows must never
 * fall through to anonymous access.
 */
export class UnionAuthenticator implements Authenticator {
  private readonly addAuthenticatedGroup: boolean;

  constructor(private readonly authenticators: Authenticator[], opts: UnionOptions = {}) {
    this.addAuthenticatedGroup = opts.addAuthenticatedGroup ?? true;
  }

  async authenticate(headers: IncomingHttpHeaders, peerCertificate?: unknown): Promise<UserInfo | null> {
    let rejection: StatusError | undefined;
    for (const a of this.authenticators) {
      let user: UserInfo | null;
      try {
        user = await a.authenticate(headers, peerCertificate);
      } catch (e) {
        if (isStatusError(e) && e.code === 401) {
          rejection ??= e;
          continue;
        }
        throw e;
      }
      if (user) return this.addAuthenticatedGroup ? withAuthenticatedGroup(user) : user;
    }
    if (rejection) throw rejection;
    return null;
  }
}

export function withAuthenticatedGroup(user: UserInfo): UserInfo {
  if (user.username === wellKnown.anonymousUser || user.groups.includes(wellKnown.allAuthenticated)) return user;
  return { ...user, groups: [...user.groups, wellKnown.allAuthenticated] };
}
