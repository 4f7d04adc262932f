/*
 * One rule file's text -> one ProgramRule, or every error in it.
 *
 * MUST guarantee:
 * - a file with any error yields no program (a broken file never loosens
 *   the policy), and every bad line is reported, not only the first;
 * - every value in the model was checked here; numbers are the kernel's;
 * - values are read by the `ini` package; the line scan below only finds
 *   line numbers, the section order and duplicates, and refuses every line
 *   that ini would read differently from what it looks like (a section
 *   header with a trailing comment is a key to ini, for one).
 *
 * The grammar lives in sectionKind and the key tables (PROGRAM_KEYS,
 * SOCKET_KEYS); a new section kind is a branch, a key table and a builder.
 */
import { parse as parseIni } from 'ini';
import { posix } from 'node:path';
import { type CallRule, type Location, type ProgramRule, RuleError, type SocketRule } from './model.js';
import {
  AF_INET, AF_INET6, AF_LAST, AF_PACKET, AF_UNIX, AF_UNSPEC, EPERM, IPPROTO_ICMP, IPPROTO_ICMPV6,
  IPPROTO_IP, IPPROTO_RAW, REFUSAL_ERRNOS, RULE_DOMAINS, RULE_ETHERTYPES, RULE_PROTOCOLS, RULE_TYPES,
  SOCK_DGRAM, SOCK_LAST, SOCK_RAW, SOCK_SEQPACKET, SOCK_STREAM, domainName, errnoNumber,
  typeName,
} from './names.js';

// ---- errors ----------------------------------------------------------------

/** Collects the errors of one file. */
class Report {
  readonly errors: RuleError[] = [];
  constructor(readonly file: string) {}

  add(line: number | undefined, section: string | undefined, key: string | undefined, message: string): void {
    this.errors.push(new RuleError(this.file, line, section, key, message));
  }
}

/** What a value parser returns when the value is wrong: the messages. */
class Problem {
  readonly messages: string[];
  constructor(...messages: string[]) { this.messages = messages; }
}

const q = (s: string): string => JSON.stringify(s);

// ---- 1. scan: sections, keys, line numbers ---------------------------------

interface Entry {
  key: string;
  line: number;
  text: string;
  /** Refused by the scan: counts as present, its value is not read. */
  unreadable?: true;
}

interface Section {
  name: string;
  line: number;
  entries: Map<string, Entry>;
  /** false: unknown or unreadable; its keys are not checked. */
  live: boolean;
  /** A repeated section: its values are checked, the rest is the first one's business. */
  repeat: boolean;
}

/** ini's own pattern for a section line; anything else starting with '[' is refused. */
const HEADER = /^\[([^\]]*)\]\s*$/;
/** Lines ini skips: empty, blank, or a comment. */
const SKIPPED = /^\s*([;#]|$)/;
/**
 * Control characters (tab aside) and the Unicode line separators, which
 * ini's line pattern does not match: such a line would be skipped by ini.
 */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/;

/**
 * The file's sections in order. Values are read line by line, so a section
 * ini would misread (a bad header, a repeated section) can still have its
 * keys checked: the file is refused anyway, and the admin sees every error.
 */
function scan(text: string, r: Report): Section[] {
  const sections: Section[] = [];
  let current: Section | undefined;
  // ini splits lines on any run of \r and \n; count each break for the numbers
  text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/).forEach((raw, i) => {
    const line = i + 1;
    if (CONTROL.test(raw)) {
      r.add(line, current?.name || undefined, undefined, 'contains a control character; remove it');
      keepUnreadable(raw, line, current);
      return;
    }
    if (SKIPPED.test(raw)) return;
    const header = HEADER.exec(raw);
    if (header) {
      current = openSection(header[1].trim(), line, sections, r);
    } else if (raw.trim().startsWith('[')) {
      current = malformedSection(raw, line, sections, r);
    } else {
      addEntry(raw, line, current, r);
    }
  });
  return sections;
}

function openSection(name: string, line: number, sections: Section[], r: Report): Section {
  const first = sections.find((s) => s.name === name);
  const kind = sectionKind(name);
  if (first) r.add(line, name, undefined, `duplicate section (first at line ${first.line}); merge the two into one`);
  else if (kind instanceof Problem) r.add(line, name, undefined, kind.messages[0]);
  const live = first ? first.live : !(kind instanceof Problem);
  const section: Section = { name, line, entries: new Map(), live, repeat: first !== undefined };
  sections.push(section);
  return section;
}

/** A header ini would misread still names its section when it can. */
function malformedSection(raw: string, line: number, sections: Section[], r: Report): Section {
  r.add(line, undefined, undefined,
    `malformed section header ${q(raw.trim())}; write [name] alone on its line, comments on a line of their own`);
  const name = /^\s*\[([^\]]*)\]/.exec(raw)?.[1].trim();
  if (name === undefined) return { name: '', line, entries: new Map(), live: false, repeat: false };
  return openSection(name, line, sections, r);
}

