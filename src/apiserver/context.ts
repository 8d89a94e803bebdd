// Per-request context shared by the registry, admission and the handlers.
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface OpContext {
  user: UserInfo;
  /** ms since epoch, from the server's injected clock. */
  now: number;
  dryRun: boolean;
  fieldManager?: string;
  fieldValidation: FieldValidation;
  /** Set by server-side apply, which records managedFields itself. */
  skipManagedFields?: boolean;
  /** Warning headers to send back (299 "..."). */
  warnings: string[];
}

/** RFC 3339 with second precision, as Kubernetes writes metav1.Time. */
// The last second formatted: a write formats the same second several times
// (creationTimestamp, managedFields), and so do writes in the same second.
let lastSecond = Number.NaN;
let lastText = '';

export function rfc3339(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s !== lastSecond) {
    lastText = new Date(s * 1000).toISOString().replace('.000Z', 'Z');
    lastSecond = s;
  }
  return lastText;
}

/** RFC 3339 with microseconds, as metav1.MicroTime. */
export function rfc3339Micro(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
