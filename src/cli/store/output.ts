// Output for the store client commands: simple (etcdctl's default lines),
// json (the gRPC response, bytes in base64, 64-bit numbers written as
// numbers) and table (boxed ASCII, for list-like results).
import { UsageError } from '../command.ts';

export type OutputFormat = 'simple' | 'json' | 'table';

export function outputFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === 'simple') return 'simple';
  if (v === 'json' || v === 'table') return v;
  throw new UsageError(`unknown output format "${v}" (use simple, json or table)`);
}

/** Decimal strings that hold 64-bit integers (proto int64/uint64 fields). */
const numericString = /^-?\d+$/;
/** String fields whose contents may look numeric but are text. */
const textFields = new Set(['name', 'peerURLs', 'clientURLs', 'errors']);

/** JSON with 64-bit integers unquoted (they exceed a JS number) and bytes as base64. */
export function toJson(v: unknown, field = ''): string {
  if (v === null || v === undefined) return 'null';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('base64'));
  if (typeof v === 'string') return numericString.test(v) && !textFields.has(field) ? v.replace(/^(-?)0+(?=\d)/, '$1') : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return `[${v.map((x) => toJson(x, field)).join(',')}]`;
  if (typeof v === 'object') {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      // proto-loader's oneof discriminator names are not part of the message.
      if (k === 'request' || k === 'response' || k === 'target_union') {
        if (typeof x === 'string') continue;
      }
      parts.push(`${JSON.stringify(k)}:${toJson(x, k)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return 'null';
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const center = (s: string, w: number): string => {
    const left = Math.floor((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const out = [line, `|${header.map((h, i) => ` ${center(h, widths[i]!)} `).join('|')}|`, line];
  for (const r of rows) out.push(`|${r.map((c, i) => ` ${c.padStart(widths[i]!)} `).join('|')}|`);
  out.push(line);
  return out.join('\n');
}

export function hex(id: string | number | bigint): string {
  return BigInt(id).toString(16);
}

export function humanBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v >= 10 ? 0 : 1)} ${units[u]}`;
}
