// The CI slice of the deterministic simulation (docs/simulation.md): a fixed
// set of seeds, 3 and 5 members, under both nemesis profiles; and the test
// of the checker itself: cores with a deliberately injected bug (a leader
// committing an earlier term's entry by counting replicas) must be caught,
// in the scripted Figure 8 scenario and on fixed random seeds.
//
// KEELSON_SIM_SLICE=asan (set by scripts/asan.sh) runs a smaller slice,
// because the sanitizer build is several times slower.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { membersForSeed, runSeed, type SimOptions } from './sim.ts';
import { runFigure8 } from './figure8.ts';

const asan = process.env.KEELSON_SIM_SLICE === 'asan';
const steps = 300;
const mixedSeeds = asan ? 20 : 120;
const churnSeeds = asan ? 10 : 80;

function replay(o: SimOptions): string {
  return `npm run sim -- --seed ${o.seed} --members ${o.members} --steps ${o.steps}${o.profile === 'churn' ? ' --profile churn' : ''}${o.testingBug ? ' --bug' : ''} --trace`;
}

function slice(profile: 'mixed' | 'churn', count: number): void {
  for (let seed = 1; seed <= count; seed++) {
    const o: SimOptions = { seed, members: membersForSeed(seed), steps, profile };
    const r = runSeed(o);
    if (!r.ok) assert.unreachable(`seed ${seed} (${o.members} members, ${profile}) failed at step ${r.step} (event ${r.events}): ${r.failure}\n  replay: ${replay(o)}`);
  }
}

test(`simulation slice: ${mixedSeeds} seeds, every fault`, () => {
  slice('mixed', mixedSeeds);
});

test(`simulation slice: ${churnSeeds} seeds, leader churn`, () => {
  slice('churn', churnSeeds);
});

test('a replayed seed runs exactly the same', () => {
  const o: SimOptions = { seed: 12345, members: 5, steps: 150 };
  const a = runSeed(o);
  const b = runSeed(o);
  assert.ok(a.ok, a.failure);
  assert.equal(b, a);
});

test('Figure 8 scripted: safe with the correct core', () => {
  for (const seed of asan ? [1] : [1, 2, 3, 4]) {
    const r = runFigure8({ bug: false, seed });
    assert.ok(r.unfolded, `seed ${seed}: the schedule did not unfold: ${r.failure}`);
    assert.ok(r.ok, `seed ${seed}: ${r.failure}\n${r.trace.join('\n')}`);
  }
});

test('Figure 8 scripted: the checker catches a leader committing an old-term entry by counting', () => {
  for (const seed of asan ? [1] : [1, 2, 3, 4]) {
    const r = runFigure8({ bug: true, seed });
    assert.ok(r.unfolded, `seed ${seed}: the schedule did not unfold: ${r.failure}`);
    assert.is(r.ok, false, `seed ${seed}: the injected bug went unnoticed`);
    assert.match(r.failure ?? '', /leader completeness|state machine safety/);
  }
});

// Seeds on which the leader-churn nemesis produces the Figure 8 schedule by
// itself (found by `npm run sim -- --seeds 300 --profile churn --bug`; 3 and 5 members); the
// same seeds pass with the correct core. A change to the core's timing
// behaviour changes the schedules: find them again then.
const bugSeeds = [7, 21, 42, 48, 58, 62, 76, 82];

test('random seeds: the checker catches the injected bug, and the same seeds pass without it', () => {
  for (const seed of asan ? bugSeeds.slice(0, 2) : bugSeeds) {
    const o: SimOptions = { seed, members: membersForSeed(seed), steps, profile: 'churn' };
    const good = runSeed(o);
    assert.ok(good.ok, `seed ${seed} fails with the correct core: ${good.failure}\n  replay: ${replay(o)}`);
    const bad = runSeed({ ...o, testingBug: 'commitPreviousTerm' });
    assert.is(bad.ok, false, `seed ${seed}: the injected bug went unnoticed\n  replay: ${replay({ ...o, testingBug: 'commitPreviousTerm' })}`);
    assert.match(bad.failure ?? '', /leader completeness|state machine safety|log matching|durability/);
  }
});

test('npm run sim: exit code 0 when seeds pass, 1 on a failure (with the replay command), 2 on bad usage', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const sim = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'node_modules/tsx/dist/cli.mjs'), path.join(root, 'test/sim/main.ts'), ...args], { encoding: 'utf8', env: process.env });
  const ok = sim('--seeds', '2', '--steps', '40');
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /2\/2 seeds passed/);
  const bad = sim('--seed', String(bugSeeds[0]), '--profile', 'churn', '--bug');
  assert.is(bad.status, 1, bad.stderr);
  assert.match(bad.stdout, new RegExp(`FAIL seed ${bugSeeds[0]} .* at step \\d+`));
  assert.match(bad.stdout, new RegExp(`replay: npm run sim -- --seed ${bugSeeds[0]} --members \\d --steps 300 --profile churn --bug`));
  for (const args of [['--members', '4'], ['--frobnicate'], ['--seed', '1', '--seeds', '2']]) {
    const r = sim(...args);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /usage: npm run sim/);
  }
});

test.run();