/** The key of a refused line still counts, so it is not also reported missing. */
function keepUnreadable(raw: string, line: number, section: Section | undefined): void {
  const key = raw.slice(0, Math.max(0, raw.indexOf('='))).trim();
  if (key !== '' && section?.live && !section.entries.has(key)) {
    section.entries.set(key, { key, line, text: raw, unreadable: true });
  }
}

function addEntry(raw: string, line: number, section: Section | undefined, r: Report): void {
  const eq = raw.indexOf('=');
  const where = section && section.name !== '' ? section.name : undefined;
  if (eq < 0) {
    r.add(line, where, undefined, `expected key = value, found ${q(raw.trim())}`);
    return;
  }
  const key = raw.slice(0, eq).trim();
  if (key === '') {
    r.add(line, where, undefined, `missing key before "=" in ${q(raw.trim())}`);
  } else if (!section) {
    r.add(line, undefined, key, 'key outside any section; put it under [program] or [socket.NAME]');
  } else if (!section.live) {
    // the section itself was reported; its keys cannot be judged
  } else if (section.entries.has(key)) {
    const first = section.entries.get(key)!;
    r.add(line, section.name, key, `duplicate key (first at line ${first.line}); keep one`);
  } else {
    section.entries.set(key, { key, line, text: raw });
  }
}

// ---- 2. values: read by ini, checked by a parser per key -------------------

const BAD = Symbol('bad value');
type Read<T> = T | typeof BAD | undefined;   // undefined: the key is absent

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

interface Keys { [key: string]: string }   // key -> what values it takes

