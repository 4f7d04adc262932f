/*
 * The seccomp filter a launched program runs under, compiled by libseccomp.
 *
 * MUST guarantee:
 * - only the native x86_64 ABI reaches the rules: a call through i386
 *   (`int $0x80`, sysenter) or x32 (nr | 0x40000000) kills the process, so
 *   no other ABI's numbering can slip a privileged call past the table;
 * - everything a rule grants is trapped (NOTIFY) with its exact numeric
 *   arguments, and nothing else is: calls no rule names run untouched;
 * - a socket call the table does not match exactly is not trapped, and so
 *   runs with the user's own credentials (fail-safe);
 * - calls that widen a grant (exec, WIDENING_OPTIONS) are trapped
 *   whatever the upper 32 bits of their int arguments hold, since for them
 *   an untrapped call would be the unsafe outcome;
 * - a rule the filter cannot express exactly is an error, never a looser trap.
 *
 * The table (what is trapped, and why), in OpenSSH sandbox style:
 *
 *   call        arguments                                        why
 *   ----------  -----------------------------------------------  --------------------------
 *   (any)       arch != x86_64 (i386)                            KILL_PROCESS: foreign ABI
 *   (any)       nr >= 0x40000000 (x32), except nr == -1          KILL_PROCESS: foreign ABI
 *   socket      a0 == domain, (a1 & ~flags) == type,             one per [socket.*] rule:
 *               a2 == protocol                                   the broker creates it
 *                                                                (or, as = deny, refuses it)
 *   execve      -                                                exec is a boundary: only
 *   execveat    -                                                the launcher's one exec
 *   setsockopt  (int)a1 == SOL_IP,   (int)a2 == IP_HDRINCL       options that widen a
 *   setsockopt  (int)a1 == SOL_IPV6, (int)a2 == IPV6_HDRINCL     brokered raw socket into
 *   setsockopt  (int)a1 == SOL_RAW,  (int)a2 == IPV6_HDRINCL     a packet forger: the
 *   setsockopt  (int)a1 == SOL_IP,   (int)a2 == IP_FREEBIND      broker decides (WIDENING)
 *   setsockopt  (int)a1 == SOL_IPV6, (int)a2 == IPV6_FREEBIND
 *   bind        (socklen_t)a2 == 16 or 28                        [bind.*]: privileged ports
 *   setsockopt  (int)a1 == level, (int)a2 == option              [setsockopt.*], one each
 *   io_uring_*  -                                                ERRNO(EPERM): a ring runs
 *                                                                setsockopt past seccomp
 *   (other)     -                                                ALLOW, never leaves the kernel
 */
import type { ProgramRule, SetsockoptRule, SocketRule } from '../rules/model.js';
import { setsockoptRulesFor, socketProtocolArg } from '../rules/match.js';
import { errnoName } from '../rules/names.js';
import {
  type ArgCmp,
  type ScmpFilterCtx,
  SCMP_ACT_ALLOW,
  SCMP_ACT_ERRNO,
  SCMP_ACT_KILL_PROCESS,
  SCMP_ACT_NOTIFY,
  SCMP_ARCH_X32,
  SCMP_ARCH_X86,
  SCMP_ARCH_X86_64,
  SCMP_CMP_EQ,
  SCMP_CMP_MASKED_EQ,
  SCMP_FLTATR_ACT_BADARCH,
  seccompArchExist,
  seccompArchNative,
  seccompAttrSet,
  seccompExportBpf,
  seccompRuleAdd,
  seccompSyscallResolveName,
  withFilterContext,
} from '../../shared/native/libseccomp.js';

// ---- kernel constants -----------------------------------------------------------

export const SOCK_NONBLOCK = 0o4000;       // 0x800
export const SOCK_CLOEXEC = 0o2000000;     // 0x80000
/** The flag bits socket(2) accepts in `type` besides the type itself. */
export const SOCK_FLAGS_MASK = SOCK_NONBLOCK | SOCK_CLOEXEC;
/** The kernel's SOCK_TYPE_MASK: the base type lives in the low 4 bits. */
export const SOCK_TYPE_MASK = 0xf;

