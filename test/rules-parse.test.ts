import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { parseRuleFile } from '../src/broker/rules/parse.js';
import {
  domainName, errnoName, errnoNumber, htons16, protocolName, typeName,
} from '../src/broker/rules/names.js';
import { findProgram, mayRun, matchSocket, socketProtocolArg } from '../src/broker/rules/match.js';
import type { RuleSet } from '../src/broker/rules/model.js';

const F = '/etc/elevation.d/t.conf';
const PROGRAM = '[program]\npath = /usr/bin/ping\nusers = *\n';
const ICMP = '[socket.icmp]\nas = root\ndomain = inet\ntype = raw\nprotocol = icmp\n';

/** The errors of a text, as the broker prints them; the file must yield no program. */
function errors(t: Test, text: string): string[] {
  const r = parseRuleFile(F, text);
  t.equal(r.program, undefined, 'a file with errors yields no program');
  return r.errors.map(String);
}

/** The one error of a text. */
function error(t: Test, text: string): string {
  const all = errors(t, text);
  t.equal(all.length, 1, `one error: ${all.join(' | ')}`);
  return all[0];
}

function program(t: Test, text: string) {
  const r = parseRuleFile(F, text);
  t.same(r.errors.map(String), []);
  return r.program!;
}

// ---- valid files -------------------------------------------------------------

t.test('a minimal file gives the exact model', async (t) => {
  t.strictSame(program(t, PROGRAM + '\n' + ICMP), {
    at: { file: F, line: 1, section: 'program' },
    file: F,
    path: '/usr/bin/ping',
    users: '*',
    groups: [],
    sandboxedClients: false,
    calls: [{
      kind: 'socket', name: 'icmp', at: { file: F, line: 5, section: 'socket.icmp' },
      domain: 2, type: 3, protocol: 1, headerIncluded: false, errno: 1,
    }],
  });
});

t.test('the shipped elevation.d/ping.conf', async (t) => {
  const file = '/etc/elevation.d/ping.conf';
  const text = readFileSync(new URL('../elevation.d/ping.conf', import.meta.url), 'utf8');
  const r = parseRuleFile(file, text);
  t.strictSame(r.errors, []);
  const p = r.program!;
  t.equal(p.path, '/usr/bin/ping');
  t.equal(p.users, '*');
  t.strictSame(p.groups, []);
  t.strictSame(p.calls.map(({ at, ...c }) => ({ ...c, section: at.section })), [
    { kind: 'socket', name: 'icmp', domain: 2, type: 3, protocol: 1, headerIncluded: false, errno: 1, section: 'socket.icmp' },
    { kind: 'socket', name: 'icmp6', domain: 10, type: 3, protocol: 58, headerIncluded: false, errno: 1, section: 'socket.icmp6' },
  ]);
  t.match(text, /ping_group_range/, 'says why ping needs it');
});

t.test('lists, groups, comments, quotes and CRLF', async (t) => {
  const p = program(t, [
    '; a comment', '# another', '',
    '[program]',
    'path = "/usr/local/bin/my tool"',
    'users = alice, bob,carol ; inline comment',
    'groups = netdev,wheel$',
    '',
    '[socket.v]',
    '  as = root',
    'domain = 10',
    'type = 3',
    'protocol = 112 # vrrp',
    'errno = EACCES',
  ].join('\r\n'));
  t.equal(p.path, '/usr/local/bin/my tool');
  t.strictSame(p.users, ['alice', 'bob', 'carol']);
  t.strictSame(p.groups, ['netdev', 'wheel$']);
  t.strictSame(p.calls[0], {
    kind: 'socket', name: 'v', at: { file: F, line: 9, section: 'socket.v' },
    domain: 10, type: 3, protocol: 112, headerIncluded: false, errno: 13,
  });
});

t.test('groups alone', async (t) => {
  const p = program(t, '[program]\npath = /usr/bin/ping\ngroups = netdev\n');
  t.strictSame(p.users, []);
  t.strictSame(p.groups, ['netdev']);
  t.strictSame(p.calls, []);
});

t.test('packet sockets keep the ethertype in host order', async (t) => {
  const p = program(t, PROGRAM
    + '[socket.all]\nas = root\ndomain = packet\ntype = raw\nprotocol = all\n'
    + '[socket.arp]\nas = root\ndomain = 17\ntype = dgram\nprotocol = 0x0806\n'
    + '[socket.v6]\nas = root\ndomain = packet\ntype = raw\nprotocol = 34525\n');
  t.strictSame(p.calls.map((c) => [c.name, c.domain, c.type, c.protocol, c.headerIncluded]), [
    ['all', 17, 3, 0x0003, false], ['arp', 17, 2, 0x0806, false], ['v6', 17, 3, 0x86dd, false],
  ]);
});

