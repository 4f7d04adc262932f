/*
 * stx-elevate: the unprivileged command. Its own failures print one line
 * and exit 1 (usage errors 2); otherwise it exits with the program's status.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { socketPath } from '../shared/defaults.js';
import { listCommand } from './commands/list.js';
import { ClientFailure, runProgram } from './commands/run.js';

/** Subcommands, one module each; their names are reserved: `stx-elevate -- NAME` runs a program called NAME. */
const COMMANDS = [listCommand];
const COMMAND_NAMES = COMMANDS.map((c) => String(c.command).split(' ')[0]);

function fail(message: string, status: number): never {
  process.stderr.write(`stx-elevate: ${message}\n`);
  process.exit(status);
}

/** Whether the first operand (after the global options, before any `--`) names a subcommand. */
function namesSubcommand(args: string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') return false;
    if (args[i] === '--socket') i++;
    else if (!args[i].startsWith('-')) return COMMAND_NAMES.includes(args[i]);
  }
  return false;
}

async function main(): Promise<void> {
  const args = hideBin(process.argv);
  const subcommand = namesSubcommand(args);
  const y = yargs(args)
    .scriptName('stx-elevate')
    .usage('$0 [--socket PATH] PROGRAM [ARGS...]\n$0 [--socket PATH] list [--json]\n\n'
      + 'Run PROGRAM as yourself; the stx-elevated broker performs, as root, only the calls its rule allows.\n'
      + 'A program named like a command runs as: $0 -- PROGRAM [ARGS...]')
    .option('socket', { type: 'string', describe: 'broker socket (default $STX_ELEVATE_SOCKET, else /run/stx-elevate/broker.sock)' })
    .version(false)
    .help()
    .fail((msg, err) => {
      if (err instanceof ClientFailure) fail(err.message, 1);
      if (err) throw err;
      fail(`${msg}\nTry 'stx-elevate --help'.`, 2);
    });
  for (const c of COMMANDS) y.command(c);
  if (subcommand) {
    // The command module parses its own options and runs.
    await y.parserConfiguration({ 'parse-positional-numbers': false }).parseAsync();
    return;
  }
  // A program's arguments are its own: stop parsing at the program's name.
  const parsed = y
    .parserConfiguration({ 'halt-at-non-option': true, 'parse-positional-numbers': false, 'unknown-options-as-args': false })
    .strictOptions()
    .parseSync();
  const [program, ...rest] = parsed._.map(String);
  if (!program) fail("no program given\nusage: stx-elevate [--socket PATH] PROGRAM [ARGS...]", 2);
  try {
    process.exit(await runProgram(socketPath(parsed.socket), program, rest));
  } catch (e) {
    if (e instanceof ClientFailure) fail(e.message, 1);
    throw e;
  }
}

void main();
