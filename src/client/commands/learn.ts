/*
 * stx-elevate learn [-u USER] [-o FILE] [--merge FILE] [--ask] [--timeout S] -- PROGRAM ARGS...
 *
 * Root only. Runs PROGRAM as USER as the broker would run it, under a
 * filter that traps every call that could need privilege; performs as root
 * those that would fail without it (--ask: those the admin permits), lets
 * the rest run with the user's credentials, and when the program has
 * exited writes the rule that grants exactly what it needed: to FILE, or to
 * standard output. The program's standard output then goes to standard
 * error, so that `learn ... > rule.conf` holds the rule alone.
 *
 * Exit 0 when the rule was written (whatever the program's status, which
 * is reported); 1 for learn's own failures; 2 for usage errors.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import yargs from 'yargs';
import { DEFAULT_EXEC_GROUP } from '../../shared/defaults.js';
import { closeQuietly, getpwnam, type Passwd } from '../../shared/native/libc.js';
import { BinaryError, type OpenBinary, openVerifiedBinary } from '../../broker/binary.js';
import { isInterpreter, runsCodeItIsGiven } from '../../broker/rules/parse-program.js';
import { ResolveError, resolveProgram } from '../resolve.js';
import { GRANT_ALL, NoTerminal, TerminalAsker } from '../learn/ask.js';
import { buildLearningFilter } from '../learn/filter.js';
import { LaunchError, execGroupGid, launch } from '../learn/launch.js';
import { OutputError, RuleOutput } from '../learn/output.js';
import { type Entry, Learned, type Policy } from '../learn/record.js';
import { type Merged, RuleFileError, mergeRule, newRuleText } from '../learn/rule-file.js';
import { describeCall } from '../learn/calls.js';
import { argsValue } from '../learn/rule-text.js';
import { LearningSupervisor } from '../learn/supervisor.js';
import { LEARN_USAGE } from './usage.js';

class LearnFailure extends Error {}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;
/** After --timeout's SIGTERM, how long the program has before SIGKILL. */
const KILL_GRACE_MS = 5000;

const say = (line: string): void => { process.stderr.write(`stx-elevate learn: ${line}\n`); };

function sha256(fd: number): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let n, at = 0; (n = readSync(fd, buf, 0, buf.length, at)) > 0; at += n) hash.update(buf.subarray(0, n));
  return hash.digest('hex');
}

/** -u USER, else the admin who ran sudo, else nobody; never root (root needs no rule, and learning as root shows nothing). */
function learningUser(name: string | undefined): Passwd {
  const wanted = name ?? process.env.SUDO_USER ?? 'nobody';
  const user = getpwnam(wanted);
  if (!user) throw new LearnFailure(`no user ${wanted} in the password database`);
  if (user.uid === 0) throw new LearnFailure(`${wanted} is root: a program run as root needs no rule; name the user it is for with -u USER`);
  return user;
}

interface Plan {
  path: string;
  argv: string[];
  user: Passwd;
  binary: OpenBinary;
  sha256: string;
  /** The rule the learned calls go into; `merge`: read from --merge FILE (read again when the program has ended). */
  base: { file: string; text: string; merge: boolean };
  output?: RuleOutput;
}

/** Everything checked before the program runs: a learning run can be long, and its result must be writable. */
function plan(argv: string[], opts: { user?: string; output?: string; merge?: string; force: boolean }): Plan {
  const [program, ...args] = argv;
  let path: string;
  try {
    path = resolveProgram(program);
  } catch (e) {
    if (e instanceof ResolveError) throw new LearnFailure(e.message);
    throw e;
  }
  const user = learningUser(opts.user);
  let binary: OpenBinary;
  try {
    binary = openVerifiedBinary(path);
  } catch (e) {
    if (e instanceof BinaryError) throw new LearnFailure(`${e.message}; the broker would refuse to run it`);
    throw e;
  }
  try {
    const digest = sha256(binary.fd);
    const output = opts.output === undefined ? undefined : resolve(opts.output);
    const merge = opts.merge === undefined ? undefined : resolve(opts.merge);
    let base: Plan['base'];
    if (merge) {
      let text: string;
      try {
        text = readFileSync(merge, 'utf8');
      } catch (e) {
        throw new LearnFailure(`cannot read ${merge}: ${(e as Error).message}`);
      }
      base = { file: merge, text, merge: true };
    } else {
      if (args.length === 0 && isInterpreter(path)) {
        throw new LearnFailure(`${basename(path)} with no arguments runs the code on its standard input, so a rule for it `
          + 'would grant the calls as root to any code; put that code in a root-owned script and learn the interpreter running the script');
      }
      const pin = runsCodeItIsGiven(path) ? argsValue(args) : undefined;
      // With * in their place the rule would give its grants to any code the user names there.
      if (pin && pin.loose.length > 0) {
        throw new LearnFailure(`${basename(path)} runs the code its arguments give, and the rule cannot pin `
          + `${pin.loose.map((a) => JSON.stringify(a)).join(', ')} (args words hold no white space, quote or backslash): `
          + `args = ${pin.text} would grant the calls as root to any code in its place; `
          + 'put that code in a root-owned script and learn the interpreter running the script');
      }
      base = {
        file: output ?? '<standard output>',
        text: newRuleText({ path, user: user.name, sha256: digest, args: pin?.text, origin: `learned by stx-elevate learn, running ${[path, ...args].join(' ')} as ${user.name}` }),
        merge: false,
      };
    }
    // The base must take the learned calls: fail now, not after the run.
    mergeRule(base.file, base.text, [], { path, user: user.name, sha256: digest, args });
    const out = output === undefined ? undefined : RuleOutput.open(output, {
      replace: output === merge || opts.force,
      exists: `${output} exists; give --force to replace it, or --merge ${opts.output} to add to it`,
    });
    return { path, argv: [program, ...args], user, binary, sha256: digest, base, output: out };
  } catch (e) {
    closeQuietly(binary.fd);
    if (e instanceof RuleFileError || e instanceof OutputError) throw new LearnFailure(e.message);
    throw e;
  }
}

