/*
 * [bind.NAME]: bind() of the program's inet or inet6 socket to a
 * privileged port, performed as root.
 *
 * MUST guarantee:
 * - families are inet and inet6 only (a unix socket's address is a path,
 *   never elevated), types stream and dgram only, ports 1-65535;
 * - addresses are IP literals in canonical text (names.ts), so the broker
 *   compares its decoded address as text; every address belongs to a
 *   listed family and every listed family has an address, so no family is
 *   granted more than the admin wrote;
 * - sections may overlap (the first match decides), but two grant sections
 *   that cover the same family and type must refuse with the same errno, or
 *   a refused bind's answer would depend on which one the broker asked (a
 *   deny section answers the binds it matches with its own errno).
 */
import { isIP } from 'node:net';
import type { BindRule, Range } from './model.js';
import {
  AF_INET, AF_INET6, EACCES, RULE_DOMAINS, RULE_TYPES, canonicalAddress, domainName, errnoName, typeName,
} from './names.js';
import {
  AS_CHOICES, BAD, ERRNO_CHOICES, type Keys, Problem, type Report, type Section, at, checkKeys, eachItem, lineOf, missing,
  parseAllowDeny, parseAs, parseErrno, q, read,
} from './values.js';

/** The kernel's default net.ipv4.ip_unprivileged_port_start. */
const UNPRIVILEGED_PORT_START = 1024;

const BIND_KEYS: Keys = {
  as: AS_CHOICES,
  family: 'inet, inet6 or both',
  type: 'stream, dgram or both',
  port: 'a list of ports 1-65535 and ranges lo-hi',
  address: 'a list of IPv4 and IPv6 addresses',
  reuseport: 'allow or deny',
  errno: ERRNO_CHOICES,
};

function parseFamily(v: string): number | Problem {
  if (v === 'inet' || v === 'inet6') return RULE_DOMAINS.get(v)!;
  if (v === 'unix') {
    return new Problem('unix sockets are never elevated (their address is a path: binding needs no privilege, only access to the directory); use inet, inet6 or both');
  }
  return new Problem(`unknown family ${q(v)}; use inet, inet6 or both`);
}

function parseType(v: string): number | Problem {
  if (v === 'stream' || v === 'dgram') return RULE_TYPES.get(v)!;
  if (v === 'raw') return new Problem('raw sockets have no ports (binding one needs no privilege); use stream, dgram or both');
  return new Problem(`unknown type ${q(v)}; use stream, dgram or both`);
}

const PORT_CHOICES = 'ports 1-65535 and ranges lo-hi (e.g. 8000-8010)';

function port(text: string): number | Problem {
  if (!/^(0|[1-9][0-9]*)$/.test(text)) return new Problem(`${q(text)} is not a port; use ${PORT_CHOICES}`);
  const n = Number(text);
  if (n === 0) return new Problem('port 0 asks the kernel for any free port, which needs no privilege; use ports 1-65535');
  if (n > 65535) return new Problem(`port ${text} does not exist; ports go up to 65535`);
  return n;
}

function parsePort(item: string): Range | Problem {
  const range = /^([^-]*?)\s*-\s*([^-]*)$/.exec(item);
  if (!range) {
    const n = port(item);
    return n instanceof Problem ? n : { from: n, to: n };
  }
  const from = port(range[1]);
  const to = port(range[2]);
  if (from instanceof Problem || to instanceof Problem) {
    return new Problem(...[from, to].flatMap((x) => x instanceof Problem ? x.messages : []));
  }
  if (from > to) return new Problem(`range ${q(item)} runs backwards; write ${to}-${from}`);
  return { from, to };
}

function parseAddress(item: string): string | Problem {
  if (isIP(item) === 6 && item.includes('%')) {
    return new Problem(`${q(item)} names a scope (${item.slice(item.indexOf('%'))}); write the address alone`);
  }
  return canonicalAddress(item)
    ?? new Problem(`${q(item)} is not an IPv4 or IPv6 address; write literals, e.g. 127.0.0.1 or ::1 (no host names)`);
}

export function buildBind(s: Section, file: string, r: Report): BindRule | undefined {
  checkKeys(s, BIND_KEYS, r);
  const as = read(s, BIND_KEYS, 'as', r, parseAs) ?? missing(s, BIND_KEYS, 'as', r);
  const families = read(s, BIND_KEYS, 'family', r, (v) => eachItem(v, 'family', parseFamily, 'families'))
    ?? missing(s, BIND_KEYS, 'family', r);
  const types = read(s, BIND_KEYS, 'type', r, (v) => eachItem(v, 'type', parseType)) ?? missing(s, BIND_KEYS, 'type', r);
  const ports = read(s, BIND_KEYS, 'port', r, (v) => eachItem(v, 'port', parsePort)) ?? missing(s, BIND_KEYS, 'port', r);
  const addresses = read(s, BIND_KEYS, 'address', r, (v) => eachItem(v, 'address', parseAddress, 'addresses'));
  const reusePort = read(s, BIND_KEYS, 'reuseport', r, parseAllowDeny);
  const errno = read(s, BIND_KEYS, 'errno', r, parseErrno);
  if (ports !== BAD) warnUnprivileged(s, ports, r);
  if (families !== BAD && addresses !== BAD && addresses !== undefined) checkAddressFamilies(s, families, addresses, r);
  if (as === BAD || families === BAD || types === BAD || ports === BAD || addresses === BAD || reusePort === BAD
    || errno === BAD || s.repeat) {
    return undefined;
  }
  return {
    kind: 'bind', ...(as === 'deny' ? { deny: true as const } : {}), name: s.name.slice('bind.'.length), at: at(file, s),
    families, types, ports,
    // ::1 and ::0001 are one address
    addresses: addresses && [...new Set(addresses)], reusePort: reusePort ?? false, errno: errno ?? EACCES,
  };
}

