/*
 * [setsockopt.NAME]: setsockopt() of an option that needs privilege,
 * performed as root on the program's own socket.
 *
 * MUST guarantee:
 * - only options that need privilege are named, by their C name; the level
 *   follows from the option, so a rule cannot pair them wrongly;
 * - the values are exactly what the rule allows: numbers and ranges within
 *   0..2^32-1, 0/1 for on/off options, interface names (valid kernel
 *   names) for SO_BINDTODEVICE and for nothing else;
 * - one section per option: two would make the decision ambiguous.
 */
import type { Range, SetsockoptRule } from './model.js';
import {
  EPERM, IFNAMSIZ, KNOWN_OPTIONS, PRIVILEGED_OPTIONS, type PrivilegedOption, SO_PRIORITY, SOL_SOCKET, TC_PRIO_INTERACTIVE,
} from './names.js';
import {
  AS_CHOICES, BAD, ERRNO_CHOICES, type Keys, Problem, type Read, type Report, type Section, at, checkKeys, eachItem, lineOf,
  missing, parseAs, parseErrno, q, read,
} from './values.js';

const U32_MAX = 0xffffffff;

const OPTION_NAMES = [...PRIVILEGED_OPTIONS.keys()];
const OPTION_CHOICES = `${OPTION_NAMES.slice(0, -1).join(', ')} or ${OPTION_NAMES[OPTION_NAMES.length - 1]}`;
const INT_CHOICES = 'a list of numbers 0-4294967295 and ranges lo-hi';
const BOOL_CHOICES = '1 (on), 0 (off) or 0, 1';

const SETSOCKOPT_KEYS: Keys = {
  as: AS_CHOICES,
  option: OPTION_CHOICES,
  value: INT_CHOICES,
  interface: 'a list of interface names',
  errno: ERRNO_CHOICES,
};

/** The key table with the value choices of the option (for "missing" and "empty value"). */
function keysFor(option: Read<PrivilegedOption>): Keys {
  if (typeof option !== 'object' || option.value !== 'bool') return SETSOCKOPT_KEYS;
  return { ...SETSOCKOPT_KEYS, value: BOOL_CHOICES };
}

// ---- option ------------------------------------------------------------------------

const NO_PRIVILEGE = 'needs no privilege: the program sets it with its own rights; remove this section';

/** Options people may think need privilege, and why they do not (or where they are granted). */
const UNPRIVILEGED: ReadonlyMap<string, string> = new Map([
  ...[
    'SO_REUSEADDR', 'SO_KEEPALIVE', 'SO_BROADCAST', 'SO_LINGER', 'SO_OOBINLINE', 'SO_DONTROUTE', 'SO_RCVLOWAT',
    'SO_SNDLOWAT', 'SO_RCVTIMEO', 'SO_SNDTIMEO', 'SO_TIMESTAMP', 'SO_TIMESTAMPNS', 'SO_PASSCRED', 'SO_RCVMARK',
    'SO_ZEROCOPY', 'SO_INCOMING_CPU', 'IP_TOS', 'IP_TTL', 'IP_PKTINFO', 'IP_RECVERR', 'IP_MTU_DISCOVER',
    'IP_BIND_ADDRESS_NO_PORT', 'IP_MULTICAST_IF', 'IP_MULTICAST_TTL', 'IP_MULTICAST_LOOP', 'IP_ADD_MEMBERSHIP',
    'IP_DROP_MEMBERSHIP', 'IPV6_V6ONLY', 'IPV6_TCLASS', 'IPV6_UNICAST_HOPS', 'IPV6_MULTICAST_HOPS',
    'IPV6_RECVPKTINFO',
  ].map((name) => [name, `${name} ${NO_PRIVILEGE}`] as const),
  ['SO_SNDBUF', 'SO_SNDBUF needs no privilege (the kernel caps it at net.core.wmem_max); SO_SNDBUFFORCE goes beyond the cap'],
  ['SO_RCVBUF', 'SO_RCVBUF needs no privilege (the kernel caps it at net.core.rmem_max); SO_RCVBUFFORCE goes beyond the cap'],
  ['SO_REUSEPORT',
    'SO_REUSEPORT needs no privilege; to let a brokered bind join a port group, set reuseport = allow in its [bind.NAME] section'],
  ...['IP_HDRINCL', 'IPV6_HDRINCL', 'IP_FREEBIND', 'IPV6_FREEBIND'].map((name) => [name,
    `${name} needs no privilege of its own; on a brokered raw socket, header-included = allow in its [socket.NAME] section grants it`] as const),
  ['SO_BINDTOIFINDEX',
    'SO_BINDTOIFINDEX is not supported (an index names a different interface in each network namespace); use SO_BINDTODEVICE with interface = NAME'],
]);

function parseOption(v: string): PrivilegedOption | Problem {
  const option = PRIVILEGED_OPTIONS.get(v);
  if (option) return option;
  const upper = v.toUpperCase();
  if (upper !== v && (PRIVILEGED_OPTIONS.has(upper) || KNOWN_OPTIONS.has(upper))) {
    return new Problem(`option names are written in capitals; write ${upper}`);
  }
  const why = UNPRIVILEGED.get(v);
  if (why) return new Problem(why);
  if (KNOWN_OPTIONS.has(v)) return new Problem(`${v} is not supported in rules; use ${OPTION_CHOICES}`);
  return new Problem(`unknown option ${q(v)}; use ${OPTION_CHOICES}`);
}

// ---- value ---------------------------------------------------------------------------

function u32(text: string): number | Problem {
  if (!/^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$/.test(text)) {
    return new Problem(`${q(text)} is not a number; use numbers 0-4294967295 (decimal, or hex with 0x) and ranges lo-hi`);
  }
  const n = Number(text);
  return n <= U32_MAX ? n : new Problem(`${text} is out of range; values go up to 4294967295 (0xffffffff)`);
}

