// `keelson apiserver`: serve the Kubernetes API on a store.
import type { Command } from './main.ts';

export const apiserverCommand: Command = {
  name: 'apiserver',
  summary: 'serve the Kubernetes API on a store',
  usage: 'Usage: keelson apiserver ...',
  async run() {
    console.error('keelson apiserver: not available in this build yet');
    return 2;
  },
};
