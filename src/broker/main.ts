/*
 * stx-elevated: the root daemon. Load the rules, listen, serve every
 * client and every program from one event loop.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import pino from 'pino';
import { DEFAULT_EXEC_GROUP, DEFAULT_RULES, socketPath } from '../shared/defaults.js';
import { closeQuietly, getgrnamGid } from '../shared/native/libc.js';
import { openAudit, type Audit } from './audit.js';
import { BinaryError, openVerifiedBinary } from './binary.js';
import { LAUNCHER } from './launch.js';
import { loadRules } from './rules/load.js';
import type { RuleSet } from './rules/model.js';
import { Server } from './server.js';

const log = pino({ base: null, name: 'stx-elevated' }, pino.destination({ dest: 2, sync: true }));

function die(message: string): never {
  process.stderr.write(`stx-elevated: ${message}\n`);
  process.exit(1);
}

function load(dir: string, audit: Audit): RuleSet | undefined {
  const { rules, errors } = loadRules(dir);
  if (errors.length > 0) {
    const lines = errors.map(String);
    audit.record('rules-rejected', { dir, errors: lines });
    for (const line of lines) process.stderr.write(`stx-elevated: ${line}\n`);
    return undefined;
  }
  audit.record('rules-loaded', { dir, files: rules.files, programs: [...rules.programs.keys()] });
  return rules;
}

/** The launcher runs as root: it must be as safe as any elevated binary. */
function checkLauncher(): void {
  try {
    closeQuietly(openVerifiedBinary(LAUNCHER).fd);
  } catch (e) {
    if (e instanceof BinaryError) die(`unsafe launcher: ${e.message}`);
    throw e;
  }
}

function main(): void {
  const argv = yargs(hideBin(process.argv))
    .scriptName('stx-elevated')
    .usage('$0 [options]\n\nThe stx-elevate broker: runs programs for users, performing as root only the calls their rules allow.')
    .option('socket', { type: 'string', describe: 'listening socket (default $STX_ELEVATE_SOCKET, else /run/stx-elevate/broker.sock)' })
    .option('rules', { type: 'string', default: DEFAULT_RULES, describe: 'rules directory' })
    .option('audit', { type: 'string', describe: 'audit log: a file, or - for standard output (default: standard error)' })
    .option('exec-group', { type: 'string', default: DEFAULT_EXEC_GROUP, describe: 'powerless group used as the programs\' real gid' })
    .strict()
    .version(false)
    .help()
    .fail((msg) => {
      process.stderr.write(`stx-elevated: ${msg}\nTry 'stx-elevated --help'.\n`);
      process.exit(2);
    })
    .parseSync();

  if (process.getuid?.() !== 0) die('must run as root');
  const audit = openAudit(argv.audit);
  const execGid = getgrnamGid(argv['exec-group']);
  if (execGid === undefined) die(`group ${argv['exec-group']} does not exist; create it with: groupadd --system ${argv['exec-group']}`);
  checkLauncher();
  let rules = load(argv.rules, audit) ?? die(`refusing to start: the rules in ${argv.rules} are invalid`);
  const server = new Server(socketPath(argv.socket), {
    rules: () => rules,
    audit,
    execGid,
    log: (m) => log.warn(m),
  });
  process.on('SIGHUP', () => {
    // A broken file never loosens the policy: keep the rules we had.
    const next = load(argv.rules, audit);
    if (next) rules = next;
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      server.close();
      audit.flush();
      process.exit(0);
    });
  }
  process.on('uncaughtException', (e) => {
    // One session's bug must not take every user's session down.
    log.error({ err: e }, 'uncaught exception');
  });
  log.info(`listening on ${server.socketPath}`);
}

main();