function parseValueItem(item: string): Range | Problem {
  const range = /^([^-]*?)\s*-\s*([^-]*)$/.exec(item);
  if (!range) {
    const n = u32(item);
    return n instanceof Problem ? n : { from: n, to: n };
  }
  const from = u32(range[1]);
  const to = u32(range[2]);
  if (from instanceof Problem || to instanceof Problem) {
    return new Problem(...[from, to].flatMap((x) => x instanceof Problem ? x.messages : []));
  }
  if (from > to) return new Problem(`range ${q(item)} runs backwards; write ${range[2]}-${range[1]}`);
  return { from, to };
}

/** The value depends on the option: numbers, on/off, or nothing at all (SO_BINDTODEVICE). */
function valueParser(option: Read<PrivilegedOption>): (v: string) => Range[] | Problem {
  const numbers = (v: string): Range[] | Problem => eachItem(v, 'value', parseValueItem);
  if (typeof option !== 'object') return numbers;
  if (option.value === 'interface') {
    return () => new Problem(`${option.name} takes interface names, not numbers; write interface = a list of names (e.g. eth0) instead`);
  }
  if (option.value === 'int') return numbers;
  return (v) => {
    const ranges = numbers(v);
    if (ranges instanceof Problem) return ranges;
    const bad = ranges.filter((x) => x.to > 1).map((x) => x.from === x.to ? String(x.from) : `${x.from}-${x.to}`);
    if (bad.length === 0) return ranges;
    return new Problem(...bad.map((b) => `${b} is neither on nor off; ${option.name} takes value = ${BOOL_CHOICES}`));
  };
}

// ---- interface --------------------------------------------------------------------------

/** A name the kernel could give an interface (dev_valid_name). */
function parseInterface(item: string): string | Problem {
  if (Buffer.byteLength(item) > IFNAMSIZ - 1) {
    return new Problem(`${q(item)} is longer than ${IFNAMSIZ - 1} bytes, the most an interface name holds`);
  }
  if (item === '.' || item === '..' || /[/:\s]/.test(item)) {
    return new Problem(`${q(item)} is not an interface name; names hold no "/", ":" or white space and are not "." or ".."`);
  }
  return item;
}

function interfaceParser(option: Read<PrivilegedOption>): (v: string) => string[] | Problem {
  if (typeof option === 'object' && option.value !== 'interface') {
    const takes = option.value === 'bool' ? BOOL_CHOICES : INT_CHOICES;
    return () => new Problem(`only SO_BINDTODEVICE takes interface names; ${option.name} takes value = ${takes}`);
  }
  return (v) => eachItem(v, 'interface', parseInterface);
}

// ---- the section ---------------------------------------------------------------------------

export function buildSetsockopt(s: Section, file: string, r: Report): SetsockoptRule | undefined {
  checkKeys(s, SETSOCKOPT_KEYS, r);
  const as = read(s, SETSOCKOPT_KEYS, 'as', r, parseAs) ?? missing(s, SETSOCKOPT_KEYS, 'as', r);
  const option = read(s, SETSOCKOPT_KEYS, 'option', r, parseOption) ?? missing(s, SETSOCKOPT_KEYS, 'option', r);
  const keys = keysFor(option);
  let values = read(s, keys, 'value', r, valueParser(option));
  let interfaces = read(s, keys, 'interface', r, interfaceParser(option));
  if (typeof option === 'object' && option.value === 'interface') interfaces ??= missing(s, keys, 'interface', r);
  if (typeof option === 'object' && option.value !== 'interface') values ??= missing(s, keys, 'value', r);
  const errno = read(s, keys, 'errno', r, parseErrno);
  if (as === BAD || option === BAD || values === BAD || interfaces === BAD || errno === BAD || s.repeat) {
    return undefined;
  }
  warnUnprivileged(s, option, values, as === 'deny', r);
  return {
    kind: 'setsockopt', ...(as === 'deny' ? { deny: true as const } : {}), name: s.name.slice('setsockopt.'.length), at: at(file, s),
    level: option.level, option: option.option, optionName: option.name,
    values, interfaces, errno: errno ?? EPERM,
  };
}

/**
 * Values the user may set without privilege are harmless here, but a section
 * of nothing else does nothing: the broker lets such calls run with the
 * user's own rights, so a grant adds nothing and a deny never applies.
 */
function warnUnprivileged(s: Section, option: PrivilegedOption, values: Range[] | undefined, deny: boolean, r: Report): void {
  if (!values) return;
  const effect = deny
    ? 'so this deny section never applies: the program sets it with its own rights'
    : 'so this section grants nothing the program cannot do itself';
  if (option.level === SOL_SOCKET && option.option === SO_PRIORITY && values.every((v) => v.to <= TC_PRIO_INTERACTIVE)) {
    r.warn(lineOf(s, 'value'), s.name, 'value', `SO_PRIORITY 0-${TC_PRIO_INTERACTIVE} needs no privilege, ${effect}`);
  }
  if (option.value === 'bool' && values.every((v) => v.to === 0)) {
    r.warn(lineOf(s, 'value'), s.name, 'value', `turning ${option.name} off needs no privilege, ${effect}`);
  }
}

/** Two sections for one option would make the decision (and its errno) ambiguous. */
export function checkDistinctOptions(calls: SetsockoptRule[], r: Report): void {
  calls.forEach((c, i) => {
    const first = calls.slice(0, i).find((o) => o.level === c.level && o.option === c.option);
    if (first) {
      r.add(c.at.line, c.at.section, undefined,
        `sets the same option as [${first.at.section}] (line ${first.at.line}); merge their values into one section`);
    }
  });
}
