/*
 * One line per rule saying what it lets whom do as root (and what it
 * denies them), for people
 * (stx-elevate check):
 *
 *   /usr/bin/ping: users *; socket inet raw icmp, socket inet6 raw ipv6-icmp
 *
 * Within a call, lists are joined by "/" or ","; calls by ", "; parts by "; ".
 */
import type { BindRule, CallRule, ProgramRule, Range, SetsockoptRule, SocketRule } from './model.js';
import { socketProtocolArg } from './match.js';
import { domainName, errnoName, protocolName, typeName } from './names.js';

const ranges = (rs: Range[]): string => rs.map((r) => r.from === r.to ? String(r.from) : `${r.from}-${r.to}`).join(',');

function socket(c: SocketRule): string {
  const protocol = protocolName(c.domain, socketProtocolArg(c)) ?? String(c.protocol);
  const words = ['socket', domainName(c.domain) ?? String(c.domain), typeName(c.type) ?? String(c.type), protocol];
  if (c.headerIncluded) words.push('header-included');
  return words.join(' ');
}

function bind(c: BindRule): string {
  const words = ['bind', c.families.map((f) => domainName(f)).join('/'), c.types.map((t) => typeName(t)).join('/'),
    `port ${ranges(c.ports)}`];
  if (c.addresses) words.push(`address ${c.addresses.join(',')}`);
  if (c.reusePort) words.push('reuseport');
  return words.join(' ');
}

function setsockopt(c: SetsockoptRule): string {
  return `setsockopt ${c.optionName} ${c.interfaces ? c.interfaces.join(',') : ranges(c.values ?? [])}`;
}

function what(c: CallRule): string {
  if (c.kind === 'socket') return socket(c);
  if (c.kind === 'bind') return bind(c);
  return setsockopt(c);
}

/**
 * One call section, e.g. `socket inet raw icmp`, or for an as = deny
 * section `socket inet raw icmp denied with EACCES` (stx-elevate check and list).
 */
export function describeCall(c: CallRule): string {
  return c.deny ? `${what(c)}${DENIED_WITH}${errnoName(c.errno)}` : what(c);
}

const DENIED_WITH = ' denied with ';

/** Whether a line describeCall made (list receives them as text) is an as = deny section's. */
export function describesDenial(line: string): boolean {
  return line.includes(DENIED_WITH);
}

function who(rule: ProgramRule): string {
  const parts: string[] = [];
  if (rule.users === '*') parts.push('users *');
  else if (rule.users.length > 0) parts.push(`users ${rule.users.join(', ')}`);
  if (rule.groups.length > 0) parts.push(`groups ${rule.groups.join(', ')}`);
  return parts.join('; ');
}

/** `PATH: WHO[; args ...][; sha256 pinned][; keep-env ...][; sandboxed clients]; CALLS`. */
export function describeProgram(rule: ProgramRule): string {
  const parts = [who(rule)];
  if (rule.args) parts.push(rule.args.words.length === 0 && !rule.args.rest ? 'no arguments' : `args ${rule.args.text}`);
  if (rule.sha256) parts.push('sha256 pinned');
  if (rule.keepEnv && rule.keepEnv.length > 0) parts.push(`keep-env ${rule.keepEnv.join(', ')}`);
  if (rule.sandboxedClients) parts.push('sandboxed clients too');
  parts.push(rule.calls.length > 0 ? rule.calls.map(describeCall).join(', ') : 'nothing as root');
  return `${rule.path}: ${parts.join('; ')}`;
}
