// `keelson up` (npm start): the all-in-one cluster: an embedded store and the
// API server on it, with data in ./keelson-data and an admin kubeconfig.
// Started again on the same data dir, everything is still there.
import type { Command } from './command.ts';
import { parseApiFlags, runApiServer, untilSignal } from './apiserver.ts';

export const upCommand: Command = {
  name: 'up',
  summary: 'start an all-in-one cluster on the embedded store',
  usage: `Usage: keelson up [--data-dir DIR] [--port N] [--bind-address ADDR] [--token-file FILE] [--encryption-config FILE] [--insecure-port N]

Starts an embedded store and the Kubernetes API server on it (HTTPS, default
port 6443, data in ./keelson-data) and writes <data-dir>/admin.kubeconfig.
Stop it with Ctrl-C (SIGINT) or SIGTERM.`,
  async run(args) {
    const f = parseApiFlags(args, ['data-dir', 'port', 'bind-address', 'token-file', 'encryption-config', 'insecure-port'], { port: 6443 });
    const r = await runApiServer(f);
    console.log(`Keelson is up: API server at ${r.server.url}, data in ${f.dataDir}`);
    console.log(`\n  export KUBECONFIG=${r.server.kubeconfig}\n  kubectl get namespaces\n`);
    const sig = await untilSignal();
    console.log(`keelson up: ${sig}, stopping`);
    await r.stop();
    console.log('keelson up: stopped');
    return 0;
  },
};
