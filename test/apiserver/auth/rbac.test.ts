// RBAC: rule matching (verbs, groups, resources, subresources, names,
// non-resource URLs), subjects, binding scopes, aggregation, the messages of
// a denial, rulesFor, and the bootstrap roles.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject } from 'kubernetes-types/rbac/v1.js';
import {
  bootstrapRbac, forbiddenError, forbiddenMessage, RbacAuthorizer, selfSubjectReview, selfSubjectRulesReview, UnionAuthorizer, type RbacSource, type RequestAttributes, type UserInfo,
} from '../../../src/apiserver/auth/index.ts';

const g = 'rbac.authorization.k8s.io';
const cr = (name: string, rules: PolicyRule[], labels?: Record<string, string>, aggregate?: Record<string, string>): ClusterRole => ({
  metadata: { name, labels }, rules, ...(aggregate ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: aggregate }] } } : {}),
});
const role = (ns: string, name: string, rules: PolicyRule[]): Role => ({ metadata: { namespace: ns, name }, rules });
const crb = (name: string, roleName: string, subjects: Subject[]): ClusterRoleBinding => ({ metadata: { name }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: roleName }, subjects });
const rb = (ns: string, name: string, kind: 'Role' | 'ClusterRole', roleName: string, subjects: Subject[]): RoleBinding => ({ metadata: { namespace: ns, name }, roleRef: { apiGroup: g, kind, name: roleName }, subjects });
const userS = (name: string): Subject => ({ apiGroup: g, kind: 'User', name });
const groupS = (name: string): Subject => ({ apiGroup: g, kind: 'Group', name });
const saS = (name: string, namespace?: string): Subject => ({ kind: 'ServiceAccount', name, ...(namespace ? { namespace } : {}) });

class MemorySource implements RbacSource {
  crs: ClusterRole[] = [];
  crbs: ClusterRoleBinding[] = [];
  rs: Role[] = [];
  rbs: RoleBinding[] = [];
  clusterRoles() { return this.crs; }
  clusterRoleBindings() { return this.crbs; }
  roles(ns: string) { return this.rs.filter((r) => r.metadata?.namespace === ns); }
  roleBindings(ns: string) { return this.rbs.filter((r) => r.metadata?.namespace === ns); }
}

const user = (username: string, groups: string[] = []): UserInfo => ({ username, groups: [...groups, 'system:authenticated'] });
function req(u: UserInfo, verb: string, resource: string, o: Partial<RequestAttributes> = {}): RequestAttributes {
  return { user: u, verb, apiGroup: '', apiVersion: 'v1', resource, subresource: '', namespace: '', name: '', resourceRequest: true, path: '', ...o };
}
function nonResource(u: UserInfo, verb: string, path: string): RequestAttributes {
  return { user: u, verb, apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '', resourceRequest: false, path };
}
async function allowed(z: RbacAuthorizer, a: RequestAttributes): Promise<boolean> {
  return (await z.authorize(a)).allowed;
}

const alice = user('alice');
const bob = user('bob', ['dev']);
const saUser = user('system:serviceaccount:ns1:robot', ['system:serviceaccounts', 'system:serviceaccounts:ns1']);

