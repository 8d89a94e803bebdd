// Entry point of the `keelson` command: dispatches to subcommands. Each
// subcommand answers --help; bad usage prints a message and exits with code 2.
import { apiserverCommand } from './apiserver.ts';
import { chaosCommand } from './chaos.ts';
import { storeCommand } from './store.ts';
import { upCommand } from './up.ts';

import { UsageError, type Command } from './command.ts';

const commands: Command[] = [upCommand, storeCommand, apiserverCommand, chaosCommand];

function topHelp(): string {
  const lines = ['Usage: keelson <command> [options]', '', 'Commands:'];
  for (const c of commands) lines.push(`  ${c.name.padEnd(12)}${c.summary}`);
  lines.push('', 'Run `keelson <command> --help` for a command\'s options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(topHelp());
    return name === undefined ? 2 : 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`keelson: unknown command "${name}"\n\n${topHelp()}`);
    return 2;
  }
  const helpAsked = cmd.handlesSubcommandHelp ? rest[0] === '--help' || rest[0] === '-h' : rest.includes('--help') || rest.includes('-h');
  if (helpAsked) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`keelson ${cmd.name}: ${e.message}\n\n${cmd.usage}`);
      return 2;
    }
    throw e;
  }
}
