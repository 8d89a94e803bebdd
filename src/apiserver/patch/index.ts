// The patch library of the API server: JSON patch, JSON merge patch,
// strategic merge patch, server-side apply and managedFields bookkeeping.
// Pure functions over decoded JSON objects: no I/O, inputs never mutated;
// every failure is a StatusError (src/apiserver/errors.ts).
export { applyJsonPatch, applyMergePatch, jsonPatchOperationsMax } from './json.ts';
export { applyStrategicMergePatch } from './strategic.ts';
export { applyServerSide, updateManagedFields, updateManagersMax, type ApplyOptions, type UpdateOptions } from './managed.ts';
export { schemaFor, type GroupVersionKind } from './schema.ts';
