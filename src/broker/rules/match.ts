/*
 * The decision: may this client run this program, and is this call one its
 * rule performs as root.
 *
 * MUST guarantee:
 * - no match means deny: every function answers "no" (false, undefined)
 *   unless a rule says yes;
 * - identity is what the kernel reported (uid, gids) plus the passwd name
 *   of that uid; a uid without a passwd entry never matches users = *;
 * - socket arguments match exactly, as the seccomp filter compares them.
 */
import type { ProgramRule, RuleSet, SocketRule } from './model.js';
import { AF_PACKET, htons16 } from './names.js';

export interface Client {
  uid: number;
  /** The passwd name of uid; undefined: no passwd entry. */
  user: string | undefined;
  /** Primary and supplementary gids, from the kernel (SO_PEERGROUPS). */
  gids: number[];
}

/**
 * The rule for a binary, by the canonical path the broker resolved (the
 * caller resolves symlinks first: rules name real paths).
 */
export function findProgram(rules: RuleSet, path: string): ProgramRule | undefined {
  return rules.programs.get(path);
}

/**
 * Whether the client may run the program: its user is listed (or the rule
 * says * and the uid has a passwd entry), or one of its gids is the gid of
 * a listed group. groupGid looks a group name up; undefined: no such group.
 */
export function mayRun(rule: ProgramRule, client: Client, groupGid: (name: string) => number | undefined): boolean {
  if (client.user !== undefined) {
    if (rule.users === '*') return true;
    if (rule.users.includes(client.user)) return true;
  }
  for (const group of rule.groups) {
    const gid = groupGid(group);
    if (gid !== undefined && client.gids.includes(gid)) return true;
  }
  return false;
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