function fixture(): { src: MemorySource; z: RbacAuthorizer } {
  const src = new MemorySource();
  src.crs.push(
    cr('pod-reader', [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] }]),
    cr('log-reader', [{ verbs: ['get'], apiGroups: [''], resources: ['pods/log'] }]),
    cr('deploy-scaler', [{ verbs: ['update', 'patch'], apiGroups: ['apps'], resources: ['*/scale'] }]),
    cr('one-cm', [{ verbs: ['get', 'update'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['app-config'] }]),
    cr('everything-apps', [{ verbs: ['*'], apiGroups: ['apps'], resources: ['*'] }]),
    cr('health', [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/logs/*'] }]),
    cr('node-reader', [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['nodes'] }]),
  );
  src.crbs.push(
    crb('alice-nodes', 'node-reader', [userS('alice')]),
    crb('dev-health', 'health', [groupS('dev')]),
    crb('robot-apps', 'everything-apps', [saS('robot', 'ns1')]),
  );
  src.rs.push(
    role('ns1', 'secret-writer', [{ verbs: ['create', 'delete'], apiGroups: [''], resources: ['secrets'] }, { verbs: ['get'], nonResourceURLs: ['/metrics'] }]),
  );
  src.rbs.push(
    rb('ns1', 'alice-pods', 'ClusterRole', 'pod-reader', [userS('alice')]),
    rb('ns1', 'alice-secrets', 'Role', 'secret-writer', [userS('alice')]),
    rb('ns1', 'bob-logs', 'ClusterRole', 'log-reader', [groupS('dev')]),
    rb('ns1', 'bob-cm', 'ClusterRole', 'one-cm', [userS('bob')]),
    rb('ns2', 'robot-pods', 'ClusterRole', 'pod-reader', [saS('robot', 'ns1')]),
    rb('ns1', 'robot-scale', 'ClusterRole', 'deploy-scaler', [saS('robot')]),
    rb('ns1', 'dangling', 'Role', 'missing-role', [userS('carol')]),
  );
  return { src, z: new RbacAuthorizer(src) };
}

test('a RoleBinding to a ClusterRole grants its rules in that namespace only', async () => {
  const { z } = fixture();
  assert.ok(await allowed(z, req(alice, 'list', 'pods', { namespace: 'ns1' })));
  assert.ok(await allowed(z, req(alice, 'get', 'pods', { namespace: 'ns1', name: 'p' })));
  assert.not.ok(await allowed(z, req(alice, 'list', 'pods', { namespace: 'ns2' })));
  assert.not.ok(await allowed(z, req(alice, 'list', 'pods')), 'not across all namespaces');
  assert.not.ok(await allowed(z, req(alice, 'delete', 'pods', { namespace: 'ns1', name: 'p' })), 'verb');
  assert.not.ok(await allowed(z, req(alice, 'list', 'pods', { namespace: 'ns1', apiGroup: 'apps' })), 'group');
});

test('a ClusterRoleBinding grants everywhere, cluster-scoped resources included', async () => {
  const { z } = fixture();
  assert.ok(await allowed(z, req(alice, 'list', 'nodes')));
  assert.ok(await allowed(z, req(alice, 'get', 'nodes', { name: 'n1' })));
  assert.not.ok(await allowed(z, req(alice, 'delete', 'nodes', { name: 'n1' })));
  assert.not.ok(await allowed(z, req(bob, 'list', 'nodes')));
});

test('a Role grants only through a RoleBinding of its namespace', async () => {
  const { z } = fixture();
  assert.ok(await allowed(z, req(alice, 'create', 'secrets', { namespace: 'ns1' })));
  assert.not.ok(await allowed(z, req(alice, 'get', 'secrets', { namespace: 'ns1', name: 's' })));
  assert.not.ok(await allowed(z, req(alice, 'create', 'secrets', { namespace: 'ns2' })));
  // Non-resource rules in a Role mean nothing.
  assert.not.ok(await allowed(z, nonResource(alice, 'get', '/metrics')));
});

test('subresources: pods does not cover pods/log; pods/log does not cover pods; */scale covers any scale', async () => {
  const { z } = fixture();
  assert.ok(await allowed(z, req(bob, 'get', 'pods', { namespace: 'ns1', name: 'p', subresource: 'log' })));
  assert.not.ok(await allowed(z, req(bob, 'get', 'pods', { namespace: 'ns1', name: 'p' })));
  assert.not.ok(await allowed(z, req(alice, 'get', 'pods', { namespace: 'ns1', name: 'p', subresource: 'log' })));
  assert.not.ok(await allowed(z, req(alice, 'get', 'pods', { namespace: 'ns1', name: 'p', subresource: 'status' })));
  const scale = (resource: string) => req(saUser, 'patch', resource, { namespace: 'ns1', apiGroup: 'apps', name: 'd', subresource: 'scale' });
  assert.ok(await allowed(z, scale('deployments')));
  assert.ok(await allowed(z, scale('replicasets')));
  assert.ok(await allowed(z, req(saUser, 'delete', 'deployments', { namespace: 'ns9', apiGroup: 'apps', name: 'd', subresource: 'status' })), 'resources * covers subresources');
});

test('resourceNames limit to named objects; a list or a nameless create is not covered', async () => {
  const { z } = fixture();
  assert.ok(await allowed(z, req(bob, 'get', 'configmaps', { namespace: 'ns1', name: 'app-config' })));
  assert.ok(await allowed(z, req(bob, 'update', 'configmaps', { namespace: 'ns1', name: 'app-config' })));
  assert.not.ok(await allowed(z, req(bob, 'get', 'configmaps', { namespace: 'ns1', name: 'other' })));
  assert.not.ok(await allowed(z, req(bob, 'get', 'configmaps', { namespace: 'ns1' })));
});

test('ServiceAccount subjects: explicit namespace, or the binding namespace when omitted; groups of service accounts', async () => {
  const { src, z } = fixture();
  assert.ok(await allowed(z, req(saUser, 'list', 'pods', { namespace: 'ns2' })));
  assert.ok(await allowed(z, req(saUser, 'update', 'deployments', { namespace: 'ns1', apiGroup: 'apps', name: 'd', subresource: 'scale' })));
  const other = user('system:serviceaccount:ns2:robot', ['system:serviceaccounts', 'system:serviceaccounts:ns2']);
  assert.not.ok(await allowed(z, req(other, 'list', 'pods', { namespace: 'ns2' })));
  assert.not.ok(await allowed(z, req(other, 'get', 'deployments', { namespace: 'ns1', apiGroup: 'apps', name: 'd' })));
  // A ServiceAccount subject without a namespace in a ClusterRoleBinding matches nobody.
  src.crbs.push(crb('bad-sa', 'pod-reader', [saS('robot')]));
  assert.not.ok(await allowed(z, req(other, 'list', 'pods', { namespace: 'x' })));
  src.crbs.push(crb('all-sa-ns2', 'pod-reader', [groupS('system:serviceaccounts:ns2')]));
  assert.ok(await allowed(z, req(other, 'list', 'pods', { namespace: 'x' })));
  assert.not.ok(await allowed(z, req(saUser, 'list', 'pods', { namespace: 'x' })));
});

test('non-resource URLs: exact, trailing-* prefix, verb; only via ClusterRoleBindings', async () => {
  const { src, z } = fixture();
  assert.ok(await allowed(z, nonResource(bob, 'get', '/healthz')));
  assert.not.ok(await allowed(z, nonResource(bob, 'get', '/healthz/etcd')));
  assert.ok(await allowed(z, nonResource(bob, 'get', '/logs/kube.log')));
  assert.ok(await allowed(z, nonResource(bob, 'get', '/logs/')));
  assert.not.ok(await allowed(z, nonResource(bob, 'get', '/logs')));
  assert.not.ok(await allowed(z, nonResource(bob, 'post', '/healthz')));
  assert.not.ok(await allowed(z, nonResource(alice, 'get', '/healthz')));
  src.rbs.push(rb('ns1', 'bob-health', 'ClusterRole', 'health', [userS('carol')]));
  assert.not.ok(await allowed(z, nonResource(user('carol'), 'get', '/healthz')));
  // A resource rule never covers a path and the other way round.
  assert.not.ok(await allowed(z, req(bob, 'get', 'healthz')));
});

test('wildcards in verbs, groups and resources', async () => {
  const src = new MemorySource();
  src.crs.push(cr('all', [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }]));
  src.crbs.push(crb('root', 'all', [userS('root')]));
  const z = new RbacAuthorizer(src);
  const root = user('root');
  assert.ok(await allowed(z, req(root, 'deletecollection', 'widgets', { apiGroup: 'example.com', namespace: 'x' })));
  assert.ok(await allowed(z, req(root, 'escalate', 'clusterroles', { apiGroup: g, name: 'r' })));
  assert.ok(await allowed(z, req(root, 'get', 'pods', { namespace: 'x', name: 'p', subresource: 'exec' })));
  assert.not.ok(await allowed(z, nonResource(root, 'get', '/healthz')), 'resources * is not nonResourceURLs *');
});

