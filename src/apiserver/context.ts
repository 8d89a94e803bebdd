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
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** RFC 3339 with microseconds, as metav1.MicroTime. */
export function rfc3339Micro(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
