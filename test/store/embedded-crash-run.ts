// Shared by embedded-crash*.test.ts. Durability: a child process puts keys through an EmbeddedStore and is
// killed with SIGKILL at a seeded random moment, several times over. Every
// put it acknowledged before the kill must be there after a restart (the WAL
// was synced before the ack; lmdb commits that were not flushed are replayed
// from the WAL). Run for a single member and for a 3-member in-process
// cluster (all three killed at once).
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { EmbeddedCluster } from '../../src/store/embedded/cluster.ts';
import { tempDir } from './mvcc/helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const tsxLoader = path.join(root, 'node_modules/tsx/dist/loader.mjs');

function runAndKill(dir: string, mode: string, startAt: number, delayMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(tsxLoader).href, path.join(here, 'embedded-crash-child.ts'), dir, mode, String(startAt)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killed = false;
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (!killed && out.includes('ack ')) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`child exited ${code} ${signal}: ${err}`));
      else {
        // Only complete lines count: a line cut by the kill was not an ack we saw.
        const lines = out.split('\n').slice(0, -1);
        resolve(lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4))));
      }
    });
  });
}

export async function crashTest(mode: 'single' | 'cluster', kills: number): Promise<void> {
  const seed = Number(process.env.KEELSON_SEED ?? 7);
  let x = seed;
  const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
  const dir = tempDir(`keelson-embedded-crash-${mode}-`);
  let iteration = 0;
  try {
    let startAt = 0;
    let total = 0;
    for (iteration = 0; iteration < kills; iteration++) {
      const acked = await runAndKill(dir, mode, startAt, 100 + Math.floor(rand() * 400));
      assert.ok(acked.length > 0, 'the child acknowledged puts');
      let store: EmbeddedStore;
      let cluster: EmbeddedCluster | undefined;
      if (mode === 'single') store = new EmbeddedStore({ dataDir: dir, leaseTickMs: 0 });
      else {
        cluster = new EmbeddedCluster({ size: 3, dir, tickMs: 25, leaseTickMs: 0 });
        store = await cluster.waitForLeader();
      }
      try {
        for (const n of acked) {
          const r = await store.range(Buffer.from(`key-${n}`));
          assert.is(r.count, 1, `acknowledged key-${n} is present`);
        }
      } finally {
        if (cluster) await cluster.close();
        else await store.close();
      }
      total += acked.length;
      startAt = Math.max(startAt, ...acked) + 1000;
    }
    console.log(`embedded crash (${mode}): ${iteration} kills, ${total} acknowledged puts checked, seed ${seed}`);
  } catch (e) {
    console.error(`embedded crash test failed: mode=${mode} seed=${seed} iteration=${iteration} (rerun with KEELSON_SEED=${seed})`);
    throw e;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