test('system:masters is always allowed, with no RBAC objects at all', async () => {
  const z = new RbacAuthorizer(new MemorySource());
  const admin = user('admin', ['system:masters']);
  assert.ok(await allowed(z, req(admin, 'delete', 'namespaces', { name: 'kube-system' })));
  assert.ok(await allowed(z, nonResource(admin, 'get', '/anything')));
  assert.not.ok(await allowed(z, req(user('admin'), 'get', 'pods', { namespace: 'x' })), 'the name admin alone means nothing');
});

test('aggregation: a ClusterRole carries the rules of the roles its selector matches, transitively, cycles cut', async () => {
  const src = new MemorySource();
  src.crs.push(
    cr('monitoring', [], undefined, { 'agg/monitoring': 'true' }),
    cr('mon-pods', [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }], { 'agg/monitoring': 'true' }),
    cr('mon-nested', [], { 'agg/monitoring': 'true' }, { 'agg/nested': 'true' }),
    cr('mon-nodes', [{ verbs: ['get'], apiGroups: [''], resources: ['nodes'] }], { 'agg/nested': 'true', 'agg/monitoring': 'true' }),
    cr('loop', [], { 'agg/loop': 'true' }, { 'agg/loop': 'true' }),
  );
  src.crbs.push(crb('m', 'monitoring', [userS('mo')]), crb('l', 'loop', [userS('mo')]));
  const z = new RbacAuthorizer(src);
  const mo = user('mo');
  assert.ok(await allowed(z, req(mo, 'get', 'pods', { namespace: 'a', name: 'p' })));
  assert.ok(await allowed(z, req(mo, 'get', 'nodes', { name: 'n' })));
  assert.not.ok(await allowed(z, req(mo, 'list', 'nodes')));
});

