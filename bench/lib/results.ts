// Where a benchmark writes its results: bench/results, or the directory named
// by KEELSON_BENCH_RESULTS. The CI slice of the benchmarks (test/bench) runs
// them briefly with a temporary directory there, so that a short run checks
// that they work without replacing the recorded numbers.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const defaultDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** The results directory, created if missing. */
export function resultsDir(): string {
  const dir = process.env.KEELSON_BENCH_RESULTS || defaultDir;
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