export const SOL_IP = 0;
export const IP_HDRINCL = 3;
export const IP_FREEBIND = 15;
export const SOL_IPV6 = 41;
export const IPV6_HDRINCL = 36;
export const IPV6_FREEBIND = 78;
export const SOL_RAW = 255;

/**
 * Options that need no privilege but turn a brokered raw socket into a
 * packet forger: header-included packets, and (with IPV6_PKTINFO) any IPv6
 * source address through freebind. The kernel's raw IPv6 code takes
 * IPV6_HDRINCL at level SOL_RAW as well as SOL_IPV6.
 */
export const WIDENING_OPTIONS: readonly { level: number; name: number; text: string }[] = [
  { level: SOL_IP, name: IP_HDRINCL, text: 'IP_HDRINCL' },
  { level: SOL_IPV6, name: IPV6_HDRINCL, text: 'IPV6_HDRINCL' },
  { level: SOL_RAW, name: IPV6_HDRINCL, text: 'IPV6_HDRINCL' },
  { level: SOL_IP, name: IP_FREEBIND, text: 'IP_FREEBIND' },
  { level: SOL_IPV6, name: IPV6_FREEBIND, text: 'IPV6_FREEBIND' },
];

const SOCKADDR_IN_LEN = 16;
const SOCKADDR_IN6_LEN = 28;

/** x32 system calls are native numbers with this bit set. */
export const X32_SYSCALL_BIT = 0x40000000;

const U32 = 0xffffffffn;
const U64 = 0xffffffffffffffffn;

// ---- the table ------------------------------------------------------------------

/** One comparison, in the table's own words (for logs and for libseccomp). */
export interface ArgCheck {
  arg: number;
  /** Bits of the 64-bit register compared: all of it, or the int's low 32. */
  mask: bigint;
  value: bigint;
  text: string;
}

/** One row: NOTIFY on `syscall` when every check holds (or fail it with `errno`). */
export interface FilterRow {
  syscall: string;
  args: ArgCheck[];
  why: string;
  /** Answered by the kernel with this errno, never reaching the broker. */
  errno?: number;
}

const EPERM = 1;

/** The whole table for one program, in the order rules are added. */
export function filterTable(program: ProgramRule): FilterRow[] {
  const rows: FilterRow[] = [];
  for (const call of program.calls) {
    if (call.kind === 'socket') rows.push(socketRow(call));
  }
  if (program.calls.some((c) => c.kind === 'bind')) rows.push(...bindRows());
  for (const rule of setsockoptRulesFor(program)) rows.push(setsockoptRow(rule));
  rows.push(...alwaysTrapped());
  return rows;
}

/**
 * socket(domain, type, protocol) for one [socket.NAME] rule.
 *
 * libseccomp compares all 64 bits of each argument on x86_64. socket()'s
 * arguments are ints: a caller that puts garbage in the upper 32 bits of a
 * register does not match, is not trapped, and the kernel truncates the
 * value to int and runs socket() with the user's own credentials, which is
 * what the user could do anyway: fail-safe. Matching all 64 bits also means
 * every trapped call carries canonical arguments for the broker to act on.
 * Only SOCK_NONBLOCK and SOCK_CLOEXEC may vary in `type` (the broker applies
 * them to the fd it hands back); any other stray bit fails the match.
 */
