// The one error class of the API server. Anything that goes wrong while
// serving a request is a StatusError (or becomes one in the central error
// handler: an unexpected exception is a 500 InternalError), and the handler
// chain turns it into a Kubernetes `Status` object with the matching HTTP code.
// Reasons and codes follow the Kubernetes API conventions (metav1.StatusReason).
import type { Status, StatusCause } from 'kubernetes-types/meta/v1.js';

export type StatusReason =
  | 'BadRequest' | 'Unauthorized' | 'Forbidden' | 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Gone'
  | 'Invalid' | 'MethodNotAllowed' | 'NotAcceptable' | 'RequestEntityTooLarge' | 'UnsupportedMediaType'
  | 'TooManyRequests' | 'Timeout' | 'Expired' | 'ServerTimeout' | 'ServiceUnavailable' | 'InternalError';

export interface StatusDetailsInit {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export class StatusError extends Error {
  readonly code: number;
  readonly reason: StatusReason;
  readonly details?: StatusDetailsInit;

  constructor(code: number, reason: StatusReason, message: string, details?: StatusDetailsInit) {
    super(message);
    this.name = 'StatusError';
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): Status {
    const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.code };
    if (this.details) s.details = { ...this.details };
    return s;
  }
}

export function isStatusError(e: unknown): e is StatusError {
  return e instanceof StatusError;
}

/** `group` is '' for the core group; `resource` is the plural resource name ("pods"). */
function qualified(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

export const errors = {
  badRequest: (message: string) => new StatusError(400, 'BadRequest', message),
  unauthorized: (message = 'Unauthorized') => new StatusError(401, 'Unauthorized', message),
  forbidden: (group: string, resource: string, name: string, message: string) =>
    new StatusError(403, 'Forbidden', `${qualified(group, resource)}${name ? ` "${name}"` : ''} is forbidden: ${message}`, { name: name || undefined, group, kind: resource }),
  notFound: (group: string, resource: string, name: string) =>
    new StatusError(404, 'NotFound', `${qualified(group, resource)} "${name}" not found`, { name, group, kind: resource }),
  alreadyExists: (group: string, resource: string, name: string) =>
    new StatusError(409, 'AlreadyExists', `${qualified(group, resource)} "${name}" already exists`, { name, group, kind: resource }),
  conflict: (group: string, resource: string, name: string, why: string) =>
    new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(group, resource)} "${name}": ${why}`, { name, group, kind: resource }),
  gone: (message: string) => new StatusError(410, 'Expired', message),
  /** kind is the Kind ("Pod"); causes name each invalid field. */
  invalid: (group: string, kind: string, name: string, causes: StatusCause[]) =>
    new StatusError(422, 'Invalid', `${qualified(group, kind)} "${name}" is invalid: ${causes.map((c) => `${c.field ? `${c.field}: ` : ''}${c.message}`).join(', ')}`, { name, group, kind, causes }),
  methodNotAllowed: (message: string) => new StatusError(405, 'MethodNotAllowed', message),
  notAcceptable: (message: string) => new StatusError(406, 'NotAcceptable', message),
  tooLarge: (message = 'the request body is too large') => new StatusError(413, 'RequestEntityTooLarge', message),
  unsupportedMediaType: (message: string) => new StatusError(415, 'UnsupportedMediaType', message),
  tooManyRequests: (message: string, retryAfterSeconds = 1) => new StatusError(429, 'TooManyRequests', message, { retryAfterSeconds }),
  timeout: (message: string) => new StatusError(504, 'Timeout', message),
  unavailable: (message: string) => new StatusError(503, 'ServiceUnavailable', message),
  internal: (message: string) => new StatusError(500, 'InternalError', `Internal error occurred: ${message}`),
};
