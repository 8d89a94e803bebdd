// Privilege-escalation prevention for RBAC objects, with the rules of
// Kubernetes: a user may write a Role or ClusterRole only with permissions
// they already hold (or with the `escalate` verb on it), and may bind a role
// only if they hold every permission in it (or have the `bind` verb on it).
// Without this, anyone allowed to create RoleBindings could bind themselves
// to cluster-admin.
//
// "Holds" is rule coverage: every rule of the new role is broken into atomic
// rules (one verb, one group, one resource, one name or URL) and each must be
// covered by one of the user's rules. A '*' in the new role is covered only by
// a '*' in the user's, so a wildcard can never be smuggled in.
import type { PolicyRule } from 'kubernetes-types/rbac/v1.js';
import type { UserInfo } from './types.ts';

/** A role with more atomic rules than this is refused as a whole rather than expanded (it would be a mistake or an attack). */
export const atomicRulesMax = 100_000;

interface Atomic {
  verb: string;
  group?: string;
  resource?: string;
  name?: string;
  url?: string;
}

function* atomize(rule: PolicyRule): Generator<Atomic> {
  for (const verb of rule.verbs ?? []) {
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        const names = rule.resourceNames ?? [];
        if (names.length === 0) yield { verb, group, resource };
        else for (const name of names) yield { verb, group, resource, name };
      }
    }
    for (const url of rule.nonResourceURLs ?? []) yield { verb, url };
  }
}

function resourceCovered(owner: string[], resource: string): boolean {
  if (owner.includes('*') || owner.includes(resource)) return true;
  const slash = resource.indexOf('/');
  return slash >= 0 && owner.includes(`*/${resource.slice(slash + 1)}`);
}

function urlCovered(owner: string[], url: string): boolean {
  for (const o of owner) {
    if (o === '*' || o === url) return true;
    if (o.endsWith('*') && url.startsWith(o.slice(0, -1))) return true;
  }
  return false;
}

function atomicCovered(owner: PolicyRule, a: Atomic): boolean {
  if (!owner.verbs.includes('*') && !owner.verbs.includes(a.verb)) return false;
  if (a.url !== undefined) return urlCovered(owner.nonResourceURLs ?? [], a.url);
  const groups = owner.apiGroups ?? [];
  if (!groups.includes('*') && !groups.includes(a.group!)) return false;
  if (!resourceCovered(owner.resources ?? [], a.resource!)) return false;
  const names = owner.resourceNames ?? [];
  if (names.length === 0) return true;
  return a.name !== undefined && names.includes(a.name);
}

/** The rules of `servant` not covered by `owner` ([] when all are), as atomic rules. */
export function uncoveredRules(owner: PolicyRule[], servant: PolicyRule[]): PolicyRule[] {
  const missing: PolicyRule[] = [];
  let n = 0;
  for (const rule of servant) {
    for (const a of atomize(rule)) {
      if (++n > atomicRulesMax) {
        missing.push({ verbs: ['*'], apiGroups: ['*'], resources: [`(more than ${atomicRulesMax} atomic rules)`] });
        return missing;
      }
      if (owner.some((o) => atomicCovered(o, a))) continue;
      if (a.url !== undefined) missing.push({ verbs: [a.verb], nonResourceURLs: [a.url] });
      else missing.push({ verbs: [a.verb], apiGroups: [a.group!], resources: [a.resource!], ...(a.name !== undefined ? { resourceNames: [a.name] } : {}) });
    }
  }
  return missing;
}

const quoted = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(' ')}]`;

/** One rule per line, in the compact form Kubernetes prints them in escalation errors. */
export function compactRules(rules: PolicyRule[]): string {
  return rules.map((r) => {
    const parts: string[] = [];
    if (r.apiGroups) parts.push(`APIGroups:${quoted(r.apiGroups)}`);
    if (r.resources) parts.push(`Resources:${quoted(r.resources)}`);
    if (r.resourceNames) parts.push(`ResourceNames:${quoted(r.resourceNames)}`);
    if (r.nonResourceURLs) parts.push(`NonResourceURLs:${quoted(r.nonResourceURLs)}`);
    parts.push(`Verbs:${quoted(r.verbs)}`);
    return `{${parts.join(', ')}}`;
  }).join('\n');
}

export function escalationMessage(user: UserInfo, missing: PolicyRule[]): string {
  return `user ${JSON.stringify(user.username)} (groups=${quoted(user.groups)}) is attempting to grant RBAC permissions not currently held:\n${compactRules(missing)}`;
}
