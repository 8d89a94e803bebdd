// The store client commands (`keelson store put|get|del|watch|txn|lease|
// compact|member|endpoint|move-leader|alarm|snapshot save`). They speak the
// etcd v3 gRPC API, so they work against Keelson members and against etcd.
// Output follows etcdctl's formats so scripts written for it keep working.
import fs from 'node:fs';
import readline from 'node:readline';
import { UsageError } from '../command.ts';
import { flagBool, flagDurationMs, flagInt, parseFlags, parseHexId, type FlagSpec, type Parsed } from './args.ts';
import { EndpointClient, EtcdClient, ServerError, UnreachableError, type ClientTls } from './grpc.ts';
import { hex, humanBytes, outputFormat, table, toJson, type OutputFormat } from './output.ts';

/** Global flags every client command takes. */
export const globalFlags: FlagSpec = {
  bool: ['insecure-skip-tls-verify', 'hex'],
  value: ['endpoints', 'write-out', 'command-timeout', 'dial-timeout', 'cacert', 'cert', 'key'],
  alias: { w: 'write-out' },
};

interface Ctx {
  p: Parsed;
  out: OutputFormat;
  client: EtcdClient;
  endpoints: string[];
  tls: ClientTls | undefined;
  timeoutMs: number;
}

function merge(a: FlagSpec, b: FlagSpec): FlagSpec {
  return { bool: [...(a.bool ?? []), ...(b.bool ?? [])], value: [...(a.value ?? []), ...(b.value ?? [])], alias: { ...a.alias, ...b.alias } };
}

function say(s: string): void {
  process.stdout.write(`${s}\n`);
}

const b = (s: string): Buffer => Buffer.from(s);

