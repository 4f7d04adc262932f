/*
 * What every section parser shares: the scanned sections and entries, the
 * report of errors (and warnings), reading one key's value, and the value
 * parsers more than one section kind uses.
 *
 * MUST guarantee:
 * - a value is read by the `ini` package from the entry's own line, so the
 *   model holds what ini would have read, never a second interpretation;
 * - a parser either returns a checked value or a Problem naming what was
 *   found and what would be right; nothing in between.
 */
import { parse as parseIni } from 'ini';
import { type Location, RuleError } from './model.js';
import { REFUSAL_ERRNOS, errnoNumber } from './names.js';

// ---- errors and warnings ---------------------------------------------------

/** Collects the errors (the file is refused) and warnings (it is not) of one file. */
export class Report {
  readonly errors: RuleError[] = [];
  readonly warnings: RuleError[] = [];
  constructor(readonly file: string) {}

  add(line: number | undefined, section: string | undefined, key: string | undefined, message: string): void {
    this.errors.push(new RuleError(this.file, line, section, key, message));
  }

  warn(line: number | undefined, section: string | undefined, key: string | undefined, message: string): void {
    this.warnings.push(new RuleError(this.file, line, section, key, message));
  }
}

/** What a value parser returns when the value is wrong: the messages. */
export class Problem {
  readonly messages: string[];
  constructor(...messages: string[]) { this.messages = messages; }
}

export const q = (s: string): string => JSON.stringify(s);

// ---- what the scan produces --------------------------------------------------

export interface Entry {
  key: string;
  line: number;
  text: string;
  /** Refused by the scan: counts as present, its value is not read. */
  unreadable?: true;
}

export interface Section {
  name: string;
  line: number;
  entries: Map<string, Entry>;
  /** false: unknown or unreadable; its keys are not checked. */
  live: boolean;
  /** A repeated section: its values are checked, the rest is the first one's business. */
  repeat: boolean;
}

export function at(file: string, s: Section): Location {
  return { file, line: s.line, section: s.name };
}

/** The line of a key the caller knows is present (for errors found across keys). */
export function lineOf(s: Section, key: string): number {
  return s.entries.get(key)!.line;
}

// ---- reading one key -------------------------------------------------------------

export const BAD = Symbol('bad value');
export type Read<T> = T | typeof BAD | undefined;   // undefined: the key is absent

/**
 * The value ini reads from the entry's own line (quotes, escapes and inline
 * comments as ini treats them). ini turns true/false/null into JSON values;
 * give them back as the words the admin wrote. undefined: ini did not see
 * the line as this key's (the scan should have refused it).
 */
function iniValue(entry: Entry): string | undefined {
  const value: unknown = parseIni(entry.text)[entry.key];
  if (typeof value === 'string') return value;
  return value === true || value === false || value === null ? String(value) : undefined;
}

export interface Keys { [key: string]: string }   // key -> what values it takes

export function read<T>(s: Section, keys: Keys, key: string, r: Report, parse: (v: string) => T | Problem): Read<T> {
  const entry = s.entries.get(key);
  if (!entry) return undefined;
  if (entry.unreadable) return BAD;
  const value = iniValue(entry);
  const out = value === undefined ? new Problem('this line cannot be read as key = value')
    : value === '' ? new Problem(`empty value; use ${keys[key]}`)
    // ini unquotes only a value that is all quoted: "a" ; comment stays "a"
    : /^["']/.test(value) ? new Problem(`${q(value)} has a stray quote; quote the whole value, comments go on their own line`)
    : parse(value);
  if (!(out instanceof Problem)) return out;
  for (const m of out.messages) r.add(entry.line, s.name, key, m);
  return BAD;
}

export function checkKeys(s: Section, keys: Keys, r: Report): void {
  const names = Object.keys(keys);
  const choices = `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
  for (const e of s.entries.values()) {
    if (!Object.hasOwn(keys, e.key)) r.add(e.line, s.name, e.key, `unknown key; use ${choices}`);
  }
}

export function missing(s: Section, keys: Keys, key: string, r: Report): typeof BAD {
  if (!s.repeat) r.add(s.line, s.name, key, `missing; add ${key} = ${keys[key]}`);
  return BAD;
}

// ---- value parsers shared by section kinds -------------------------------------

/** Decimal, or hexadecimal with 0x (ethertypes are written so). */
export function number(v: string, max: number): number | undefined {
  if (!/^(0|[1-9][0-9]{0,5}|0x[0-9a-fA-F]{1,4})$/.test(v)) return undefined;
  const n = Number(v);
  return n <= max ? n : undefined;
}

/** A comma-separated list, items trimmed, repeats dropped (first kept). */
export function splitList(v: string, what = 'name'): string[] | Problem {
  const items = v.split(',').map((s) => s.trim());
  if (items.includes('')) return new Problem(`empty ${what} in the list ${q(v)}; separate ${what}s with single commas`);
  return [...new Set(items)];
}

/** Parses each item of a comma-separated list (repeats dropped); every bad item is reported. */
export function eachItem<T>(v: string, what: string, parse: (item: string) => T | Problem, whats = `${what}s`): T[] | Problem {
  const items = v.split(',').map((s) => s.trim());
  const out: T[] = [];
  const messages = items.includes('') ? [`empty ${what} in the list ${q(v)}; separate ${whats} with single commas`] : [];
  for (const item of new Set(items.filter((i) => i !== ''))) {
    const x = parse(item);
    if (x instanceof Problem) messages.push(...x.messages);
    else out.push(x);
  }
  return messages.length > 0 ? new Problem(...messages) : out;
}

export const AS_CHOICES = 'root or deny';

/** `as = root` grants the call; `as = deny` refuses it with the section's errno. */
export function parseAs(v: string): 'root' | 'deny' | Problem {
  return v === 'root' || v === 'deny' ? v : new Problem(`unknown value ${q(v)}; use root (the call is performed as root) or deny (it is refused with errno)`);
}

export function parseAllowDeny(v: string): boolean | Problem {
  if (v === 'allow' || v === 'deny') return v === 'allow';
  return new Problem(`unknown value ${q(v)}; use allow or deny`);
}

export const ERRNO_CHOICES = `one of ${REFUSAL_ERRNOS.join(', ')}`;

export function parseErrno(v: string): number | Problem {
  const n = errnoNumber(v);
  if (n !== undefined && REFUSAL_ERRNOS.includes(v)) return n;
  const why = n === undefined ? `unknown errno ${q(v)}` : `${v} does not say "refused"`;
  return new Problem(`${why}; use ${ERRNO_CHOICES}`);
}
