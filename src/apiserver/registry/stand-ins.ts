// Stand-ins for the patch and admission modules, used until those parts land
// in src/apiserver/patch and src/apiserver/admission (same signatures).
import { errors } from '../errors.ts';
import type { KObject } from '../resources/types.ts';

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function checkPatchObject(patch: unknown): KObject {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw errors.badRequest('the patch must be a JSON object');
  return patch as KObject;
}

/** The patch library's interface (src/apiserver/patch/index.ts). */
export interface PatchLib {
  applyJsonPatch(obj: object, patchBody: unknown): object;
  applyMergePatch(obj: object, patchBody: unknown): object;
  applyStrategicMergePatch(obj: object, patchBody: unknown, kind: { group: string; version: string; kind: string }): object;
  applyServerSide(live: object | null, applied: object, opts: { manager: string; force: boolean; kind: { group: string; version: string; kind: string }; now: string; subresource?: string }): { object: object };
  updateManagedFields(oldObj: object | null, newObj: object, opts: { manager: string; operation: 'Update'; kind: { group: string; version: string; kind: string }; now: string; subresource?: string; owned?: boolean }): object;
}

/** Merge-patch based stand-ins: no merge keys, no managedFields, apply = merge without conflicts. */
export const standInPatch: PatchLib = {
  applyJsonPatch() { throw errors.unsupportedMediaType('json patch is not available in this build'); },
  applyMergePatch: (obj, p) => mergePatch(obj, checkPatchObject(p)) as object,
  applyStrategicMergePatch: (obj, p) => mergePatch(obj, checkPatchObject(p)) as object,
  applyServerSide: (live, applied) => ({ object: mergePatch(live ?? {}, applied) as object }),
  updateManagedFields: (_old, obj) => obj,
};
