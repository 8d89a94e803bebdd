#!/usr/bin/env node
// Runs every uvu test file (test/**/*.test.ts) through tsx, each in its own
// process, plus the type check, and ends with the line `N passed, N failed`
// that CI reads. Usage: node scripts/run-tests.mjs [filter...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2);
const fileTimeoutMs = 15 * 60 * 1000;

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function run(cmd, args, label) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d); });
    const timer = setTimeout(() => { out += `\n${label}: timed out after ${fileTimeoutMs} ms\n`; child.kill('SIGKILL'); }, fileTimeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, signal, out: stripAnsi(out), ms: Date.now() - started });
    });
  });
}

let passed = 0;
let failed = 0;
const failures = [];

if (filters.length === 0) {
  console.log('# typecheck (tsc --noEmit)');
  const tsc = await run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', root], 'typecheck');
  if (tsc.code === 0) passed++; else { failed++; failures.push('typecheck'); }
}

const files = findTests(path.join(root, 'test')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
const tsxCli = path.join(root, 'node_modules/tsx/dist/cli.mjs');
for (const file of files) {
  const rel = path.relative(root, file);
  console.log(`# ${rel}`);
  const r = await run(process.execPath, [tsxCli, file], rel);
  const total = /Total:\s+(\d+)/.exec(r.out);
  const ok = /Passed:\s+(\d+)/.exec(r.out);
  if (!total || !ok) {
    failed++;
    failures.push(`${rel} (no uvu summary, exit ${r.code}${r.signal ? ' ' + r.signal : ''})`);
    continue;
  }
  const t = Number(total[1]);
  const p = Number(ok[1]);
  passed += p;
  const f = t - p;
  if (f > 0 || r.code !== 0) {
    failed += Math.max(f, 1);
    failures.push(`${rel} (${f} failed, exit ${r.code})`);
  }
  console.log(`# ${rel}: ${p}/${t} in ${(r.ms / 1000).toFixed(1)} s`);
}

if (failures.length) console.log(`\nFailed:\n  ${failures.join('\n  ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
