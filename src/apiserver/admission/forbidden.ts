import type { StatusCause } from 'kubernetes-types/meta/v1.js';
import { StatusError } from '../errors.ts';
import type { AdmissionAttributes } from './types.ts';

/**
 * The 403 an admission plugin answers with, named as Kubernetes names it:
 * the object's name, else its generateName (no name has been generated yet
 * during admission), else "Unknown".
 */
export function admissionForbidden(a: AdmissionAttributes, message: string, causes?: StatusCause[]): StatusError {
  const meta = (a.object ?? a.oldObject)?.metadata;
  const name: string = a.name || meta?.name || meta?.generateName || 'Unknown';
  const { group, resource } = a.resource;
  const qualified = group ? `${resource}.${group}` : resource;
  return new StatusError(403, 'Forbidden', `${qualified} "${name}" is forbidden: ${message}`, { name, group, kind: resource, ...(causes ? { causes } : {}) });
}
