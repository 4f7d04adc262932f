/*
 * stx-elevate watch [--json] [--user USER] [--program PROGRAM]: the
 * broker's audit records as they are written (like `tail -f` of its log),
 * for root and the watch group's members. The broker decides who may
 * watch and applies the filters; a watcher that does not keep up is told
 * how many records it missed.
 */
import path from 'node:path';
import yargs from 'yargs';
import { SysError, getpwnam } from '../../shared/native/libc.js';
import { isWatchUser } from '../../shared/protocol.js';
import { BrokerConnection, type WatchMessage } from '../broker-client.js';
import { ResolveError, resolveProgram } from '../resolve.js';
import { WATCH_USAGE } from './usage.js';
import { droppedLine, humanLine } from '../watch-format.js';
import { terminalSafeJson } from '../../shared/terminal-safe.js';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function usage(message: string): never {
  process.stderr.write(`stx-elevate watch: ${message}\nusage: ${WATCH_USAGE}\n`);
  process.exit(2);
}

/** `stx-elevate watch ARGV...`: 0 when stopped by a signal (or a closed output), 1 when the broker refuses or goes away, 2 usage. */
export async function watchCommand(argv: string[], global: { socket: string }): Promise<number> {
  const parsed = yargs(argv)
    .scriptName('stx-elevate watch')
    .usage(`${WATCH_USAGE}\n\nPrint the broker's audit records as it writes them, one line each (time, event, user, program, `
      + 'call, result or reason), until interrupted. Root and members of the broker\'s watch group (stx-elevated --watch-group, '
      + 'default adm) may watch, and see every user\'s records.')
    .option('json', { type: 'boolean', default: false, describe: 'print each record as one JSON line, as the audit log has it' })
    .option('user', { type: 'string', describe: 'only the records of this user (a name or a uid)' })
    .option('program', { type: 'string', describe: 'only the records of this program (a path, or a name looked up in PATH)' })
    .parserConfiguration({ 'parse-positional-numbers': false })
    .strict()
    .version(false)
    .help()
    .fail((msg) => usage(msg))
    .parseSync();
  if (parsed._.length > 0) usage(`Unknown argument: ${parsed._.join(' ')}`);
  const user = parsed.user ?? null;
  if (user !== null && !isWatchUser(user)) usage(`--user ${JSON.stringify(user)} is neither a user name nor a uid`);
  // Records name users as the password database does: an unknown name would silently match nothing, forever.
  if (user !== null && !/^[0-9]+$/.test(user) && getpwnam(user) === undefined) {
    usage(`--user ${user}: no such user (give a uid to watch one that is not in the password database)`);
  }
  const program = parsed.program === undefined ? null : programPath(parsed.program);

  let broker: BrokerConnection;
  try {
    broker = BrokerConnection.connect(global.socket);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    return failure(`cannot reach the broker at ${global.socket}: ${e.message.replace(/^connect\(.*?\): /, '')} (is stx-elevated running?)`);
  }
  return new Promise((resolve) => {
    const finish = (status: number, message?: string): void => {
      broker.close();
      if (message !== undefined) process.stderr.write(`stx-elevate: ${message}\n`);
      resolve(status);
    };
    for (const s of STOP_SIGNALS) process.on(s, () => finish(0));
    // A reader that went away (`stx-elevate watch | head`) ends the watch, as it ends `tail -f`.
    process.stdout.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'EPIPE' ? 0 : 1, e.code === 'EPIPE' ? undefined : `standard output: ${e.message}`));
    const print = (line: string): void => {
      process.stdout.write(`${line}\n`);
    };
    broker.watchAudit(user, program, (m: WatchMessage | null) => {
      if (m === null) return finish(1, `the broker at ${global.socket} closed the connection`);
      switch (m.type) {
        case 'watching':
          return void process.stderr.write(`stx-elevate: watching the audit records of the broker at ${global.socket}; interrupt to stop\n`);
        case 'refused': return finish(1, m.reason);
        case 'error': return finish(1, `the broker rejected the request: ${m.reason}`);
        case 'event': return print(parsed.json ? terminalSafeJson(JSON.stringify(m.record)) : humanLine(m.record));
        case 'dropped': return print(parsed.json ? JSON.stringify({ dropped: m.count }) : droppedLine(m.count));
      }
    }, (e) => finish(1, `cannot watch the broker at ${global.socket}: ${e.message}`));
  });
}

function failure(message: string): number {
  process.stderr.write(`stx-elevate: ${message}\n`);
  return 1;
}

/**
 * The path the records name: the rules name canonical paths, so a name
 * is looked up in PATH and a path made canonical, as `stx-elevate PROGRAM`
 * does. A path that is not there (a program since removed) is taken as
 * written.
 */
function programPath(program: string): string {
  try {
    return resolveProgram(program);
  } catch (e) {
    if (!(e instanceof ResolveError)) throw e;
    if (path.isAbsolute(program)) return path.normalize(program);
    return usage(`--program ${program}: not found in PATH (give the program's path as its rule names it)`);
  }
}
