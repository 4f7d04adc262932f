/*
 * Learned calls in the rule grammar of elevation.d(5): section names and
 * key lines, exactly the arguments seen. The grammar's own parser is the
 * judge of what a rule can grant (grantable).
 */
import { parseRuleFile } from '../../broker/rules/parse.js';
import {
  AF_INET, AF_INET6, AF_PACKET, IPPROTO_RAW, RULE_DOMAINS, RULE_ETHERTYPES, RULE_PROTOCOLS, RULE_TYPES, domainName, protocolName,
  typeName,
} from '../../broker/rules/names.js';
import { type BindCall, type LearnedCall, type OptionValue, type SetsockoptCall, type SocketCall, ruleProtocol } from './calls.js';

const ruleName = (table: ReadonlyMap<string, number>, name: string | undefined): string | undefined =>
  name !== undefined && table.has(name) ? name : undefined;

function socketKeys(c: SocketCall): { domain: string; type: string; protocol: string } {
  const domain = ruleName(RULE_DOMAINS, domainName(c.domain)) ?? String(c.domain);
  const type = ruleName(RULE_TYPES, typeName(c.type)) ?? String(c.type);
  const host = ruleProtocol(c);
  const protocol = c.domain === AF_PACKET
    ? ruleName(RULE_ETHERTYPES, protocolName(c.domain, c.protocol)) ?? `0x${host.toString(16).padStart(4, '0')}`
    : ruleName(RULE_PROTOCOLS, protocolName(c.domain, c.protocol)) ?? String(host);
  return { domain, type, protocol };
}

/** A raw socket of protocol raw writes its own headers: the grammar requires header-included for it. */
export function headerIncludedByNature(c: SocketCall): boolean {
  return (c.domain === AF_INET || c.domain === AF_INET6) && c.protocol === IPPROTO_RAW;
}

export function socketLines(c: SocketCall, headerIncluded: boolean): string[] {
  const k = socketKeys(c);
  const lines = ['as = root', `domain = ${k.domain}`, `type = ${k.type}`, `protocol = ${k.protocol}`];
  if (headerIncluded || headerIncludedByNature(c)) lines.push('header-included = allow');
  return lines;
}

export function bindLines(c: BindCall): string[] {
  const lines = ['as = root', `family = ${domainName(c.family)}`, `type = ${typeName(c.type)}`, `port = ${c.port}`, `address = ${c.address}`];
  if (c.reusePort) lines.push('reuseport = allow');
  return lines;
}

export function valueText(v: OptionValue): string {
  return 'int' in v ? String(v.int) : v.interface;
}

export function setsockoptLines(optionName: string, values: OptionValue[]): string[] {
  const key = values.length > 0 && 'interface' in values[0] ? 'interface' : 'value';
  return ['as = root', `option = ${optionName}`, `${key} = ${values.map(valueText).join(', ')}`];
}

// ---- section names ---------------------------------------------------------------

/** Well-known ports by the names people know them by (/etc/services), for [bind.NAME]. */
const SERVICES: ReadonlyMap<number, string> = new Map([
  [21, 'ftp'], [22, 'ssh'], [23, 'telnet'], [25, 'smtp'], [53, 'domain'], [67, 'bootps'], [68, 'bootpc'], [69, 'tftp'],
  [80, 'http'], [88, 'kerberos'], [110, 'pop3'], [119, 'nntp'], [123, 'ntp'], [143, 'imap'], [161, 'snmp'], [162, 'snmp-trap'],
  [179, 'bgp'], [389, 'ldap'], [443, 'https'], [465, 'submissions'], [514, 'syslog'], [515, 'printer'], [546, 'dhcpv6-client'],
  [547, 'dhcpv6-server'], [587, 'submission'], [631, 'ipp'], [636, 'ldaps'], [853, 'domain-s'], [873, 'rsync'], [993, 'imaps'],
  [995, 'pop3s'],
]);

const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'call';

/** A name for the call's section, before making it unique in its file. */
export function sectionBase(c: SocketCall | BindCall | SetsockoptCall): string {
  switch (c.kind) {
    case 'socket': {
      if (c.type === 3 && c.domain === AF_INET && c.protocol === 1) return 'icmp';
      if (c.type === 3 && c.domain === AF_INET6 && c.protocol === 58) return 'icmp6';
      const k = socketKeys(c);
      return slug(`${k.domain}-${k.type}-${k.protocol}`);
    }
    case 'bind': return SERVICES.get(c.port) ?? `port-${c.port}`;
    case 'setsockopt': return slug(c.optionName.replace(/^SO_/, ''));
  }
}

/** `base`, or base-2, base-3, ... : the first not in `taken` (which it joins). */
export function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  taken.add(name);
  return name;
}

// ---- what a rule can grant -------------------------------------------------------

function probeSection(call: SocketCall | BindCall | SetsockoptCall): string[] {
  switch (call.kind) {
    case 'socket': return ['[socket.probe]', ...socketLines(call, false)];
    case 'bind': return ['[bind.probe]', ...bindLines(call)];
    case 'setsockopt': return ['[setsockopt.probe]', ...setsockoptLines(call.optionName, [call.value])];
  }
}

/** Why no rule can grant `call` (the parser's word), or undefined when one can. */
export function grantable(call: LearnedCall): string | undefined {
  if (call.kind === 'header') return undefined;
  const text = ['[program]', 'path = /learn/probe', 'users = *', '', ...probeSection(call), ''].join('\n');
  const { program, errors } = parseRuleFile('learn', text);
  if (errors.length > 0 || !program) return errors.map((e) => e.message).join('; ');
  // The section must say exactly this call: a comma in an interface name, for one, would read as a list.
  const [section] = program.calls;
  if (call.kind === 'setsockopt' && 'interface' in call.value
    && !(section.kind === 'setsockopt' && section.interfaces?.length === 1 && section.interfaces[0] === call.value.interface)) {
    return `the interface name ${JSON.stringify(call.value.interface)} cannot be written in a rule`;
  }
  return undefined;
}

// ---- [program] ---------------------------------------------------------------

/**
 * args = ... matching exactly these arguments: each word literal (with
 * the grammar's escapes), or `*` for one the grammar cannot write
 * (white space, quotes, empty). `""` for none.
 */
export function argsValue(args: string[]): { text: string; loose: string[] } {
  if (args.length === 0) return { text: '""', loose: [] };
  const loose: string[] = [];
  const words = args.map((a) => {
    if (a === '' || /[\s"'\\]/.test(a)) {
      loose.push(a);
      return '*';
    }
    if (a === '*' || a === '...') return `\\${a}`;
    return a.replace(/[;#]/g, (c) => `\\${c}`);
  });
  return { text: words.join(' '), loose };
}
