/*
 * `stx-elevate watch`'s human format: one line per audit record, as
 * TIME EVENT USER PROGRAM DETAIL (the call and its result or reason).
 *
 * MUST: never pass a control character through. Records carry what users
 * chose (argv, paths, reasons quoting them), and the watcher's terminal
 * must not take another user's escape sequences.
 */
import type { WatchedRecord } from '../shared/protocol.js';
import { escapeFormatCharacters } from '../shared/terminal-safe.js';

/** Control characters (C0, DEL, C1) and the backslash that starts an escape. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\\]/g;

/** A string with its control characters as \xNN (and "\" as "\\"), line separators and bidi controls as \u{XXXX}: one line, printable, in reading order. */
export function printable(s: string): string {
  return escapeFormatCharacters(s.replace(UNSAFE, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)));
}

function text(value: unknown): string {
  if (typeof value === 'string') return printable(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return printable(JSON.stringify(value) ?? 'undefined');
}

/** An argv element, quoted when it would not read as one word. */
function word(value: unknown): string {
  const s = text(value);
  return s === '' || /[\s'"]/.test(s) ? `'${s.replace(/'/g, "'\\''")}'` : s;
}

/** `name(key=value, ...)` */
function call(value: unknown): string {
  if (typeof value !== 'object' || value === null) return '-';
  const c = value as { name?: unknown; args?: unknown };
  const args = typeof c.args === 'object' && c.args !== null && !Array.isArray(c.args)
    ? Object.entries(c.args).filter(([, v]) => v !== null).map(([k, v]) => `${printable(k)}=${text(v)}`).join(', ')
    : '';
  return `${text(c.name ?? '?')}(${args})`;
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
const count = (value: unknown): number => (Array.isArray(value) ? value.length : 0);

/** What happened: the call and its result, or the reason, as the event has them. */
function detail(r: WatchedRecord): string {
  const reason = r.reason === undefined ? '' : `: ${text(r.reason)}`;
  switch (r.event) {
    case 'grant':
      return `${call(r.call)} = ${text(r.result)}${r.errno === undefined ? '' : ` ${text(r.errno)}`}${reason}`;
    case 'refuse':
      return `${call(r.call)} refused${r.errno === undefined ? '' : ` ${text(r.errno)}`}${reason}`;
    case 'launch':
      return `pid ${text(r.pid)}: ${Array.isArray(r.argv) ? r.argv.map(word).join(' ') : '-'}`;
    case 'exit':
      return `pid ${text(r.pid)}: ${r.signal ? `killed by ${text(r.signal)}, ` : ''}status ${text(r.status)}`;
    case 'kill':
      return `${text(r.reason)}${Array.isArray(r.pids) ? ` (pids ${r.pids.map(text).join(', ')})` : ''}`;
    case 'client-rejected':
      return `pid ${text(r.pid)}${reason}`;
    case 'rules-loaded':
      return `${text(r.dir)}: ${plural(count(r.files), 'file')}, ${plural(count(r.programs), 'program')}`;
    case 'rules-rejected':
      return `${text(r.dir)}: ${plural(count(r.errors), 'error')}${count(r.errors) > 0 ? `, first: ${text((r.errors as unknown[])[0])}` : ''}`;
    default: {
      const { time: _t, event: _e, uid: _u, user: _n, program: _p, ...rest } = r;
      return text(rest);
    }
  }
}

/** One record as a line (without its newline). */
export function humanLine(r: WatchedRecord): string {
  const user = typeof r.user === 'string' ? printable(r.user) : r.uid !== undefined ? `uid ${text(r.uid)}` : '-';
  const program = typeof r.program === 'string' ? printable(r.program) : '-';
  const omitted = Array.isArray(r.omitted) && r.omitted.length > 0 ? ` (too big to send whole: ${r.omitted.map(text).join(', ')} left out)` : '';
  return `${printable(r.time)} ${printable(r.event)} ${user} ${program} ${detail(r)}${omitted}`;
}

/** The notice for records this watcher missed. */
export function droppedLine(count: number): string {
  return `${plural(count, 'event')} dropped: this watcher did not read them in time`;
}