/** etcd's convention: range end = the key with its last byte incremented (prefix), "\0" = from key. */
export function prefixEnd(key: Buffer): Buffer {
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function rangeOf(p: Parsed, key: string, rangeEnd: string | undefined): { key: Buffer; range_end: Buffer } {
  // An empty key with --prefix or --from-key means every key: etcd spells that "\0".
  const k = key === '' && (flagBool(p, 'prefix') || flagBool(p, 'from-key')) ? Buffer.from([0]) : b(key);
  if (flagBool(p, 'prefix')) {
    if (rangeEnd !== undefined) throw new UsageError('--prefix and a range end cannot both be given');
    return { key: k, range_end: key === '' ? Buffer.from([0]) : prefixEnd(k) };
  }
  if (flagBool(p, 'from-key')) {
    if (rangeEnd !== undefined) throw new UsageError('--from-key and a range end cannot both be given');
    return { key: k, range_end: Buffer.from([0]) };
  }
  return { key: k, range_end: rangeEnd === undefined ? Buffer.alloc(0) : b(rangeEnd) };
}

function printKvs(kvs: any[], opts: { keysOnly?: boolean; valueOnly?: boolean }): void {
  for (const kv of kvs) {
    if (!opts.valueOnly) say(Buffer.from(kv.key).toString());
    if (!opts.keysOnly) say(Buffer.from(kv.value).toString());
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

// ---- commands ----

const putSpec: FlagSpec = { bool: ['prev-kv', 'ignore-value', 'ignore-lease'], value: ['lease'] };
async function put(c: Ctx): Promise<number> {
  const [key, value, extra] = c.p.positional;
  if (key === undefined || extra !== undefined) throw new UsageError('put needs a key and a value (or the value on stdin)');
  const ignoreValue = flagBool(c.p, 'ignore-value');
  let v = value;
  if (v === undefined && !ignoreValue) v = (await readStdin()).replace(/\n$/, '');
  if (v !== undefined && ignoreValue) throw new UsageError('--ignore-value and a value cannot both be given');
  const lease = c.p.flags.has('lease') ? parseHexId(c.p.flags.get('lease'), 'lease id').toString() : '0';
  const res = await c.client.unary('KV', 'Put', {
    key: b(key),
    value: b(v ?? ''),
    lease,
    prev_kv: flagBool(c.p, 'prev-kv'),
    ignore_value: ignoreValue,
    ignore_lease: flagBool(c.p, 'ignore-lease'),
  });
  if (c.out === 'json') return say(toJson(res)), 0;
  say('OK');
  if (res.prev_kv) printKvs([res.prev_kv], {});
  return 0;
}

const getSpec: FlagSpec = {
  bool: ['prefix', 'from-key', 'keys-only', 'count-only', 'print-value-only'],
  value: ['rev', 'limit', 'consistency', 'sort-by', 'order', 'min-mod-rev', 'max-mod-rev', 'min-create-rev', 'max-create-rev'],
};
async function get(c: Ctx): Promise<number> {
  const [key, rangeEnd, extra] = c.p.positional;
  if (key === undefined || extra !== undefined) throw new UsageError('get needs a key and optionally a range end');
  const consistency = c.p.flags.get('consistency') ?? 'l';
  if (consistency !== 'l' && consistency !== 's') throw new UsageError(`--consistency must be l or s, got "${consistency}"`);
  const sortTargets = ['KEY', 'VERSION', 'CREATE', 'MODIFY', 'VALUE'];
  const sortBy = (c.p.flags.get('sort-by') ?? 'KEY').toUpperCase();
  const order = (c.p.flags.get('order') ?? '').toUpperCase();
  if (!sortTargets.includes(sortBy)) throw new UsageError(`--sort-by must be one of ${sortTargets.join(', ')}`);
  if (order !== '' && order !== 'ASCEND' && order !== 'DESCEND') throw new UsageError('--order must be ASCEND or DESCEND');
  const res = await c.client.unary('KV', 'Range', {
    ...rangeOf(c.p, key, rangeEnd),
    revision: String(flagInt(c.p, 'rev', 0)),
    limit: String(flagInt(c.p, 'limit', 0)),
    keys_only: flagBool(c.p, 'keys-only'),
    count_only: flagBool(c.p, 'count-only'),
    serializable: consistency === 's',
    sort_order: sortOrderNumber[order === '' ? 'NONE' : order],
    sort_target: sortTargetNumber[sortBy === 'MODIFY' ? 'MOD' : sortBy],
    min_mod_revision: String(flagInt(c.p, 'min-mod-rev', 0)),
    max_mod_revision: String(flagInt(c.p, 'max-mod-rev', 0)),
    min_create_revision: String(flagInt(c.p, 'min-create-rev', 0)),
    max_create_revision: String(flagInt(c.p, 'max-create-rev', 0)),
  });
  if (c.out === 'json') return say(toJson(res)), 0;
  if (flagBool(c.p, 'count-only')) return say(String(res.count)), 0;
  printKvs(res.kvs, { keysOnly: flagBool(c.p, 'keys-only'), valueOnly: flagBool(c.p, 'print-value-only') });
  return 0;
}

const delSpec: FlagSpec = { bool: ['prefix', 'from-key', 'prev-kv'] };
async function del(c: Ctx): Promise<number> {
  const [key, rangeEnd, extra] = c.p.positional;
  if (key === undefined || extra !== undefined) throw new UsageError('del needs a key and optionally a range end');
  const res = await c.client.unary('KV', 'DeleteRange', { ...rangeOf(c.p, key, rangeEnd), prev_kv: flagBool(c.p, 'prev-kv') });
  if (c.out === 'json') return say(toJson(res)), 0;
  say(String(res.deleted));
  printKvs(res.prev_kvs ?? [], {});
  return 0;
}

const watchSpec: FlagSpec = { bool: ['prefix', 'prev-kv', 'progress-notify'], value: ['rev', 'max-events'] };
async function watch(c: Ctx): Promise<number> {
  const [key, rangeEnd, extra] = c.p.positional;
  if (key === undefined || extra !== undefined) throw new UsageError('watch needs a key and optionally a range end');
  const range = rangeOf(c.p, key, rangeEnd);
  // --max-events bounds how long a scripted watch runs; 0 = until interrupted.
  const maxEvents = flagInt(c.p, 'max-events', 0);
  const ep = await c.client.pick();
  const stream = ep.duplex('Watch', 'Watch');
  let seen = 0;
  return await new Promise<number>((resolve) => {
    const stop = (code: number): void => {
      process.off('SIGINT', onSig);
      stream.cancel();
      resolve(code);
    };
    const onSig = (): void => stop(0);
    process.on('SIGINT', onSig);
    stream.on('data', (r: any) => {
      if (r.canceled) {
        process.stderr.write(`watch canceled: ${r.cancel_reason || 'by the server'}\n`);
        if (r.compact_revision && r.compact_revision !== '0') process.stderr.write(`required revision has been compacted; compact revision ${r.compact_revision}\n`);
        return stop(1);
      }
      if (r.created && r.events.length === 0) return;
      if (c.out === 'json') say(toJson(r));
      for (const ev of r.events) {
        if (c.out !== 'json') {
          say(ev.type === 'Delete' || ev.type === 'DELETE' || ev.type === 1 ? 'DELETE' : 'PUT');
          if (ev.prev_kv) printKvs([ev.prev_kv], {});
          printKvs([ev.kv], {});
        }
        seen++;
        if (maxEvents > 0 && seen >= maxEvents) return stop(0);
      }
    });
    stream.on('error', (e: any) => {
      if (e?.code === 1) return; // cancelled by us
      process.stderr.write(`Error: ${ep.wrap(e).message}\n`);
      process.off('SIGINT', onSig);
      resolve(e?.code === 14 ? 2 : 1);
    });
    stream.write({
      create_request: {
        key: range.key,
        range_end: range.range_end,
        start_revision: String(flagInt(c.p, 'rev', 0)),
        prev_kv: flagBool(c.p, 'prev-kv'),
        progress_notify: flagBool(c.p, 'progress-notify'),
      },
    });
  });
}

// -- txn --

/** Splits a line into words; double or single quotes group, backslash escapes inside double quotes. */
export function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '"' || ch === "'") {
      inWord = true;
      const q = ch;
      i++;
      while (i < line.length && line[i] !== q) {
        if (q === '"' && line[i] === '\\' && i + 1 < line.length) i++;
        cur += line[i]!;
        i++;
      }
      if (i >= line.length) throw new UsageError(`unterminated quote in "${line}"`);
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

const compareTargets: Record<string, string> = { c: 'CREATE', create: 'CREATE', m: 'MOD', mod: 'MOD', val: 'VALUE', value: 'VALUE', ver: 'VERSION', version: 'VERSION', lease: 'LEASE' };
const compareOps: Record<string, string> = { '=': 'EQUAL', '==': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER' };
// Enums go on the wire as numbers: the loader does not map names when encoding.
const compareTargetNumber: Record<string, number> = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 };
const compareResultNumber: Record<string, number> = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 };
const sortOrderNumber: Record<string, number> = { NONE: 0, ASCEND: 1, DESCEND: 2 };
const sortTargetNumber: Record<string, number> = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 };
export const alarmActionNumber = { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 } as const;
export const alarmTypeNumber: Record<string, number> = { NONE: 0, NOSPACE: 1, CORRUPT: 2 };

export function parseCompare(line: string): object {
  const m = /^\s*(\w+)\(\s*("(?:[^"\\]|\\.)*"|'[^']*'|[^)\s]+)\s*\)\s*(==|=|!=|<|>)\s*(.*?)\s*$/.exec(line);
  if (!m) throw new UsageError(`bad compare "${line}" (e.g. mod("key") > "0" or value("key") = "v")`);
  const target = compareTargets[m[1]!];
  if (!target) throw new UsageError(`bad compare target "${m[1]}" (create, mod, value, version or lease)`);
  const key = words(m[2]!)[0] ?? '';
  const rawValue = words(m[4]!);
  if (rawValue.length !== 1) throw new UsageError(`bad compare value in "${line}"`);
  const v = rawValue[0]!;
  const cmp: Record<string, unknown> = { key: b(key), range_end: Buffer.alloc(0), target: compareTargetNumber[target], result: compareResultNumber[compareOps[m[3]!]!] };
  if (target === 'VALUE') cmp.value = b(v);
  else {
    if (target === 'LEASE' ? !/^(0x)?[0-9a-fA-F]+$/.test(v) : !/^\d+$/.test(v)) throw new UsageError(`compare value for ${m[1]} must be a number, got "${v}"`);
    const n = target === 'LEASE' ? parseHexId(v, 'lease id').toString() : v;
    cmp[target === 'CREATE' ? 'create_revision' : target === 'MOD' ? 'mod_revision' : target === 'VERSION' ? 'version' : 'lease'] = n;
  }
  return cmp;
}

export function parseOp(line: string): object {
  const w = words(line);
  const [verb, ...rest] = w;
  if (verb === 'put') {
    const p = parseFlags(rest, putSpec);
    if (p.positional.length !== 2) throw new UsageError(`bad put in txn "${line}" (put KEY VALUE)`);
    const lease = p.flags.has('lease') ? parseHexId(p.flags.get('lease'), 'lease id').toString() : '0';
    return { request_put: { key: b(p.positional[0]!), value: b(p.positional[1]!), lease, prev_kv: flagBool(p, 'prev-kv') } };
  }
  if (verb === 'get') {
    const p = parseFlags(rest, getSpec);
    if (p.positional.length < 1 || p.positional.length > 2) throw new UsageError(`bad get in txn "${line}"`);
    return { request_range: { ...rangeOf(p, p.positional[0]!, p.positional[1]), revision: String(flagInt(p, 'rev', 0)), limit: String(flagInt(p, 'limit', 0)), keys_only: flagBool(p, 'keys-only'), count_only: flagBool(p, 'count-only') } };
  }
  if (verb === 'del' || verb === 'delete') {
    const p = parseFlags(rest, delSpec);
    if (p.positional.length < 1 || p.positional.length > 2) throw new UsageError(`bad del in txn "${line}"`);
    return { request_delete_range: { ...rangeOf(p, p.positional[0]!, p.positional[1]), prev_kv: flagBool(p, 'prev-kv') } };
  }
  throw new UsageError(`bad txn request "${line}" (put, get or del)`);
}

/** etcdctl's txn text: compares, a blank line, success requests, a blank line, failure requests. */
export function parseTxnText(text: string): { compare: object[]; success: object[]; failure: object[] } {
  const sections: string[][] = [[], [], []];
  let s = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') {
      s++;
      if (s > 2) break;
      continue;
    }
    sections[s]!.push(line);
  }
  return { compare: sections[0]!.map(parseCompare), success: sections[1]!.map(parseOp), failure: sections[2]!.map(parseOp) };
}

