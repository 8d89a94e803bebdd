// RBACEscalation: refuses Role/ClusterRole writes that grant permissions the
// writer does not hold, and bindings to roles whose permissions the writer
// does not hold, unless the writer has the `escalate` (roles) or `bind`
// (bindings) verb on the role (see auth/escalation.ts). Kubernetes does this
// in its RBAC storage; Keelson does it as a validating admission step, which
// runs at the same point of a write. A ClusterRole with an aggregationRule
// takes its rules from other roles, so only users who hold every permission
// may create one.
import type { PolicyRule } from 'kubernetes-types/rbac/v1.js';
import { escalationMessage, uncoveredRules } from '../auth/escalation.ts';
import type { RbacAuthorizer } from '../auth/rbac.ts';
import { wellKnown, type UserInfo } from '../auth/types.ts';
import { admissionForbidden } from './forbidden.ts';
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin, GroupVersionResource } from './types.ts';

const rbacGroup = 'rbac.authorization.k8s.io';
const gvr = (resource: string): GroupVersionResource => ({ group: rbacGroup, version: 'v1', resource });
const fullAuthority: PolicyRule[] = [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }];

function heldRules(rbac: RbacAuthorizer, user: UserInfo, namespace: string): PolicyRule[] {
  const r = rbac.rulesFor(user, namespace);
  return [
    ...r.resourceRules.map((x) => ({ verbs: x.verbs, apiGroups: x.apiGroups, resources: x.resources, ...(x.resourceNames.length ? { resourceNames: x.resourceNames } : {}) })),
    ...r.nonResourceRules.map((x) => ({ verbs: x.verbs, nonResourceURLs: x.nonResourceURLs })),
  ];
}

export function rbacEscalation(rbac: RbacAuthorizer): AdmissionPlugin {
  const allowedVerb = async (user: UserInfo, verb: string, resource: string, namespace: string, name: string) =>
    (await rbac.authorize({ user, verb, apiGroup: rbacGroup, apiVersion: 'v1', resource, subresource: '', namespace, name, resourceRequest: true, path: '' })).allowed;

  return {
    name: 'RBACEscalation',
    async validate(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
      if (a.resource.group !== rbacGroup || a.subresource !== '') return;
      if (a.operation !== 'CREATE' && a.operation !== 'UPDATE') return;
      const user = a.user;
      if (user.groups.includes(wellKnown.mastersGroup)) return;
      const obj = a.object;
      const name: string = obj?.metadata?.name ?? a.name;
      switch (a.resource.resource) {
        case 'roles':
        case 'clusterroles': {
          const namespace = a.resource.resource === 'roles' ? a.namespace : '';
          if (await allowedVerb(user, 'escalate', a.resource.resource, namespace, name)) return;
          const held = heldRules(rbac, user, namespace);
          if (a.resource.resource === 'clusterroles' && obj?.aggregationRule && uncoveredRules(held, fullAuthority).length > 0) {
            throw admissionForbidden(a, 'must have cluster-admin privileges to use the aggregationRule');
          }
          const missing = uncoveredRules(held, obj?.rules ?? []);
          if (missing.length > 0) throw admissionForbidden(a, escalationMessage(user, missing));
          return;
        }
        case 'rolebindings':
        case 'clusterrolebindings': {
          const ref = obj?.roleRef;
          if (!ref || typeof ref.name !== 'string') return; // the strategy's validation reports it
          const namespace = a.resource.resource === 'rolebindings' ? a.namespace : '';
          const roleResource = ref.kind === 'Role' ? 'roles' : 'clusterroles';
          if (await allowedVerb(user, 'bind', roleResource, namespace, ref.name)) return;
          const role = await ctx.get(gvr(roleResource), ref.kind === 'Role' ? namespace : '', ref.name);
          if (!role) throw admissionForbidden(a, `${roleResource}.${rbacGroup} "${ref.name}" not found, and the user may not bind roles that do not exist`);
          const missing = uncoveredRules(heldRules(rbac, user, namespace), role.rules ?? []);
          if (missing.length > 0) throw admissionForbidden(a, escalationMessage(user, missing));
          return;
        }
        default:
          return;
      }
    },
  };
}