t.test('sandboxed-clients = allow | deny, default deny', async (t) => {
  t.equal(program(t, PROGRAM).sandboxedClients, false, 'absent: deny');
  t.equal(program(t, PROGRAM + 'sandboxed-clients = deny\n').sandboxedClients, false);
  t.equal(program(t, PROGRAM + 'sandboxed-clients = allow\n').sandboxedClients, true);
  t.equal(program(t, '[program]\nsandboxed-clients = allow ; runs outside the sandbox\npath = /usr/bin/ping\ngroups = netdev\n')
    .sandboxedClients, true, 'anywhere in [program], with an inline comment');
});

t.test('protocol raw with header-included = allow', async (t) => {
  const p = program(t, PROGRAM
    + '[socket.forge]\nas = root\ndomain = inet\ntype = raw\nprotocol = raw\nheader-included = allow\n'
    + '[socket.udp]\nas = root\ndomain = inet6\ntype = raw\nprotocol = udp\nheader-included = deny\n');
  t.strictSame(p.calls.map((c) => [c.protocol, c.headerIncluded]), [[255, true], [17, false]]);
});

// ---- structure errors ----------------------------------------------------------

t.test('unknown section', async (t) => {
  t.equal(error(t, PROGRAM + '[bind.http]\nport = 80\n'),
    `${F}:4: [bind.http]: unknown section; use [program] or [socket.NAME]`);
});

t.test('invalid socket rule name', async (t) => {
  t.equal(error(t, PROGRAM + '[socket.Icmp]\n'),
    `${F}:4: [socket.Icmp]: invalid rule name "Icmp"; use lowercase letters, digits, "_" and "-", starting with a letter or digit`);
});

t.test('unknown key', async (t) => {
  t.equal(error(t, PROGRAM + 'user = alice\n'),
    `${F}:4: [program] user: unknown key; use path, users, groups or sandboxed-clients`);
  t.equal(error(t, PROGRAM + ICMP + 'family = inet\n'),
    `${F}:9: [socket.icmp] family: unknown key; use as, domain, type, protocol, header-included or errno`);
});

t.test('duplicate key', async (t) => {
  t.equal(error(t, PROGRAM + 'path = /usr/bin/ping6\n'),
    `${F}:4: [program] path: duplicate key (first at line 2); keep one`);
});

t.test('duplicate section', async (t) => {
  t.equal(error(t, PROGRAM + ICMP + ICMP),
    `${F}:9: [socket.icmp]: duplicate section (first at line 4); merge the two into one`);
  t.strictSame(errors(t, PROGRAM + '[program]\ngroups = Wheel\npath = /bin/x\n'), [
    `${F}:4: [program]: duplicate section (first at line 1); merge the two into one`,
    `${F}:5: [program] groups: "Wheel" is not a valid group name; use lowercase letters, digits, "_" and "-" (not first), at most 32 characters`,
  ], 'the values of a repeated section are checked too');
});

t.test('key outside a section', async (t) => {
  t.equal(error(t, 'groups = wheel\n' + PROGRAM),
    `${F}:1: groups: key outside any section; put it under [program] or [socket.NAME]`);
});

t.test('empty value', async (t) => {
  t.equal(error(t, '[program]\npath = /usr/bin/ping\nusers =\n'),
    `${F}:3: [program] users: empty value; use * or a list of user names`);
  t.equal(error(t, PROGRAM + ICMP.replace('domain = inet', 'domain = ; later')),
    `${F}:6: [socket.icmp] domain: empty value; use inet, inet6, packet or a number 0-45`);
});

t.test('lines that are not key = value', async (t) => {
  t.strictSame(errors(t, PROGRAM + 'users\n= alice\n'), [
    `${F}:4: [program]: expected key = value, found "users"`,
    `${F}:5: [program]: missing key before "=" in "= alice"`,
  ]);
});

t.test('a quoted value with a comment after it (ini keeps the quotes)', async (t) => {
  t.equal(error(t, '[program]\npath = "/usr/bin/ping" ; c\nusers = *\n'),
    `${F}:2: [program] path: "\\"/usr/bin/ping\\"" has a stray quote; quote the whole value, comments go on their own line`);
});

