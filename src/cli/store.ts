// `keelson store`: run a store member with etcd's flag names (`serve`), and
// the client commands that speak the etcd v3 API to any member (or to etcd).
import type { Command } from './command.ts';
import { UsageError } from './command.ts';
import { clientCommands, globalUsage, runClientCommand } from './store/client-commands.ts';
// serve.ts (the member) and snapshot.ts (restore) load most of the store: a
// client command does not need them, so they are imported when used.
const serveModule = () => import('./store/serve.ts');
const snapshotModule = () => import('./store/snapshot.ts');

const usageText = (): string => `Usage: keelson store <command> [options]

Server:
  serve                 run a store member (etcd flag names; keelson store serve --help)

Client commands (etcd v3 API, work against Keelson members and etcd):
${Object.entries(clientCommands)
  .map(([name, c]) => `  ${name.padEnd(12)}${c.usage.split('   ')[0]!.slice(name.length + 1)}`)
  .join('\n')}
  snapshot    save FILE | status FILE | restore FILE --data-dir=D --name=N --initial-cluster=...

${globalUsage}

Exit codes: 0 ok, 1 the server refused the request, 2 bad usage, unreachable endpoint or corrupt file.`;

async function subUsage(name: string): Promise<string | null> {
  if (name === 'serve') return (await serveModule()).serveUsage;
  if (name === 'snapshot') return (await snapshotModule()).snapshotUsage;
  const c = clientCommands[name];
  if (!c) return null;
  return `Usage: keelson store ${c.usage}\n\n${globalUsage}`;
}

async function runSubcommand(name: string, rest: string[]): Promise<number> {
  if (name === 'serve') return await (await serveModule()).serve(rest);
  if (name === 'snapshot') {
    const [sub, ...more] = rest;
    if (sub === 'save') return await runClientCommand('snapshot-save', more);
    if (sub === 'status') return await (await snapshotModule()).snapshotStatus(more);
    if (sub === 'restore') return await (await snapshotModule()).snapshotRestore(more);
    throw new UsageError('snapshot needs a subcommand: save, status or restore');
  }
  return await runClientCommand(name, rest);
}

export const storeCommand: Command = {
  name: 'store',
  summary: 'run a store member (etcd flag names) and store client commands',
  // A getter: the subcommand list comes from client-commands.ts.
  get usage(): string {
    return usageText();
  },
  handlesSubcommandHelp: true,
  async run(args: string[]): Promise<number> {
    const [name, ...rest] = args;
    if (name === undefined) throw new UsageError('missing command');
    // main() answers `keelson store --help`; a subcommand's --help lands here.
    if (rest.includes('--help') || rest.includes('-h')) {
      const u = await subUsage(name);
      if (!u) throw new UsageError(`unknown command "${name}"`);
      console.log(u);
      return 0;
    }
    if (name !== 'serve' && name !== 'snapshot' && !clientCommands[name]) throw new UsageError(`unknown command "${name}"`);
    try {
      return await runSubcommand(name, rest);
    } catch (e) {
      // Bad usage of a known subcommand: its own usage, not the whole list.
      if (!(e instanceof UsageError)) throw e;
      console.error(`keelson store ${name}: ${e.message}\n\n${await subUsage(name)}`);
      return 2;
    }
  },
};