async function readInteractive(): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin });
  const lines: string[] = [];
  const prompts = ['compares:', 'success requests (get, put, del):', 'failure requests (get, put, del):'];
  let section = 0;
  say(prompts[0]!);
  for await (const line of rl) {
    lines.push(line);
    if (line.trim() === '') {
      section++;
      if (section > 2) break;
      say(prompts[section]!);
    }
  }
  rl.close();
  return lines.join('\n');
}

const txnSpec: FlagSpec = { bool: ['interactive'], value: ['file'], alias: { i: 'interactive' } };
async function txn(c: Ctx): Promise<number> {
  if (c.p.positional.length > 0) throw new UsageError('txn takes no arguments (requests come from stdin or --file)');
  const file = c.p.flags.get('file');
  let text: string;
  if (file !== undefined) {
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
    }
  } else text = flagBool(c.p, 'interactive') ? await readInteractive() : await readStdin();
  const t = parseTxnText(text);
  const res = await c.client.unary('KV', 'Txn', t);
  if (c.out === 'json') return say(toJson(res)), 0;
  say(res.succeeded ? 'SUCCESS' : 'FAILURE');
  for (const r of res.responses) {
    say('');
    if (r.response_put) say('OK');
    else if (r.response_range) printKvs(r.response_range.kvs, {});
    else if (r.response_delete_range) say(String(r.response_delete_range.deleted));
  }
  return 0;
}