/** Run the program under the learning supervisor; resolves with its exit status. */
async function run(p: Plan, learned: Learned, opts: { execGroup: string; timeout?: number; stdout: number }, onStart: (signal: (s: NodeJS.Signals) => void) => void): Promise<number> {
  const execGid = execGroupGid(opts.execGroup);
  const started = launch(p.user, execGid, p.binary, p.argv, buildLearningFilter(), opts.stdout);
  const { exited } = started;
  const signal = (s: NodeJS.Signals): void => started.kill(s);
  onStart(signal);
  let supervisor: LearningSupervisor | undefined;
  let timers: NodeJS.Timeout[] = [];
  try {
    const listener = await started.listener.catch(async (e: unknown) => {
      await exited;
      throw e;
    });
    supervisor = new LearningSupervisor(listener, { uid: p.user.uid, binary: p.binary, launcherPid: started.pid, name: basename(p.path) }, learned,
      (m) => say(m), () => supervisor?.close());
    if (opts.timeout !== undefined) {
      timers = [
        setTimeout(() => { say(`--timeout ${opts.timeout}: sending SIGTERM to ${basename(p.path)}`); signal('SIGTERM'); }, opts.timeout * 1000),
        setTimeout(() => signal('SIGKILL'), opts.timeout * 1000 + KILL_GRACE_MS),
      ];
      timers.forEach((t) => t.unref());
    }
    const status = await exited;
    const late = started.lateError();
    if (late) throw new LaunchError(late);
    return status;
  } finally {
    timers.forEach(clearTimeout);
    supervisor?.close();
  }
}

/**
 * The learned calls merged into the base rule. A --merge FILE is read
 * again first: a learning run can be long, and an admin's edits made
 * meanwhile must not be overwritten. If the edited file no longer takes
 * the calls, the rule merged into the file as it was is printed, so the
 * run is not lost, and learn fails without writing.
 */
function mergeLearned(p: Plan, calls: Entry[]): Merged {
  const identity = { path: p.path, user: p.user.name, sha256: p.sha256, args: p.argv.slice(1) };
  if (!p.base.merge) return mergeRule(p.base.file, p.base.text, calls, identity);
  let now: string;
  try {
    now = readFileSync(p.base.file, 'utf8');
  } catch (e) {
    say(`note: cannot read ${p.base.file} again (${(e as Error).message}): merging into its text from when learn started`);
    return mergeRule(p.base.file, p.base.text, calls, identity);
  }
  if (now === p.base.text) return mergeRule(p.base.file, now, calls, identity);
  say(`note: ${p.base.file} changed while ${basename(p.path)} ran: merging into its text as it is now`);
  try {
    return mergeRule(p.base.file, now, calls, identity);
  } catch (e) {
    if (!(e instanceof RuleFileError)) throw e;
    process.stdout.write(mergeRule(p.base.file, p.base.text, calls, identity).text);
    throw new LearnFailure(`${p.base.file} changed while ${basename(p.path)} ran and no longer takes the learned calls: ${e.message}; `
      + `nothing written: the rule merged into ${p.base.file} as it was when learn started is on standard output`);
  }
}

