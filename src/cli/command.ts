// What every `keelson` subcommand is, and the error that means "bad usage"
// (main.ts prints it with the command's usage and exits with code 2). Kept
// apart from main.ts so that a command's modules do not import the
// dispatcher, and through it every other command.

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
  /** Set when the command answers --help after a subcommand name itself (e.g. `keelson store put --help`). */
  handlesSubcommandHelp?: boolean;
}

export class UsageError extends Error {}