test('denial messages and reasons are worded as Kubernetes words them', async () => {
  const { z } = fixture();
  const a = req(alice, 'list', 'pods', { namespace: 'ns2' });
  const d = await z.authorize(a);
  assert.equal(d, { allowed: false, reason: '' });
  assert.is(forbiddenMessage(a), 'User "alice" cannot list resource "pods" in API group "" in the namespace "ns2"');
  const e = forbiddenError(a, d.reason);
  assert.is(e.code, 403);
  assert.is(e.reason, 'Forbidden');
  assert.is(e.message, 'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "ns2"');
  const sub = req(alice, 'get', 'pods', { namespace: 'ns1', name: 'web', subresource: 'log' });
  assert.is(forbiddenError(sub, '').message, 'pods "web" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "ns1"');
  const cluster = req(bob, 'delete', 'deployments', { apiGroup: 'apps' });
  assert.is(forbiddenError(cluster, '').message, 'deployments.apps is forbidden: User "bob" cannot delete resource "deployments" in API group "apps" at the cluster scope');
  const path = nonResource(alice, 'get', '/metrics');
  assert.is(forbiddenError(path, '').message, 'forbidden: User "alice" cannot get path "/metrics"');
  // A dangling role reference is reported in the reason.
  const carol = await z.authorize(req(user('carol'), 'get', 'pods', { namespace: 'ns1', name: 'p' }));
  assert.equal(carol, { allowed: false, reason: 'RBAC: role.rbac.authorization.k8s.io "missing-role" not found' });
  assert.is(forbiddenError(req(user('carol'), 'get', 'pods', { namespace: 'ns1', name: 'p' }), carol.reason).message,
    'pods "p" is forbidden: User "carol" cannot get resource "pods" in API group "" in the namespace "ns1": RBAC: role.rbac.authorization.k8s.io "missing-role" not found');
  const ok = await z.authorize(req(alice, 'list', 'pods', { namespace: 'ns1' }));
  assert.is(ok.reason, 'RBAC: allowed by RoleBinding "ns1/alice-pods" of ClusterRole "pod-reader" to User "alice"');
  assert.is((await z.authorize(req(alice, 'list', 'nodes'))).reason, 'RBAC: allowed by ClusterRoleBinding "alice-nodes" of ClusterRole "node-reader" to User "alice"');
});

