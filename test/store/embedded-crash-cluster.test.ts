// Durability of a 3-member in-process cluster killed at once with SIGKILL (see embedded-crash-run.ts).
import { test } from 'uvu';
import { crashTest } from './embedded-crash-run.ts';

test('SIGKILL (3-member cluster): every acknowledged put survives', () => crashTest('cluster', 2));

test.run();
