// The report of a run: a text summary, report.json, and timeline.svg
// (throughput and latency per second with every fault drawn as a band), so a
// person sees at a glance what happened, and history.json so that the
// checkers can be rerun on the same history.
import fs from 'node:fs';
import path from 'node:path';
import type { CheckResult, FaultRec, History, KvOp } from './history.ts';

export interface RunInfo {
  target: string;
  members: number;
  seed: number;
  durationS: number;
  faults: string[];
  endpoints: string[];
  plan: unknown[];
  notes: string[];
}

export interface Availability {
  /** For every leader kill: ms from the kill until a write invoked after it succeeded (null = none did before the run ended). */
  recoveriesMs: (number | null)[];
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /**
   * Every leader kill split in three, where the survivors' Status answers
   * were recorded (ms): detection (SIGKILL until a survivor stopped naming the
   * killed leader: its election timeout fired), election (until a survivor
   * named a leader in a higher term), clients (until the first write invoked
   * after the SIGKILL succeeded). Null parts were not observed.
   */
  kills: KillSplit[];
  split: { part: 'detection' | 'election' | 'clients'; p50Ms: number | null; p99Ms: number | null; maxMs: number | null }[];
}

export interface KillSplit {
  atMs: number;
  totalMs: number | null;
  detectionMs: number | null;
  electionMs: number | null;
  clientsMs: number | null;
  newLeader?: string;
}

export interface Report {
  run: RunInfo;
  ops: { total: number; byKind: Record<string, Record<string, number>>; byOutcome: Record<string, number> };
  watch: { sessions: number; events: number };
  leases: { granted: number; keys: number };
  availability: Availability;
  checks: { checker: string; checked: number; violations: number; inconclusive: string[] }[];
  violations: { checker: string; message: string; detail?: string[] }[];
  faults: FaultRec[];
  timeline: { second: number; okOps: number; failedOps: number; unknownOps: number; p50Ms: number | null; p99Ms: number | null }[];
  passed: boolean;
}

export function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

const isWrite = (op: KvOp) => op.kind === 'put' || op.kind === 'cas' || op.kind === 'delete';

export function availability(h: History): Availability {
  const writes = h.kv.filter((o) => isWrite(o) && o.outcome === 'ok' && o.lease === undefined).sort((a, b) => a.invokeMs - b.invokeMs);
  const recoveriesMs: (number | null)[] = [];
  const kills: KillSplit[] = [];
  for (const f of h.faults) {
    if (f.kind !== 'kill-leader' || f.detail.startsWith('skipped') || f.detail.startsWith('failed')) continue;
    // From the SIGKILL itself where it was recorded (the fault starts a Status call earlier, finding the leader).
    const killMs = f.election?.killMs ?? f.startMs;
    const first = writes.find((w) => w.invokeMs >= killMs);
    const total = first ? Math.round(first.returnMs - killMs) : null;
    recoveriesMs.push(total);
    const e = f.election;
    const detectionMs = e?.detectMs !== undefined ? Math.round(e.detectMs - killMs) : null;
    const electionMs = e?.detectMs !== undefined && e.electedMs !== undefined ? Math.round(e.electedMs - e.detectMs) : null;
    const clientsMs = first && e?.electedMs !== undefined ? Math.round(first.returnMs - e.electedMs) : null;
    kills.push({ atMs: Math.round(killMs), totalMs: total, detectionMs, electionMs, clientsMs, ...(e?.newLeader ? { newLeader: e.newLeader } : {}) });
  }
  const stats = (xs: (number | null)[]) => {
    const known = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
    const missing = xs.some((x) => x === null);
    return { p50Ms: quantile(known, 0.5), p99Ms: missing ? null : quantile(known, 0.99), maxMs: missing ? null : (known[known.length - 1] ?? null) };
  };
  const parts = ['detection', 'election', 'clients'] as const;
  const key = { detection: 'detectionMs', election: 'electionMs', clients: 'clientsMs' } as const;
  return {
    recoveriesMs,
    ...stats(recoveriesMs),
    kills,
    split: kills.length === 0 ? [] : parts.map((part) => ({ part, ...stats(kills.map((k) => k[key[part]])) })),
  };
}

