// core/v1 pods: spec is mostly immutable after create, status is its own
// subresource, binding sets spec.nodeName once, and deletion of a pod bound to
// a node is graceful (the node's agent finishes it with grace period 0).
import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import { age, ageColumn, nameColumn } from './common.ts';
import { fieldCause, type KObject, type ResourceDef } from './types.ts';

const restartPolicies = ['Always', 'OnFailure', 'Never'];
const pullPolicies = ['Always', 'IfNotPresent', 'Never'];

function defaultContainer(c: KObject): void {
  if (!c.imagePullPolicy) {
    const img = String(c.image ?? '');
    c.imagePullPolicy = img.endsWith(':latest') || !/:[^/]+$/.test(img) ? 'Always' : 'IfNotPresent';
  }
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  c.resources ??= {};
  for (const p of c.ports ?? []) p.protocol ??= 'TCP';
}

export function defaultPodSpec(spec: KObject): void {
  for (const c of spec.containers ?? []) defaultContainer(c);
  for (const c of spec.initContainers ?? []) defaultContainer(c);
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  spec.enableServiceLinks ??= true;
}

export function validatePodSpec(spec: KObject | undefined, path: string, causes: StatusCause[]): void {
  if (!spec) { causes.push(fieldCause(path, 'Required value', 'FieldValueRequired')); return; }
  const cs: KObject[] = spec.containers ?? [];
  if (!Array.isArray(cs) || cs.length === 0) causes.push(fieldCause(`${path}.containers`, 'Required value', 'FieldValueRequired'));
  const names = new Set<string>();
  cs.forEach((c, i) => {
    const p = `${path}.containers[${i}]`;
    if (!c.name) causes.push(fieldCause(`${p}.name`, 'Required value', 'FieldValueRequired'));
    else if (names.has(c.name)) causes.push(fieldCause(`${p}.name`, `Duplicate value: "${c.name}"`, 'FieldValueDuplicate'));
    else if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(c.name) || c.name.length > 63) causes.push(fieldCause(`${p}.name`, `Invalid value: "${c.name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`));
    names.add(c.name);
    if (!c.image) causes.push(fieldCause(`${p}.image`, 'Required value', 'FieldValueRequired'));
    if (c.imagePullPolicy && !pullPolicies.includes(c.imagePullPolicy)) causes.push(fieldCause(`${p}.imagePullPolicy`, `Unsupported value: "${c.imagePullPolicy}": supported values: "Always", "IfNotPresent", "Never"`, 'FieldValueNotSupported'));
    (c.ports ?? []).forEach((port: KObject, j: number) => {
      const n = port.containerPort;
      if (!Number.isInteger(n) || n < 1 || n > 65535) causes.push(fieldCause(`${p}.ports[${j}].containerPort`, `Invalid value: ${JSON.stringify(n)}: must be between 1 and 65535, inclusive`));
    });
  });
  if (spec.restartPolicy && !restartPolicies.includes(spec.restartPolicy)) causes.push(fieldCause(`${path}.restartPolicy`, `Unsupported value: "${spec.restartPolicy}": supported values: "Always", "OnFailure", "Never"`, 'FieldValueNotSupported'));
}

function podReady(o: KObject): string {
  const statuses: KObject[] = o.status?.containerStatuses ?? [];
  const total = (o.spec?.containers ?? []).length;
  return `${statuses.filter((s) => s.ready).length}/${total}`;
}

function podStatus(o: KObject): string {
  if (o.metadata?.deletionTimestamp) return 'Terminating';
  let reason: string = o.status?.reason ?? o.status?.phase ?? 'Pending';
  for (const s of o.status?.containerStatuses ?? []) {
    if (s.state?.waiting?.reason) reason = s.state.waiting.reason;
    else if (s.state?.terminated?.reason) reason = s.state.terminated.reason;
  }
  return reason;
}

export const pods: ResourceDef = {
  group: '', version: 'v1', resource: 'pods', kind: 'Pod', singular: 'pod', shortNames: ['po'], categories: ['all'],
  namespaced: true, hasStatus: true, extraSubresources: ['binding', 'eviction'], schemaName: 'io.k8s.api.core.v1.Pod',
  fields: {
    'spec.nodeName': (o) => o.spec?.nodeName ?? '',
    'spec.schedulerName': (o) => o.spec?.schedulerName ?? '',
    'spec.serviceAccountName': (o) => o.spec?.serviceAccountName ?? '',
    'spec.hostNetwork': (o) => String(o.spec?.hostNetwork ?? false),
    'spec.restartPolicy': (o) => o.spec?.restartPolicy ?? '',
    'status.phase': (o) => o.status?.phase ?? '',
    'status.podIP': (o) => o.status?.podIP ?? '',
    'status.nominatedNodeName': (o) => o.status?.nominatedNodeName ?? '',
  },
  defaults(o) { if (o.spec) defaultPodSpec(o.spec); },
  prepareForCreate(o) {
    o.status = { phase: 'Pending', qosClass: 'BestEffort' };
  },
  validate(o) {
    const causes: StatusCause[] = [];
    validatePodSpec(o.spec, 'spec', causes);
    return causes;
  },
  validateUpdate(o, old) {
    const causes: StatusCause[] = [];
    // Only images (and a few scheduling fields) may change on a live pod.
    const strip = (s: KObject | undefined) => JSON.stringify({ ...(s ?? {}), containers: (s?.containers ?? []).map((c: KObject) => ({ ...c, image: undefined })), activeDeadlineSeconds: undefined, tolerations: undefined, terminationGracePeriodSeconds: undefined });
    if (strip(o.spec) !== strip(old.spec)) causes.push(fieldCause('spec', 'Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds`', 'FieldValueForbidden'));
    return causes;
  },
  gracePeriodSeconds(o, requested) {
    // An unscheduled pod, or one that has finished, has nothing to stop: delete at once.
    if (!o.spec?.nodeName) return 0;
    if (o.status?.phase === 'Succeeded' || o.status?.phase === 'Failed') return 0;
    return requested ?? o.spec?.terminationGracePeriodSeconds ?? 30;
  },
  table: {
    columns: [
      nameColumn,
      { name: 'Ready', type: 'string', description: 'The aggregate readiness state of this pod for accepting traffic.' },
      { name: 'Status', type: 'string', description: 'The aggregate status of the containers in this pod.' },
      { name: 'Restarts', type: 'string', description: 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.' },
      ageColumn,
      { name: 'IP', type: 'string', priority: 1, description: 'The IP address assigned to the pod' },
      { name: 'Node', type: 'string', priority: 1, description: 'The name of the node assigned to the pod' },
      { name: 'Nominated Node', type: 'string', priority: 1, description: 'The name of the node nominated by the scheduler' },
      { name: 'Readiness Gates', type: 'string', priority: 1, description: 'The readiness gates of the pod' },
    ],
    row: (o, now) => [
      o.metadata?.name, podReady(o), podStatus(o),
      String((o.status?.containerStatuses ?? []).reduce((n: number, s: KObject) => n + (s.restartCount ?? 0), 0)),
      age(o, now), o.status?.podIP ?? '<none>', o.spec?.nodeName ?? '<none>', o.status?.nominatedNodeName ?? '<none>',
      o.spec?.readinessGates?.length ? o.spec.readinessGates.map((g: KObject) => g.conditionType).join(',') : '<none>',
    ],
  },
};
