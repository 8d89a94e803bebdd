// Durability of a single member under SIGKILL (see embedded-crash-run.ts).
import { test } from 'uvu';
import { crashTest } from './embedded-crash-run.ts';

test('SIGKILL (single member): every acknowledged put survives', () => crashTest('single', 3));

test.run();