export function buildReport(run: RunInfo, h: History, checks: CheckResult[]): Report {
  const byKind: Record<string, Record<string, number>> = {};
  const byOutcome: Record<string, number> = { ok: 0, failed: 0, unknown: 0 };
  for (const op of h.kv) {
    const k = op.kind === 'get' ? (op.serializable ? 'get-serializable' : 'get') : op.kind;
    byKind[k] ??= { ok: 0, failed: 0, unknown: 0 };
    byKind[k]![op.outcome]!++;
    byOutcome[op.outcome]!++;
  }
  // A loop, not Math.max(...spread): a long run records more operations than
  // a call may take arguments (the stack overflows).
  let lastInvokeMs = 0;
  for (const op of h.kv) if (op.invokeMs > lastInvokeMs) lastInvokeMs = op.invokeMs;
  const seconds = Math.max(1, Math.ceil(lastInvokeMs / 1000));
  const timeline: Report['timeline'] = [];
  const buckets: { ok: number[]; failed: number; unknown: number }[] = Array.from({ length: seconds }, () => ({ ok: [], failed: 0, unknown: 0 }));
  for (const op of h.kv) {
    const b = buckets[Math.min(seconds - 1, Math.floor(op.invokeMs / 1000))]!;
    if (op.outcome === 'ok') b.ok.push(op.returnMs - op.invokeMs);
    else if (op.outcome === 'failed') b.failed++;
    else b.unknown++;
  }
  buckets.forEach((b, i) => {
    const s = b.ok.sort((x, y) => x - y);
    timeline.push({ second: i, okOps: s.length, failedOps: b.failed, unknownOps: b.unknown, p50Ms: quantile(s, 0.5), p99Ms: quantile(s, 0.99) });
  });
  const violations = checks.flatMap((c) => c.violations);
  return {
    run,
    ops: { total: h.kv.length, byKind, byOutcome },
    watch: { sessions: h.watches.length, events: h.watches.reduce((c, s) => c + s.responses.reduce((d, r) => d + r.events.length, 0), 0) },
    leases: { granted: h.leases.length, keys: h.leases.reduce((c, l) => c + l.keys.length, 0) },
    availability: availability(h),
    checks: checks.map((c) => ({ checker: c.checker, checked: c.checked, violations: c.violations.length, inconclusive: c.inconclusive })),
    violations,
    faults: h.faults,
    timeline,
    passed: violations.length === 0,
  };
}

export function summaryText(r: Report): string {
  const L: string[] = [];
  const ms = (x: number | null) => (x === null ? 'n/a' : `${x} ms`);
  L.push(`keelson chaos: ${r.run.target}, ${r.run.members} members, ${r.run.durationS} s, seed ${r.run.seed}, faults ${r.run.faults.join(',') || 'none'}`);
  L.push(`operations: ${r.ops.total} (ok ${r.ops.byOutcome.ok}, failed ${r.ops.byOutcome.failed}, unknown ${r.ops.byOutcome.unknown})`);
  for (const [k, v] of Object.entries(r.ops.byKind).sort()) L.push(`  ${k.padEnd(17)} ok ${v.ok}  failed ${v.failed}  unknown ${v.unknown}`);
  L.push(`watch: ${r.watch.sessions} sessions, ${r.watch.events} events; leases: ${r.leases.granted} granted, ${r.leases.keys} keys attached`);
  L.push(`faults: ${r.faults.length}`);
  for (const f of r.faults) L.push(`  ${(f.startMs / 1000).toFixed(1).padStart(6)} s  ${f.kind.padEnd(13)} ${f.detail}`);
  const a = r.availability;
  L.push(`availability: ${a.recoveriesMs.length} leader kills; writes resumed after p50 ${ms(a.p50Ms)}, p99 ${ms(a.p99Ms)}, max ${ms(a.maxMs)}` +
    (a.recoveriesMs.length ? ` (each: ${a.recoveriesMs.map((x) => (x === null ? 'never' : x)).join(', ')})` : ''));
  for (const p of a.split ?? []) L.push(`  ${p.part.padEnd(10)} p50 ${ms(p.p50Ms)}, p99 ${ms(p.p99Ms)}, max ${ms(p.maxMs)}`);
  L.push('checks:');
  for (const c of r.checks) {
    L.push(`  ${c.checker.padEnd(16)} ${c.violations === 0 ? 'ok' : `${c.violations} VIOLATION(S)`}  (${c.checked} checked${c.inconclusive.length ? `, ${c.inconclusive.length} inconclusive` : ''})`);
    for (const i of c.inconclusive.slice(0, 5)) L.push(`      inconclusive: ${i}`);
  }
  for (const v of r.violations.slice(0, 20)) {
    L.push(`VIOLATION [${v.checker}] ${v.message}`);
    for (const d of (v.detail ?? []).slice(0, 30)) L.push(`    ${d}`);
  }
  if (r.violations.length > 20) L.push(`... and ${r.violations.length - 20} more violations (report.json)`);
  for (const n of r.run.notes) L.push(`note: ${n}`);
  L.push(r.passed ? 'result: PASS (no violations)' : `result: FAIL (${r.violations.length} violations)`);
  return L.join('\n');
}

