/*
 * stx-elevated: the root daemon. Load the rules, listen, serve every
 * client and every program from one event loop.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import pino from 'pino';
import { DEFAULT_EXEC_GROUP, DEFAULT_RULES, socketPath } from '../shared/defaults.js';
import { closeQuietly, getgrnamGid } from '../shared/native/libc.js';
import { AuditError, defaultAuditTarget, openAudit, type Audit } from './audit.js';
import { BinaryError, openVerifiedBinary } from './binary.js';
import { CgroupError, openSessionCgroups, type SessionCgroups } from './cgroup.js';
import { LAUNCHER } from './launch.js';
import { DEFAULT_LIMITS, type Limits } from './quota.js';
import { MemoryReader } from './seccomp/memread.js';
import { loadRules } from './rules/load.js';
import type { RuleSet } from './rules/model.js';
import { sdNotify } from './sd-notify.js';
import { Server } from './server.js';
import { Watchers } from './watchers.js';
import { packageVersion } from '../shared/version.js';

const log = pino({ base: null, name: 'stx-elevated' }, pino.destination({ dest: 2, sync: true }));

function die(message: string, status = 1): never {
  process.stderr.write(`stx-elevated: ${message}\n`);
  process.exit(status);
}

/** Who besides root may watch the audit stream: like adm reading /var/log. */
const DEFAULT_WATCH_GROUP = 'adm';

/** sysexits.h EX_CONFIG: invalid rules, at start and for --check. */
const EX_CONFIG = 78;

/** --check: validate the rules as the broker would load them, start nothing, record nothing. */
function checkOnly(dir: string): never {
  const { rules, errors, warnings } = loadRules(dir);
  for (const w of warnings) process.stderr.write(`stx-elevated: warning: ${w}\n`);
  for (const e of errors) process.stderr.write(`stx-elevated: ${e}\n`);
  if (errors.length > 0) die(`the rules in ${dir} are invalid`, EX_CONFIG);
  const n = rules.files.length;
  process.stdout.write(`stx-elevated: the rules in ${dir} are valid (${n} file${n === 1 ? '' : 's'})\n`);
  process.exit(0);
}

function load(dir: string, audit: Audit): RuleSet | undefined {
  const { rules, errors, warnings } = loadRules(dir);
  for (const w of warnings) process.stderr.write(`stx-elevated: warning: ${w}\n`);
  if (errors.length > 0) {
    const lines = errors.map(String);
    audit.record('rules-rejected', { dir, errors: lines });
    for (const line of lines) process.stderr.write(`stx-elevated: ${line}\n`);
    return undefined;
  }
  audit.record('rules-loaded', { dir, files: rules.files, programs: [...rules.programs.keys()] });
  return rules;
}

/** libuv's thread pool size, as libuv read it at its start (bin/stx-elevated sets it). */
function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** Per-user caps and deadlines from the options; usage error (exit 2) when one is not a positive number. */
function limitsFrom(argv: Record<string, unknown>): Limits {
  const count = (key: string): number => {
    const v = argv[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) usage(`--${key} must be a positive integer`);
    return v;
  };
  const seconds = (key: string): number => {
    const v = argv[key];
    if (typeof v !== 'number' || !(v > 0) || v > 86400) usage(`--${key} must be a number of seconds above 0 (at most 86400)`);
    return Math.round(v * 1000);
  };
  return {
    ...DEFAULT_LIMITS,
    sessionsPerUser: count('max-sessions-per-user'),
    fdsPerUser: count('max-fds-per-user'),
    notificationsPerUser: count('max-notifications-per-user'),
    idleMs: seconds('idle-timeout'),
    refusalLimit: count('refusal-limit'),
    readDeadlineMs: seconds('read-timeout'),
    watchersPerUser: count('max-watchers-per-user'),
    watchers: count('max-watchers'),
  };
}