function read<T>(s: Section, keys: Keys, key: string, r: Report, parse: (v: string) => T | Problem): Read<T> {
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

function checkKeys(s: Section, keys: Keys, r: Report): void {
  const names = Object.keys(keys);
  const choices = `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
  for (const e of s.entries.values()) {
    if (!Object.hasOwn(keys, e.key)) r.add(e.line, s.name, e.key, `unknown key; use ${choices}`);
  }
}

function missing(s: Section, keys: Keys, key: string, r: Report): typeof BAD {
  if (!s.repeat) r.add(s.line, s.name, key, `missing; add ${key} = ${keys[key]}`);
  return BAD;
}

/** Decimal, or hexadecimal with 0x (ethertypes are written so). */
function number(v: string, max: number): number | undefined {
  if (!/^(0|[1-9][0-9]{0,5}|0x[0-9a-fA-F]{1,4})$/.test(v)) return undefined;
  const n = Number(v);
  return n <= max ? n : undefined;
}

// ---- 3. [program] ----------------------------------------------------------

const PROGRAM_KEYS: Keys = {
  path: '/absolute/path/of/the/program',
  users: '* or a list of user names',
  groups: 'a list of group names',
  'sandboxed-clients': 'allow or deny',
};

/** POSIX portable user and group names, as useradd accepts them. */
const NAME = /^[a-z_][a-z0-9_-]*\$?$/;
const NAME_RULE = 'use lowercase letters, digits, "_" and "-" (not first), at most 32 characters';

function parsePath(v: string): string | Problem {
  if (!v.startsWith('/')) return new Problem(`${q(v)} is not absolute; use the full path, e.g. /usr/bin/ping`);
  const parts = v.split('/').slice(1);
  if (parts.every((p) => p !== '' && p !== '.' && p !== '..')) return v;
  const canonical = posix.normalize(v).replace(/\/+$/, '');
  const hint = canonical === '' ? "name the program's file" : `write ${q(canonical)}`;
  return new Problem(`${q(v)} is not canonical (no ".", "..", "//" or trailing "/"); ${hint}`);
}

function splitList(v: string): string[] | Problem {
  const items = v.split(',').map((s) => s.trim());
  if (items.includes('')) return new Problem(`empty name in the list ${q(v)}; separate names with single commas`);
  return [...new Set(items)];
}

function badNames(items: string[], what: string): Problem | undefined {
  const bad = items.filter((n) => !NAME.test(n) || n.length > 32);
  if (bad.length === 0) return undefined;
  return new Problem(...bad.map((n) => `${q(n)} is not a valid ${what} name; ${NAME_RULE}`));
}

function parseUsers(v: string): '*' | string[] | Problem {
  const items = splitList(v);
  if (items instanceof Problem) return items;
  if (items.includes('*')) {
    if (items.length === 1) return '*';
    return new Problem('"*" must stand alone; write users = * for every user, or list names without it');
  }
  return badNames(items, 'user') ?? items;
}

function parseGroups(v: string): string[] | Problem {
  const items = splitList(v);
  if (items instanceof Problem) return items;
  if (items.includes('*')) return new Problem('"*" is not a group name; write users = * for every user');
  return badNames(items, 'group') ?? items;
}

function parseSandboxedClients(v: string): boolean | Problem {
  if (v === 'allow' || v === 'deny') return v === 'allow';
  return new Problem(`unknown value ${q(v)}; use allow or deny`);
}

type Program = Omit<ProgramRule, 'calls'>;

function buildProgram(s: Section, file: string, r: Report): Program | undefined {
  checkKeys(s, PROGRAM_KEYS, r);
  const path = read(s, PROGRAM_KEYS, 'path', r, parsePath) ?? missing(s, PROGRAM_KEYS, 'path', r);
  const users = read(s, PROGRAM_KEYS, 'users', r, parseUsers);
  const groups = read(s, PROGRAM_KEYS, 'groups', r, parseGroups);
  const sandboxed = read(s, PROGRAM_KEYS, 'sandboxed-clients', r, parseSandboxedClients);
  if (users === undefined && groups === undefined && !s.repeat) {
    r.add(s.line, s.name, undefined,
      'names no users or groups; add users = * (every user), users = a list of names, or groups = a list of groups');
  }
  if (path === BAD || users === BAD || groups === BAD || sandboxed === BAD) return undefined;
  if (users === undefined && groups === undefined) return undefined;
  return { at: at(file, s), file, path, users: users ?? [], groups: groups ?? [], sandboxedClients: sandboxed ?? false };
}

function at(file: string, s: Section): Location {
  return { file, line: s.line, section: s.name };
}

// ---- 4. [socket.NAME] ------------------------------------------------------

const DOMAIN_CHOICES = 'inet, inet6, packet or a number 0-45';
const TYPE_CHOICES = 'stream, dgram, raw, seqpacket, rdm or a number 1-10';
const PROTOCOL_CHOICES = 'a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255';
const ETHERTYPE_CHOICES = 'all, ip, arp, ipv6 or a number 0-65535';
const ERRNO_CHOICES = `one of ${REFUSAL_ERRNOS.join(', ')}`;

const SOCKET_KEYS: Keys = {
  as: 'root',
  domain: DOMAIN_CHOICES,
  type: TYPE_CHOICES,
  protocol: PROTOCOL_CHOICES,
  'header-included': 'allow or deny',
  errno: ERRNO_CHOICES,
};

function parseAs(v: string): 'root' | Problem {
  return v === 'root' ? v : new Problem(`unknown identity ${q(v)}; only as = root is supported for now`);
}

function parseDomain(v: string): number | Problem {
  const n = RULE_DOMAINS.get(v) ?? number(v, AF_LAST);
  if (n === undefined) return new Problem(`unknown domain ${q(v)}; use ${DOMAIN_CHOICES}`);
  if (n === AF_UNSPEC) return new Problem(`0 (unspec) is no socket domain; use ${DOMAIN_CHOICES.replace('0-45', '1-45')}`);
  if (n === AF_UNIX) return new Problem(`${q(v)} is the unix domain, which needs no privilege; remove this section`);
  return n;
}

function parseType(v: string): number | Problem {
  const n = RULE_TYPES.get(v) ?? number(v, SOCK_LAST);
  return n === undefined || n === 0 ? new Problem(`unknown type ${q(v)}; use ${TYPE_CHOICES}`) : n;
}

function parseHeaderIncluded(v: string): boolean | Problem {
  if (v === 'allow' || v === 'deny') return v === 'allow';
  return new Problem(`unknown value ${q(v)}; use allow or deny`);
}

function parseErrno(v: string): number | Problem {
  const n = errnoNumber(v);
  if (n !== undefined && REFUSAL_ERRNOS.includes(v)) return n;
  const why = n === undefined ? `unknown errno ${q(v)}` : `${v} does not say "refused"`;
  return new Problem(`${why}; use ${ERRNO_CHOICES}`);
}

/** The protocol depends on the domain: an IP protocol, an ethertype, or a bare number. */
function protocolParser(domain: Read<number>): (v: string) => number | Problem {
  if (domain === AF_INET || domain === AF_INET6) {
    return (v) => RULE_PROTOCOLS.get(v) ?? number(v, 255)
      ?? new Problem(`unknown protocol ${q(v)}; use ${PROTOCOL_CHOICES}`);
  }
  if (domain === AF_PACKET) {
    return (v) => RULE_ETHERTYPES.get(v) ?? number(v, 0xffff)
      ?? new Problem(`unknown ethertype ${q(v)}; use ${ETHERTYPE_CHOICES}`);
  }
  if (typeof domain === 'number') {
    return (v) => number(v, 255)
      ?? new Problem(`unknown protocol ${q(v)}; domain ${domain} takes a number 0-255 (names are for inet and inet6)`);
  }
  // the domain is wrong or missing: still catch a protocol no domain would take
  return (v) => RULE_PROTOCOLS.get(v) ?? RULE_ETHERTYPES.get(v) ?? number(v, 0xffff)
    ?? new Problem(`unknown protocol ${q(v)}; use ${PROTOCOL_CHOICES}`);
}

interface SocketFields { domain: number; type: number; protocol: number; headerIncluded: boolean | undefined }

function buildSocket(s: Section, file: string, r: Report): SocketRule | undefined {
  checkKeys(s, SOCKET_KEYS, r);
  const as = read(s, SOCKET_KEYS, 'as', r, parseAs) ?? missing(s, SOCKET_KEYS, 'as', r);
  const domain = read(s, SOCKET_KEYS, 'domain', r, parseDomain) ?? missing(s, SOCKET_KEYS, 'domain', r);
  const type = read(s, SOCKET_KEYS, 'type', r, parseType) ?? missing(s, SOCKET_KEYS, 'type', r);
  const protocol = read(s, SOCKET_KEYS, 'protocol', r, protocolParser(domain))
    ?? missing(s, SOCKET_KEYS, 'protocol', r);
  const headerIncluded = read(s, SOCKET_KEYS, 'header-included', r, parseHeaderIncluded);
  const errno = read(s, SOCKET_KEYS, 'errno', r, parseErrno);
  if (as === BAD || domain === BAD || type === BAD || protocol === BAD || headerIncluded === BAD || errno === BAD) {
    return undefined;
  }
  if (s.repeat) return undefined;
  const fields = { domain, type, protocol, headerIncluded };
  if (!checkSocket(s, fields, r)) return undefined;
  return {
    kind: 'socket', name: s.name.slice('socket.'.length), at: at(file, s),
    domain, type, protocol, headerIncluded: headerIncluded ?? false, errno: errno ?? EPERM,
  };
}

/** Refuses what the kernel would refuse and what needs no privilege. */
function checkSocket(s: Section, f: SocketFields, r: Report): boolean {
  const problems: Array<[key: string, message: string]> = [];
  if (f.domain === AF_INET || f.domain === AF_INET6) problems.push(...checkInet(f));
  else problems.push(...checkOther(f));
  for (const [key, message] of problems) r.add(s.entries.get(key)!.line, s.name, key, message);
  return problems.length === 0;
}

function checkInet(f: SocketFields): Array<[string, string]> {
  const family = domainName(f.domain)!;
  const type = typeName(f.type) ?? String(f.type);
  if (f.type === SOCK_STREAM || f.type === SOCK_DGRAM || f.type === SOCK_SEQPACKET) {
    return [['type', `${family} ${type} sockets need no privilege; remove this section`]];
  }
  if (f.type !== SOCK_RAW) return [['type', `domain ${family} has no sockets of type ${type}; use raw`]];
  if (f.protocol === IPPROTO_IP) {
    return [['protocol', 'raw sockets need a protocol (the kernel refuses ip, 0); name one, e.g. icmp']];
  }
  // the kernel takes these, but they are the other family's ping: a slip
  if (f.domain === AF_INET && f.protocol === IPPROTO_ICMPV6) {
    return [['protocol', 'ipv6-icmp is for domain inet6; use icmp for domain inet']];
  }
  if (f.domain === AF_INET6 && f.protocol === IPPROTO_ICMP) {
    return [['protocol', 'icmp is for domain inet; use ipv6-icmp for domain inet6']];
  }
  if (f.protocol === IPPROTO_RAW && f.headerIncluded !== true) {
    return [['protocol',
      'raw (255) sockets write their own ip header, so they can forge packets; set header-included = allow if that is intended, or name the protocol, e.g. icmp']];
  }
  return [];
}

function checkOther(f: SocketFields): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (f.domain === AF_PACKET && f.type !== SOCK_RAW && f.type !== SOCK_DGRAM) {
    out.push(['type', `packet sockets take type raw or dgram, not ${typeName(f.type) ?? f.type}`]);
  }
  if (f.headerIncluded !== undefined) {
    const which = f.domain === AF_PACKET ? 'packet sockets build whole frames anyway' : `not to domain ${f.domain}`;
    out.push(['header-included', `applies to domains inet and inet6 only (${which}); remove the line`]);
  }
  return out;
}

/** Two sections granting the same socket would make the errno ambiguous. */
function checkDistinct(calls: SocketRule[], r: Report): void {
  calls.forEach((c, i) => {
    const first = calls.slice(0, i).find((o) => o.domain === c.domain && o.type === c.type && o.protocol === c.protocol);
    if (first) {
      r.add(c.at.line, c.at.section, undefined,
        `grants the same socket as [${first.at.section}] (line ${first.at.line}); keep one of them`);
    }
  });
}

// ---- 5. the file -----------------------------------------------------------

const SOCKET_NAME = /^[a-z0-9][a-z0-9_-]*$/;

type Kind = 'program' | 'socket';

function sectionKind(name: string): Kind | Problem {
  if (name === 'program') return 'program';
  if (!name.startsWith('socket.')) return new Problem('unknown section; use [program] or [socket.NAME]');
  const rest = name.slice('socket.'.length);
  if (SOCKET_NAME.test(rest)) return 'socket';
  return new Problem(`invalid rule name ${q(rest)}; use lowercase letters, digits, "_" and "-", starting with a letter or digit`);
}

/**
 * Parses one rule file. Pure: `file` only names the file in errors and in
 * the model. Any error means no program.
 */
export function parseRuleFile(file: string, text: string): { program?: ProgramRule; errors: RuleError[] } {
  const r = new Report(file);
  const sections = scan(text, r);
  const live = sections.filter((s) => s.live);
  const programSection = live.find((s) => s.name === 'program' && !s.repeat);
  if (!programSection) {
    r.add(undefined, undefined, undefined, 'no [program] section; add one with the path of the program and who may run it (users or groups)');
  }
  let program: Program | undefined;
  const calls: CallRule[] = [];
  for (const s of live) {
    if (s.name === 'program') {
      const built = buildProgram(s, file, r);
      if (s === programSection) program = built;
    } else {
      const call = buildSocket(s, file, r);
      if (call) calls.push(call);
    }
  }
  checkDistinct(calls, r);
  const errors = r.errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  if (errors.length > 0 || !program) return { errors };
  return { program: { ...program, calls }, errors };
}
