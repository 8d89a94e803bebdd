// Flag parsing for `keelson store`, in etcd's style: --flag=value or
// --flag value, booleans as --flag or --flag=true|false, a few short aliases.
// Unknown flags are a usage error (exit code 2), never silently ignored.
import { UsageError } from '../command.ts';

export interface FlagSpec {
  /** Flags that take no value. */
  bool?: string[];
  /** Flags that take a value. */
  value?: string[];
  /** Short aliases, e.g. { w: 'write-out' }. */
  alias?: Record<string, string>;
}

export interface Parsed {
  flags: Map<string, string>;
  positional: string[];
}

export function parseFlags(args: string[], spec: FlagSpec): Parsed {
  const bool = new Set(spec.bool ?? []);
  const value = new Set(spec.value ?? []);
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    let name = a.replace(/^--?/, '');
    let v: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      v = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (!a.startsWith('--')) {
      const full = spec.alias?.[name];
      if (!full) throw new UsageError(`unknown flag ${a}`);
      name = full;
    }
    if (bool.has(name)) {
      if (v !== undefined && v !== 'true' && v !== 'false') throw new UsageError(`flag --${name} takes true or false, got "${v}"`);
      flags.set(name, v ?? 'true');
    } else if (value.has(name)) {
      if (v === undefined) {
        if (i + 1 >= args.length) throw new UsageError(`flag --${name} needs a value`);
        v = args[++i]!;
      }
      flags.set(name, v);
    } else {
      throw new UsageError(`unknown flag --${name}`);
    }
  }
  return { flags, positional };
}

export function flagBool(p: Parsed, name: string): boolean {
  return p.flags.get(name) === 'true';
}

export function flagInt(p: Parsed, name: string, dflt: number, min = 0): number {
  const v = p.flags.get(name);
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`flag --${name} takes an integer, got "${v}"`);
  const n = Number(v);
  if (n < min || !Number.isSafeInteger(n)) throw new UsageError(`flag --${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

/** A duration flag as etcdctl writes it (5s, 500ms, 1m) or plain seconds; returns milliseconds. */
export function flagDurationMs(p: Parsed, name: string, dfltMs: number): number {
  const v = p.flags.get(name);
  if (v === undefined) return dfltMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v);
  if (!m) throw new UsageError(`flag --${name} takes a duration like 5s or 500ms, got "${v}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
}

/** Member and lease ids are written in hex by etcdctl; accept hex (with or without 0x). */
export function parseHexId(s: string | undefined, what: string): bigint {
  if (s === undefined || !/^(0x)?[0-9a-fA-F]{1,16}$/.test(s)) throw new UsageError(`${what} must be a hex id, got "${s ?? ''}"`);
  return BigInt(s.startsWith('0x') ? s : `0x${s}`);
}