async function learn(argv: string[], opts: { user?: string; output?: string; merge?: string; force: boolean; ask: boolean; timeout?: number; execGroup: string }): Promise<number> {
  if (process.getuid!() !== 0) throw new LearnFailure('must run as root: it runs the program as another user and performs its privileged calls as root');
  const p = plan(argv, opts);
  const forward = { to: (_: NodeJS.Signals) => {} };
  let asker: TerminalAsker | undefined;
  try {
    let policy: Policy = GRANT_ALL;
    if (opts.ask) {
      try {
        asker = new TerminalAsker(basename(p.path));
      } catch (e) {
        if (e instanceof NoTerminal) throw new LearnFailure(e.message);
        throw e;
      }
      policy = asker;
    }
    const learned = new Learned(policy);
    // Learn outlives its program: a Ctrl-C or a kill of learn is for the program, and the rule is still written.
    const handlers = FORWARDED.map((s) => [s, () => forward.to(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    let status: number;
    try {
      status = await run(p, learned, { execGroup: opts.execGroup, timeout: opts.timeout, stdout: p.output ? 1 : 2 }, (f) => { forward.to = f; });
    } catch (e) {
      if (e instanceof LaunchError) {
        // The launcher enters the working directory as the user, as the broker's does with the client's.
        const hint = /fchdir/.test(e.message) ? ` (${p.user.name} cannot enter the current directory ${process.cwd()}; run learn from one it can)` : '';
        throw new LearnFailure(`could not start ${p.path}: ${e.message}${hint}`);
      }
      throw e;
    } finally {
      for (const [s, h] of handlers) process.off(s, h);
    }
    asker?.close();
    asker = undefined;
    for (const n of learned.notes) say(`note: ${n}`);
    for (const c of learned.unanswered()) say(`note: ${describeCall(c)} was still waiting for an answer when ${basename(p.path)} ended: not in the rule`);
    say(`${basename(p.path)} exited with status ${status}`);
    const merged = mergeLearned(p, [...learned.entries.values()]);
    for (const n of merged.notes) say(`note: ${n}`);
    let text = merged.text;
    if (merged.nothingAsRoot && !learned.sawPrivilegedCall()) {
      const why = `${p.path} made no call that needs privilege: it needs no rule (this one has no section as root)`;
      text += `; ${why}\n`;
      say(why);
    } else if (merged.nothingAsRoot) {
      say(`the rule has no section: ${basename(p.path)}'s calls that need privilege were permitted once or left unanswered`);
    }
    if (p.output) {
      p.output.write(text);
      say(`wrote ${p.output.file}`);
    } else {
      process.stdout.write(text);
    }
    return 0;
  } catch (e) {
    if (e instanceof RuleFileError || e instanceof OutputError) throw new LearnFailure(e.message);
    throw e;
  } finally {
    asker?.close();
    p.output?.close();
    closeQuietly(p.binary.fd);
  }
}

/** The command line after `learn`; the exit status. */
export async function learnCommand(argv: string[]): Promise<number> {
  const parsed = yargs(argv)
    .scriptName('stx-elevate learn')
    .usage(`${LEARN_USAGE}\n\nRun PROGRAM as USER under a learning filter (as root), perform as root the calls that need privilege, `
      + 'and write the rule that grants exactly those: to FILE, or to standard output (then the program\'s standard output goes to standard error). '
      + 'Exit 0 when the rule was written, 1 on failure, 2 on usage errors.')
    .option('user', { alias: 'u', type: 'string', describe: 'run PROGRAM as this user (default: $SUDO_USER, else nobody)' })
    .option('output', { alias: 'o', type: 'string', describe: 'write the rule to FILE (0644; an existing FILE needs --force or --merge FILE)' })
    .option('merge', { type: 'string', describe: 'add what is learned to the rule in FILE (for the same program)' })
    .option('force', { type: 'boolean', default: false, describe: 'replace an existing --output FILE' })
    .option('ask', { type: 'boolean', default: false, describe: 'ask on the terminal about each new privileged call' })
    .option('timeout', { type: 'number', describe: 'send PROGRAM SIGTERM after this many seconds (SIGKILL 5 s later)' })
    .option('exec-group', { type: 'string', default: DEFAULT_EXEC_GROUP, describe: 'the powerless group the broker uses as programs\' real gid' })
    .parserConfiguration({ 'halt-at-non-option': true, 'parse-positional-numbers': false, 'unknown-options-as-args': false })
    .strictOptions()
    .version(false)
    .help()
    .fail((msg) => {
      process.stderr.write(`stx-elevate learn: ${msg}\nusage: ${LEARN_USAGE}\n`);
      process.exit(2);
    })
    .parseSync();
  const rest = parsed._.map(String);
  if (rest.length === 0) {
    process.stderr.write(`stx-elevate learn: no program given\nusage: ${LEARN_USAGE}\n`);
    return 2;
  }
  if (parsed.timeout !== undefined && !(parsed.timeout > 0)) {
    process.stderr.write(`stx-elevate learn: --timeout takes a number of seconds above 0, not ${parsed.timeout}\nusage: ${LEARN_USAGE}\n`);
    return 2;
  }
  try {
    return await learn(rest, {
      user: parsed.user, output: parsed.output, merge: parsed.merge, force: parsed.force, ask: parsed.ask, timeout: parsed.timeout,
      execGroup: parsed['exec-group'],
    });
  } catch (e) {
    if (e instanceof LearnFailure) {
      say(e.message);
      return 1;
    }
    throw e;
  }
}
