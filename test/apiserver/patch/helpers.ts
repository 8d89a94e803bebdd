// Shared assertions for the patch library tests.
import * as assert from 'uvu/assert';
import { isStatusError, type StatusError } from '../../../src/apiserver/errors.ts';

/** Runs fn, which must throw a StatusError with this code and reason; returns it for further checks. */
export function throwsStatus(fn: () => unknown, code: number, reason: string): StatusError {
  try {
    fn();
  } catch (e) {
    assert.ok(isStatusError(e), `expected a StatusError, got ${String(e)}`);
    assert.is(e.code, code, `code (message: ${e.message})`);
    assert.is(e.reason, reason, `reason (message: ${e.message})`);
    return e;
  }
  assert.unreachable(`expected a ${code} ${reason}`);
  throw new Error('unreachable');
}

/** A deep-frozen copy, so a test fails loudly if a function mutates its input. */
export function frozen<T>(v: T): T {
  const c = structuredClone(v);
  const freeze = (x: unknown): void => {
    if (x && typeof x === 'object') {
      Object.freeze(x);
      for (const y of Object.values(x)) freeze(y);
    }
  };
  freeze(c);
  return c;
}

export const POD = { group: '', version: 'v1', kind: 'Pod' };
export const NODE = { group: '', version: 'v1', kind: 'Node' };
export const SERVICE = { group: '', version: 'v1', kind: 'Service' };
export const CONFIGMAP = { group: '', version: 'v1', kind: 'ConfigMap' };
export const SERVICEACCOUNT = { group: '', version: 'v1', kind: 'ServiceAccount' };
export const DEPLOYMENT = { group: 'apps', version: 'v1', kind: 'Deployment' };
export const WIDGET = { group: 'example.com', version: 'v1', kind: 'Widget' };
