// Restart time and memory of a keyspace holding N keys of 256 bytes
// (default 1,000,000; KEYS=n to change). Loads through Keyspace.apply in
// batches, closes, then measures open() in a fresh child process (so the
// loader's memory is not counted) and its RSS. Usage: npx tsx bench/mvcc-restart.ts
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Keyspace } from '../src/store/mvcc/keyspace.ts';
import { encodeProposal } from '../src/store/mvcc/requests.ts';
import { resultsDir } from './lib/results.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
if (process.argv[2] === 'open') {
  const rss0 = process.memoryUsage().rss;
  const t = performance.now();
  const ks = new Keyspace({ dir: process.argv[3] });
  const openMs = performance.now() - t;
  const r = ks.range({ key: Buffer.from('/k/'), rangeEnd: Buffer.from('/k0'), limit: 10 });
  const firstReadMs = performance.now() - t;
  console.log(JSON.stringify({ openMs, firstReadMs, applied: ks.appliedIndex(), rssBeforeBytes: rss0, rssAfterBytes: process.memoryUsage().rss, count: r.count }));
  await ks.close();
  process.exit(0);
}

const keys = Number(process.env.KEYS ?? 1_000_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-restart-'));
try {
  const ks = new Keyspace({ dir });
  const value = Buffer.alloc(256, 1);
  const t = performance.now();
  let index = 1;
  const inflight: Promise<void>[] = [];
  while (index <= keys) {
    const entries = [];
    for (let i = 0; i < 1000 && index <= keys; i++, index++) entries.push({ index, term: 1, data: encodeProposal({ id: index, req: { op: 'put', key: Buffer.from(`/k/${String(index).padStart(8, '0')}`), value } }) });
    inflight.push(ks.apply(entries));
    if (inflight.length > 4) await inflight.shift();
  }
  await Promise.all(inflight);
  await ks.flush();
  const loadMs = performance.now() - t;
  await ks.close();
  const fileBytes = fs.statSync(path.join(dir, 'keyspace.mdb')).size;
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'mvcc-restart.ts'), 'open', dir], { encoding: 'utf8' });
  const m = JSON.parse(child.stdout.trim().split('\n').pop() as string);
  const result = { keys, loadMs: Math.round(loadMs), putsPerSecond: Math.round(keys / (loadMs / 1000)), fileBytes, ...m, rssPerKeyBytes: Math.round((m.rssAfterBytes - m.rssBeforeBytes) / keys) };
  console.log(result);
  fs.writeFileSync(path.join(resultsDir(), 'mvcc-restart.json'), JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2) + '\n');
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
