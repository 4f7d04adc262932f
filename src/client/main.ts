/*
 * stx-elevate: the unprivileged command. Its own failures print one line
 * and exit 1 (usage errors 2); otherwise it exits with the program's status.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { socketPath } from '../shared/defaults.js';
import { ClientFailure, runProgram } from './commands/run.js';

function fail(message: string, status: number): never {
  process.stderr.write(`stx-elevate: ${message}\n`);
  process.exit(status);
}

async function main(): Promise<void> {
  const parsed = yargs(hideBin(process.argv))
    .scriptName('stx-elevate')
    .usage('$0 [--socket PATH] PROGRAM [ARGS...]\n\nRun PROGRAM as yourself; the stx-elevated broker performs, as root, only the calls its rule allows.')
    .option('socket', { type: 'string', describe: 'broker socket (default $STX_ELEVATE_SOCKET, else /run/stx-elevate/broker.sock)' })
    .parserConfiguration({ 'halt-at-non-option': true, 'parse-positional-numbers': false, 'unknown-options-as-args': false })
    .strictOptions()
    .version(false)
    .help()
    .fail((msg) => fail(`${msg}\nTry 'stx-elevate --help'.`, 2))
    .parseSync();
  const [program, ...args] = parsed._.map(String);
  if (!program) fail("no program given\nusage: stx-elevate [--socket PATH] PROGRAM [ARGS...]", 2);
  try {
    process.exit(await runProgram(socketPath(parsed.socket), program, args));
  } catch (e) {
    if (e instanceof ClientFailure) fail(e.message, 1);
    throw e;
  }
}

void main();
