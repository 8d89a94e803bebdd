// The default RBAC objects the server creates on first start, as Kubernetes
// creates them: cluster-admin bound to system:masters; the user-facing roles
// admin, edit and view, built by aggregation from system:aggregate-to-*
// roles (so that extensions can add rules by labelling their own
// ClusterRoles); discovery, basic-user, public-info-viewer, monitoring and
// service-account-issuer-discovery bound to the groups Kubernetes binds them
// to; and system:kube-scheduler for the user of that name (the scheduler's
// client certificate, CN system:kube-scheduler). Every object carries the labels and the
// autoupdate annotation Kubernetes puts on its defaults.
import type { ClusterRole, ClusterRoleBinding, PolicyRule } from 'kubernetes-types/rbac/v1.js';
import { effectiveClusterRoleRules } from './rbac.ts';
import { wellKnown } from './types.ts';

const read = ['get', 'list', 'watch'];
const write = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const readWrite = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const rule = (verbs: string[], apiGroups: string[], resources: string[]): PolicyRule => ({ verbs: [...verbs], apiGroups: [...apiGroups], resources: [...resources] });
const urls = (verbs: string[], nonResourceURLs: string[]): PolicyRule => ({ verbs: [...verbs], nonResourceURLs: [...nonResourceURLs] });

const defaultLabels = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
const defaultAnnotations = { 'rbac.authorization.kubernetes.io/autoupdate': 'true' };

function clusterRole(name: string, rules: PolicyRule[], extraLabels: Record<string, string> = {}, aggregateFrom?: string): ClusterRole {
  const r: ClusterRole = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name, labels: { ...defaultLabels, ...extraLabels }, annotations: { ...defaultAnnotations } },
    rules,
  };
  if (aggregateFrom) r.aggregationRule = { clusterRoleSelectors: [{ matchLabels: { [aggregateFrom]: 'true' } }] };
  return r;
}

function binding(name: string, role: string, subjects: { kind: 'Group' | 'User'; name: string }[]): ClusterRoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: { ...defaultLabels }, annotations: { ...defaultAnnotations } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: subjects.map((s) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: s.kind, name: s.name })),
  };
}

function groupBinding(name: string, role: string, groups: string[]): ClusterRoleBinding {
  return binding(name, role, groups.map((g) => ({ kind: 'Group', name: g })));
}

/** What the scheduler reads and writes: pods and their bindings, nodes, the objects its plugins consult, its leader lease and events. */
function schedulerRules(): PolicyRule[] {
  return [
    rule(['create', 'patch', 'update'], ['', 'events.k8s.io'], ['events']),
    rule(['create'], ['coordination.k8s.io'], ['leases']),
    { verbs: ['get', 'update'], apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['kube-scheduler'] },
    rule(['create'], [''], ['endpoints']),
    { verbs: ['get', 'update'], apiGroups: [''], resources: ['endpoints'], resourceNames: ['kube-scheduler'] },
    rule(read, [''], ['nodes']),
    rule(['delete', 'get', 'list', 'watch'], [''], ['pods']),
    rule(['create'], [''], ['bindings', 'pods/binding']),
    rule(['patch', 'update'], [''], ['pods/status']),
    rule(read, [''], ['replicationcontrollers', 'services', 'namespaces', 'persistentvolumeclaims', 'persistentvolumes']),
    rule(read, ['apps', 'extensions'], ['replicasets']),
    rule(read, ['apps'], ['statefulsets']),
    rule(read, ['policy'], ['poddisruptionbudgets']),
    rule(read, ['storage.k8s.io'], ['storageclasses', 'csinodes', 'csidrivers', 'csistoragecapacities']),
    rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
    rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
    rule(read, [''], ['configmaps']),
  ];
}

const toAdmin = 'rbac.authorization.k8s.io/aggregate-to-admin';
const toEdit = 'rbac.authorization.k8s.io/aggregate-to-edit';
const toView = 'rbac.authorization.k8s.io/aggregate-to-view';

