// The bodies of the self-review APIs, built from the authenticated user and
// RBAC: SelfSubjectRulesReview (`kubectl auth can-i --list`) and
// SelfSubjectReview (`kubectl auth whoami`). SelfSubjectAccessReview needs
// only Authorizer.authorize and is answered by the server directly.
import type { RbacAuthorizer } from './rbac.ts';
import type { UserInfo } from './types.ts';

export function selfSubjectRulesReview(rbac: RbacAuthorizer, user: UserInfo, namespace: string): Record<string, unknown> {
  const r = rbac.rulesFor(user, namespace);
  return {
    kind: 'SelfSubjectRulesReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec: { namespace },
    status: {
      resourceRules: r.resourceRules.map((x) => ({ verbs: x.verbs, apiGroups: x.apiGroups, resources: x.resources, ...(x.resourceNames.length ? { resourceNames: x.resourceNames } : {}) })),
      nonResourceRules: r.nonResourceRules,
      incomplete: r.incomplete,
      ...(r.evaluationError ? { evaluationError: r.evaluationError } : {}),
    },
  };
}

export function selfSubjectReview(user: UserInfo): Record<string, unknown> {
  return {
    kind: 'SelfSubjectReview',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { creationTimestamp: null },
    status: { userInfo: { username: user.username, ...(user.uid ? { uid: user.uid } : {}), groups: [...user.groups], ...(user.extra && Object.keys(user.extra).length ? { extra: user.extra } : {}) } },
  };
}
