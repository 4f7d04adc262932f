/*
 * [socket.NAME]: socket(domain, type, protocol) performed as root.
 *
 * MUST guarantee:
 * - the model holds the exact numbers the seccomp filter compares;
 * - a socket that needs no privilege, or that the kernel would refuse, is
 *   an error: a rule never stands for something it cannot grant;
 * - protocol raw (header-included by nature) needs header-included = allow.
 */
import type { SocketRule } from './model.js';
import {
  AF_INET, AF_INET6, AF_LAST, AF_PACKET, AF_UNIX, AF_UNSPEC, EPERM, IPPROTO_ICMP, IPPROTO_ICMPV6,
  IPPROTO_IP, IPPROTO_RAW, RULE_DOMAINS, RULE_ETHERTYPES, RULE_PROTOCOLS, RULE_TYPES,
  SOCK_DGRAM, SOCK_LAST, SOCK_RAW, SOCK_SEQPACKET, SOCK_STREAM, domainName, typeName,
} from './names.js';
import {
  AS_CHOICES, BAD, ERRNO_CHOICES, type Keys, Problem, type Read, type Report, type Section, at, checkKeys, missing, number,
  parseAllowDeny, parseAs, parseErrno, q, read,
} from './values.js';

const DOMAIN_CHOICES = 'inet, inet6, packet or a number 0-45';
const TYPE_CHOICES = 'stream, dgram, raw, seqpacket, rdm or a number 1-10';
const PROTOCOL_CHOICES = 'a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255';
const ETHERTYPE_CHOICES = 'all, ip, arp, ipv6 or a number 0-65535';

const SOCKET_KEYS: Keys = {
  as: AS_CHOICES,
  domain: DOMAIN_CHOICES,
  type: TYPE_CHOICES,
  protocol: PROTOCOL_CHOICES,
  'header-included': 'allow or deny',
  errno: ERRNO_CHOICES,
};

function parseDomain(v: string): number | Problem {
  const n = v === 'unix' ? AF_UNIX : RULE_DOMAINS.get(v) ?? number(v, AF_LAST);
  if (n === undefined) return new Problem(`unknown domain ${q(v)}; use ${DOMAIN_CHOICES}`);
  if (n === AF_UNSPEC) return new Problem(`0 (unspec) is no socket domain; use ${DOMAIN_CHOICES.replace('0-45', '1-45')}`);
  if (n === AF_UNIX) return new Problem(`${q(v)} is the unix domain, which needs no privilege; remove this section`);
  return n;
}

function parseType(v: string): number | Problem {
  const n = RULE_TYPES.get(v) ?? number(v, SOCK_LAST);
  return n === undefined || n === 0 ? new Problem(`unknown type ${q(v)}; use ${TYPE_CHOICES}`) : n;
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

interface SocketFields { domain: number; type: number; protocol: number; headerIncluded: boolean | undefined; deny: boolean }

export function buildSocket(s: Section, file: string, r: Report): SocketRule | undefined {
  checkKeys(s, SOCKET_KEYS, r);
  const as = read(s, SOCKET_KEYS, 'as', r, parseAs) ?? missing(s, SOCKET_KEYS, 'as', r);
  const domain = read(s, SOCKET_KEYS, 'domain', r, parseDomain) ?? missing(s, SOCKET_KEYS, 'domain', r);
  const type = read(s, SOCKET_KEYS, 'type', r, parseType) ?? missing(s, SOCKET_KEYS, 'type', r);
  const protocol = read(s, SOCKET_KEYS, 'protocol', r, protocolParser(domain))
    ?? missing(s, SOCKET_KEYS, 'protocol', r);
  const headerIncluded = read(s, SOCKET_KEYS, 'header-included', r, parseAllowDeny);
  const errno = read(s, SOCKET_KEYS, 'errno', r, parseErrno);
  if (as === BAD || domain === BAD || type === BAD || protocol === BAD || headerIncluded === BAD || errno === BAD) {
    return undefined;
  }
  if (s.repeat) return undefined;
  const fields = { domain, type, protocol, headerIncluded, deny: as === 'deny' };
  if (!checkSocket(s, fields, r)) return undefined;
  return {
    kind: 'socket', ...(as === 'deny' ? { deny: true as const } : {}), name: s.name.slice('socket.'.length), at: at(file, s),
    domain, type, protocol, headerIncluded: headerIncluded ?? false, errno: errno ?? EPERM,
  };
}

/** Refuses what the kernel would refuse and what needs no privilege. */
function checkSocket(s: Section, f: SocketFields, r: Report): boolean {
  const problems: Array<[key: string, message: string]> = [];
  // A denied socket is never created, so no header can be forged on it.
  if (f.deny && f.headerIncluded !== undefined) {
    problems.push(['header-included', 'a section with as = deny creates no socket to forge headers on; remove the line']);
  }
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
  if (f.protocol === IPPROTO_RAW && f.headerIncluded !== true && !f.deny) {
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

/** Two sections for the same socket (granting or denying it) would make the decision ambiguous. */
export function checkDistinctSockets(calls: SocketRule[], r: Report): void {
  calls.forEach((c, i) => {
    const first = calls.slice(0, i).find((o) => o.domain === c.domain && o.type === c.type && o.protocol === c.protocol);
    if (first) {
      r.add(c.at.line, c.at.section, undefined,
        `${c.deny ? 'denies' : 'grants'} the same socket as [${first.at.section}] (line ${first.at.line})${first.deny === c.deny ? '' : `, which ${first.deny ? 'denies' : 'grants'} it`}; keep one of them`);
    }
  });
}
