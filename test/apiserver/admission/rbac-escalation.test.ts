// RBAC privilege-escalation prevention: rule coverage, and the admission step
// that refuses roles and bindings granting more than their writer holds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding } from 'kubernetes-types/rbac/v1.js';
import { defaultAdmissionPlugins, rbacEscalation, type AdmissionAttributes, type AdmissionContext, type GroupVersionResource } from '../../../src/apiserver/admission/index.ts';
import { bootstrapRbac, RbacAuthorizer, uncoveredRules, type UserInfo } from '../../../src/apiserver/auth/index.ts';
import { isStatusError } from '../../../src/apiserver/errors.ts';

const g = 'rbac.authorization.k8s.io';

test('rule coverage: atomic rules, wildcards only by wildcards, names, subresources, URLs', () => {
  const owner: PolicyRule[] = [
    { verbs: ['get', 'list'], apiGroups: [''], resources: ['pods', 'configmaps'] },
    { verbs: ['update'], apiGroups: ['apps'], resources: ['*/scale'] },
    { verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['a', 'b'] },
    { verbs: ['get'], nonResourceURLs: ['/logs/*', '/healthz'] },
  ];
  assert.equal(uncoveredRules(owner, [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }]), []);
  assert.equal(uncoveredRules(owner, [{ verbs: ['list', 'get'], apiGroups: [''], resources: ['configmaps', 'pods'] }]), []);
  assert.equal(uncoveredRules(owner, [{ verbs: ['get', 'delete'], apiGroups: [''], resources: ['pods'] }]), [{ verbs: ['delete'], apiGroups: [''], resources: ['pods'] }]);
  assert.equal(uncoveredRules(owner, [{ verbs: ['*'], apiGroups: [''], resources: ['pods'] }]), [{ verbs: ['*'], apiGroups: [''], resources: ['pods'] }]);
  assert.equal(uncoveredRules(owner, [{ verbs: ['get'], apiGroups: ['*'], resources: ['pods'] }]).length, 1);
  assert.equal(uncoveredRules(owner, [{ verbs: ['get'], apiGroups: [''], resources: ['pods/log'] }]).length, 1, 'pods does not cover pods/log');
  assert.equal(uncoveredRules(owner, [{ verbs: ['update'], apiGroups: ['apps'], resources: ['deployments/scale', 'replicasets/scale'] }]), []);
  assert.equal(uncoveredRules(owner, [{ verbs: ['update'], apiGroups: ['apps'], resources: ['deployments'] }]).length, 1);
  assert.equal(uncoveredRules(owner, [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['a'] }]), []);
  assert.equal(uncoveredRules(owner, [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'] }]).length, 1, 'named access does not cover all names');
  assert.equal(uncoveredRules(owner, [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['a', 'c'] }]), [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['c'] }]);
  assert.equal(uncoveredRules(owner, [{ verbs: ['get'], nonResourceURLs: ['/logs/x', '/logs/*', '/healthz'] }]), []);
  assert.equal(uncoveredRules(owner, [{ verbs: ['get'], nonResourceURLs: ['/metrics', '*'] }]).length, 2);
  assert.equal(uncoveredRules([{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }], [{ verbs: ['escalate'], apiGroups: [g], resources: ['clusterroles'], resourceNames: ['x'] }]), []);
  const huge = uncoveredRules([], [{ verbs: Array.from({ length: 100 }, (_, i) => `v${i}`), apiGroups: Array.from({ length: 100 }, (_, i) => `g${i}`), resources: Array.from({ length: 100 }, (_, i) => `r${i}`) }]);
  assert.ok(huge.length > 0 && huge.length <= 100_001, 'bounded');
});

function setup() {
  const boot = bootstrapRbac();
  const crs: ClusterRole[] = [...boot.clusterRoles, { metadata: { name: 'secret-reader' }, rules: [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'] }] }];
  const crbs: ClusterRoleBinding[] = [...boot.clusterRoleBindings];
  const roles: Role[] = [{ metadata: { namespace: 'team', name: 'pod-reader' }, rules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] }] }];
  const rbs: RoleBinding[] = [
    { metadata: { namespace: 'team', name: 'owner' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'admin' }, subjects: [{ apiGroup: g, kind: 'User', name: 'owner' }] },
    { metadata: { namespace: 'team', name: 'binder' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'secret-binder' }, subjects: [{ apiGroup: g, kind: 'User', name: 'binder' }] },
  ];
  crs.push({ metadata: { name: 'secret-binder' }, rules: [{ verbs: ['bind'], apiGroups: [g], resources: ['clusterroles'], resourceNames: ['secret-reader'] }, { verbs: ['create'], apiGroups: [g], resources: ['rolebindings'] }] });
  const rbac = new RbacAuthorizer({
    clusterRoles: () => crs, clusterRoleBindings: () => crbs,
    roles: (ns) => roles.filter((r) => r.metadata?.namespace === ns), roleBindings: (ns) => rbs.filter((r) => r.metadata?.namespace === ns),
  });
  const ctx: AdmissionContext = {
    async get(r: GroupVersionResource, ns: string, name: string) {
      if (r.resource === 'clusterroles') return crs.find((x) => x.metadata?.name === name) ?? null;
      if (r.resource === 'roles') return roles.find((x) => x.metadata?.namespace === ns && x.metadata?.name === name) ?? null;
      return null;
    },
    async list() { return []; },
    async create(_r, _ns, o) { return o; },
  };
  return { rbac, ctx, crbs, plugin: rbacEscalation(rbac) };
}