t.test('a header with a comment is refused (ini would read it as a key)', async (t) => {
  t.equal(error(t, '[program] ; ping\npath = /usr/bin/ping\nusers = *\n'),
    `${F}:1: malformed section header "[program] ; ping"; write [name] alone on its line, comments on a line of their own`);
  t.equal(error(t, '  [program]\npath = /usr/bin/ping\nusers = *\n'),
    `${F}:1: malformed section header "[program]"; write [name] alone on its line, comments on a line of their own`);
});

t.test('control characters and line separators are refused (ini would skip the line)', async (t) => {
  t.strictSame(errors(t, '[program]\npath = /usr/bin/ping\nusers = alice\u2028\ngroups = a\u0007\n'), [
    `${F}:3: [program]: contains a control character; remove it`,
    `${F}:4: [program]: contains a control character; remove it`,
  ]);
});

t.test('a byte order mark is ignored', async (t) => {
  t.equal(program(t, '\uFEFF' + PROGRAM).path, '/usr/bin/ping');
});

t.test('missing [program]', async (t) => {
  t.equal(error(t, ICMP), `${F}: no [program] section; add one with the path of the program and who may run it (users or groups)`);
  t.equal(error(t, ''), `${F}: no [program] section; add one with the path of the program and who may run it (users or groups)`);
});

// ---- [program] values ------------------------------------------------------------

t.test('missing path', async (t) => {
  t.equal(error(t, '[program]\nusers = *\n'), `${F}:1: [program] path: missing; add path = /absolute/path/of/the/program`);
});

t.test('missing users and groups', async (t) => {
  t.equal(error(t, '[program]\npath = /usr/bin/ping\n'),
    `${F}:1: [program]: names no users or groups; add users = * (every user), users = a list of names, or groups = a list of groups`);
});

t.test('relative or non-canonical path', async (t) => {
  const bad = (path: string) => error(t, `[program]\npath = ${path}\nusers = *\n`);
  t.equal(bad('usr/bin/ping'), `${F}:2: [program] path: "usr/bin/ping" is not absolute; use the full path, e.g. /usr/bin/ping`);
  t.equal(bad('/usr//bin/ping'),
    `${F}:2: [program] path: "/usr//bin/ping" is not canonical (no ".", "..", "//" or trailing "/"); write "/usr/bin/ping"`);
  t.equal(bad('/usr/bin/../bin/./ping/'),
    `${F}:2: [program] path: "/usr/bin/../bin/./ping/" is not canonical (no ".", "..", "//" or trailing "/"); write "/usr/bin/ping"`);
  t.equal(bad('/'), `${F}:2: [program] path: "/" is not canonical (no ".", "..", "//" or trailing "/"); name the program's file`);
});

t.test('bad user and group names', async (t) => {
  t.strictSame(errors(t, '[program]\npath = /usr/bin/ping\nusers = Alice, bob, 1x, ok_$\ngroups = wheel, a b\n'), [
    `${F}:3: [program] users: "Alice" is not a valid user name; use lowercase letters, digits, "_" and "-" (not first), at most 32 characters`,
    `${F}:3: [program] users: "1x" is not a valid user name; use lowercase letters, digits, "_" and "-" (not first), at most 32 characters`,
    `${F}:4: [program] groups: "a b" is not a valid group name; use lowercase letters, digits, "_" and "-" (not first), at most 32 characters`,
  ]);
  t.equal(error(t, `[program]\npath = /usr/bin/ping\nusers = ${'a'.repeat(33)}\n`),
    `${F}:3: [program] users: "${'a'.repeat(33)}" is not a valid user name; use lowercase letters, digits, "_" and "-" (not first), at most 32 characters`);
  t.equal(error(t, '[program]\npath = /usr/bin/ping\nusers = alice,,bob\n'),
    `${F}:3: [program] users: empty name in the list "alice,,bob"; separate names with single commas`);
  t.equal(error(t, '[program]\npath = /usr/bin/ping\ngroups = *\n'),
    `${F}:3: [program] groups: "*" is not a group name; write users = * for every user`);
});

t.test('users = *, alice', async (t) => {
  t.equal(error(t, '[program]\npath = /usr/bin/ping\nusers = *, alice\n'),
    `${F}:3: [program] users: "*" must stand alone; write users = * for every user, or list names without it`);
});

