// core/v1 namespaces: cluster-scoped; phase Active until deleted, then
// Terminating while the "kubernetes" finalizer holds it.
import { age, ageColumn, nameColumn } from './common.ts';
import type { ResourceDef } from './types.ts';

export const namespaces: ResourceDef = {
  group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', singular: 'namespace', shortNames: ['ns'],
  namespaced: false, hasStatus: true, extraSubresources: ['finalize'], schemaName: 'io.k8s.api.core.v1.Namespace', nameRule: 'label',
  fields: { 'status.phase': (o) => o.status?.phase ?? '' },
  defaults(o) {
    o.metadata!.labels = { ...(o.metadata!.labels ?? {}), 'kubernetes.io/metadata.name': o.metadata!.name };
  },
  prepareForCreate(o) {
    o.status = { phase: 'Active' };
    o.spec = { ...(o.spec ?? {}), finalizers: o.spec?.finalizers ?? ['kubernetes'] };
  },
  holdsDeletion: (o) => (o.spec?.finalizers ?? []).length > 0,
  prepareForDelete(o) { o.status = { ...(o.status ?? {}), phase: 'Terminating' }; },
  table: {
    columns: [nameColumn, { name: 'Status', type: 'string', description: 'The status of the namespace' }, ageColumn],
    row: (o, now) => [o.metadata?.name, o.status?.phase ?? '', age(o, now)],
  },
};
