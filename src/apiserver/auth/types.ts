// The shapes shared by authentication and authorization. The API server's
// handler chain authenticates a request into a UserInfo, turns the request
// into RequestAttributes and asks an Authorizer; both are interfaces so that
// the chain can combine several implementations (token file, service-account
// JWTs, client certificates; RBAC plus the system:masters shortcut).
import type { IncomingHttpHeaders } from 'node:http';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/**
 * Contract: resolves null when the request presents no credential this
 * authenticator understands (so that a union can ask the next one), and
 * throws a 401 StatusError when it presents one that is bad, expired or
 * unknown. It never throws anything else for bad input.
 */
export interface Authenticator {
  /**
   * `peerCertificate` is the TLS client certificate when the connection has
   * one (tls.TLSSocket.getPeerX509Certificate()); header-based
   * authenticators ignore it.
   */
  authenticate(headers: IncomingHttpHeaders, peerCertificate?: unknown): Promise<UserInfo | null>;
}

export interface RequestAttributes {
  user: UserInfo;
  /** Kubernetes verbs: get list watch create update patch delete deletecollection, or a special verb (impersonate, bind, escalate, use). For non-resource requests the lower-case HTTP method. */
  verb: string;
  /** '' is the core group. */
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  /** '' for cluster-scoped resources and for requests across all namespaces. */
  namespace: string;
  name: string;
  resourceRequest: boolean;
  /** The URL path, used for non-resource requests. */
  path: string;
}

export interface Decision {
  allowed: boolean;
  /** Why; '' when there is nothing to add (Kubernetes leaves it empty for a plain RBAC denial). */
  reason: string;
}

export interface Authorizer {
  authorize(a: RequestAttributes): Promise<Decision>;
}

/** The well-known user and group names of Kubernetes that the server gives meaning to. */
export const wellKnown = {
  anonymousUser: 'system:anonymous',
  allAuthenticated: 'system:authenticated',
  allUnauthenticated: 'system:unauthenticated',
  mastersGroup: 'system:masters',
  serviceAccountsGroup: 'system:serviceaccounts',
  serviceAccountUserPrefix: 'system:serviceaccount:',
} as const;

/** The user an unauthenticated request runs as, when the server allows anonymous requests at all (it does not by default). */
export function anonymousUser(): UserInfo {
  return { username: wellKnown.anonymousUser, groups: [wellKnown.allUnauthenticated] };
}
