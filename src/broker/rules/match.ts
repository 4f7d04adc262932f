/*
 * The decision: may this client run this program, and is this call one its
 * rule performs as root.
 *
 * MUST guarantee:
 * - no match means deny: every function answers "no" (false, undefined)
 *   unless a rule says yes;
 * - identity is what the kernel reported (uid, gids) plus the passwd name
 *   of that uid; a uid without a passwd entry never matches users = *;
 * - of several rules for one binary, one serves a client, decided by the
 *   rules alone (a rule naming the user, else the first naming a group);
 * - a rule's args match argv[1..] word for word, exactly, or not at all;
 * - socket arguments match exactly, as the seccomp filter compares them;
 * - a bind matches on family, type, port and (when the rule lists any) the
 *   address as canonical text, so the wildcard 0.0.0.0 or :: matches only
 *   where it is written; a setsockopt value matches only a value or
 *   interface the rule lists.
 */
import { isIP } from 'node:net';
import type { BindRule, ProgramRule, Range, RuleSet, SetsockoptRule, SocketRule } from './model.js';
import {
  AF_INET, AF_INET6, AF_PACKET, SO_PRIORITY, SOL_SOCKET, TC_PRIO_INTERACTIVE, canonicalAddress, htons16,
  privilegedOption,
} from './names.js';

export interface Client {
  uid: number;
  /** The passwd name of uid; undefined: no passwd entry. */
  user: string | undefined;
  /** Primary and supplementary gids, from the kernel (SO_PEERGROUPS). */
  gids: number[];
}

/**
 * The rules for a binary, by the canonical path the broker resolved (the
 * caller resolves symlinks first: rules name real paths), in file name
 * order.
 */
export function programRules(rules: RuleSet, path: string): ProgramRule[] {
  return rules.programs.get(path) ?? [];
}

function namesUser(rule: ProgramRule, client: Client): boolean {
  if (client.user === undefined) return false;
  return rule.users === '*' || rule.users.includes(client.user);
}

function namesGroupOf(rule: ProgramRule, client: Client, groupGid: (name: string) => number | undefined): boolean {
  return rule.groups.some((group) => {
    const gid = groupGid(group);
    return gid !== undefined && client.gids.includes(gid);
  });
}

/**
 * Whether the client may run the program: its user is listed (or the rule
 * says * and the uid has a passwd entry), or one of its gids is the gid of
 * a listed group. groupGid looks a group name up; undefined: no such group.
 */
export function mayRun(rule: ProgramRule, client: Client, groupGid: (name: string) => number | undefined): boolean {
  return namesUser(rule, client) || namesGroupOf(rule, client, groupGid);
}

/**
 * The rule that serves this client for the binary at path: the one whose
 * users name it (users = * included; the loader lets at most one rule of a
 * binary name a user), else the first, in file name order, that names one
 * of its groups. undefined: none does, the run is refused.
 */
export function ruleFor(rules: RuleSet, path: string, client: Client, groupGid: (name: string) => number | undefined): ProgramRule | undefined {
  const candidates = programRules(rules, path);
  return candidates.find((r) => namesUser(r, client)) ?? candidates.find((r) => namesGroupOf(r, client, groupGid));
}

/**
 * Whether the arguments (argv[1..], argv[0] aside) match the rule's args:
 * as many arguments as words (or more when the pattern ends with ...),
 * each equal to its word, or anything where the word is *. No pattern:
 * any arguments.
 */
export function matchArgs(rule: ProgramRule, args: readonly string[]): boolean {
  const pattern = rule.args;
  if (!pattern) return true;
  if (args.length < pattern.words.length) return false;
  if (!pattern.rest && args.length !== pattern.words.length) return false;
  return pattern.words.every((w, i) => w === null || w === args[i]);
}

/**
 * socket(2)'s protocol argument for a rule: the model keeps a packet
 * socket's ethertype in host order, socket(2) takes it in network order.
 * The seccomp filter must compare against this, not rule.protocol.
 */
export function socketProtocolArg(rule: SocketRule): number {
  return rule.domain === AF_PACKET ? htons16(rule.protocol) : rule.protocol;
}

/**
 * The socket rule that performs socket(domain, type, protocol) as root:
 * the arguments as socket(2) got them, type without SOCK_NONBLOCK and
 * SOCK_CLOEXEC (any other bit means no match). The parser refuses two
 * rules for the same socket, so at most one matches.
 */