// ---- [socket.NAME] values ----------------------------------------------------------

const socket = (body: string) => `${PROGRAM}[socket.s]\n${body}`;

t.test('as != root', async (t) => {
  t.equal(error(t, socket('as = alice\ndomain = inet\ntype = raw\nprotocol = icmp\n')),
    `${F}:5: [socket.s] as: unknown identity "alice"; only as = root is supported for now`);
  t.equal(error(t, socket('domain = inet\ntype = raw\nprotocol = icmp\n')),
    `${F}:4: [socket.s] as: missing; add as = root`);
});

t.test('unknown domain, type, protocol', async (t) => {
  t.equal(error(t, socket('as = root\ndomain = inet4\ntype = raw\nprotocol = icmp\n')),
    `${F}:6: [socket.s] domain: unknown domain "inet4"; use inet, inet6, packet or a number 0-45`);
  t.equal(error(t, socket('as = root\ndomain = 46\ntype = raw\nprotocol = icmp\n')),
    `${F}:6: [socket.s] domain: unknown domain "46"; use inet, inet6, packet or a number 0-45`);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raww\nprotocol = icmp\n')),
    `${F}:7: [socket.s] type: unknown type "raww"; use stream, dgram, raw, seqpacket, rdm or a number 1-10`);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = 11\nprotocol = icmp\n')),
    `${F}:7: [socket.s] type: unknown type "11"; use stream, dgram, raw, seqpacket, rdm or a number 1-10`);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = icmpp\n')),
    `${F}:8: [socket.s] protocol: unknown protocol "icmpp"; use a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = 256\n')),
    `${F}:8: [socket.s] protocol: unknown protocol "256"; use a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`);
  t.equal(error(t, socket('as = root\ndomain = packet\ntype = raw\nprotocol = icmp\n')),
    `${F}:8: [socket.s] protocol: unknown ethertype "icmp"; use all, ip, arp, ipv6 or a number 0-65535`);
  t.equal(error(t, socket('as = root\ndomain = 16\ntype = raw\nprotocol = tcp\n')),
    `${F}:8: [socket.s] protocol: unknown protocol "tcp"; domain 16 takes a number 0-255 (names are for inet and inet6)`);
});

t.test('missing domain, type, protocol', async (t) => {
  t.strictSame(errors(t, socket('as = root\n')), [
    `${F}:4: [socket.s] domain: missing; add domain = inet, inet6, packet or a number 0-45`,
    `${F}:4: [socket.s] type: missing; add type = stream, dgram, raw, seqpacket, rdm or a number 1-10`,
    `${F}:4: [socket.s] protocol: missing; add protocol = a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`,
  ]);
});

t.test('sockets that need no privilege', async (t) => {
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = stream\nprotocol = tcp\n')),
    `${F}:7: [socket.s] type: inet stream sockets need no privilege; remove this section`);
  t.equal(error(t, socket('as = root\ndomain = inet6\ntype = dgram\nprotocol = ipv6-icmp\n')),
    `${F}:7: [socket.s] type: inet6 dgram sockets need no privilege; remove this section`);
  t.equal(error(t, socket('as = root\ndomain = 1\ntype = stream\nprotocol = 0\n')),
    `${F}:6: [socket.s] domain: "1" is the unix domain, which needs no privilege; remove this section`);
});

t.test('sockets the kernel would refuse', async (t) => {
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = rdm\nprotocol = icmp\n')),
    `${F}:7: [socket.s] type: domain inet has no sockets of type rdm; use raw`);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = ip\n')),
    `${F}:8: [socket.s] protocol: raw sockets need a protocol (the kernel refuses ip, 0); name one, e.g. icmp`);
  t.equal(error(t, socket('as = root\ndomain = packet\ntype = stream\nprotocol = all\n')),
    `${F}:7: [socket.s] type: packet sockets take type raw or dgram, not stream`);
  t.equal(error(t, socket('as = root\ndomain = 0\ntype = raw\nprotocol = 1\n')),
    `${F}:6: [socket.s] domain: 0 (unspec) is no socket domain; use inet, inet6, packet or a number 1-45`);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = ipv6-icmp\n')),
    `${F}:8: [socket.s] protocol: ipv6-icmp is for domain inet6; use icmp for domain inet`);
  t.equal(error(t, socket('as = root\ndomain = inet6\ntype = raw\nprotocol = icmp\n')),
    `${F}:8: [socket.s] protocol: icmp is for domain inet; use ipv6-icmp for domain inet6`);
});

t.test('protocol raw without header-included = allow', async (t) => {
  const message = `${F}:8: [socket.s] protocol: raw (255) sockets write their own ip header, so they can forge packets; set header-included = allow if that is intended, or name the protocol, e.g. icmp`;
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = raw\n')), message);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = 255\nheader-included = deny\n')), message);
});

t.test('sandboxed-clients values and place', async (t) => {
  t.equal(error(t, PROGRAM + 'sandboxed-clients = yes\n'),
    `${F}:4: [program] sandboxed-clients: unknown value "yes"; use allow or deny`);
  t.equal(error(t, PROGRAM + 'sandboxed-clients = true\n'),
    `${F}:4: [program] sandboxed-clients: unknown value "true"; use allow or deny`, 'ini\'s booleans are words here');
  t.equal(error(t, PROGRAM + 'sandboxed-clients = Allow\n'),
    `${F}:4: [program] sandboxed-clients: unknown value "Allow"; use allow or deny`);
  t.equal(error(t, PROGRAM + 'sandboxed-clients =\n'),
    `${F}:4: [program] sandboxed-clients: empty value; use allow or deny`);
  t.equal(error(t, PROGRAM + 'sandboxed-clients = allow\nsandboxed-clients = deny\n'),
    `${F}:5: [program] sandboxed-clients: duplicate key (first at line 4); keep one`);
  t.equal(error(t, PROGRAM + ICMP + 'sandboxed-clients = allow\n'),
    `${F}:9: [socket.icmp] sandboxed-clients: unknown key; use as, domain, type, protocol, header-included or errno`,
    'a [program] key only');
  t.equal(error(t, 'sandboxed-clients = allow\n' + PROGRAM),
    `${F}:1: sandboxed-clients: key outside any section; put it under [program] or [socket.NAME]`);
  t.strictSame(errors(t, '[program]\npath = bin/ping\nusers = *\nsandboxed-clients = maybe\n'), [
    `${F}:2: [program] path: "bin/ping" is not absolute; use the full path, e.g. /usr/bin/ping`,
    `${F}:4: [program] sandboxed-clients: unknown value "maybe"; use allow or deny`,
  ], 'reported with the other errors of [program]');
});

t.test('header-included and errno values', async (t) => {
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = icmp\nheader-included = true\n')),
    `${F}:9: [socket.s] header-included: unknown value "true"; use allow or deny`);
  t.equal(error(t, socket('as = root\ndomain = packet\ntype = raw\nprotocol = all\nheader-included = allow\n')),
    `${F}:9: [socket.s] header-included: applies to domains inet and inet6 only (packet sockets build whole frames anyway); remove the line`);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = icmp\nerrno = EFOO\n')),
    `${F}:9: [socket.s] errno: unknown errno "EFOO"; use one of EPERM, EACCES, ENOSYS, EINVAL, EAFNOSUPPORT, EPROTONOSUPPORT, ESOCKTNOSUPPORT, EOPNOTSUPP`);
  t.equal(error(t, socket('as = root\ndomain = inet\ntype = raw\nprotocol = icmp\nerrno = EINTR\n')),
    `${F}:9: [socket.s] errno: EINTR does not say "refused"; use one of EPERM, EACCES, ENOSYS, EINVAL, EAFNOSUPPORT, EPROTONOSUPPORT, ESOCKTNOSUPPORT, EOPNOTSUPP`);
});

t.test('two sections for the same socket', async (t) => {
  t.equal(error(t, PROGRAM + ICMP + ICMP.replace('[socket.icmp]', '[socket.again]')),
    `${F}:9: [socket.again]: grants the same socket as [socket.icmp] (line 4); keep one of them`);
});

t.test('every error of a file, each with its line', async (t) => {
  t.strictSame(errors(t, [
    'users = *',                 // 1
    '[program]',                 // 2
    'path = bin/ping',           // 3
    'users = *, root',           // 4
    '',                          // 5
    '[socket.icmp]',             // 6
    'as = nobody',               // 7
    'domain = inet',             // 8
    'type = stream',             // 9
    'protocol = tcp',            // 10
    'colour = blue',             // 11
    'domain = inet6',            // 12
    '[socket.x]',                // 13
    'as = root',                 // 14
    'domain = inet',             // 15
    'type = raw',                // 16
    'protocol = icmpp',          // 17
    '[extra]',                   // 18
  ].join('\n')), [
    `${F}:1: users: key outside any section; put it under [program] or [socket.NAME]`,
    `${F}:3: [program] path: "bin/ping" is not absolute; use the full path, e.g. /usr/bin/ping`,
    `${F}:4: [program] users: "*" must stand alone; write users = * for every user, or list names without it`,
    `${F}:7: [socket.icmp] as: unknown identity "nobody"; only as = root is supported for now`,
    `${F}:11: [socket.icmp] colour: unknown key; use as, domain, type, protocol, header-included or errno`,
    `${F}:12: [socket.icmp] domain: duplicate key (first at line 8); keep one`,
    `${F}:17: [socket.x] protocol: unknown protocol "icmpp"; use a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`,
    `${F}:18: [extra]: unknown section; use [program] or [socket.NAME]`,
  ]);
});

// ---- names -------------------------------------------------------------------------

t.test('names decode numbers for audit records', async (t) => {
  t.equal(domainName(2), 'inet');
  t.equal(domainName(10), 'inet6');
  t.equal(domainName(17), 'packet');
  t.equal(domainName(46), undefined);
  t.equal(typeName(3), 'raw');
  t.equal(typeName(5), 'seqpacket');
  t.equal(typeName(7), undefined);
  t.equal(protocolName(2, 1), 'icmp');
  t.equal(protocolName(10, 58), 'ipv6-icmp');
  t.equal(protocolName(2, 255), 'raw');
  t.equal(protocolName(17, htons16(0x0003)), 'all', 'packet: socket(2) takes the ethertype in network order');
  t.equal(protocolName(17, htons16(0x86dd)), 'ipv6');
  t.equal(protocolName(16, 0), undefined);
  t.equal(errnoName(1), 'EPERM');
  t.equal(errnoName(95), 'EOPNOTSUPP');
  t.equal(errnoNumber('EPERM'), 1);
  t.equal(errnoNumber('ENOTSUP'), 95);
  t.equal(errnoNumber('EFOO'), undefined);
});

t.test('the errno table agrees with this Linux', async (t) => {
  for (const [name, n] of Object.entries(constants.errno)) {
    t.equal(errnoNumber(name), n, name);
  }
});

// ---- matching ------------------------------------------------------------------------

t.test('matching programs, users, groups and sockets', async (t) => {
  const ping = program(t, PROGRAM + ICMP + '[socket.all]\nas = root\ndomain = packet\ntype = raw\nprotocol = all\n');
  const rules: RuleSet = { dir: '/etc/elevation.d', files: [F], programs: new Map([[ping.path, ping]]) };
  t.equal(findProgram(rules, '/usr/bin/ping'), ping);
  t.equal(findProgram(rules, '/bin/ping'), undefined);

  const gid = (name: string) => ({ netdev: 108 } as Record<string, number>)[name];
  t.ok(mayRun(ping, { uid: 1000, user: 'alice', gids: [1000] }, gid));
  t.notOk(mayRun(ping, { uid: 4242, user: undefined, gids: [4242] }, gid), 'no passwd entry never matches *');
  const listed = program(t, '[program]\npath = /usr/bin/x\nusers = alice\ngroups = netdev, nosuch\n');
  t.ok(mayRun(listed, { uid: 1000, user: 'alice', gids: [1000] }, gid));
  t.notOk(mayRun(listed, { uid: 1001, user: 'bob', gids: [1001] }, gid));
  t.ok(mayRun(listed, { uid: 1001, user: 'bob', gids: [1001, 108] }, gid), 'a listed group among the gids');
  t.ok(mayRun(listed, { uid: 4242, user: undefined, gids: [108] }, gid), 'groups need no passwd entry');

  t.equal(matchSocket(ping, 2, 3, 1)?.name, 'icmp');
  t.equal(matchSocket(ping, 2, 3, 6), undefined);
  t.equal(matchSocket(ping, 2, 3 | 0o4000, 1), undefined, 'flags must be stripped by the caller');
  t.equal(matchSocket(ping, 10, 3, 58), undefined);
  t.equal(matchSocket(ping, 17, 3, 0x0300)?.name, 'all', 'packet: network order, as socket(2) gets it');
  t.equal(matchSocket(ping, 17, 3, 3), undefined);
  t.equal(socketProtocolArg(ping.calls[1]), 0x0300);
  t.equal(socketProtocolArg(ping.calls[0]), 1);
});
