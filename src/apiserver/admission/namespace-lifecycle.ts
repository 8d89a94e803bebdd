// NamespaceLifecycle: nothing is created in a namespace that does not exist
// or is being deleted, and the namespaces the system depends on can never be
// deleted. Deletes of other objects always pass (a terminating namespace must
// be able to empty itself), and so do access reviews (they store nothing).
import { errors } from '../errors.ts';
import { admissionForbidden } from './forbidden.ts';
import { isResource, resources, type AdmissionAttributes, type AdmissionContext, type AdmissionPlugin } from './types.ts';

export const immortalNamespaces = ['default', 'kube-system', 'kube-public'] as const;

const accessReviewResources = new Set(['localsubjectaccessreviews', 'subjectaccessreviews', 'selfsubjectaccessreviews', 'selfsubjectrulesreviews']);

export function isTerminating(ns: any): boolean {
  return ns?.status?.phase === 'Terminating' || !!ns?.metadata?.deletionTimestamp;
}

export function namespaceLifecycle(opts: { immortal?: readonly string[] } = {}): AdmissionPlugin {
  const immortal = new Set(opts.immortal ?? immortalNamespaces);
  return {
    name: 'NamespaceLifecycle',
    async admit(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
      if (isResource(a, resources.namespaces) && a.subresource === '') {
        if (a.operation === 'DELETE' && immortal.has(a.name)) {
          throw errors.forbidden('', 'namespaces', a.name, 'this namespace may not be deleted');
        }
        return;
      }
      if (a.namespace === '') return; // cluster-scoped, or a request across namespaces
      if (a.operation === 'DELETE') return;
      if (a.resource.group === 'authorization.k8s.io' && accessReviewResources.has(a.resource.resource)) return;
      const ns = await ctx.get(resources.namespaces, '', a.namespace);
      if (!ns) throw errors.notFound('', 'namespaces', a.namespace);
      if (a.operation === 'CREATE' && isTerminating(ns)) {
        throw admissionForbidden(a, `unable to create new content in namespace ${a.namespace} because it is being terminated`, [
          { reason: 'NamespaceTerminating', message: `namespace ${a.namespace} is being terminated`, field: 'metadata.namespace' },
        ]);
      }
    },
  };
}
