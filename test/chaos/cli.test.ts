import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../src/cli/main.ts';
import { writeReport, buildReport } from '../../src/chaos/report.ts';
import { checkAll } from '../../src/chaos/check/index.ts';
import type { History } from '../../src/chaos/history.ts';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const log = console.log, error = console.error;
  let out = '', err = '';
  console.log = (s: string) => { out += s + '\n'; };
  console.error = (s: string) => { err += s + '\n'; };
  try {
    return { code: await main(['chaos', ...args]), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('bad usage exits 2 with a clear message', async () => {
  for (const [args, msg] of [
    [['--members', '4'], '--members must be 3 or 5'],
    [['--faults', 'kill-leader,meteor'], 'unknown fault "meteor"'],
    [['--target', 'zookeeper'], '--target must be keelson or etcd'],
    [['--duration', 'soon'], '--duration must be a whole number'],
    [['--bogus', '1'], 'unknown option --bogus'],
    [['--endpoints', 'http://127.0.0.1:2379', '--faults', 'kill-leader'], 'need a cluster the harness starts'],
    [['--endpoints', 'nonsense'], 'is not a URL'],
  ] as const) {
    const r = await run([...args]);
    assert.is(r.code, 2, args.join(' '));
    assert.ok(r.err.includes(msg), `${args.join(' ')}: ${r.err}`);
  }
});

test('--help exits 0', async () => {
  const r = await run(['--help']);
  assert.is(r.code, 0);
  assert.ok(r.out.includes('--faults'));
});

test('--check reruns the checkers on a saved history: 0 when clean, 1 on a violation', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-chaos-cli-'));
  try {
    const h: History = {
      kv: [
        { id: 1, client: 0, kind: 'put', key: 'ka', value: '1', invokeMs: 0, returnMs: 1, outcome: 'ok', revision: 2 },
        { id: 2, client: 1, kind: 'put', key: 'ka', value: 'x', invokeMs: 1, returnMs: Infinity, outcome: 'unknown' },
        { id: 3, client: 0, kind: 'get', key: 'ka', readValue: '1', readModRevision: 2, invokeMs: 2, returnMs: 3, outcome: 'ok', revision: 2 },
      ],
      watches: [], leases: [], faults: [], prefix: 'k',
      finalState: { revision: 2, readMs: 5, keys: { ka: { value: '1', modRevision: 2 } } },
      hashes: [{ member: 'a', ok: true, revision: 2, hash: 5 }, { member: 'b', ok: true, revision: 2, hash: 5 }],
    };
    const report = buildReport({ target: 't', members: 2, seed: 1, durationS: 1, faults: [], endpoints: [], plan: [], notes: [] }, h, checkAll(h));
    writeReport(dir, report, h);
    assert.is((await run(['--check', path.join(dir, 'history.json')])).code, 0);
    h.kv.push({ id: 4, client: 0, kind: 'get', key: 'ka', readValue: null, readModRevision: 0, invokeMs: 10, returnMs: 11, outcome: 'ok', revision: 3 });
    writeReport(dir, report, h);
    const r = await run(['--check', path.join(dir, 'history.json')]);
    assert.is(r.code, 1);
    assert.ok(r.out.includes('VIOLATION [linearizability]'), r.out);
    assert.is((await run(['--check', path.join(dir, 'missing.json')])).code, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
