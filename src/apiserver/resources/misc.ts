// The smaller resources: serviceaccounts, events, endpoints, endpointslices,
// leases, priorityclasses, the RBAC kinds, selfsubjectaccessreviews (virtual)
// and apiservices.
import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import { age, ageColumn, humanAge, nameColumn, oneOf, required } from './common.ts';
import { fieldCause, type KObject, type ResourceDef } from './types.ts';

export const serviceaccounts: ResourceDef = {
  group: '', version: 'v1', resource: 'serviceaccounts', kind: 'ServiceAccount', singular: 'serviceaccount', shortNames: ['sa'],
  namespaced: true, extraSubresources: ['token'], schemaName: 'io.k8s.api.core.v1.ServiceAccount',
  table: {
    columns: [nameColumn, { name: 'Secrets', type: 'string', description: 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.' }, ageColumn],
    row: (o, now) => [o.metadata?.name, String((o.secrets ?? []).length), age(o, now)],
  },
};

export const events: ResourceDef = {
  group: '', version: 'v1', resource: 'events', kind: 'Event', singular: 'event', shortNames: ['ev'],
  namespaced: true, schemaName: 'io.k8s.api.core.v1.Event', nameRule: 'path',
  fields: {
    'involvedObject.kind': (o) => o.involvedObject?.kind ?? '',
    'involvedObject.namespace': (o) => o.involvedObject?.namespace ?? '',
    'involvedObject.name': (o) => o.involvedObject?.name ?? '',
    'involvedObject.uid': (o) => o.involvedObject?.uid ?? '',
    'involvedObject.apiVersion': (o) => o.involvedObject?.apiVersion ?? '',
    'involvedObject.resourceVersion': (o) => o.involvedObject?.resourceVersion ?? '',
    'involvedObject.fieldPath': (o) => o.involvedObject?.fieldPath ?? '',
    reason: (o) => o.reason ?? '',
    reportingComponent: (o) => o.reportingComponent ?? '',
    source: (o) => o.source?.component ?? '',
    type: (o) => o.type ?? '',
  },
  validate(o) {
    const c: StatusCause[] = [];
    required(o, 'involvedObject', c);
    oneOf(o, 'type', ['Normal', 'Warning'], c);
    return c;
  },
  table: {
    columns: [
      { name: 'Last Seen', type: 'string', description: 'The time at which the most recent occurrence of this event was recorded.' },
      { name: 'Type', type: 'string', description: 'Type of this event (Normal, Warning), new types could be added in the future.' },
      { name: 'Reason', type: 'string', description: 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.' },
      { name: 'Object', type: 'string', description: 'The object that this event is about.' },
      { name: 'Message', type: 'string', description: 'A human-readable description of the status of this operation.' },
    ],
    row: (o, now) => [humanAge(o.lastTimestamp ?? o.eventTime ?? o.metadata?.creationTimestamp, now), o.type ?? '', o.reason ?? '',
      `${String(o.involvedObject?.kind ?? '').toLowerCase()}/${o.involvedObject?.name ?? ''}`, o.message ?? ''],
  },
};

export const endpoints: ResourceDef = {
  group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints', singular: 'endpoints', shortNames: ['ep'],
  namespaced: true, storagePrefix: 'services/endpoints', schemaName: 'io.k8s.api.core.v1.Endpoints', nameRule: 'label1035',
  table: {
    columns: [nameColumn, { name: 'Endpoints', type: 'string', description: 'Endpoints is the list of endpoints.' }, ageColumn],
    row: (o, now) => {
      const eps: string[] = [];
      for (const s of o.subsets ?? []) for (const a of s.addresses ?? []) for (const p of s.ports ?? [{}]) eps.push(p.port ? `${a.ip}:${p.port}` : a.ip);
      return [o.metadata?.name, eps.length ? (eps.length > 3 ? `${eps.slice(0, 3).join(',')} + ${eps.length - 3} more...` : eps.join(',')) : '<none>', age(o, now)];
    },
  },
};

export const endpointslices: ResourceDef = {
  group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice', singular: 'endpointslice',
  namespaced: true, schemaName: 'io.k8s.api.discovery.v1.EndpointSlice',
  fields: { addressType: (o) => o.addressType ?? '' },
  validate(o) { const c: StatusCause[] = []; required(o, 'addressType', c); oneOf(o, 'addressType', ['IPv4', 'IPv6', 'FQDN'], c); return c; },
  table: {
    columns: [nameColumn,
      { name: 'AddressType', type: 'string', description: 'addressType specifies the type of address carried by this EndpointSlice.' },
      { name: 'Ports', type: 'string', description: 'ports specifies the list of network ports exposed by each endpoint in this slice.' },
      { name: 'Endpoints', type: 'string', description: 'endpoints is a list of unique endpoints in this slice.' }, ageColumn],
    row: (o, now) => {
      const ports = (o.ports ?? []).map((p: KObject) => p.port).join(',') || '<unset>';
      const addrs = (o.endpoints ?? []).flatMap((e: KObject) => e.addresses ?? []);
      return [o.metadata?.name, o.addressType, ports, addrs.length ? addrs.slice(0, 3).join(',') + (addrs.length > 3 ? ` + ${addrs.length - 3} more...` : '') : '<unset>', age(o, now)];
    },
  },
};

export const leases: ResourceDef = {
  group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', singular: 'lease',
  namespaced: true, schemaName: 'io.k8s.api.coordination.v1.Lease',
  validate(o) {
    const c: StatusCause[] = [];
    const d = o.spec?.leaseDurationSeconds;
    if (d !== undefined && (!Number.isInteger(d) || d <= 0)) c.push(fieldCause('spec.leaseDurationSeconds', 'Invalid value: must be greater than 0'));
    return c;
  },
  table: {
    columns: [nameColumn, { name: 'Holder', type: 'string', description: 'holderIdentity contains the identity of the holder of a current lease.' }, ageColumn],
    row: (o, now) => [o.metadata?.name, o.spec?.holderIdentity ?? '', age(o, now)],
  },
};

export const priorityclasses: ResourceDef = {
  group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses', kind: 'PriorityClass', singular: 'priorityclass', shortNames: ['pc'],
  namespaced: false, schemaName: 'io.k8s.api.scheduling.v1.PriorityClass',
  defaults(o) { o.preemptionPolicy ??= 'PreemptLowerPriority'; },
  validate(o) {
    const c: StatusCause[] = [];
    if (!Number.isInteger(o.value)) c.push(fieldCause('value', 'Required value', 'FieldValueRequired'));
    else if (o.value > 1_000_000_000 && !String(o.metadata?.name).startsWith('system-')) c.push(fieldCause('value', 'Forbidden: maximum allowed value of a user defined priority is 1000000000', 'FieldValueForbidden'));
    oneOf(o, 'preemptionPolicy', ['PreemptLowerPriority', 'Never'], c);
    return c;
  },
  validateUpdate(o, old) { return o.value !== old.value ? [fieldCause('value', 'Forbidden: may not be changed in an update.', 'FieldValueForbidden')] : []; },
  table: {
    columns: [nameColumn, { name: 'Value', type: 'integer', description: 'value represents the integer value of this priority class.' },
      { name: 'Global-Default', type: 'boolean', description: 'globalDefault specifies whether this PriorityClass should be considered as the default priority.' }, ageColumn,
      { name: 'PreemptionPolicy', type: 'string', description: 'preemptionPolicy is the Policy for preempting pods with lower priority.' }],
    row: (o, now) => [o.metadata?.name, o.value, o.globalDefault ?? false, age(o, now), o.preemptionPolicy ?? 'PreemptLowerPriority'],
  },
};

function validateRules(o: KObject): StatusCause[] {
  const c: StatusCause[] = [];
  (o.rules ?? []).forEach((r: KObject, i: number) => {
    if (!Array.isArray(r.verbs) || r.verbs.length === 0) c.push(fieldCause(`rules[${i}].verbs`, 'Required value: verbs must contain at least one value', 'FieldValueRequired'));
    if (!r.nonResourceURLs?.length && !r.apiGroups?.length && !r.resourceNames?.length) c.push(fieldCause(`rules[${i}].apiGroups`, 'Required value: resource rules must supply at least one api group', 'FieldValueRequired'));
  });
  return c;
}

function validateBinding(o: KObject): StatusCause[] {
  const c: StatusCause[] = [];
  required(o, 'roleRef.kind', c);
  required(o, 'roleRef.name', c);
  (o.subjects ?? []).forEach((s: KObject, i: number) => oneOf(s, 'kind', ['User', 'Group', 'ServiceAccount'], c) ?? i);
  return c;
}

const roleRefImmutable = (o: KObject, old: KObject): StatusCause[] =>
  JSON.stringify(o.roleRef) !== JSON.stringify(old.roleRef) ? [fieldCause('roleRef', 'Invalid value: cannot change roleRef')] : [];

const createdAt = {
  columns: [nameColumn, { name: 'Created At', type: 'date', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' }],
  row: (o: KObject) => [o.metadata?.name, o.metadata?.creationTimestamp],
} as ResourceDef['table'];

function subjectsOf(o: KObject, kind: string): string {
  return (o.subjects ?? []).filter((s: KObject) => s.kind === kind).map((s: KObject) => (kind === 'ServiceAccount' ? `${s.namespace ?? ''}/${s.name}` : s.name)).join(', ');
}

const bindingTable = {
  columns: [nameColumn, { name: 'Role', type: 'string', description: 'RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.' }, ageColumn,
    { name: 'Users', type: 'string', priority: 1, description: 'Users in the binding' },
    { name: 'Groups', type: 'string', priority: 1, description: 'Groups in the binding' },
    { name: 'ServiceAccounts', type: 'string', priority: 1, description: 'ServiceAccounts in the binding' }],
  row: (o: KObject, now: number) => [o.metadata?.name, `${o.roleRef?.kind}/${o.roleRef?.name}`, age(o, now), subjectsOf(o, 'User'), subjectsOf(o, 'Group'), subjectsOf(o, 'ServiceAccount')],
} as ResourceDef['table'];

const rbac = { group: 'rbac.authorization.k8s.io', version: 'v1', nameRule: 'path' } as const;

export const roles: ResourceDef = { ...rbac, resource: 'roles', kind: 'Role', singular: 'role', namespaced: true, schemaName: 'io.k8s.api.rbac.v1.Role', validate: validateRules, table: createdAt };
export const clusterroles: ResourceDef = { ...rbac, resource: 'clusterroles', kind: 'ClusterRole', singular: 'clusterrole', namespaced: false, schemaName: 'io.k8s.api.rbac.v1.ClusterRole', validate: validateRules, table: createdAt };
export const rolebindings: ResourceDef = { ...rbac, resource: 'rolebindings', kind: 'RoleBinding', singular: 'rolebinding', namespaced: true, schemaName: 'io.k8s.api.rbac.v1.RoleBinding', validate: validateBinding, validateUpdate: roleRefImmutable, table: bindingTable };
export const clusterrolebindings: ResourceDef = { ...rbac, resource: 'clusterrolebindings', kind: 'ClusterRoleBinding', singular: 'clusterrolebinding', namespaced: false, schemaName: 'io.k8s.api.rbac.v1.ClusterRoleBinding', validate: validateBinding, validateUpdate: roleRefImmutable, table: bindingTable };

export const selfsubjectaccessreviews: ResourceDef = {
  group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews', kind: 'SelfSubjectAccessReview', singular: 'selfsubjectaccessreview',
  namespaced: false, virtual: true, verbs: ['create'], schemaName: 'io.k8s.api.authorization.v1.SelfSubjectAccessReview',
};

export const selfsubjectrulesreviews: ResourceDef = {
  group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectrulesreviews', kind: 'SelfSubjectRulesReview', singular: 'selfsubjectrulesreview',
  namespaced: false, virtual: true, verbs: ['create'], schemaName: 'io.k8s.api.authorization.v1.SelfSubjectRulesReview',
};

export const selfsubjectreviews: ResourceDef = {
  group: 'authentication.k8s.io', version: 'v1', resource: 'selfsubjectreviews', kind: 'SelfSubjectReview', singular: 'selfsubjectreview',
  namespaced: false, virtual: true, verbs: ['create'], schemaName: 'io.k8s.api.authentication.v1.SelfSubjectReview',
};

export const apiservices: ResourceDef = {
  group: 'apiregistration.k8s.io', version: 'v1', resource: 'apiservices', kind: 'APIService', singular: 'apiservice',
  namespaced: false, hasStatus: true, storagePrefix: 'apiregistration.k8s.io/apiservices', schemaName: 'io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService', nameRule: 'path',
  validate(o) {
    const c: StatusCause[] = [];
    const want = `${o.spec?.version}.${o.spec?.group}`;
    if (o.spec?.group && o.metadata?.name !== want) c.push(fieldCause('metadata.name', `Invalid value: "${o.metadata?.name}": must be ${want}`));
    required(o, 'spec.version', c);
    return c;
  },
  table: {
    columns: [nameColumn, { name: 'Service', type: 'string', description: 'The reference to the service that hosts this API endpoint.' },
      { name: 'Available', type: 'string', description: 'Whether this service is available.' }, ageColumn],
    row: (o, now) => {
      const av = (o.status?.conditions ?? []).find((x: KObject) => x.type === 'Available');
      return [o.metadata?.name, o.spec?.service ? `${o.spec.service.namespace}/${o.spec.service.name}` : 'Local', av ? (av.status === 'True' ? 'True' : `False (${av.reason})`) : 'Local', age(o, now)];
    },
  },
};
