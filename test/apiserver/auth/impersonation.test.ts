// Impersonation headers: each impersonated part is authorized, the resulting
// identity is what Kubernetes builds, bad headers are 400.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ClusterRole, ClusterRoleBinding } from 'kubernetes-types/rbac/v1.js';
import { impersonate, RbacAuthorizer, type UserInfo } from '../../../src/apiserver/auth/index.ts';
import { isStatusError } from '../../../src/apiserver/errors.ts';

const g = 'rbac.authorization.k8s.io';
const crs: ClusterRole[] = [
  { metadata: { name: 'imp-bob' }, rules: [{ verbs: ['impersonate'], apiGroups: [''], resources: ['users'], resourceNames: ['bob'] }, { verbs: ['impersonate'], apiGroups: [''], resources: ['groups'], resourceNames: ['dev'] }] },
  { metadata: { name: 'imp-all' }, rules: [{ verbs: ['impersonate'], apiGroups: ['', 'authentication.k8s.io'], resources: ['users', 'groups', 'serviceaccounts', 'uids', 'userextras/*', 'userextras/scopes'] }] },
];
const crbs: ClusterRoleBinding[] = [
  { metadata: { name: 'a' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'imp-bob' }, subjects: [{ apiGroup: g, kind: 'User', name: 'alice' }] },
  { metadata: { name: 'b' }, roleRef: { apiGroup: g, kind: 'ClusterRole', name: 'imp-all' }, subjects: [{ apiGroup: g, kind: 'User', name: 'ops' }] },
];
const rbac = new RbacAuthorizer({ clusterRoles: () => crs, clusterRoleBindings: () => crbs, roles: () => [], roleBindings: () => [] });
const alice: UserInfo = { username: 'alice', groups: ['system:authenticated'] };
const ops: UserInfo = { username: 'ops', groups: ['system:authenticated'] };

async function fails(p: Promise<unknown>, code: number, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isStatusError(e) && e.code === code, String(e));
    assert.match(e.message, re);
    return;
  }
  assert.unreachable('accepted');
}

test('no impersonation headers: the user itself', async () => {
  assert.is(await impersonate({ authorization: 'Bearer x' }, alice, rbac), alice);
});

test('allowed impersonation builds the Kubernetes identity', async () => {
  assert.equal(await impersonate({ 'impersonate-user': 'bob' }, alice, rbac), { username: 'bob', groups: ['system:authenticated'] });
  assert.equal(await impersonate({ 'impersonate-user': 'bob', 'impersonate-group': 'dev' }, alice, rbac), { username: 'bob', groups: ['dev', 'system:authenticated'] });
  assert.equal(await impersonate({ 'impersonate-user': 'system:serviceaccount:ns1:robot', 'impersonate-uid': 'u-1', 'impersonate-extra-scopes': ['view', 'edit'], 'impersonate-group': 'a, b' }, ops, rbac), {
    username: 'system:serviceaccount:ns1:robot', uid: 'u-1', groups: ['a', 'b', 'system:serviceaccounts', 'system:serviceaccounts:ns1', 'system:authenticated'], extra: { scopes: ['view', 'edit'] },
  });
  assert.equal((await impersonate({ 'impersonate-user': 'system:anonymous' }, ops, rbac)).groups, ['system:unauthenticated']);
});

test('each part is authorized by name', async () => {
  await fails(impersonate({ 'impersonate-user': 'carol' }, alice, rbac), 403, /^users "carol" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope$/);
  await fails(impersonate({ 'impersonate-user': 'bob', 'impersonate-group': 'system:masters' }, alice, rbac), 403, /groups "system:masters" is forbidden/);
  await fails(impersonate({ 'impersonate-user': 'system:serviceaccount:ns1:robot' }, alice, rbac), 403, /serviceaccounts "robot" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "ns1"/);
  await fails(impersonate({ 'impersonate-user': 'bob', 'impersonate-uid': 'x' }, alice, rbac), 403, /uids.authentication.k8s.io "x" is forbidden/);
  await fails(impersonate({ 'impersonate-user': 'bob', 'impersonate-extra-scopes': 'x' }, alice, rbac), 403, /userextras.authentication.k8s.io "x" is forbidden: User "alice" cannot impersonate resource "userextras\/scopes"/);
});

test('malformed impersonation is a 400', async () => {
  await fails(impersonate({ 'impersonate-group': 'dev' }, ops, rbac), 400, /requires impersonating a user/);
  await fails(impersonate({ 'impersonate-user': ['a', 'b'] as unknown as string }, ops, rbac), 400, /only one impersonate-user/);
  await fails(impersonate({ 'impersonate-user': 'bob', 'impersonate-extra-%zz': 'x' }, ops, rbac), 400, /invalid impersonation header/);
  await fails(impersonate({ 'impersonate-user': 'bob', 'impersonate-other': 'x' }, ops, rbac), 400, /unknown impersonation header/);
  await fails(impersonate({ 'impersonate-user': 'bob', 'impersonate-group': Array.from({ length: 300 }, (_, i) => `g${i}`) as unknown as string }, ops, rbac), 400, /at most 256/);
});

test.run();
