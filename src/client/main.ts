/*
 * stx-elevate: the unprivileged command. Its own failures print one line
 * and exit 1 (usage errors 2); otherwise it exits with the program's status.
 *
 * `stx-elevate WORD ...` runs the program WORD unless WORD is one of the
 * command names below, which are reserved (a new command is a change of
 * meaning for scripts that run a program of its name: say so in the
 * release notes); `stx-elevate -- WORD ...` always runs a program.
 */
import yargsParser from 'yargs-parser';
import { socketPath } from '../shared/defaults.js';
import { ClientFailure, runProgram } from './commands/run.js';
import { mark, report } from './timing.js';
import { CHECK_USAGE, COMPLETION_USAGE, LEARN_USAGE, LIST_USAGE, RESTORE_USAGE, SCAN_USAGE, STRIP_USAGE, WATCH_USAGE } from './commands/usage.js';

mark('loaded');

function fail(message: string, status: number): never {
  process.stderr.write(`stx-elevate: ${message}\n`);
  process.exit(status);
}

/**
 * Command names. A command gets
 * the arguments after its name and the options before it, prints its own
 * failures, and gives the exit status.
 */
type Command = (argv: string[], global: { socket: string }) => number | Promise<number>;

/** What yargs's completion script asks with (commands/completion.ts answers). */
const COMPLETION_KEY = '--get-yargs-completions';

/* Loaded on use: running a program (the common case, every second from
 * scripts) should not pay for the rule parser that `check` loads. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  check: async () => (await import('./commands/check.js')).checkCommand,
  list: async () => (await import('./commands/list.js')).listCommand,
  learn: async () => (await import('./commands/learn.js')).learnCommand,
  watch: async () => (await import('./commands/watch.js')).watchCommand,
  scan: async () => (await import('./commands/scan.js')).scanCommand,
  strip: async () => (await import('./commands/strip.js')).stripCommand,
  restore: async () => (await import('./commands/restore.js')).restoreCommand,
  completion: async () => (await import('./commands/completion.js')).completionCommand,
};

/** Where a command name stands in args: the first word that is not an option (or --socket's value), before any "--". */
function commandAt(args: string[]): number | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return undefined;
    if (a === '--socket') i++;
    else if (!a.startsWith('-')) return Object.hasOwn(COMMANDS, a) ? i : undefined;
  }
  return undefined;
}

/** How yargs reads the global options; the quick path below reads them the same way. */
const PARSER_CONFIGURATION = { 'halt-at-non-option': true, 'parse-positional-numbers': false, 'unknown-options-as-args': false };

/**
 * `stx-elevate [--socket PATH] PROGRAM ARGS...` read by yargs's own parser
 * alone: loading yargs whole costs ~50 ms, half of a `stx-elevate ping`,
 * on every run. Anything else (help, --version, an unknown or repeated
 * option, no program) returns undefined and goes to yargs, which words the
 * usage and the errors.
 */
function quickRun(args: string[]): { program: string; args: string[]; socket: string | undefined } | undefined {
  const { argv, error } = yargsParser.detailed(args, { string: ['socket'], configuration: PARSER_CONFIGURATION });
  if (error || Object.keys(argv).some((k) => k !== '_' && k !== 'socket')) return undefined;
  const socket: unknown = argv.socket;
  if (socket !== undefined && (typeof socket !== 'string' || socket === '')) return undefined;
  const [program, ...rest] = argv._.map(String);
  return program ? { program, args: rest, socket } : undefined;
}

async function run(socket: string | undefined, program: string, args: string[]): Promise<never> {
  try {
    const status = await runProgram(socketPath(socket), program, args);
    report();
    process.exit(status);
  } catch (e) {
    if (e instanceof ClientFailure) fail(e.message, 1);
    throw e;
  }
}

async function main(): Promise<void> {
  const all = process.argv.slice(2);
  if (all[0] === COMPLETION_KEY) {
    const { answerCompletion } = await import('./commands/completion.js');
    process.exit(answerCompletion(all.slice(1), Object.keys(COMMANDS).filter((name) => COMMANDS[name])));
  }
  const at = commandAt(all);
  const quick = at === undefined ? quickRun(all) : undefined;
  if (quick) await run(quick.socket, quick.program, quick.args);
  const { default: yargs } = await import('yargs');
  const parsed = yargs(at === undefined ? all : all.slice(0, at))
    .scriptName('stx-elevate')
    .usage('$0 [--socket PATH] PROGRAM [ARGS...]\n'
      + `${CHECK_USAGE}\n`
      + `${LIST_USAGE}\n`
      + `${SCAN_USAGE}\n`
      + `${STRIP_USAGE}\n`
      + `${RESTORE_USAGE}\n`
      + `${LEARN_USAGE}\n`
      + `${WATCH_USAGE}\n`
      + `${COMPLETION_USAGE}\n\n`
      + 'Run PROGRAM as yourself; the stx-elevated broker performs, as root, only the calls its rule allows.\n'
      + `Command names (${Object.keys(COMMANDS).join(', ')}) are reserved: write stx-elevate -- PROGRAM to run a program of such a name.`)
    // yargs's own --version reads package.json at every start: ours only when asked.
    .version(false)
    .option('socket', { type: 'string', requiresArg: true, describe: 'broker socket (default $STX_ELEVATE_SOCKET, else /run/stx-elevate/broker.sock)' })
    .option('version', { type: 'boolean', describe: 'print the version and exit' })
    .parserConfiguration(PARSER_CONFIGURATION)
    .strictOptions()
    // Two sockets, or an empty path, would leave which broker decides to chance.
    .check((argv) => !Array.isArray(argv.socket) || '--socket given more than once; give it once')
    .check((argv) => argv.socket !== '' || '--socket needs a path, e.g. --socket /run/stx-elevate/broker.sock')
    .help()
    .fail((msg) => fail(`${msg}\nTry 'stx-elevate --help'.`, 2))
    .parseSync();
  if (parsed.version) {
    const { packageVersion } = await import('../shared/version.js');
    process.stdout.write(`stx-elevate ${packageVersion()}\n`);
    process.exit(0);
  }
  if (at !== undefined) {
    const name = all[at];
    const command = await COMMANDS[name]();
    process.exit(await command(all.slice(at + 1), { socket: socketPath(parsed.socket) }));
  }
  const [program, ...args] = parsed._.map(String);
  if (!program) fail("no program given\nusage: stx-elevate [--socket PATH] PROGRAM [ARGS...]", 2);
  await run(parsed.socket, program, args);
}

void main();