// -- lease --

const leaseSpec: FlagSpec = { bool: ['once', 'keys'] };
async function lease(c: Ctx): Promise<number> {
  const [sub, arg, extra] = c.p.positional;
  if (extra !== undefined) throw new UsageError('too many arguments');
  switch (sub) {
    case 'grant': {
      if (arg === undefined || !/^\d+$/.test(arg)) throw new UsageError('lease grant needs a TTL in seconds');
      const res = await c.client.unary('Lease', 'LeaseGrant', { TTL: arg, ID: '0' });
      if (c.out === 'json') return say(toJson(res)), 0;
      say(`lease ${hex(res.ID)} granted with TTL(${res.TTL}s)`);
      return 0;
    }
    case 'revoke': {
      const id = parseHexId(arg, 'lease id');
      const res = await c.client.unary('Lease', 'LeaseRevoke', { ID: id.toString() });
      if (c.out === 'json') return say(toJson(res)), 0;
      say(`lease ${hex(id)} revoked`);
      return 0;
    }
    case 'timetolive': {
      const id = parseHexId(arg, 'lease id');
      const res = await c.client.unary('Lease', 'LeaseTimeToLive', { ID: id.toString(), keys: flagBool(c.p, 'keys') });
      if (c.out === 'json') return say(toJson(res)), 0;
      if (Number(res.TTL) === -1) return say(`lease ${hex(id)} already expired`), 0;
      let line = `lease ${hex(id)} granted with TTL(${res.grantedTTL}s), remaining(${res.TTL}s)`;
      if (flagBool(c.p, 'keys')) line += `, attached keys([${res.keys.map((k: Buffer) => k.toString()).join(' ')}])`;
      say(line);
      return 0;
    }
    case 'list': {
      if (arg !== undefined) throw new UsageError('lease list takes no arguments');
      const res = await c.client.unary('Lease', 'LeaseLeases', {});
      if (c.out === 'json') return say(toJson(res)), 0;
      say(`found ${res.leases.length} leases`);
      for (const l of res.leases) say(hex(l.ID));
      return 0;
    }
    case 'keep-alive': {
      const id = parseHexId(arg, 'lease id');
      const ep = await c.client.pick();
      const stream = ep.duplex('Lease', 'LeaseKeepAlive');
      const once = flagBool(c.p, 'once');
      return await new Promise<number>((resolve) => {
        let timer: NodeJS.Timeout | null = null;
        const finish = (code: number): void => {
          if (timer) clearInterval(timer);
          process.off('SIGINT', onSig);
          stream.cancel();
          resolve(code);
        };
        const onSig = (): void => finish(0);
        process.on('SIGINT', onSig);
        stream.on('data', (r: any) => {
          if (Number(r.TTL) <= 0) {
            say(`lease ${hex(id)} expired or revoked.`);
            return finish(1);
          }
          if (c.out === 'json') say(toJson(r));
          else say(`lease ${hex(id)} keepalived with TTL(${r.TTL})`);
          if (once) return finish(0);
          // Renew at a third of the TTL, as a client does to survive one lost renewal.
          if (!timer) timer = setInterval(() => stream.write({ ID: id.toString() }), Math.max(500, (Number(r.TTL) * 1000) / 3));
        });
        stream.on('error', (e: any) => {
          if (e?.code === 1) return;
          process.stderr.write(`Error: ${ep.wrap(e).message}\n`);
          finish(e?.code === 14 ? 2 : 1);
        });
        stream.write({ ID: id.toString() });
      });
    }
    default:
      throw new UsageError('lease needs a subcommand: grant, revoke, keep-alive, list or timetolive');
  }
}

