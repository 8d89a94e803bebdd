// The admission interfaces. A request that passed authentication and
// authorization runs through every plugin's admit (mutating: may change
// a.object) in order, then through every plugin's validate (may only look),
// before the object is stored. A plugin rejects by throwing a StatusError;
// anything else it throws is a server error.
import type { UserInfo } from '../auth/types.ts';

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface AdmissionAttributes {
  operation: AdmissionOperation;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subresource: string;
  /** '' for cluster-scoped objects. */
  namespace: string;
  /** '' when the object has only a generateName yet. */
  name: string;
  /** The new object (CREATE, UPDATE); null for DELETE. Mutating plugins change it in place. */
  object: any;
  /** The stored object (UPDATE, DELETE); null for CREATE. */
  oldObject: any;
  user: UserInfo;
  /** With dryRun, plugins must not cause side effects (no ctx.create). */
  dryRun: boolean;
}

/** Access to stored objects for plugins (reads are served by the server's caches). */
export interface AdmissionContext {
  get(resource: GroupVersionResource, namespace: string, name: string): Promise<any | null>;
  list(resource: GroupVersionResource, namespace?: string): Promise<any[]>;
  create(resource: GroupVersionResource, namespace: string, obj: any): Promise<any>;
}

export interface AdmissionPlugin {
  name: string;
  admit?(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void>;
  validate?(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void>;
}

export const resources = {
  namespaces: { group: '', version: 'v1', resource: 'namespaces' },
  pods: { group: '', version: 'v1', resource: 'pods' },
  serviceAccounts: { group: '', version: 'v1', resource: 'serviceaccounts' },
  priorityClasses: { group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses' },
} as const satisfies Record<string, GroupVersionResource>;

export function isResource(a: AdmissionAttributes, r: GroupVersionResource): boolean {
  return a.resource.group === r.group && a.resource.resource === r.resource;
}