const faultColor: Record<string, string> = {
  'kill-leader': '#e74c3c', 'kill-follower': '#e67e22', 'kill-majority': '#8e44ad', pause: '#f1c40f', partition: '#3498db',
  delay: '#1abc9c', loss: '#95a5a6', wipe: '#34495e', compact: '#2ecc71',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Two stacked panels (ok ops per second; p50 and p99 latency, log scale) over a shared time axis, faults as bands. */
export function timelineSvg(r: Report): string {
  const W = 1000, padL = 60, padR = 140, panelH = 180, gap = 40, top = 40;
  const secs = Math.max(1, r.timeline.length);
  const x = (s: number) => padL + (s / secs) * (W - padL - padR);
  const maxOps = r.timeline.reduce((m, t) => Math.max(m, t.okOps + t.unknownOps + t.failedOps), 1);
  const lat = r.timeline.flatMap((t) => [t.p50Ms, t.p99Ms]).filter((v): v is number => v !== null && v > 0);
  const latMax = lat.reduce((m, v) => Math.max(m, v), 10);
  const y1 = (v: number) => top + panelH - (v / maxOps) * panelH;
  const y2top = top + panelH + gap;
  const y2 = (v: number) => y2top + panelH - (Math.log10(Math.max(1, v)) / Math.log10(latMax)) * panelH;
  const H = y2top + panelH + 60;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${padL}" y="20" font-size="14">${esc(`keelson chaos: ${r.run.target}, ${r.run.members} members, seed ${r.run.seed}: ${r.passed ? 'PASS' : 'FAIL'}`)}</text>`);
  for (const f of r.faults) {
    const x0 = x(f.startMs / 1000), x1 = Math.max(x0 + 2, x(f.endMs / 1000));
    const c = faultColor[f.kind] ?? '#999';
    out.push(`<rect x="${x0.toFixed(1)}" y="${top}" width="${(x1 - x0).toFixed(1)}" height="${(y2top + panelH - top).toFixed(1)}" fill="${c}" opacity="0.2"><title>${esc(`${f.kind}: ${f.detail}`)}</title></rect>`);
    out.push(`<line x1="${x0.toFixed(1)}" x2="${x0.toFixed(1)}" y1="${top}" y2="${y2top + panelH}" stroke="${c}" stroke-width="1.5"/>`);
    out.push(`<text transform="translate(${(x0 + 3).toFixed(1)},${top + 4}) rotate(90)" font-size="9" fill="${c}">${esc(f.kind)}</text>`);
  }
  // Panel frames and axes.
  for (const [yt, label] of [[top, 'ops/s (ok, unknown)'], [y2top, 'latency ms (p50, p99; log)']] as const) {
    out.push(`<rect x="${padL}" y="${yt}" width="${W - padL - padR}" height="${panelH}" fill="none" stroke="#333"/>`);
    out.push(`<text x="${padL}" y="${yt - 5}">${label}</text>`);
  }
  out.push(`<text x="${padL - 5}" y="${top + 10}" text-anchor="end">${maxOps}</text><text x="${padL - 5}" y="${top + panelH}" text-anchor="end">0</text>`);
  for (const v of [1, 10, 100, 1000, 10000]) {
    if (v > latMax * 1.01) break;
    out.push(`<text x="${padL - 5}" y="${y2(v) + 4}" text-anchor="end">${v}</text><line x1="${padL}" x2="${W - padR}" y1="${y2(v)}" y2="${y2(v)}" stroke="#ddd"/>`);
  }
  const step = Math.max(1, Math.ceil(secs / 20));
  for (let s = 0; s <= secs; s += step) out.push(`<text x="${x(s)}" y="${y2top + panelH + 15}" text-anchor="middle">${s}s</text>`);
  const line = (pts: [number, number][], color: string, w = 1.5) =>
    pts.length ? `<polyline fill="none" stroke="${color}" stroke-width="${w}" points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>` : '';
  out.push(line(r.timeline.map((t) => [x(t.second + 0.5), y1(t.okOps)]), '#2c3e50', 2));
  out.push(line(r.timeline.map((t) => [x(t.second + 0.5), y1(t.unknownOps)]), '#c0392b'));
  out.push(line(r.timeline.filter((t) => t.p50Ms !== null).map((t) => [x(t.second + 0.5), y2(t.p50Ms!)]), '#2980b9', 2));
  out.push(line(r.timeline.filter((t) => t.p99Ms !== null).map((t) => [x(t.second + 0.5), y2(t.p99Ms!)]), '#d35400'));
  // Legend.
  const legend: [string, string][] = [['ok ops', '#2c3e50'], ['unknown ops', '#c0392b'], ['p50', '#2980b9'], ['p99', '#d35400'],
    ...[...new Set(r.faults.map((f) => f.kind))].map((k) => [k, faultColor[k] ?? '#999'] as [string, string])];
  legend.forEach(([name, color], i) => {
    const ly = top + 10 + i * 16;
    out.push(`<rect x="${W - padR + 10}" y="${ly - 8}" width="10" height="10" fill="${color}"/><text x="${W - padR + 25}" y="${ly + 1}">${esc(name)}</text>`);
  });
  out.push(`<text x="${padL}" y="${H - 15}">${esc(`${r.ops.total} ops, ${r.faults.length} faults, ${r.violations.length} violations; leader kills: writes resumed p50 ${r.availability.p50Ms ?? 'n/a'} ms, max ${r.availability.maxMs ?? 'n/a'} ms`)}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

export function writeReport(dir: string, r: Report, h: History): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'summary.txt'), summaryText(r) + '\n');
  fs.writeFileSync(path.join(dir, 'report.json'), JSON.stringify(r, null, 1));
  fs.writeFileSync(path.join(dir, 'timeline.svg'), timelineSvg(r));
  writeHistory(path.join(dir, 'history.json'), h);
}

/**
 * Writes the history as one JSON document, piece by piece: a long run's
 * history (a 10-minute run records millions of watch events) is larger than
 * the longest string V8 can build, so it is never stringified whole. Each
 * operation, lease, fault and watch response is stringified on its own and
 * the pieces are written out in batches of about writeBatchBytes.
 * Infinity does not survive JSON; unknown returns are written as null.
 */
export function writeHistory(file: string, h: History): void {
  const writeBatchBytes = 1 << 20;
  const fd = fs.openSync(file, 'w');
  let buf: string[] = [];
  let size = 0;
  const put = (s: string) => {
    buf.push(s);
    size += s.length;
    if (size >= writeBatchBytes) flush();
  };
  const flush = () => {
    if (buf.length) fs.writeSync(fd, buf.join(''));
    buf = [];
    size = 0;
  };
  const j = (v: unknown) => JSON.stringify(v, (_k, x) => (x === Infinity ? null : x));
  const list = <T>(xs: readonly T[], one: (x: T) => void) => {
    put('[');
    xs.forEach((x, i) => { if (i > 0) put(',\n'); one(x); });
    put(']');
  };
  try {
    put('{');
    let first = true;
    for (const [k, v] of Object.entries(h)) {
      if (v === undefined) continue;
      put(`${first ? '' : ',\n'}${JSON.stringify(k)}:`);
      first = false;
      if (k === 'watches') {
        list(h.watches, (w) => {
          const { responses, ...rest } = w;
          const head = j(rest);
          put(`${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"responses":`);
          list(responses, (r) => put(j(r)));
          put('}');
        });
      } else if (Array.isArray(v)) {
        list(v as unknown[], (x) => put(j(x)));
      } else {
        put(j(v));
      }
    }
    put('}\n');
    flush();
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a history.json written by writeReport. */
export function readHistory(file: string): History {
  const bytes = fs.statSync(file).size;
  // V8 strings stop at about 2^29 characters; a bigger file cannot be parsed in one piece.
  if (bytes >= 2 ** 29) throw new Error(`${Math.round(bytes / 2 ** 20)} MiB is more than one JSON string can hold here; rerun with a shorter --duration to check a saved history`);
  const h = JSON.parse(fs.readFileSync(file, 'utf8')) as History;
  for (const op of h.kv) if (op.returnMs === null) op.returnMs = Infinity;
  for (const l of h.leases) {
    for (const k of l.keepAlives) if (k.returnMs === null) k.returnMs = Infinity;
    if (l.revoke && l.revoke.returnMs === null) l.revoke.returnMs = Infinity;
  }
  return h;
}