function socketRow(rule: SocketRule): FilterRow {
  checkIntArg(rule, 'domain', rule.domain);
  checkIntArg(rule, 'type', rule.type);
  const protocol = socketProtocolArg(rule); // packet sockets take the ethertype in network order
  checkIntArg(rule, 'protocol', protocol);
  if (rule.type & SOCK_FLAGS_MASK) {
    throw new Error(`${where(rule)}: type ${rule.type} carries SOCK_NONBLOCK/SOCK_CLOEXEC bits; the filter lets the program choose those`);
  }
  const typeMask = U64 & ~BigInt(SOCK_FLAGS_MASK);
  return {
    syscall: 'socket',
    args: [
      { arg: 0, mask: U64, value: BigInt(rule.domain), text: `domain == ${rule.domain}` },
      { arg: 1, mask: typeMask, value: BigInt(rule.type), text: `(type & ~(SOCK_NONBLOCK|SOCK_CLOEXEC)) == ${rule.type}` },
      { arg: 2, mask: U64, value: BigInt(protocol), text: `protocol == ${protocol}` },
    ],
    why: rule.deny
      ? `[${rule.at.section}] ${rule.name}: the broker refuses this socket with ${errnoName(rule.errno)} (as = deny)`
      : `[${rule.at.section}] ${rule.name}: the broker creates this socket as root`,
  };
}

/**
 * Rows every program gets, whatever its rules.
 *
 * setsockopt's level and optname are ints too, but here a miss would be the
 * unsafe outcome: an untrapped IP_HDRINCL runs unprivileged and succeeds on a
 * raw socket the broker handed out. So compare only the low 32 bits, as the
 * kernel reads them: garbage in the upper half is still trapped, and the
 * broker must read these arguments as ints (truncate) too.
 */
export function alwaysTrapped(): FilterRow[] {
  const int = (arg: number, name: string, v: number): ArgCheck =>
    ({ arg, mask: U32, value: BigInt(v), text: `(int)${name} == ${v}` });
  const ring = (syscall: string): FilterRow => ({
    syscall, args: [], errno: EPERM,
    why: 'an io_uring runs setsockopt (and more) without passing through seccomp',
  });
  return [
    { syscall: 'execve', args: [], why: 'exec is a boundary: only the launcher\'s one exec is let through' },
    { syscall: 'execveat', args: [], why: 'exec is a boundary: only the launcher\'s one exec is let through' },
    ...WIDENING_OPTIONS.map((o) => ({
      syscall: 'setsockopt',
      args: [int(1, 'level', o.level), int(2, 'optname', o.name)],
      why: `${o.text} widens a brokered raw socket into a packet forger: the broker decides`,
    })),
    ring('io_uring_setup'),
    ring('io_uring_enter'),
    ring('io_uring_register'),
  ];
}

/**
 * bind() with the length of a sockaddr_in (16) or sockaddr_in6 (28), the
 * lengths programs pass. The family is in memory, out of the filter's
 * reach: unix binds of those lengths are trapped too and let through with
 * the user's rights. A bind of another length is not trapped and runs with
 * the user's rights: a privileged port then fails with EACCES (fail-safe).
 */
function bindRows(): FilterRow[] {
  return [SOCKADDR_IN_LEN, SOCKADDR_IN6_LEN].map((len) => ({
    syscall: 'bind',
    args: [{ arg: 2, mask: U32, value: BigInt(len), text: `(socklen_t)addrlen == ${len}` }],
    why: 'a [bind.*] section: the broker binds privileged ports as root',
  }));
}

/** setsockopt(level, option) of one [setsockopt.*] section, on the ints' low 32 bits (see alwaysTrapped). */
function setsockoptRow(rule: SetsockoptRule): FilterRow {
  return {
    syscall: 'setsockopt',
    args: [
      { arg: 1, mask: U32, value: BigInt(rule.level), text: `(int)level == ${rule.level}` },
      { arg: 2, mask: U32, value: BigInt(rule.option), text: `(int)optname == ${rule.option} (${rule.optionName})` },
    ],
    why: `[${rule.at.section}] ${rule.name}: the broker sets ${rule.optionName} as root`,
  };
}

/** A socket argument is a C int; we only express non-negative ones exactly. */
function checkIntArg(rule: SocketRule, key: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
    // A negative int reaches the kernel sign-extended or not, depending on
    // the caller's code: no single 64-bit value matches it reliably.
    throw new Error(`${where(rule)}: ${key} ${v} is not a non-negative int`);
  }
}