function usage(message: string): never {
  process.stderr.write(`stx-elevated: ${message}\nTry 'stx-elevated --help'.\n`);
  process.exit(2);
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

/** How long a shutdown waits for the killed sessions' cgroups to empty. */
const SHUTDOWN_CGROUP_MS = 2000;

function sessionCgroups(audit: Audit): SessionCgroups {
  try {
    // What a broker killed with SIGKILL left running is killed, and audited as any kill.
    const cgroups = openSessionCgroups((m) => log.warn(m), (r) =>
      audit.record('kill', { reason: `left running by a dead broker (pid ${r.broker})`, cgroup: r.cgroup, pids: r.pids }));
    log.info(cgroups.description);
    return cgroups;
  } catch (e) {
    if (!(e instanceof CgroupError)) throw e;
    die(`refusing to start: sessions could not be contained: ${e.message}. ` +
      'Mount cgroup v2, or start with --no-cgroups (a session\'s surviving children are then not killed, only cut off from elevated calls)');
  }
}

function main(): void {
  const argv = yargs(hideBin(process.argv))
    .scriptName('stx-elevated')
    .usage('$0 [options]\n\nThe stx-elevate broker: runs programs for users, performing as root only the calls their rules allow.')
    .version(false)
    .option('socket', { type: 'string', describe: 'listening socket (default $STX_ELEVATE_SOCKET, else /run/stx-elevate/broker.sock)' })
    .option('rules', { type: 'string', default: DEFAULT_RULES, describe: 'rules directory' })
    .option('audit', {
      type: 'string',
      describe: 'audit log: a file, - for standard output, journal (journald\'s native socket) or syslog (/dev/log) '
        + '(default: the journal where journald runs, else syslog where /dev/log exists, else standard error)',
    })
    .option('exec-group', { type: 'string', default: DEFAULT_EXEC_GROUP, describe: 'powerless group used as the programs\' real gid' })
    // yargs reads --no-cgroups as cgroups = false.
    .option('cgroups', {
      type: 'boolean', default: true,
      describe: 'each session in its own cgroup (v2), killed when it ends; --no-cgroups runs without: '
        + 'a session\'s surviving children are then not killed, only cut off from elevated calls',
    })
    .option('max-sessions-per-user', { type: 'number', default: DEFAULT_LIMITS.sessionsPerUser, describe: 'concurrent connections and sessions of one user' })
    .option('max-fds-per-user', { type: 'number', default: DEFAULT_LIMITS.fdsPerUser, describe: 'fds the broker holds for one user (passed by clients, taken from programs)' })
    .option('max-notifications-per-user', { type: 'number', default: DEFAULT_LIMITS.notificationsPerUser, describe: 'trapped calls of one user\'s programs in flight' })
    .option('idle-timeout', { type: 'number', default: DEFAULT_LIMITS.idleMs / 1000, describe: 'seconds a connection may stay without a request' })
    .option('refusal-limit', { type: 'number', default: DEFAULT_LIMITS.refusalLimit, describe: 'refused calls after which a session is killed' })
    .option('read-timeout', { type: 'number', default: DEFAULT_LIMITS.readDeadlineMs / 1000, describe: 'seconds a read of a program\'s memory may run before its session is killed' })
    .option('watch-group', { type: 'string', default: DEFAULT_WATCH_GROUP, describe: 'group whose members (besides root) may watch the audit stream (stx-elevate watch)' })
    .option('max-watchers-per-user', { type: 'number', default: DEFAULT_LIMITS.watchersPerUser, describe: 'connections of one user watching the audit stream' })
    .option('max-watchers', { type: 'number', default: DEFAULT_LIMITS.watchers, describe: 'connections watching the audit stream, all users together' })
    .option('check', { type: 'boolean', default: false, describe: 'validate the rules and exit: 0 valid, 78 invalid (starts nothing)' })
    .option('version', { type: 'boolean', describe: 'print the version and exit' })
    .strict()
    .help()
    .fail((msg) => usage(msg))
    .parseSync();
  if (argv.version) {
    process.stdout.write(`stx-elevated ${packageVersion()}\n`);
    process.exit(0);
  }
  const limits = limitsFrom(argv);
  if (argv.check) checkOnly(argv.rules);

  if (process.getuid?.() !== 0) die('must run as root');
  const audit = openAuditOrDie(argv.audit ?? defaultAuditTarget());
  const execGid = getgrnamGid(argv['exec-group']);
  if (execGid === undefined) die(`group ${argv['exec-group']} does not exist; create it with: groupadd --system ${argv['exec-group']}`);
  checkLauncher();
  const watchers = new Watchers(argv['watch-group'], (m) => log.warn(m));
  audit.listen((time, event, fields) => watchers.publish(time, event, fields));
  if (getgrnamGid(watchers.group) === undefined) {
    log.warn(`the watch group ${watchers.group} does not exist: only root may watch the audit stream (stx-elevate watch)`);
  }
  let rules = load(argv.rules, audit) ?? die(`refusing to start: the rules in ${argv.rules} are invalid`, EX_CONFIG);
  const cgroups = argv.cgroups ? sessionCgroups(audit) : undefined;

  let server: Server;
  try {
    server = new Server(socketPath(argv.socket), {
      rules: () => rules,
      audit,
      execGid,
      cgroups,
      log: (m) => log.warn(m),
      limits,
      reader: new MemoryReader(limits.readDeadlineMs, MemoryReader.capFor(threadPoolSize())),
      watchers,
    });
  } catch (e) {
    void cgroups?.close(0); // the subtree is still empty: removed at once
    throw e;
  }
  process.on('SIGHUP', () => {
    sdNotify('RELOADING=1', (m) => log.warn(m));
    // A broken file never loosens the policy: keep the rules we had.
    const next = load(argv.rules, audit);
    if (next) rules = next;
    sdNotify(`READY=1\nSTATUS=${next ? serving(rules) : `kept the previous rules: the rules in ${rules.dir} are invalid`}`, (m) => log.warn(m));
  });
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      sdNotify('STOPPING=1', (m) => log.warn(m));
      // Sessions kill their cgroups; the subtree goes once they are empty (bounded).
      server.close();
      audit.flush();
      void (cgroups?.close(SHUTDOWN_CGROUP_MS) ?? Promise.resolve()).finally(() => process.exit(0));
    });
  }
  process.on('uncaughtException', (e) => {
    // One session's bug must not take every user's session down.
    log.error({ err: e }, 'uncaught exception');
  });
  log.info(`listening on ${server.socketPath}`);
  sdNotify(`READY=1\nSTATUS=${serving(rules)}`, (m) => log.warn(m));
}

/** systemctl status's line: what the broker serves. */
function serving(rules: RuleSet): string {
  const n = rules.programs.size;
  return `serving ${n} program${n === 1 ? '' : 's'} from ${rules.dir}`;
}

function openAuditOrDie(target: string | undefined): Audit {
  try {
    return openAudit(target);
  } catch (e) {
    if (e instanceof AuditError) die(e.message);
    throw e;
  }
}

main();
