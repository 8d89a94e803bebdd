// `keelson up`: the all-in-one cluster. Until the API server exists it reports
// what is available.
import type { Command } from './main.ts';
import { addon } from '../native.ts';

export const upCommand: Command = {
  name: 'up',
  summary: 'start an all-in-one cluster on the embedded store',
  usage: 'Usage: keelson up [--data-dir DIR]\n\nStarts an all-in-one Keelson cluster.',
  async run() {
    console.log(`keelson ${addon.version}: native core loaded.`);
    return 0;
  },
};
