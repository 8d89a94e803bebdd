// User impersonation (kubectl --as, --as-group, --as-uid): a request that
// carries Impersonate-* headers runs as the named user, provided the real
// user may `impersonate` each part of that identity. Checked parts, as in
// Kubernetes: users (or serviceaccounts for service-account names), groups,
// uids and userextras/<key>, each by name. Anything refused is a 403 naming
// the part; nothing is half-applied.
import type { IncomingHttpHeaders } from 'node:http';
import { errors } from '../errors.ts';
import { forbiddenError } from './rbac.ts';
import { parseServiceAccountUsername } from './serviceaccount.ts';
import { wellKnown, type Authorizer, type RequestAttributes, type UserInfo } from './types.ts';

/** More impersonated groups or extra values than this is not a real identity. */
export const impersonatedValuesMax = 256;

const extraPrefix = 'impersonate-extra-';

function values(h: string | string[] | undefined): string[] {
  if (h === undefined) return [];
  // Node joins repeated headers with ", "; kubectl sends one header per group.
  const list = Array.isArray(h) ? h : h.split(/,\s*/);
  return list.map((v) => v.trim()).filter((v) => v !== '');
}

export function hasImpersonation(headers: IncomingHttpHeaders): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase().startsWith('impersonate-'));
}

/**
 * The identity the request runs as: `user` itself without Impersonate-*
 * headers, else the impersonated user after every part was authorized.
 */
export async function impersonate(headers: IncomingHttpHeaders, user: UserInfo, authorizer: Authorizer): Promise<UserInfo> {
  if (!hasImpersonation(headers)) return user;
  const single = (name: string): string | undefined => {
    const v = headers[name];
    const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
    if (list.length > 1) throw errors.badRequest(`only one ${name} header may be given`);
    const s = list[0]?.trim();
    return s === '' ? undefined : s;
  };
  const username = single('impersonate-user');
  const uid = single('impersonate-uid');
  const groups = values(headers['impersonate-group']);
  const extra: Record<string, string[]> = {};
  let count = groups.length;
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (!key.startsWith(extraPrefix)) continue;
    let extraKey: string;
    try {
      extraKey = decodeURIComponent(key.slice(extraPrefix.length));
    } catch {
      throw errors.badRequest(`invalid impersonation header ${k}`);
    }
    if (extraKey === '') throw errors.badRequest(`invalid impersonation header ${k}`);
    extra[extraKey] = values(v);
    count += extra[extraKey]!.length;
  }
  for (const k of Object.keys(headers)) {
    const key = k.toLowerCase();
    if (key.startsWith('impersonate-') && key !== 'impersonate-user' && key !== 'impersonate-uid' && key !== 'impersonate-group' && !key.startsWith(extraPrefix)) {
      throw errors.badRequest(`unknown impersonation header ${k}`);
    }
  }
  if (count > impersonatedValuesMax) throw errors.badRequest(`at most ${impersonatedValuesMax} impersonated groups and extra values may be given`);
  if (username === undefined) throw errors.badRequest('impersonating groups, a uid or extra fields requires impersonating a user (Impersonate-User)');

  const check = async (a: Omit<RequestAttributes, 'user' | 'verb' | 'apiVersion' | 'resourceRequest' | 'path' | 'subresource'> & { subresource?: string }) => {
    const attrs: RequestAttributes = { user, verb: 'impersonate', apiVersion: '', resourceRequest: true, path: '', subresource: '', ...a };
    const d = await authorizer.authorize(attrs);
    if (!d.allowed) throw forbiddenError(attrs, d.reason);
  };
  const sa = parseServiceAccountUsername(username);
  if (sa) await check({ apiGroup: '', resource: 'serviceaccounts', namespace: sa.namespace, name: sa.name });
  else await check({ apiGroup: '', resource: 'users', namespace: '', name: username });
  for (const g of groups) await check({ apiGroup: '', resource: 'groups', namespace: '', name: g });
  if (uid !== undefined) await check({ apiGroup: 'authentication.k8s.io', resource: 'uids', namespace: '', name: uid });
  for (const [k, vs] of Object.entries(extra)) {
    for (const v of vs) await check({ apiGroup: 'authentication.k8s.io', resource: 'userextras', subresource: k, namespace: '', name: v });
  }

  const out = [...groups];
  if (sa) {
    for (const g of [wellKnown.serviceAccountsGroup, `${wellKnown.serviceAccountsGroup}:${sa.namespace}`]) if (!out.includes(g)) out.push(g);
  }
  const implicit = username === wellKnown.anonymousUser ? wellKnown.allUnauthenticated : wellKnown.allAuthenticated;
  if (!out.includes(implicit)) out.push(implicit);
  return { username, ...(uid !== undefined ? { uid } : {}), groups: out, ...(Object.keys(extra).length ? { extra } : {}) };
}