function where(rule: SocketRule): string {
  return `${rule.at.file}:${rule.at.line}: [${rule.at.section}]`;
}

// ---- compiling ------------------------------------------------------------------

/**
 * The BPF program (struct sock_filter[], 8 bytes each) for `program`, for
 * seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER).
 */
export function buildFilter(program: ProgramRule): Buffer {
  return compileFilter(filterTable(program));
}

/** The BPF program for a table of rows (a rule's, or `stx-elevate learn`'s), with the foreign-ABI kill. */
export function compileFilter(rows: FilterRow[]): Buffer {
  assertNativeX86_64();
  return withFilterContext(SCMP_ACT_ALLOW, (ctx) => {
    // A foreign ABI numbers its calls differently (i386 socket is 359, x32
    // execve is 520|X32_SYSCALL_BIT): kill rather than let it past the rules.
    // libseccomp 2.5.4's x86_64-only filter sends x32 numbers here too:
    // after the arch check it emits `nr >= 0x40000000 && nr != -1 -> BADARCH`
    // (-1 is a tracer's "skip this call"; it falls through to ALLOW).
    seccompAttrSet(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    assertOnlyX86_64(ctx);
    for (const row of rows) addRow(ctx, row);
    return seccompExportBpf(ctx);
  });
}

/**
 * seccomp_init gives the native ABI only; check it, since an x32 or i386
 * entry in the filter would hand those ABIs to the rules instead of the kill.
 */
function assertOnlyX86_64(ctx: ScmpFilterCtx): void {
  /* c8 ignore next 4: a guard against a future libseccomp default */
  if (!seccompArchExist(ctx, SCMP_ARCH_X86_64)) throw new Error('seccomp filter: x86_64 missing');
  for (const arch of [SCMP_ARCH_X86, SCMP_ARCH_X32]) {
    if (seccompArchExist(ctx, arch)) throw new Error(`seccomp filter: foreign ABI 0x${arch.toString(16)} present`);
  }
}

function addRow(ctx: ScmpFilterCtx, row: FilterRow): void {
  const cmps = row.args.map(toArgCmp);
  const action = row.errno === undefined ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(row.errno);
  seccompRuleAdd(ctx, action, seccompSyscallResolveName(row.syscall), cmps, row.syscall);
}

/** Whole-register checks are EQ; low-32-bit checks are MASKED_EQ. */
function toArgCmp(c: ArgCheck): ArgCmp {
  if (c.mask === U64) return { arg: c.arg, op: SCMP_CMP_EQ, datumA: c.value, datumB: 0n };
  return { arg: c.arg, op: SCMP_CMP_MASKED_EQ, datumA: c.mask, datumB: c.value };
}

/**
 * The table's numbers, the x32 kill and the int-argument reasoning are
 * x86_64's: refuse to build anywhere else rather than emit a filter whose
 * guarantees nobody checked.
 */
function assertNativeX86_64(): void {
  const arch = seccompArchNative();
  /* c8 ignore next 3: the tests run on x86_64 */
  if (arch !== SCMP_ARCH_X86_64) {
    throw new Error(`seccomp filter: native architecture 0x${arch.toString(16)} is not x86_64`);
  }
}

/** One line per row, for logs: `socket(domain == 2, ...) -> NOTIFY: why`. */
export function describeFilter(program: ProgramRule): string[] {
  return [
    'default: ALLOW (calls no rule names never leave the kernel)',
    'arch != x86_64 (i386 int 0x80, x32 nr|0x40000000): KILL_PROCESS',
    ...filterTable(program).map((r) => `${r.syscall}(${r.args.map((a) => a.text).join(', ')}) -> ${r.errno === undefined ? 'NOTIFY' : `ERRNO(${r.errno})`}: ${r.why}`),
  ];
}
