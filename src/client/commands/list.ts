/*
 * stx-elevate list [--json]: ask the broker which programs we may run
 * elevated, and with which calls (like `sudo -l`). The broker answers from
 * its loaded rules and the kernel's view of us; nothing here decides.
 */
import yargs from 'yargs';
import { SysError } from '../../shared/native/libc.js';
import { ProtocolError, type Programs } from '../../shared/protocol.js';
import { BrokerConnection, unreachable } from '../broker-client.js';
import { ClientFailure } from './run.js';
import { LIST_USAGE } from './usage.js';
import { describesDenial } from '../../broker/rules/describe.js';

/** A rule's argument pattern for "no argument at all", as written (elevation.d(5)). */
const NO_ARGUMENTS = '""';

/** How long the broker may take to answer. */
const ANSWER_TIMEOUT_MS = 30_000;


/** `stx-elevate list ARGV...`: print the answer; 0, or 1 (one line) when there is none; usage errors exit 2. */
export async function listCommand(argv: string[], global: { socket: string }): Promise<number> {
  const parsed = yargs(argv)
    .scriptName('stx-elevate list')
    .usage(`${LIST_USAGE}\n\nList the programs you may run elevated and the calls the broker performs as root for them, `
      + 'as the broker\'s loaded rules and your identity (uid, groups, passwd entry) say.')
    .option('json', { type: 'boolean', default: false, describe: 'print the answer as one JSON object' })
    .parserConfiguration({ 'parse-positional-numbers': false })
    .strict()
    .version(false)
    .help()
    .fail((msg) => {
      process.stderr.write(`stx-elevate list: ${msg}\nusage: ${LIST_USAGE}\n`);
      process.exit(2);
    })
    .parseSync();
  try {
    const answer = await askBroker(global.socket);
    process.stdout.write(parsed.json ? `${JSON.stringify(asJson(answer))}\n` : humanList(answer));
    return 0;
  } catch (e) {
    if (!(e instanceof ClientFailure)) throw e;
    process.stderr.write(`stx-elevate: ${e.message}\n`);
    return 1;
  }
}

/** The broker's answer; ClientFailure for our own failures (no broker, refused, a bad answer). */
async function askBroker(socket: string): Promise<Programs> {
  let broker: BrokerConnection;
  try {
    broker = BrokerConnection.connect(socket);
  } catch (e) {
    throw new ClientFailure(unreachable(socket, e));
  }
  let answer;
  try {
    answer = await broker.list(ANSWER_TIMEOUT_MS);
  } catch (e) {
    if (e instanceof ProtocolError || e instanceof SysError) throw new ClientFailure(`cannot list programs from the broker at ${socket}: ${e.message}`);
    throw e;
  }
  if (answer.type === 'refused') throw new ClientFailure(answer.reason);
  if (answer.type === 'error') throw new ClientFailure(`the broker rejected the request: ${answer.reason}`);
  return answer;
}

function asJson(a: Programs): Omit<Programs, 'v' | 'type'> {
  return { uid: a.uid, user: a.user, programs: a.programs, omitted: a.omitted };
}

/** sudo -l's shape: who, then each program with its calls as root, indented. */
function humanList(a: Programs): string {
  const who = a.user ?? `uid ${a.uid}`;
  const lines: string[] = [];
  if (a.programs.length === 0 && a.omitted === 0) {
    lines.push(`${who} may not run any program through stx-elevate.`);
  } else {
    // The heading must not call a deny section's call one performed as root.
    const denies = a.programs.some((p) => p.calls.some(describesDenial));
    lines.push(`${who} may run through stx-elevate, with these calls as root${denies ? ' (or refused, where it says denied)' : ''}:`);
    for (const p of a.programs) {
      lines.push(`    ${p.path}${p.args === null ? '' : p.args === NO_ARGUMENTS ? ' (with no arguments)' : ` (with the arguments ${p.args})`}`);
      if (p.calls.length === 0) lines.push('        (no call as root)');
      for (const c of p.calls) lines.push(`        ${c}`);
    }
    if (a.omitted > 0) lines.push(`    (${a.omitted} more: the list exceeds what the broker can send in one answer)`);
  }
  return `${lines.join('\n')}\n`;
}
