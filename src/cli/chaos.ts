// `keelson chaos`: run the chaos harness against a store cluster.
import type { Command } from './main.ts';

export const chaosCommand: Command = {
  name: 'chaos',
  summary: 'run the chaos harness against a store cluster',
  usage: 'Usage: keelson chaos ...',
  async run() {
    console.error('keelson chaos: not available in this build yet');
    return 2;
  },
};
