// apps/v1 deployments, replicasets and daemonsets: a pod template under a
// selector that must match it (immutable after create), scale and status
// subresources.
import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import { age, ageColumn, containersOf, immutable, nameColumn, selectorString, validateSelectorMatchesTemplate } from './common.ts';
import { defaultPodSpec, validatePodSpec } from './pods.ts';
import { fieldCause, type KObject, type ResourceDef } from './types.ts';

function validateWorkload(o: KObject, withReplicas: boolean): StatusCause[] {
  const causes: StatusCause[] = [];
  validateSelectorMatchesTemplate(o, causes);
  validatePodSpec(o.spec?.template?.spec, 'spec.template.spec', causes);
  if (withReplicas) {
    const r = o.spec?.replicas;
    if (r !== undefined && (!Number.isInteger(r) || r < 0)) causes.push(fieldCause('spec.replicas', `Invalid value: ${JSON.stringify(r)}: must be greater than or equal to 0`));
  }
  const rp = o.spec?.template?.spec?.restartPolicy;
  if (rp && rp !== 'Always') causes.push(fieldCause('spec.template.spec.restartPolicy', `Unsupported value: "${rp}": supported values: "Always"`, 'FieldValueNotSupported'));
  return causes;
}

function selectorImmutable(o: KObject, old: KObject): StatusCause[] {
  const c: StatusCause[] = [];
  immutable(o, old, 'spec.selector', c);
  return c;
}

function defaultTemplate(o: KObject): void {
  if (o.spec?.template?.spec) defaultPodSpec(o.spec.template.spec);
}

const wideColumns = [
  { name: 'Containers', type: 'string', priority: 1, description: 'Names of each container in the template.' },
  { name: 'Images', type: 'string', priority: 1, description: 'Images referenced by each container in the template.' },
  { name: 'Selector', type: 'string', priority: 1, description: 'Label selector for pods.' },
] as const;

const wideCells = (o: KObject) => { const c = containersOf(o.spec?.template?.spec); return [c.names, c.images, selectorString(o.spec?.selector)]; };

export const deployments: ResourceDef = {
  group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', singular: 'deployment', shortNames: ['deploy'], categories: ['all'],
  namespaced: true, hasStatus: true, schemaName: 'io.k8s.api.apps.v1.Deployment',
  scale: { specReplicasPath: 'spec.replicas', statusReplicasPath: 'status.replicas', selectorPath: 'spec.selector' },
  defaults(o) {
    const spec = (o.spec ??= {});
    spec.replicas ??= 1;
    spec.strategy ??= {};
    spec.strategy.type ??= 'RollingUpdate';
    if (spec.strategy.type === 'RollingUpdate') spec.strategy.rollingUpdate ??= { maxUnavailable: '25%', maxSurge: '25%' };
    spec.revisionHistoryLimit ??= 10;
    spec.progressDeadlineSeconds ??= 600;
    defaultTemplate(o);
  },
  prepareForCreate(o) { o.status = {}; },
  validate: (o) => validateWorkload(o, true),
  validateUpdate: selectorImmutable,
  table: {
    columns: [
      nameColumn,
      { name: 'Ready', type: 'string', description: 'Number of the pod with ready state' },
      { name: 'Up-to-date', type: 'string', description: 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.' },
      { name: 'Available', type: 'string', description: 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.' },
      ageColumn, ...wideColumns,
    ],
    row: (o, now) => [o.metadata?.name, `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`, o.status?.updatedReplicas ?? 0, o.status?.availableReplicas ?? 0, age(o, now), ...wideCells(o)],
  },
};

export const replicasets: ResourceDef = {
  group: 'apps', version: 'v1', resource: 'replicasets', kind: 'ReplicaSet', singular: 'replicaset', shortNames: ['rs'], categories: ['all'],
  namespaced: true, hasStatus: true, schemaName: 'io.k8s.api.apps.v1.ReplicaSet',
  scale: { specReplicasPath: 'spec.replicas', statusReplicasPath: 'status.replicas', selectorPath: 'spec.selector' },
  defaults(o) { (o.spec ??= {}).replicas ??= 1; defaultTemplate(o); },
  prepareForCreate(o) { o.status = { replicas: 0 }; },
  validate: (o) => validateWorkload(o, true),
  validateUpdate: selectorImmutable,
  table: {
    columns: [
      nameColumn,
      { name: 'Desired', type: 'integer', description: 'Number of desired pods.' },
      { name: 'Current', type: 'integer', description: 'The most recently observed number of replicas.' },
      { name: 'Ready', type: 'integer', description: 'The number of ready replicas for this replica set.' },
      ageColumn, ...wideColumns,
    ],
    row: (o, now) => [o.metadata?.name, o.spec?.replicas ?? 0, o.status?.replicas ?? 0, o.status?.readyReplicas ?? 0, age(o, now), ...wideCells(o)],
  },
};

export const daemonsets: ResourceDef = {
  group: 'apps', version: 'v1', resource: 'daemonsets', kind: 'DaemonSet', singular: 'daemonset', shortNames: ['ds'], categories: ['all'],
  namespaced: true, hasStatus: true, schemaName: 'io.k8s.api.apps.v1.DaemonSet',
  defaults(o) {
    const spec = (o.spec ??= {});
    spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } };
    spec.revisionHistoryLimit ??= 10;
    defaultTemplate(o);
  },
  prepareForCreate(o) { o.status = { currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0 }; },
  validate: (o) => validateWorkload(o, false),
  validateUpdate: selectorImmutable,
  table: {
    columns: [
      nameColumn,
      { name: 'Desired', type: 'integer', description: 'The total number of nodes that should be running the daemon pod.' },
      { name: 'Current', type: 'integer', description: 'The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.' },
      { name: 'Ready', type: 'integer', description: 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.' },
      { name: 'Up-to-date', type: 'integer', description: 'The total number of nodes that are running updated daemon pod' },
      { name: 'Available', type: 'integer', description: 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.' },
      { name: 'Node Selector', type: 'string', description: 'NodeSelector is a selector which must be true for the pod to fit on a node.' },
      ageColumn, ...wideColumns,
    ],
    row: (o, now) => {
      const s = o.status ?? {};
      const ns = o.spec?.template?.spec?.nodeSelector;
      return [o.metadata?.name, s.desiredNumberScheduled ?? 0, s.currentNumberScheduled ?? 0, s.numberReady ?? 0, s.updatedNumberScheduled ?? 0, s.numberAvailable ?? 0,
        ns && Object.keys(ns).length ? Object.entries(ns).map(([k, v]) => `${k}=${v}`).join(',') : '<none>', age(o, now), ...wideCells(o)];
    },
  },
};