/**
 * An address of a family the section does not list could never be bound,
 * and a listed family without an address would refuse every bind of its
 * sockets: both are slips.
 */
function checkAddressFamilies(s: Section, families: number[], addresses: string[], r: Report): void {
  const familyOf = (a: string): number => isIP(a) === 4 ? AF_INET : AF_INET6;
  const listed = families.map((f) => domainName(f)!).join(', ');
  for (const a of addresses) {
    const family = familyOf(a);
    if (!families.includes(family)) {
      const name = domainName(family)!;
      r.add(lineOf(s, 'address'), s.name, 'address',
        `${a} is an ${name} address but family is ${listed} only; add ${name} to family or remove the address`);
    }
  }
  for (const f of families) {
    if (!addresses.some((a) => familyOf(a) === f)) {
      const any = f === AF_INET ? '0.0.0.0' : '::';
      r.add(lineOf(s, 'address'), s.name, 'address',
        `lists no ${domainName(f)} address, so every ${domainName(f)} bind would be refused; add one (${any} for the wildcard) or remove ${domainName(f)} from family`);
    }
  }
}

/** Ports from 1024 up are allowed (the start can be raised) but said to be ordinarily free. */
function warnUnprivileged(s: Section, ports: Range[], r: Report): void {
  const free = ports.filter((p) => p.to >= UNPRIVILEGED_PORT_START)
    .map((p) => ({ from: Math.max(p.from, UNPRIVILEGED_PORT_START), to: p.to }))
    .map((p) => p.from === p.to ? String(p.from) : `${p.from}-${p.to}`);
  if (free.length === 0) return;
  const what = free.length === 1 && !free[0].includes('-') ? `port ${free[0]} needs` : `ports ${free.join(', ')} need`;
  r.warn(lineOf(s, 'port'), s.name, 'port',
    `${what} no privilege while net.ipv4.ip_unprivileged_port_start is 1024 (the default); the broker lets such binds run with the user's own rights`);
}

/**
 * Overlapping bind sections are fine (the first match decides), but a
 * bind no section matches is refused with the errno of the sections for
 * its family and type: they must agree.
 */
export function checkBindErrnos(calls: BindRule[], r: Report): void {
  // A deny section answers only the binds it matches, with its own errno.
  const grants = calls.filter((c) => !c.deny);
  grants.forEach((c, i) => {
    for (const o of grants.slice(0, i)) {
      const family = c.families.find((f) => o.families.includes(f));
      const type = c.types.find((t) => o.types.includes(t));
      if (family === undefined || type === undefined || o.errno === c.errno) continue;
      r.add(c.at.line, c.at.section, undefined,
        `refuses with ${errnoName(c.errno)} but [${o.at.section}] (line ${o.at.line}), which also covers ${domainName(family)} ${typeName(type)} binds, with ${errnoName(o.errno)}; give both the same errno`);
      return;
    }
  });
}

/**
 * users = * with a privileged port: every user may then serve on a port
 * that clients trust to be the system's (only root could bind it before).
 * Valid (a shared host may want it), but rarely meant.
 */
export function checkWideBinds(program: { users: '*' | string[] }, calls: BindRule[], sections: Section[], r: Report): void {
  if (program.users !== '*') return;
  for (const c of calls) {
    const low = c.ports.filter((p) => p.from < UNPRIVILEGED_PORT_START)
      .map((p) => ({ from: p.from, to: Math.min(p.to, UNPRIVILEGED_PORT_START - 1) }))
      .map((p) => p.from === p.to ? String(p.from) : `${p.from}-${p.to}`);
    const s = sections.find((x) => x.name === c.at.section && !x.repeat);
    if (low.length === 0 || !s) continue;
    const what = low.length === 1 && !low[0].includes('-') ? `port ${low[0]} is` : `ports ${low.join(', ')} are`;
    r.warn(lineOf(s, 'port'), c.at.section, 'port',
      `${what} below 1024 and users = * lets every user bind ${low.length === 1 && !low[0].includes('-') ? 'it' : 'them'}: any user could serve there, where clients expect the system's service; name the users or groups that run the service`);
  }
}