test('rulesFor lists the rules that apply in a namespace', () => {
  const { z } = fixture();
  const r = z.rulesFor(alice, 'ns1');
  assert.ok(r.resourceRules.some((x) => x.resources.includes('pods') && x.verbs.includes('list')));
  assert.ok(r.resourceRules.some((x) => x.resources.includes('secrets')));
  assert.ok(r.resourceRules.some((x) => x.resources.includes('nodes')));
  assert.is(r.nonResourceRules.length, 0);
  assert.not.ok(r.incomplete);
  assert.not.ok(z.rulesFor(alice, 'ns2').resourceRules.some((x) => x.resources.includes('pods')));
  assert.equal(z.rulesFor(bob, '').nonResourceRules, [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/logs/*'] }]);
  const carol = z.rulesFor(user('carol'), 'ns1');
  assert.ok(carol.incomplete);
  assert.match(carol.evaluationError ?? '', /missing-role/);
  assert.equal(z.rulesFor(user('root', ['system:masters']), 'x').resourceRules[0], { verbs: ['*'], apiGroups: ['*'], resources: ['*'], resourceNames: [] });
});

test('union authorizer: first allow wins, reasons are joined', async () => {
  const { z } = fixture();
  const no = { authorize: async () => ({ allowed: false, reason: 'webhook says no' }) };
  const u = new UnionAuthorizer([no, z]);
  assert.ok((await u.authorize(req(alice, 'list', 'nodes'))).allowed);
  assert.equal(await u.authorize(req(user('carol'), 'get', 'pods', { namespace: 'ns1', name: 'p' })), { allowed: false, reason: 'webhook says no, RBAC: role.rbac.authorization.k8s.io "missing-role" not found' });
});

function bootstrapAuthorizer(): { src: MemorySource; z: RbacAuthorizer } {
  const src = new MemorySource();
  const b = bootstrapRbac();
  src.crs = b.clusterRoles;
  src.crbs = b.clusterRoleBindings;
  return { src, z: new RbacAuthorizer(src) };
}

test('bootstrap: the default roles and bindings exist with the Kubernetes labels', () => {
  const b = bootstrapRbac();
  const names = b.clusterRoles.map((r) => r.metadata!.name);
  for (const n of ['cluster-admin', 'admin', 'edit', 'view', 'system:discovery', 'system:basic-user', 'system:public-info-viewer', 'system:aggregate-to-view']) assert.ok(names.includes(n), n);
  for (const r of b.clusterRoles) {
    assert.is(r.metadata?.labels?.['kubernetes.io/bootstrapping'], 'rbac-defaults');
    assert.is(r.metadata?.annotations?.['rbac.authorization.kubernetes.io/autoupdate'], 'true');
  }
  const binding = (n: string) => b.clusterRoleBindings.find((x) => x.metadata?.name === n)!;
  assert.equal(binding('cluster-admin').subjects, [{ apiGroup: g, kind: 'Group', name: 'system:masters' }]);
  assert.equal(binding('system:public-info-viewer').subjects?.map((s) => s.name), ['system:authenticated', 'system:unauthenticated']);
  assert.equal(binding('system:discovery').subjects?.map((s) => s.name), ['system:authenticated']);
  assert.equal(binding('system:basic-user').subjects?.map((s) => s.name), ['system:authenticated']);
  // admin/edit/view are stored with the aggregated rules filled in, and no duplicates.
  const view = b.clusterRoles.find((r) => r.metadata?.name === 'view')!;
  assert.ok(view.aggregationRule);
  assert.ok((view.rules ?? []).length > 5);
  const admin = b.clusterRoles.find((r) => r.metadata?.name === 'admin')!;
  assert.is(new Set(admin.rules!.map((r) => JSON.stringify(r))).size, admin.rules!.length);
  // Fresh objects each call: callers may mutate them.
  b.clusterRoles[0]!.rules = [];
  assert.ok(bootstrapRbac().clusterRoles[0]!.rules!.length > 0);
});

test('bootstrap: what anonymous, authenticated, view, edit, admin and cluster-admin users may do', async () => {
  const { src, z } = bootstrapAuthorizer();
  const anon: UserInfo = { username: 'system:anonymous', groups: ['system:unauthenticated'] };
  assert.ok(await allowed(z, nonResource(anon, 'get', '/version')));
  assert.ok(await allowed(z, nonResource(anon, 'get', '/healthz')));
  assert.not.ok(await allowed(z, nonResource(anon, 'get', '/api')));
  assert.not.ok(await allowed(z, req(anon, 'list', 'namespaces')));
  const dan = user('dan');
  assert.ok(await allowed(z, nonResource(dan, 'get', '/apis/apps/v1')));
  assert.ok(await allowed(z, nonResource(dan, 'get', '/openapi/v3/apis/apps/v1')));
  assert.ok(await allowed(z, req(dan, 'create', 'selfsubjectaccessreviews', { apiGroup: 'authorization.k8s.io' })));
  assert.ok(await allowed(z, req(dan, 'create', 'selfsubjectrulesreviews', { apiGroup: 'authorization.k8s.io' })));
  assert.not.ok(await allowed(z, req(dan, 'list', 'pods', { namespace: 'default' })));
  assert.not.ok(await allowed(z, nonResource(dan, 'get', '/metrics')));

  src.rbs.push(
    rb('team', 'v', 'ClusterRole', 'view', [userS('viewer')]),
    rb('team', 'e', 'ClusterRole', 'edit', [userS('editor')]),
    rb('team', 'a', 'ClusterRole', 'admin', [userS('owner')]),
  );
  const viewer = user('viewer');
  const editor = user('editor');
  const owner = user('owner');
  const inTeam = (o: Partial<RequestAttributes>) => ({ namespace: 'team', ...o });
  assert.ok(await allowed(z, req(viewer, 'list', 'pods', inTeam({}))));
  assert.ok(await allowed(z, req(viewer, 'get', 'pods', inTeam({ name: 'p', subresource: 'log' }))));
  assert.ok(await allowed(z, req(viewer, 'watch', 'deployments', inTeam({ apiGroup: 'apps' }))));
  assert.not.ok(await allowed(z, req(viewer, 'get', 'secrets', inTeam({ name: 's' }))), 'view does not read secrets');
  assert.not.ok(await allowed(z, req(viewer, 'create', 'pods', inTeam({}))));
  assert.not.ok(await allowed(z, req(viewer, 'list', 'pods', { namespace: 'other' })));
  assert.ok(await allowed(z, req(editor, 'create', 'pods', inTeam({}))));
  assert.ok(await allowed(z, req(editor, 'get', 'secrets', inTeam({ name: 's' }))));
  assert.ok(await allowed(z, req(editor, 'list', 'pods', inTeam({}))), 'edit includes view');
  assert.ok(await allowed(z, req(editor, 'patch', 'deployments', inTeam({ apiGroup: 'apps', name: 'd', subresource: 'scale' }))));
  assert.ok(await allowed(z, req(editor, 'create', 'serviceaccounts', inTeam({ name: 'sa', subresource: 'token' }))));
  assert.not.ok(await allowed(z, req(editor, 'create', 'rolebindings', inTeam({ apiGroup: g }))), 'edit cannot grant');
  assert.ok(await allowed(z, req(owner, 'create', 'rolebindings', inTeam({ apiGroup: g }))));
  assert.ok(await allowed(z, req(owner, 'delete', 'pods', inTeam({ name: 'p' }))), 'admin includes edit');
  assert.ok(await allowed(z, req(owner, 'get', 'configmaps', inTeam({ name: 'c' }))), 'admin includes view');
  assert.not.ok(await allowed(z, req(owner, 'delete', 'namespaces', { name: 'team' })), 'namespace admin cannot delete the namespace');
  assert.not.ok(await allowed(z, req(owner, 'list', 'nodes')));

  src.crbs.push(crb('root', 'cluster-admin', [userS('root')]));
  const root = user('root');
  assert.ok(await allowed(z, req(root, 'delete', 'nodes', { name: 'n' })));
  assert.ok(await allowed(z, nonResource(root, 'get', '/metrics')));
  assert.ok(await allowed(z, req(user('m', ['system:masters']), 'get', 'secrets', { namespace: 'kube-system', name: 's' })));
});

test('role changes take effect on the next request: added, replaced and removed roles, in place or as new arrays', async () => {
  const src = new MemorySource();
  src.crbs.push(crb('b', 'r', [userS('u')]));
  const z = new RbacAuthorizer(src);
  const u = user('u');
  const get = req(u, 'get', 'pods', { namespace: 'x', name: 'p' });
  assert.not.ok(await allowed(z, get));
  src.crs.push(cr('r', [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }]));
  assert.ok(await allowed(z, get), 'added in place');
  src.crs[0] = cr('r', [{ verbs: ['list'], apiGroups: [''], resources: ['pods'] }]);
  assert.not.ok(await allowed(z, get), 'replaced in place');
  src.crs = [cr('r', [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }])];
  assert.ok(await allowed(z, get), 'new array');
  src.crs.pop();
  assert.not.ok(await allowed(z, get), 'removed in place');
  // Aggregation follows label changes of the aggregated roles.
  src.crs = [cr('r', [], undefined, { agg: 'yes' }), cr('part', [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }], { agg: 'no' })];
  assert.not.ok(await allowed(z, get));
  src.crs[1] = cr('part', [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }], { agg: 'yes' });
  assert.ok(await allowed(z, get));
});

test('bootstrap: monitoring, issuer discovery and the scheduler', async () => {
  const { z } = bootstrapAuthorizer();
  assert.ok(await allowed(z, nonResource(user('prom', ['system:monitoring']), 'get', '/metrics')));
  assert.ok(await allowed(z, nonResource(user('prom', ['system:monitoring']), 'get', '/readyz/etcd')));
  assert.not.ok(await allowed(z, nonResource(user('dan'), 'get', '/metrics')));
  const sa = user('system:serviceaccount:a:b', ['system:serviceaccounts', 'system:serviceaccounts:a']);
  assert.ok(await allowed(z, nonResource(sa, 'get', '/openid/v1/jwks')));
  assert.ok(await allowed(z, nonResource(sa, 'get', '/.well-known/openid-configuration')));
  const sched = user('system:kube-scheduler');
  assert.ok(await allowed(z, req(sched, 'create', 'pods', { namespace: 'x', name: 'p', subresource: 'binding' })));
  assert.ok(await allowed(z, req(sched, 'watch', 'pods')));
  assert.ok(await allowed(z, req(sched, 'update', 'pods', { namespace: 'x', name: 'p', subresource: 'status' })));
  assert.ok(await allowed(z, req(sched, 'list', 'nodes')));
  assert.ok(await allowed(z, req(sched, 'update', 'leases', { apiGroup: 'coordination.k8s.io', namespace: 'kube-system', name: 'kube-scheduler' })));
  assert.not.ok(await allowed(z, req(sched, 'update', 'leases', { apiGroup: 'coordination.k8s.io', namespace: 'kube-system', name: 'kube-controller-manager' })));
  assert.not.ok(await allowed(z, req(sched, 'create', 'pods', { namespace: 'x' })));
  assert.not.ok(await allowed(z, req(sched, 'get', 'secrets', { namespace: 'x', name: 's' })));
});

test('self reviews: rules review body for kubectl auth can-i --list, whoami body', () => {
  const { z } = fixture();
  const rr = selfSubjectRulesReview(z, alice, 'ns1') as any;
  assert.is(rr.kind, 'SelfSubjectRulesReview');
  assert.is(rr.apiVersion, 'authorization.k8s.io/v1');
  assert.equal(rr.spec, { namespace: 'ns1' });
  assert.ok(rr.status.resourceRules.some((x: any) => x.resources.includes('pods') && x.resourceNames === undefined));
  assert.is(rr.status.incomplete, false);
  assert.is(rr.status.evaluationError, undefined);
  assert.match((selfSubjectRulesReview(z, user('carol'), 'ns1') as any).status.evaluationError, /missing-role/);
  assert.equal(selfSubjectReview({ username: 'u', uid: 'x', groups: ['g'], extra: { k: ['v'] } }), {
    kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null },
    status: { userInfo: { username: 'u', uid: 'x', groups: ['g'], extra: { k: ['v'] } } },
  });
  assert.equal((selfSubjectReview({ username: 'u', groups: [] }) as any).status.userInfo, { username: 'u', groups: [] });
});

test.run();
