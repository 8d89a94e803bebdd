// `keelson store`: run a store member (etcd flag names) and store client commands.
import type { Command } from './main.ts';

export const storeCommand: Command = {
  name: 'store',
  summary: 'run a store member (etcd flag names) and store client commands',
  usage: 'Usage: keelson store ...',
  async run() {
    console.error('keelson store: not available in this build yet');
    return 2;
  },
};