const compactSpec: FlagSpec = { bool: ['physical'] };
async function compact(c: Ctx): Promise<number> {
  const [rev, extra] = c.p.positional;
  if (rev === undefined || extra !== undefined || !/^\d+$/.test(rev)) throw new UsageError('compact needs a revision');
  const res = await c.client.unary('KV', 'Compact', { revision: rev, physical: flagBool(c.p, 'physical') });
  if (c.out === 'json') return say(toJson(res)), 0;
  say(`compacted revision ${rev}`);
  return 0;
}

// -- member --

function memberRows(members: any[]): string[][] {
  return members.map((m) => [hex(m.ID), m.name === '' ? 'unstarted' : 'started', m.name, m.peerURLs.join(','), m.clientURLs.join(','), String(m.isLearner)]);
}

const memberSpec: FlagSpec = { bool: ['learner'], value: ['peer-urls'] };
async function member(c: Ctx): Promise<number> {
  const [sub, arg, extra] = c.p.positional;
  if (extra !== undefined) throw new UsageError('too many arguments');
  switch (sub) {
    case 'list': {
      const res = await c.client.unary('Cluster', 'MemberList', {});
      if (c.out === 'json') return say(toJson(res)), 0;
      const rows = memberRows(res.members);
      if (c.out === 'table') say(table(['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'], rows));
      else for (const r of rows) say(r.join(', '));
      return 0;
    }
    case 'add': {
      if (arg === undefined) throw new UsageError('member add needs a name');
      const urls = (c.p.flags.get('peer-urls') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (urls.length === 0) throw new UsageError('member add needs --peer-urls');
      for (const u of urls) {
        try {
          new URL(u);
        } catch {
          throw new UsageError(`bad peer URL "${u}"`);
        }
      }
      const res = await c.client.unary('Cluster', 'MemberAdd', { peerURLs: urls, isLearner: flagBool(c.p, 'learner') });
      if (c.out === 'json') return say(toJson(res)), 0;
      say(`Member ${hex(res.member.ID)} added to cluster ${hex(res.header.cluster_id)}`);
      const initial: string[] = [];
      for (const m of res.members) {
        const name = m.ID === res.member.ID ? arg : m.name;
        if (name === '') continue;
        for (const u of m.peerURLs) initial.push(`${name}=${u}`);
      }
      say('');
      say('Start the new member with:');
      say(`  --name=${arg} --initial-cluster=${initial.join(',')} --initial-advertise-peer-urls=${urls.join(',')} --initial-cluster-state=existing --member-id=${hex(res.member.ID)} --cluster-id=${hex(res.header.cluster_id)}`);
      return 0;
    }
    case 'remove':
    case 'promote': {
      const id = parseHexId(arg, 'member id');
      const res = await c.client.unary('Cluster', sub === 'remove' ? 'MemberRemove' : 'MemberPromote', { ID: id.toString() });
      if (c.out === 'json') return say(toJson(res)), 0;
      say(`Member ${hex(id)} ${sub === 'remove' ? 'removed from' : 'promoted in'} cluster ${hex(res.header.cluster_id)}`);
      return 0;
    }
    default:
      throw new UsageError('member needs a subcommand: list, add, remove or promote');
  }
}

// -- endpoint --

async function clusterEndpoints(c: Ctx): Promise<string[]> {
  if (!flagBool(c.p, 'cluster')) return c.endpoints;
  const res = await c.client.unary('Cluster', 'MemberList', {});
  const urls: string[] = [];
  for (const m of res.members) urls.push(...m.clientURLs);
  return urls;
}

/** Runs one call on every endpoint separately, keeping per-endpoint failures. */
async function each<T>(c: Ctx, eps: string[], fn: (e: EndpointClient) => Promise<T>): Promise<Array<{ endpoint: string; ok: T } | { endpoint: string; err: Error }>> {
  return await Promise.all(
    eps.map(async (endpoint) => {
      const e = new EndpointClient(endpoint, c.timeoutMs, c.tls);
      try {
        return { endpoint, ok: await fn(e) };
      } catch (err) {
        return { endpoint, err: err as Error };
      } finally {
        e.close();
      }
    }),
  );
}

const endpointSpec: FlagSpec = { bool: ['cluster'], value: ['rev'] };
async function endpoint(c: Ctx): Promise<number> {
  const [sub, extra] = c.p.positional;
  if (extra !== undefined) throw new UsageError('too many arguments');
  const eps = await clusterEndpoints(c);
  let failed = 0;
  switch (sub) {
    case 'status': {
      const rs = await each(c, eps, (e) => e.unary('Maintenance', 'Status', {}));
      const rows: string[][] = [];
      const json: unknown[] = [];
      for (const r of rs) {
        if ('err' in r) {
          failed++;
          process.stderr.write(`Failed to get the status of endpoint ${r.endpoint} (${r.err.message})\n`);
          continue;
        }
        const s = r.ok as any;
        json.push({ Endpoint: r.endpoint, Status: s });
        rows.push([r.endpoint, hex(s.header.member_id), s.version, humanBytes(Number(s.dbSize)), String(s.leader === s.header.member_id), String(s.isLearner), String(s.raftTerm), String(s.raftIndex), String(s.raftAppliedIndex), s.errors.join(', ')]);
      }
      if (c.out === 'json') say(toJson(json));
      else if (c.out === 'table') say(table(['ENDPOINT', 'ID', 'VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER', 'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'ERRORS'], rows));
      else for (const r of rows) say(r.join(', '));
      break;
    }
    case 'hashkv':
    case 'hash': {
      const rev = String(flagInt(c.p, 'rev', 0));
      const rs = await each(c, eps, (e) => e.unary('Maintenance', 'HashKV', { revision: rev }));
      const rows: string[][] = [];
      const json: unknown[] = [];
      for (const r of rs) {
        if ('err' in r) {
          failed++;
          process.stderr.write(`Failed to get the hash of endpoint ${r.endpoint} (${r.err.message})\n`);
          continue;
        }
        const h = r.ok as any;
        json.push({ Endpoint: r.endpoint, HashKV: h });
        rows.push([r.endpoint, String(h.hash), String(h.compact_revision)]);
      }
      if (c.out === 'json') say(toJson(json));
      else if (c.out === 'table') say(table(['ENDPOINT', 'HASH', 'COMPACT REVISION'], rows));
      else for (const r of rows) say(r.join(', '));
      break;
    }
    case 'health': {
      // Healthy = a linearizable read goes through consensus and no alarm is raised.
      const rs = await each(c, eps, async (e) => {
        const t0 = performance.now();
        await e.unary('KV', 'Range', { key: b('health'), serializable: false });
        const took = performance.now() - t0;
        const alarms = await e.unary('Maintenance', 'Alarm', { action: alarmActionNumber.GET, memberID: '0', alarm: 0 });
        if (alarms.alarms.length > 0) throw new Error(`active alarm(s): ${alarms.alarms.map((a: any) => a.alarm).join(', ')}`);
        return took;
      });
      const rows: string[][] = [];
      for (const r of rs) {
        if ('err' in r) {
          failed++;
          rows.push([r.endpoint, 'false', '', r.err.message]);
          if (c.out === 'simple') process.stderr.write(`${r.endpoint} is unhealthy: failed to commit proposal: ${r.err.message}\n`);
        } else {
          rows.push([r.endpoint, 'true', `${(r.ok as number).toFixed(3)}ms`, '']);
          if (c.out === 'simple') say(`${r.endpoint} is healthy: successfully committed proposal: took = ${(r.ok as number).toFixed(3)}ms`);
        }
      }
      if (c.out === 'json') say(toJson(rows.map((r) => ({ endpoint: r[0], health: r[1] === 'true', took: r[2], error: r[3] || undefined }))));
      else if (c.out === 'table') say(table(['ENDPOINT', 'HEALTH', 'TOOK', 'ERROR'], rows));
      if (failed > 0) process.stderr.write('Error: unhealthy cluster\n');
      break;
    }
    default:
      throw new UsageError('endpoint needs a subcommand: status, health or hash');
  }
  return failed > 0 ? 2 : 0;
}

async function moveLeader(c: Ctx): Promise<number> {
  const [arg, extra] = c.p.positional;
  if (extra !== undefined) throw new UsageError('too many arguments');
  const target = parseHexId(arg, 'target member id');
  // The transfer request must reach the current leader: find it among the endpoints.
  const rs = await each(c, c.endpoints, (e) => e.unary('Maintenance', 'Status', {}));
  let leaderEp: string | null = null;
  let leaderId = '';
  for (const r of rs) {
    if ('ok' in r) {
      const s = r.ok as any;
      if (s.leader !== '0' && s.leader === s.header.member_id) {
        leaderEp = r.endpoint;
        leaderId = s.leader;
      }
    }
  }
  if (!leaderEp) {
    const unreachable = rs.every((r) => 'err' in r && r.err instanceof UnreachableError);
    process.stderr.write(unreachable ? `Error: ${(rs[0] as { err: Error }).err.message}\n` : 'Error: no leader endpoint given at ' + c.endpoints.join(',') + ' (pass the leader among --endpoints)\n');
    return unreachable ? 2 : 1;
  }
  const e = new EndpointClient(leaderEp, c.timeoutMs, c.tls);
  try {
    const res = await e.unary('Maintenance', 'MoveLeader', { targetID: target.toString() });
    if (c.out === 'json') return say(toJson(res)), 0;
    say(`Leadership transferred from ${hex(leaderId)} to ${hex(target)}`);
    return 0;
  } finally {
    e.close();
  }
}

async function alarm(c: Ctx): Promise<number> {
  const [sub, extra] = c.p.positional;
  if (extra !== undefined) throw new UsageError('too many arguments');
  if (sub !== 'list' && sub !== 'disarm') throw new UsageError('alarm needs a subcommand: list or disarm');
  const list = await c.client.unary('Maintenance', 'Alarm', { action: alarmActionNumber.GET, memberID: '0', alarm: 0 });
  // disarm prints the alarms it cleared, as etcdctl does.
  if (sub === 'disarm') {
    for (const a of list.alarms) {
      await c.client.unary('Maintenance', 'Alarm', { action: alarmActionNumber.DEACTIVATE, memberID: a.memberID, alarm: alarmTypeNumber[String(a.alarm).toUpperCase()] ?? 0 });
    }
  }
  const res = list;
  if (c.out === 'json') return say(toJson(res)), 0;
  // The loader names enum values as the API definitions spell them (Nospace); etcdctl prints NOSPACE.
  for (const a of res.alarms) say(`memberID:${BigInt(a.memberID).toString()} alarm:${String(a.alarm).toUpperCase()} `);
  return 0;
}

async function snapshotSave(c: Ctx, file: string): Promise<number> {
  if (c.endpoints.length !== 1) throw new UsageError(`snapshot save needs exactly one endpoint (got ${c.endpoints.length})`);
  const ep = c.client.endpoints[0]!;
  await ep.unary('Maintenance', 'Status', {});
  const part = `${file}.part`;
  const fd = fs.openSync(part, 'w', 0o600);
  let bytes = 0;
  try {
    const stream = ep.serverStream('Maintenance', 'Snapshot', {});
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (r: any) => {
        const blob = r.blob as Buffer;
        fs.writeSync(fd, blob);
        bytes += blob.length;
      });
      stream.on('error', (e: any) => reject(ep.wrap(e)));
      stream.on('end', () => resolve());
    });
    // Durable before it takes its final name: a crash leaves no half file under FILE.
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(part, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(part, file);
  if (c.out === 'json') say(toJson({ file, bytes }));
  else say(`Snapshot saved at ${file}`);
  return 0;
}

export const clientCommands: Record<string, { spec: FlagSpec; run: (c: Ctx) => Promise<number>; usage: string }> = {
  put: { spec: putSpec, run: put, usage: 'put KEY [VALUE] [--lease=ID] [--prev-kv] [--ignore-value] [--ignore-lease]   (VALUE from stdin when absent)' },
  get: { spec: getSpec, run: get, usage: 'get KEY [RANGE_END] [--prefix] [--from-key] [--rev=N] [--limit=N] [--keys-only] [--count-only] [--print-value-only] [--consistency=l|s] [--sort-by=KEY|VERSION|CREATE|MODIFY|VALUE] [--order=ASCEND|DESCEND]' },
  del: { spec: delSpec, run: del, usage: 'del KEY [RANGE_END] [--prefix] [--from-key] [--prev-kv]' },
  watch: { spec: watchSpec, run: watch, usage: 'watch KEY [RANGE_END] [--prefix] [--rev=N] [--prev-kv] [--progress-notify] [--max-events=N]   (until Ctrl-C)' },
  txn: { spec: txnSpec, run: txn, usage: 'txn [-i|--interactive] [--file=F]   (compares, blank line, success requests, blank line, failure requests; from stdin when no --file)' },
  lease: { spec: leaseSpec, run: lease, usage: 'lease grant TTL | revoke ID | keep-alive ID [--once] | list | timetolive ID [--keys]' },
  compact: { spec: compactSpec, run: compact, usage: 'compact REVISION [--physical]' },
  member: { spec: memberSpec, run: member, usage: 'member list | add NAME --peer-urls=URL[,URL] [--learner] | remove ID | promote ID' },
  endpoint: { spec: endpointSpec, run: endpoint, usage: 'endpoint status | health | hash [--rev=N]   [--cluster: every member\'s client URLs]' },
  'move-leader': { spec: {}, run: moveLeader, usage: 'move-leader TARGET_MEMBER_ID   (one of --endpoints must be the leader)' },
  alarm: { spec: {}, run: alarm, usage: 'alarm list | disarm' },
};

export const globalUsage = `Global flags (client commands):
  --endpoints=HOST:PORT[,HOST:PORT]  members to talk to (default 127.0.0.1:2379)
  -w, --write-out=simple|json|table  output format (default simple)
  --command-timeout=5s               deadline of each request
  --dial-timeout=2s                  deadline for reaching an endpoint
  --cacert, --cert, --key            client TLS (PEM files)`;

/** Runs a client command; returns the exit code. */
export async function runClientCommand(name: string, args: string[]): Promise<number> {
  const cmd = name === 'snapshot-save' ? null : clientCommands[name];
  const spec = merge(globalFlags, cmd?.spec ?? {});
  const p = parseFlags(args, spec);
  const endpoints = (p.flags.get('endpoints') ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (endpoints.length === 0) throw new UsageError('--endpoints is empty');
  const timeoutMs = Math.max(flagDurationMs(p, 'command-timeout', 5000), flagDurationMs(p, 'dial-timeout', 2000));
  const tls: ClientTls | undefined = p.flags.has('cacert') || p.flags.has('cert') ? { caFile: p.flags.get('cacert'), certFile: p.flags.get('cert'), keyFile: p.flags.get('key') } : undefined;
  const ctx: Ctx = { p, out: outputFormat(p.flags.get('write-out')), client: new EtcdClient(endpoints, timeoutMs, tls), endpoints, tls, timeoutMs };
  try {
    if (!cmd) {
      const file = p.positional[0];
      if (file === undefined || p.positional.length !== 1) throw new UsageError('snapshot save needs a file name');
      return await snapshotSave(ctx, file);
    }
    return await cmd.run(ctx);
  } catch (e) {
    if (e instanceof UnreachableError) {
      process.stderr.write(`Error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ServerError) {
      process.stderr.write(`Error: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    ctx.client.close();
  }
}