const u = (username: string, groups: string[] = []): UserInfo => ({ username, groups: [...groups, 'system:authenticated'] });
function attrs(resource: string, namespace: string, object: any, user: UserInfo, operation: 'CREATE' | 'UPDATE' = 'CREATE'): AdmissionAttributes {
  return {
    operation, resource: { group: g, version: 'v1', resource }, kind: { group: g, version: 'v1', kind: 'X' }, subresource: '', namespace,
    name: object.metadata.name, object, oldObject: operation === 'UPDATE' ? object : null, user, dryRun: false,
  };
}
async function refused(p: Promise<void>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isStatusError(e) && e.code === 403, String(e));
    assert.match(e.message, re);
    return;
  }
  assert.unreachable('allowed');
}

test('a namespace admin may create roles and bindings within their own permissions only', async () => {
  const { plugin, ctx } = setup();
  const owner = u('owner');
  const okRole = { metadata: { name: 'r', namespace: 'team' }, rules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods', 'secrets'] }] };
  await plugin.validate!(attrs('roles', 'team', okRole, owner), ctx);
  await refused(plugin.validate!(attrs('roles', 'other', okRole, owner), ctx), /is attempting to grant RBAC permissions not currently held/);
  const nodes = { metadata: { name: 'r2', namespace: 'team' }, rules: [{ verbs: ['get'], apiGroups: [''], resources: ['nodes'] }] };
  await refused(plugin.validate!(attrs('roles', 'team', nodes, owner), ctx),
    /^roles.rbac.authorization.k8s.io "r2" is forbidden: user "owner" \(groups=\["system:authenticated"\]\) is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\[""\], Resources:\["nodes"\], Verbs:\["get"\]\}$/);
  await plugin.validate!(attrs('rolebindings', 'team', { metadata: { name: 'b', namespace: 'team' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'edit' }, subjects: [] }, owner), ctx);
  await plugin.validate!(attrs('rolebindings', 'team', { metadata: { name: 'b2', namespace: 'team' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'admin' }, subjects: [] }, owner), ctx);
  await plugin.validate!(attrs('rolebindings', 'team', { metadata: { name: 'b3', namespace: 'team' }, roleRef: { apiGroup: g, kind: 'Role', name: 'pod-reader' }, subjects: [] }, owner), ctx);
  await refused(plugin.validate!(attrs('rolebindings', 'team', { metadata: { name: 'b4', namespace: 'team' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [] }, owner), ctx), /not currently held/);
  await refused(plugin.validate!(attrs('clusterrolebindings', '', { metadata: { name: 'b5' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'view' }, subjects: [] }, owner), ctx), /not currently held/);
  await refused(plugin.validate!(attrs('rolebindings', 'team', { metadata: { name: 'b6', namespace: 'team' }, roleRef: { apiGroup: g, kind: 'Role', name: 'ghost' }, subjects: [] }, owner), ctx), /not found/);
});

test('the bind and escalate verbs allow what coverage alone would not; system:masters may do anything', async () => {
  const { plugin, ctx, crbs } = setup();
  const binder = u('binder');
  await plugin.validate!(attrs('rolebindings', 'team', { metadata: { name: 'b', namespace: 'team' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'secret-reader' }, subjects: [] }, binder), ctx);
  await refused(plugin.validate!(attrs('rolebindings', 'team', { metadata: { name: 'b', namespace: 'team' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'edit' }, subjects: [] }, binder), ctx), /not currently held/);
  const wild = { metadata: { name: 'all' }, rules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }] };
  await refused(plugin.validate!(attrs('clusterroles', '', wild, u('dev')), ctx), /not currently held/);
  // A binding to a role that does not exist grants nothing, so it does not help either.
  crbs.push({ metadata: { name: 'esc' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'escalator' }, subjects: [{ apiGroup: g, kind: 'User', name: 'dev' }] });
  await refused(plugin.validate!(attrs('clusterroles', '', wild, u('dev')), ctx), /not currently held/);
  await plugin.validate!(attrs('clusterroles', '', wild, u('root', ['system:masters'])), ctx);
  const agg = { metadata: { name: 'agg' }, aggregationRule: { clusterRoleSelectors: [{ matchLabels: { x: 'y' } }] }, rules: [] };
  await refused(plugin.validate!(attrs('clusterroles', '', agg, u('owner')), ctx), /must have cluster-admin privileges to use the aggregationRule/);
  await plugin.validate!(attrs('clusterroles', '', agg, u('root', ['system:masters'])), ctx);
});

test('escalate on clusterroles lets a user write roles beyond their own rules', async () => {
  const boot = bootstrapRbac();
  const crs: ClusterRole[] = [...boot.clusterRoles, { metadata: { name: 'role-manager' }, rules: [{ verbs: ['create', 'escalate'], apiGroups: [g], resources: ['clusterroles'] }] }];
  const crbs: ClusterRoleBinding[] = [...boot.clusterRoleBindings, { metadata: { name: 'rm' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'role-manager' }, subjects: [{ apiGroup: g, kind: 'User', name: 'rm' }] }];
  const rbac = new RbacAuthorizer({ clusterRoles: () => crs, clusterRoleBindings: () => crbs, roles: () => [], roleBindings: () => [] });
  const plugin = rbacEscalation(rbac);
  const ctx: AdmissionContext = { get: async () => null, list: async () => [], create: async (_r, _n, o) => o };
  await plugin.validate!(attrs('clusterroles', '', { metadata: { name: 'big' }, rules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }] }, u('rm')), ctx);
  // Only with the rbac option does the default chain include the step.
  assert.not.ok(defaultAdmissionPlugins().some((p) => p.name === 'RBACEscalation'));
  assert.is(defaultAdmissionPlugins({ rbac }).at(-1)?.name, 'RBACEscalation');
});

test.run();
