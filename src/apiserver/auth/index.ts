// Authentication and authorization of API server requests. See
// docs/security.md for how the pieces fit and how to configure them.
export { anonymousUser, wellKnown } from './types.ts';
export type { Authenticator, Authorizer, Decision, RequestAttributes, UserInfo } from './types.ts';
export { bearerToken, UnionAuthenticator, withAuthenticatedGroup } from './bearer.ts';
export type { UnionOptions } from './bearer.ts';
export { TokenFileAuthenticator, TokenFileError } from './tokenfile.ts';
export {
  defaultIssuer, parseServiceAccountUsername, serviceAccountUsername, ServiceAccountTokens,
  tokenExpirationSecondsMax, tokenExpirationSecondsMin,
} from './serviceaccount.ts';
export type { BoundObjectRef, IssueOptions, ServiceAccountRef, ServiceAccountTokensOptions, SigningAlgorithm } from './serviceaccount.ts';
export {
  effectiveClusterRoleRules, forbiddenError, forbiddenMessage, labelSelectorMatches, RbacAuthorizer, ruleAllows, subjectMatches, UnionAuthorizer,
} from './rbac.ts';
export type { RbacSource, SubjectRules } from './rbac.ts';
export { bootstrapRbac } from './bootstrap.ts';
export { compactRules, escalationMessage, uncoveredRules } from './escalation.ts';
export type { BootstrapRbac } from './bootstrap.ts';
export { CertificateAuthenticator, defaultServingHosts, ensurePki, issueClientCertificate, tlsServerOptions } from './pki.ts';
export type { PeerCertificate, Pki, PkiOptions } from './pki.ts';
export { kubeconfigText, writeKubeconfig } from './kubeconfig.ts';
export { hasImpersonation, impersonate } from './impersonation.ts';
export { remoteHeaders, remoteUserHeaders, RequestHeaderAuthenticator } from './requestheader.ts';
export type { RequestHeaderOptions } from './requestheader.ts';
export { createSecurity } from './security.ts';
export { selfSubjectReview, selfSubjectRulesReview } from './reviews.ts';
export type { Security, SecurityOptions } from './security.ts';
export type { KubeconfigOptions } from './kubeconfig.ts';