function viewRules(): PolicyRule[] {
  return [
    rule(read, [''], ['configmaps', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'pods', 'replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/status']),
    rule(read, [''], ['bindings', 'events', 'limitranges', 'namespaces/status', 'pods/log', 'pods/status', 'replicationcontrollers/status', 'resourcequotas', 'resourcequotas/status']),
    rule(read, [''], ['namespaces']),
    rule(read, ['discovery.k8s.io'], ['endpointslices']),
    rule(read, ['apps'], ['controllerrevisions', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status', 'replicasets', 'replicasets/scale', 'replicasets/status', 'statefulsets', 'statefulsets/scale', 'statefulsets/status']),
    rule(read, ['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status']),
    rule(read, ['batch'], ['cronjobs', 'cronjobs/status', 'jobs', 'jobs/status']),
    rule(read, ['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status']),
    rule(read, ['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies']),
    rule(read, ['coordination.k8s.io'], ['leases']),
  ];
}

function editRules(): PolicyRule[] {
  return [
    rule(['impersonate'], [''], ['serviceaccounts']),
    rule(write, [''], ['pods', 'pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy']),
    rule(['create'], [''], ['pods/eviction']),
    rule(write, [''], ['configmaps', 'events', 'persistentvolumeclaims', 'replicationcontrollers', 'replicationcontrollers/scale', 'secrets', 'serviceaccounts', 'services', 'services/proxy']),
    rule(['create'], [''], ['serviceaccounts/token']),
    rule(write, ['apps'], ['daemonsets', 'deployments', 'deployments/rollback', 'deployments/scale', 'replicasets', 'replicasets/scale', 'statefulsets', 'statefulsets/scale']),
    rule(write, ['autoscaling'], ['horizontalpodautoscalers']),
    rule(write, ['batch'], ['cronjobs', 'jobs']),
    rule(write, ['networking.k8s.io'], ['ingresses', 'networkpolicies']),
    rule(write, ['policy'], ['poddisruptionbudgets']),
    rule(write, ['discovery.k8s.io'], ['endpointslices']),
    rule(write, ['coordination.k8s.io'], ['leases']),
    // Reading secrets and the interactive pod subresources is edit, not view.
    rule(read, [''], ['pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'secrets', 'services/proxy']),
  ];
}

function adminRules(): PolicyRule[] {
  return [
    rule(['create'], ['authorization.k8s.io'], ['localsubjectaccessreviews']),
    rule(readWrite, ['rbac.authorization.k8s.io'], ['rolebindings', 'roles']),
  ];
}

export interface BootstrapRbac {
  clusterRoles: ClusterRole[];
  clusterRoleBindings: ClusterRoleBinding[];
}

export function bootstrapRbac(): BootstrapRbac {
  const aggregateSources = [
    clusterRole('system:aggregate-to-admin', adminRules(), { [toAdmin]: 'true' }),
    clusterRole('system:aggregate-to-edit', editRules(), { [toEdit]: 'true', [toAdmin]: 'true' }),
    clusterRole('system:aggregate-to-view', viewRules(), { [toView]: 'true', [toEdit]: 'true', [toAdmin]: 'true' }),
  ];
  const aggregated = [
    clusterRole('admin', [], {}, toAdmin),
    clusterRole('edit', [], { [toAdmin]: 'true' }, toEdit),
    clusterRole('view', [], { [toEdit]: 'true', [toAdmin]: 'true' }, toView),
  ];
  // Stored with their rules filled in, as the aggregation controller of
  // Kubernetes would leave them, so that a reader (kubectl describe) sees them.
  const sources = [...aggregateSources, ...aggregated];
  for (const r of aggregated) r.rules = dedupeRules(effectiveClusterRoleRules(r, sources));

  const clusterRoles: ClusterRole[] = [
    clusterRole('cluster-admin', [rule(['*'], ['*'], ['*']), urls(['*'], ['*'])]),
    ...aggregated,
    ...aggregateSources,
    clusterRole('system:discovery', [urls(['get'], ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'])]),
    clusterRole('system:basic-user', [
      rule(['create'], ['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']),
      rule(['create'], ['authentication.k8s.io'], ['selfsubjectreviews']),
    ]),
    clusterRole('system:public-info-viewer', [urls(['get'], ['/healthz', '/livez', '/readyz', '/version', '/version/'])]),
    clusterRole('system:monitoring', [urls(['get'], ['/healthz', '/healthz/*', '/livez', '/livez/*', '/readyz', '/readyz/*', '/metrics', '/metrics/slis'])]),
    clusterRole('system:service-account-issuer-discovery', [urls(['get'], ['/.well-known/openid-configuration', '/.well-known/openid-configuration/', '/openid/v1/jwks', '/openid/v1/jwks/'])]),
    clusterRole('system:kube-scheduler', schedulerRules()),
  ];
  const clusterRoleBindings: ClusterRoleBinding[] = [
    groupBinding('cluster-admin', 'cluster-admin', [wellKnown.mastersGroup]),
    groupBinding('system:discovery', 'system:discovery', [wellKnown.allAuthenticated]),
    groupBinding('system:basic-user', 'system:basic-user', [wellKnown.allAuthenticated]),
    groupBinding('system:public-info-viewer', 'system:public-info-viewer', [wellKnown.allAuthenticated, wellKnown.allUnauthenticated]),
    groupBinding('system:monitoring', 'system:monitoring', ['system:monitoring']),
    groupBinding('system:service-account-issuer-discovery', 'system:service-account-issuer-discovery', [wellKnown.serviceAccountsGroup]),
    binding('system:kube-scheduler', 'system:kube-scheduler', [{ kind: 'User', name: 'system:kube-scheduler' }]),
  ];
  return { clusterRoles, clusterRoleBindings };
}

function dedupeRules(rules: PolicyRule[]): PolicyRule[] {
  const seen = new Set<string>();
  const out: PolicyRule[] = [];
  for (const r of rules) {
    const key = JSON.stringify(r);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(structuredClone(r));
  }
  return out;
}