export function matchSocket(rule: ProgramRule, domain: number, type: number, protocol: number): SocketRule | undefined {
  return rule.calls.find((c): c is SocketRule =>
    c.kind === 'socket' && c.domain === domain && c.type === type && socketProtocolArg(c) === protocol);
}

// ---- bind ------------------------------------------------------------------------

const inRanges = (ranges: Range[], n: number): boolean => ranges.some((r) => r.from <= n && n <= r.to);

const addressFamily = (canonical: string): number => isIP(canonical) === 4 ? AF_INET : AF_INET6;

/**
 * The bind rules for sockets of this family (AF_INET, AF_INET6) and base
 * type (SO_TYPE: SOCK_STREAM, SOCK_DGRAM), in file order. Empty: no rule
 * elevates a bind of such a socket. The parser makes the grant sections agree on errno,
 * so the first grant's errno answers a bind that none of them matches.
 */
export function bindRulesFor(rule: ProgramRule, family: number, type: number): BindRule[] {
  return rule.calls.filter((c): c is BindRule =>
    c.kind === 'bind' && c.families.includes(family) && c.types.includes(type));
}

/**
 * The first bind rule (file order: sections may overlap, the first match
 * decides, its reusePort included) that lets a socket of this family and
 * type be bound to (address, port) as root. `address` is the text of the
 * address the broker decoded from its own copy of the sockaddr (names.ts
 * decodeInetSockaddr gives it canonical; other spellings are canonicalised
 * here); it must be of the socket's family (an inet6 socket's IPv4-mapped
 * address is IPv6 text, ::ffff:a.b.c.d). A rule that lists addresses
 * matches only those: the wildcard 0.0.0.0 or :: only where it is listed.
 */
export function matchBind(rule: ProgramRule, family: number, type: number, address: string, port: number): BindRule | undefined {
  const canonical = canonicalAddress(address);
  if (canonical === undefined || addressFamily(canonical) !== family) return undefined;
  if (!Number.isInteger(port)) return undefined;
  return bindRulesFor(rule, family, type).find((b) =>
    inRanges(b.ports, port) && (b.addresses === undefined || b.addresses.includes(canonical)));
}

// ---- setsockopt ------------------------------------------------------------------------

/**
 * The setsockopt rules of a program: one per (level, option) the filter
 * must trap (the parser refuses a second section for an option).
 */
export function setsockoptRulesFor(rule: ProgramRule): SetsockoptRule[] {
  return rule.calls.filter((c): c is SetsockoptRule => c.kind === 'setsockopt');
}

/** What the program asked to set: a number read from optval, or an interface name (SO_BINDTODEVICE). */
export type OptionRequest = { int: number } | { interface: string };

/**
 * The rule that lets setsockopt(level, option, value) run as root on the
 * program's socket, if the value is one it lists. `int` is the number the
 * kernel would read from the broker's one copy of optval, as an unsigned
 * 32-bit value (an int or u32 option; a negative int is its two's
 * complement); for an on/off option (IP_TRANSPARENT, IPV6_TRANSPARENT)
 * any non-zero value is on, 1. `interface` is SO_BINDTODEVICE's name up to
 * its first NUL; an empty name (unbinding) matches no rule.
 */
export function matchSetsockopt(rule: ProgramRule, level: number, option: number, value: OptionRequest): SetsockoptRule | undefined {
  const r = setsockoptRulesFor(rule).find((c) => c.level === level && c.option === option);
  if (!r) return undefined;
  if ('interface' in value) return r.interfaces?.includes(value.interface) ? r : undefined;
  const n = value.int;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff || !r.values) return undefined;
  const asSet = privilegedOption(level, option)?.value === 'bool' ? Number(n !== 0) : n;
  return inRanges(r.values, asSet) ? r : undefined;
}

/**
 * Whether the user may set this value with their own rights whatever the
 * socket's state: SO_PRIORITY 0-6, an on/off option turned off. The
 * supervisor may let such a call run as the user's
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE): the kernel then checks it again,
 * with the user's credentials, on what the program's memory holds by then.
 * SO_BINDTODEVICE is not among them: only a socket not yet bound to a
 * device may be bound without privilege, and that is the socket's state.
 */
export function needsNoPrivilege(level: number, option: number, value: OptionRequest): boolean {
  if (!('int' in value)) return false;
  if (level === SOL_SOCKET && option === SO_PRIORITY) return value.int >= 0 && value.int <= TC_PRIO_INTERACTIVE;
  return privilegedOption(level, option)?.value === 'bool' && value.int === 0;
}
