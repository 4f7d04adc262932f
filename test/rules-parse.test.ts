import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { parseRuleFile } from '../src/broker/rules/parse.js';
import {
  domainName, errnoName, errnoNumber, htons16, protocolName, typeName,
} from '../src/broker/rules/names.js';
import { matchBind, mayRun, matchArgs, matchSocket, programRules, ruleFor, socketProtocolArg } from '../src/broker/rules/match.js';
import type { ProgramRule, RuleSet, SocketRule } from '../src/broker/rules/model.js';

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

/** The socket rules of a program (the model's union narrowed). */
function sockets(p: ProgramRule): SocketRule[] {
  return p.calls.filter((c): c is SocketRule => c.kind === 'socket');
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
    keyLines: { path: 2, users: 3 },
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

// The examples of elevation.d(5): test/rules-table.test.ts.

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
  t.strictSame(sockets(p).map((c) => [c.name, c.domain, c.type, c.protocol, c.headerIncluded]), [
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
  t.strictSame(sockets(p).map((c) => [c.protocol, c.headerIncluded]), [[255, true], [17, false]]);
});

// ---- structure errors ----------------------------------------------------------

t.test('unknown section', async (t) => {
  t.equal(error(t, PROGRAM + '[connect.http]\nport = 80\n'),
    `${F}:4: [connect.http]: unknown section; use [program], [socket.NAME], [bind.NAME] or [setsockopt.NAME]`);
});

t.test('invalid socket rule name', async (t) => {
  t.equal(error(t, PROGRAM + '[socket.Icmp]\n'),
    `${F}:4: [socket.Icmp]: invalid rule name "Icmp"; use lowercase letters, digits, "_" and "-", starting with a letter or digit`);
});

t.test('unknown key', async (t) => {
  t.equal(error(t, PROGRAM + 'user = alice\n'),
    `${F}:4: [program] user: unknown key; use path, users, groups, sandboxed-clients, sha256, args or keep-env`);
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
    `${F}:1: groups: key outside any section; put it under [program], [socket.NAME], [bind.NAME] or [setsockopt.NAME]`);
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

t.test('as is neither root nor deny', async (t) => {
  t.equal(error(t, socket('as = alice\ndomain = inet\ntype = raw\nprotocol = icmp\n')),
    `${F}:5: [socket.s] as: unknown value "alice"; use root (the call is performed as root) or deny (it is refused with errno)`);
  t.equal(error(t, socket('domain = inet\ntype = raw\nprotocol = icmp\n')),
    `${F}:4: [socket.s] as: missing; add as = root or deny`);
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
    `${F}:1: sandboxed-clients: key outside any section; put it under [program], [socket.NAME], [bind.NAME] or [setsockopt.NAME]`);
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
    `${F}:1: users: key outside any section; put it under [program], [socket.NAME], [bind.NAME] or [setsockopt.NAME]`,
    `${F}:3: [program] path: "bin/ping" is not absolute; use the full path, e.g. /usr/bin/ping`,
    `${F}:4: [program] users: "*" must stand alone; write users = * for every user, or list names without it`,
    `${F}:7: [socket.icmp] as: unknown value "nobody"; use root (the call is performed as root) or deny (it is refused with errno)`,
    `${F}:11: [socket.icmp] colour: unknown key; use as, domain, type, protocol, header-included or errno`,
    `${F}:12: [socket.icmp] domain: duplicate key (first at line 8); keep one`,
    `${F}:17: [socket.x] protocol: unknown protocol "icmpp"; use a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`,
    `${F}:18: [extra]: unknown section; use [program], [socket.NAME], [bind.NAME] or [setsockopt.NAME]`,
  ]);
});

// ---- [bind.NAME] ---------------------------------------------------------------------

const WEB = '[program]\npath = /usr/sbin/webd\nusers = www-data\n';
const bind = (body: string) => `${WEB}[bind.b]\n${body}`;
const BIND_OK = 'as = root\nfamily = inet\ntype = stream\nport = 80\n';

/** The warnings of a valid text. */
function warnings(t: Test, text: string): string[] {
  const r = parseRuleFile(F, text);
  t.same(r.errors.map(String), []);
  t.ok(r.program, 'warnings do not refuse the file');
  return r.warnings.map(String);
}

t.test('a web server on 80 and 443 gives the exact model', async (t) => {
  const p = program(t, WEB + [
    '',
    '[bind.http]',                            // 5
    'as = root',
    'family = inet, inet6',
    'type = stream',
    'port = 80, 443',
    'address = 127.0.0.1, ::1',
    'reuseport = deny',
    'errno = EACCES',
  ].join('\n'));
  t.strictSame(p.calls, [{
    kind: 'bind', name: 'http', at: { file: F, line: 5, section: 'bind.http' },
    families: [2, 10], types: [1], ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }],
    addresses: ['127.0.0.1', '::1'], reusePort: false, errno: 13,
  }]);
});

t.test('bind defaults: any address, no SO_REUSEPORT, EACCES', async (t) => {
  t.strictSame(program(t, bind(BIND_OK)).calls, [{
    kind: 'bind', name: 'b', at: { file: F, line: 4, section: 'bind.b' },
    families: [2], types: [1], ports: [{ from: 80, to: 80 }],
    addresses: undefined, reusePort: false, errno: 13,
  }]);
});

t.test('bind lists: ranges, repeats, both types, reuseport, another errno', async (t) => {
  const [c] = program(t, bind([
    'as = root',
    'family = inet6, inet, inet6 ; comment',
    'type = dgram,stream',
    'port = 1-1023, 53, 1 - 2, 65535',
    'address = ::0001, 0:0:0:0:0:0:0:1, ::, 0.0.0.0, 192.0.2.1',
    'reuseport = allow',
    'errno = EPERM',
  ].join('\n'))).calls;
  t.match(c, {
    families: [10, 2], types: [2, 1],
    ports: [{ from: 1, to: 1023 }, { from: 53, to: 53 }, { from: 1, to: 2 }, { from: 65535, to: 65535 }],
    addresses: ['::1', '::', '0.0.0.0', '192.0.2.1'], reusePort: true, errno: 1,
  });
});

t.test('bind warnings: ports from 1024 up need no privilege by default', async (t) => {
  const W = 'need no privilege while net.ipv4.ip_unprivileged_port_start is 1024 (the default); the broker lets such binds run with the user\'s own rights';
  t.strictSame(warnings(t, bind(BIND_OK.replace('port = 80', 'port = 80, 443, 8000-8010'))),
    [`${F}:8: [bind.b] port: ports 8000-8010 ${W}`]);
  t.strictSame(warnings(t, bind(BIND_OK.replace('port = 80', 'port = 8080'))),
    [`${F}:8: [bind.b] port: port 8080 needs no privilege while net.ipv4.ip_unprivileged_port_start is 1024 (the default); the broker lets such binds run with the user's own rights`]);
  t.strictSame(warnings(t, bind(BIND_OK.replace('port = 80', 'port = 1000-1100, 1024, 2000'))),
    [`${F}:8: [bind.b] port: ports 1024-1100, 1024, 2000 ${W}`]);
  t.strictSame(warnings(t, bind(BIND_OK.replace('port = 80', 'port = 1-1023'))), []);
});

t.test('bind: as, missing keys, unknown key', async (t) => {
  t.equal(error(t, bind(BIND_OK.replace('as = root', 'as = www-data'))),
    `${F}:5: [bind.b] as: unknown value "www-data"; use root (the call is performed as root) or deny (it is refused with errno)`);
  t.strictSame(errors(t, bind('as = root\n')), [
    `${F}:4: [bind.b] family: missing; add family = inet, inet6 or both`,
    `${F}:4: [bind.b] type: missing; add type = stream, dgram or both`,
    `${F}:4: [bind.b] port: missing; add port = a list of ports 1-65535 and ranges lo-hi`,
  ]);
  t.strictSame(errors(t, bind('')), [
    `${F}:4: [bind.b] as: missing; add as = root or deny`,
    `${F}:4: [bind.b] family: missing; add family = inet, inet6 or both`,
    `${F}:4: [bind.b] type: missing; add type = stream, dgram or both`,
    `${F}:4: [bind.b] port: missing; add port = a list of ports 1-65535 and ranges lo-hi`,
  ]);
  t.equal(error(t, bind(BIND_OK + 'protocol = tcp\n')),
    `${F}:9: [bind.b] protocol: unknown key; use as, family, type, port, address, reuseport or errno`);
  t.equal(error(t, bind(BIND_OK + 'port = 81\n')), `${F}:9: [bind.b] port: duplicate key (first at line 8); keep one`);
  t.equal(error(t, bind(BIND_OK.replace('port = 80', 'port ='))), `${F}:8: [bind.b] port: empty value; use a list of ports 1-65535 and ranges lo-hi`);
});

t.test('bind: family', async (t) => {
  const bad = (v: string) => errors(t, bind(BIND_OK.replace('family = inet', `family = ${v}`)));
  t.strictSame(bad('unix'), [
    `${F}:6: [bind.b] family: unix sockets are never elevated (their address is a path: binding needs no privilege, only access to the directory); use inet, inet6 or both`,
  ]);
  t.strictSame(bad('inet, packet, 2'), [
    `${F}:6: [bind.b] family: unknown family "packet"; use inet, inet6 or both`,
    `${F}:6: [bind.b] family: unknown family "2"; use inet, inet6 or both`,
  ]);
  t.strictSame(bad('inet,,inet6'), [
    `${F}:6: [bind.b] family: empty family in the list "inet,,inet6"; separate families with single commas`,
  ]);
});

t.test('bind: type', async (t) => {
  const bad = (v: string) => errors(t, bind(BIND_OK.replace('type = stream', `type = ${v}`)));
  t.strictSame(bad('raw'), [
    `${F}:7: [bind.b] type: raw sockets have no ports (binding one needs no privilege); use stream, dgram or both`,
  ]);
  t.strictSame(bad('stream, seqpacket, 1'), [
    `${F}:7: [bind.b] type: unknown type "seqpacket"; use stream, dgram or both`,
    `${F}:7: [bind.b] type: unknown type "1"; use stream, dgram or both`,
  ]);
});

t.test('bind: port, every bad item', async (t) => {
  t.strictSame(errors(t, bind(BIND_OK.replace('port = 80', 'port = 0, 65536, 90-80, http, 0-80, 1-2-3, 080, 99999999999999999999, 80-,'))), [
    `${F}:8: [bind.b] port: empty port in the list "0, 65536, 90-80, http, 0-80, 1-2-3, 080, 99999999999999999999, 80-,"; separate ports with single commas`,
    `${F}:8: [bind.b] port: port 0 asks the kernel for any free port, which needs no privilege; use ports 1-65535`,
    `${F}:8: [bind.b] port: port 65536 does not exist; ports go up to 65535`,
    `${F}:8: [bind.b] port: range "90-80" runs backwards; write 80-90`,
    `${F}:8: [bind.b] port: "http" is not a port; use ports 1-65535 and ranges lo-hi (e.g. 8000-8010)`,
    `${F}:8: [bind.b] port: port 0 asks the kernel for any free port, which needs no privilege; use ports 1-65535`,
    `${F}:8: [bind.b] port: "1-2-3" is not a port; use ports 1-65535 and ranges lo-hi (e.g. 8000-8010)`,
    `${F}:8: [bind.b] port: "080" is not a port; use ports 1-65535 and ranges lo-hi (e.g. 8000-8010)`,
    `${F}:8: [bind.b] port: port 99999999999999999999 does not exist; ports go up to 65535`,
    `${F}:8: [bind.b] port: "" is not a port; use ports 1-65535 and ranges lo-hi (e.g. 8000-8010)`,
  ]);
});

t.test('bind: address', async (t) => {
  const withAddress = (family: string, address: string) =>
    bind(BIND_OK.replace('family = inet', `family = ${family}`) + `address = ${address}\n`);
  t.strictSame(errors(t, withAddress('inet, inet6', 'localhost, fe80::1%eth0, [::1], 127.1, 127.0.0.1, ::1')), [
    `${F}:9: [bind.b] address: "localhost" is not an IPv4 or IPv6 address; write literals, e.g. 127.0.0.1 or ::1 (no host names)`,
    `${F}:9: [bind.b] address: "fe80::1%eth0" names a scope (%eth0); write the address alone`,
    `${F}:9: [bind.b] address: "[::1]" is not an IPv4 or IPv6 address; write literals, e.g. 127.0.0.1 or ::1 (no host names)`,
    `${F}:9: [bind.b] address: "127.1" is not an IPv4 or IPv6 address; write literals, e.g. 127.0.0.1 or ::1 (no host names)`,
  ]);
  t.strictSame(errors(t, withAddress('inet', '127.0.0.1, ::1')), [
    `${F}:9: [bind.b] address: ::1 is an inet6 address but family is inet only; add inet6 to family or remove the address`,
  ], 'an address of a family that is not listed');
  t.strictSame(errors(t, withAddress('inet', '::0001')), [
    `${F}:9: [bind.b] address: ::1 is an inet6 address but family is inet only; add inet6 to family or remove the address`,
    `${F}:9: [bind.b] address: lists no inet address, so every inet bind would be refused; add one (0.0.0.0 for the wildcard) or remove inet from family`,
  ], 'only the other family');
  t.strictSame(errors(t, withAddress('inet6', '0.0.0.0')), [
    `${F}:9: [bind.b] address: 0.0.0.0 is an inet address but family is inet6 only; add inet to family or remove the address`,
    `${F}:9: [bind.b] address: lists no inet6 address, so every inet6 bind would be refused; add one (:: for the wildcard) or remove inet6 from family`,
  ]);
  t.strictSame(errors(t, withAddress('inet, inet6', '127.0.0.1')), [
    `${F}:9: [bind.b] address: lists no inet6 address, so every inet6 bind would be refused; add one (:: for the wildcard) or remove inet6 from family`,
  ], 'a listed family without an address');
  t.strictSame(errors(t, withAddress('inet, unix', '::1')), [
    `${F}:6: [bind.b] family: unix sockets are never elevated (their address is a path: binding needs no privilege, only access to the directory); use inet, inet6 or both`,
  ], 'no family check while family is wrong');
});

t.test('bind: reuseport and errno values', async (t) => {
  t.equal(error(t, bind(BIND_OK + 'reuseport = yes\n')), `${F}:9: [bind.b] reuseport: unknown value "yes"; use allow or deny`);
  t.equal(error(t, bind(BIND_OK + 'errno = EADDRINUSE\n')),
    `${F}:9: [bind.b] errno: EADDRINUSE does not say "refused"; use one of EPERM, EACCES, ENOSYS, EINVAL, EAFNOSUPPORT, EPROTONOSUPPORT, ESOCKTNOSUPPORT, EOPNOTSUPP`);
});

t.test('bind: rule names and repeated sections', async (t) => {
  t.equal(error(t, WEB + '[bind.Http]\n' + BIND_OK),
    `${F}:4: [bind.Http]: invalid rule name "Http"; use lowercase letters, digits, "_" and "-", starting with a letter or digit`);
  t.equal(error(t, WEB + '[bind.]\n' + BIND_OK),
    `${F}:4: [bind.]: invalid rule name ""; use lowercase letters, digits, "_" and "-", starting with a letter or digit`);
  t.strictSame(errors(t, bind(BIND_OK) + '[bind.b]\nport = 0\n'), [
    `${F}:9: [bind.b]: duplicate section (first at line 4); merge the two into one`,
    `${F}:10: [bind.b] port: port 0 asks the kernel for any free port, which needs no privilege; use ports 1-65535`,
  ]);
});

t.test('bind sections may overlap, but not with different errnos', async (t) => {
  const a = '[bind.a]\nas = root\nfamily = inet, inet6\ntype = stream\nport = 80\naddress = 127.0.0.1, ::1\n';
  const b = (family: string, type: string, errno: string) =>
    `[bind.c]\nas = root\nfamily = ${family}\ntype = ${type}\nport = 80-90\n${errno ? `errno = ${errno}\n` : ''}`;
  t.equal(program(t, WEB + a + b('inet', 'stream', '')).calls.length, 2, 'same errno (the default): fine');
  t.equal(program(t, WEB + a + b('inet', 'dgram', 'EPERM')).calls.length, 2, 'other type: fine');
  t.equal(program(t, WEB + a.replace('inet, inet6', 'inet6').replace('127.0.0.1, ', '') + b('inet', 'stream', 'EPERM')).calls.length,
    2, 'other family: fine');
  t.equal(error(t, WEB + a + b('inet6', 'dgram, stream', 'EPERM')),
    `${F}:10: [bind.c]: refuses with EPERM but [bind.a] (line 4), which also covers inet6 stream binds, with EACCES; give both the same errno`);
});

// ---- [setsockopt.NAME] -----------------------------------------------------------------

const opt = (body: string) => `${WEB}[setsockopt.o]\n${body}`;
const MARK = 'as = root\noption = SO_MARK\nvalue = 1\n';

t.test('a daemon that needs SO_MARK gives the exact model', async (t) => {
  const p = program(t, WEB + [
    '',
    '[setsockopt.mark]',                      // 5
    'as = root',
    'option = SO_MARK',
    'value = 1-100, 200, 0x10000',
    'errno = EPERM',
  ].join('\n'));
  t.strictSame(p.calls, [{
    kind: 'setsockopt', name: 'mark', at: { file: F, line: 5, section: 'setsockopt.mark' },
    level: 1, option: 36, optionName: 'SO_MARK',
    values: [{ from: 1, to: 100 }, { from: 200, to: 200 }, { from: 0x10000, to: 0x10000 }],
    interfaces: undefined, errno: 1,
  }]);
});

t.test('every privileged option, with its level', async (t) => {
  const p = program(t, WEB
    + '[setsockopt.dev]\nas = root\noption = SO_BINDTODEVICE\ninterface = eth0, lo, eth0, wg-vpn.1\n'
    + '[setsockopt.prio]\nas = root\noption = SO_PRIORITY\nvalue = 0-10\n'
    + '[setsockopt.rcv]\nas = root\noption = SO_RCVBUFFORCE\nvalue = 0-0xffffffff\nerrno = EACCES\n'
    + '[setsockopt.snd]\nas = root\noption = SO_SNDBUFFORCE\nvalue = 4294967295\n'
    + '[setsockopt.tp]\nas = root\noption = IP_TRANSPARENT\nvalue = 1\n'
    + '[setsockopt.tp6]\nas = root\noption = IPV6_TRANSPARENT\nvalue = 0, 1\n');
  t.strictSame(p.calls.map((c) => c.kind === 'setsockopt' && [c.name, c.level, c.option, c.optionName, c.values, c.interfaces, c.errno]), [
    ['dev', 1, 25, 'SO_BINDTODEVICE', undefined, ['eth0', 'lo', 'wg-vpn.1'], 1],
    ['prio', 1, 12, 'SO_PRIORITY', [{ from: 0, to: 10 }], undefined, 1],
    ['rcv', 1, 33, 'SO_RCVBUFFORCE', [{ from: 0, to: 0xffffffff }], undefined, 13],
    ['snd', 1, 32, 'SO_SNDBUFFORCE', [{ from: 4294967295, to: 4294967295 }], undefined, 1],
    ['tp', 0, 19, 'IP_TRANSPARENT', [{ from: 1, to: 1 }], undefined, 1],
    ['tp6', 41, 75, 'IPV6_TRANSPARENT', [{ from: 0, to: 0 }, { from: 1, to: 1 }], undefined, 1],
  ]);
});

t.test('setsockopt warnings: values that need no privilege are harmless but grant nothing', async (t) => {
  t.strictSame(warnings(t, opt('as = root\noption = SO_PRIORITY\nvalue = 0-6\n')), [
    `${F}:7: [setsockopt.o] value: SO_PRIORITY 0-6 needs no privilege, so this section grants nothing the program cannot do itself`,
  ]);
  t.strictSame(warnings(t, opt('as = root\noption = SO_PRIORITY\nvalue = 0-7\n')), [], '7 needs privilege');
  t.strictSame(warnings(t, opt('as = root\noption = IPV6_TRANSPARENT\nvalue = 0\n')), [
    `${F}:7: [setsockopt.o] value: turning IPV6_TRANSPARENT off needs no privilege, so this section grants nothing the program cannot do itself`,
  ]);
});

t.test('setsockopt warnings: a deny section on values that need no privilege never applies', async (t) => {
  t.strictSame(warnings(t, opt('as = deny\noption = SO_PRIORITY\nvalue = 0-6\n')), [
    `${F}:7: [setsockopt.o] value: SO_PRIORITY 0-6 needs no privilege, so this deny section never applies: the program sets it with its own rights`,
  ]);
  t.strictSame(warnings(t, opt('as = deny\noption = SO_PRIORITY\nvalue = 0-7\n')), [], '7 needs privilege: the deny applies to it');
  t.strictSame(warnings(t, opt('as = deny\noption = IP_TRANSPARENT\nvalue = 0\n')), [
    `${F}:7: [setsockopt.o] value: turning IP_TRANSPARENT off needs no privilege, so this deny section never applies: the program sets it with its own rights`,
  ]);
});

t.test('setsockopt: as, missing keys, unknown key', async (t) => {
  t.equal(error(t, opt(MARK.replace('as = root', 'as = nobody'))),
    `${F}:5: [setsockopt.o] as: unknown value "nobody"; use root (the call is performed as root) or deny (it is refused with errno)`);
  t.strictSame(errors(t, opt('')), [
    `${F}:4: [setsockopt.o] as: missing; add as = root or deny`,
    `${F}:4: [setsockopt.o] option: missing; add option = SO_MARK, SO_PRIORITY, SO_BINDTODEVICE, SO_RCVBUFFORCE, SO_SNDBUFFORCE, IP_TRANSPARENT or IPV6_TRANSPARENT`,
  ], 'value and interface follow from the option');
  t.equal(error(t, opt('as = root\noption = SO_MARK\n')),
    `${F}:4: [setsockopt.o] value: missing; add value = a list of numbers 0-4294967295 and ranges lo-hi`);
  t.equal(error(t, opt('as = root\noption = IP_TRANSPARENT\n')),
    `${F}:4: [setsockopt.o] value: missing; add value = 1 (on), 0 (off) or 0, 1`);
  t.equal(error(t, opt('as = root\noption = SO_BINDTODEVICE\n')),
    `${F}:4: [setsockopt.o] interface: missing; add interface = a list of interface names`);
  t.equal(error(t, opt(MARK + 'level = SOL_SOCKET\n')),
    `${F}:8: [setsockopt.o] level: unknown key; use as, option, value, interface or errno`);
  t.equal(error(t, opt(MARK.replace('value = 1', 'value ='))),
    `${F}:7: [setsockopt.o] value: empty value; use a list of numbers 0-4294967295 and ranges lo-hi`);
  t.equal(error(t, opt('as = root\noption = IP_TRANSPARENT\nvalue =\n')),
    `${F}:7: [setsockopt.o] value: empty value; use 1 (on), 0 (off) or 0, 1`);
});

t.test('setsockopt: option', async (t) => {
  const bad = (option: string) => error(t, opt(MARK.replace('SO_MARK', option)));
  const CHOICES = 'SO_MARK, SO_PRIORITY, SO_BINDTODEVICE, SO_RCVBUFFORCE, SO_SNDBUFFORCE, IP_TRANSPARENT or IPV6_TRANSPARENT';
  t.equal(bad('so_mark'), `${F}:6: [setsockopt.o] option: option names are written in capitals; write SO_MARK`);
  t.equal(bad('so_reuseaddr'), `${F}:6: [setsockopt.o] option: option names are written in capitals; write SO_REUSEADDR`);
  t.equal(bad('SO_REUSEADDR'),
    `${F}:6: [setsockopt.o] option: SO_REUSEADDR needs no privilege: the program sets it with its own rights; remove this section`);
  t.equal(bad('IPV6_V6ONLY'),
    `${F}:6: [setsockopt.o] option: IPV6_V6ONLY needs no privilege: the program sets it with its own rights; remove this section`);
  t.equal(bad('SO_RCVBUF'),
    `${F}:6: [setsockopt.o] option: SO_RCVBUF needs no privilege (the kernel caps it at net.core.rmem_max); SO_RCVBUFFORCE goes beyond the cap`);
  t.equal(bad('SO_REUSEPORT'),
    `${F}:6: [setsockopt.o] option: SO_REUSEPORT needs no privilege; to let a brokered bind join a port group, set reuseport = allow in its [bind.NAME] section`);
  t.equal(bad('IP_HDRINCL'),
    `${F}:6: [setsockopt.o] option: IP_HDRINCL needs no privilege of its own; on a brokered raw socket, header-included = allow in its [socket.NAME] section grants it`);
  t.equal(bad('SO_BINDTOIFINDEX'),
    `${F}:6: [setsockopt.o] option: SO_BINDTOIFINDEX is not supported (an index names a different interface in each network namespace); use SO_BINDTODEVICE with interface = NAME`);
  t.equal(bad('SO_DEBUG'), `${F}:6: [setsockopt.o] option: SO_DEBUG is not supported in rules; use ${CHOICES}`);
  t.equal(bad('SO_FOO'), `${F}:6: [setsockopt.o] option: unknown option "SO_FOO"; use ${CHOICES}`);
  t.equal(bad('36'), `${F}:6: [setsockopt.o] option: unknown option "36"; use ${CHOICES}`);
});

t.test('setsockopt: value, every bad item', async (t) => {
  t.strictSame(errors(t, opt(MARK.replace('value = 1', 'value = x, -1, 4294967296, 0x100000000, 9-1, 0x10-0x1, 1e3, 010, ,'))), [
    `${F}:7: [setsockopt.o] value: empty value in the list "x, -1, 4294967296, 0x100000000, 9-1, 0x10-0x1, 1e3, 010, ,"; separate values with single commas`,
    `${F}:7: [setsockopt.o] value: "x" is not a number; use numbers 0-4294967295 (decimal, or hex with 0x) and ranges lo-hi`,
    `${F}:7: [setsockopt.o] value: "" is not a number; use numbers 0-4294967295 (decimal, or hex with 0x) and ranges lo-hi`,
    `${F}:7: [setsockopt.o] value: 4294967296 is out of range; values go up to 4294967295 (0xffffffff)`,
    `${F}:7: [setsockopt.o] value: 0x100000000 is out of range; values go up to 4294967295 (0xffffffff)`,
    `${F}:7: [setsockopt.o] value: range "9-1" runs backwards; write 1-9`,
    `${F}:7: [setsockopt.o] value: range "0x10-0x1" runs backwards; write 0x1-0x10`,
    `${F}:7: [setsockopt.o] value: "1e3" is not a number; use numbers 0-4294967295 (decimal, or hex with 0x) and ranges lo-hi`,
    `${F}:7: [setsockopt.o] value: "010" is not a number; use numbers 0-4294967295 (decimal, or hex with 0x) and ranges lo-hi`,
  ]);
});

t.test('setsockopt: on/off options take 0 and 1 only', async (t) => {
  t.strictSame(errors(t, opt('as = root\noption = IP_TRANSPARENT\nvalue = 1, 2, 0-5\n')), [
    `${F}:7: [setsockopt.o] value: 2 is neither on nor off; IP_TRANSPARENT takes value = 1 (on), 0 (off) or 0, 1`,
    `${F}:7: [setsockopt.o] value: 0-5 is neither on nor off; IP_TRANSPARENT takes value = 1 (on), 0 (off) or 0, 1`,
  ]);
  t.match(program(t, opt('as = root\noption = IP_TRANSPARENT\nvalue = 0-1\n')).calls[0], { values: [{ from: 0, to: 1 }] });
});

t.test('setsockopt: interface, for SO_BINDTODEVICE only', async (t) => {
  t.strictSame(errors(t, opt('as = root\noption = SO_BINDTODEVICE\ninterface = abcdefghijklmnop, abcdefghijklmno, ., .., a/b, eth0:1, a b, ééééééééx\n')), [
    `${F}:7: [setsockopt.o] interface: "abcdefghijklmnop" is longer than 15 bytes, the most an interface name holds`,
    `${F}:7: [setsockopt.o] interface: "." is not an interface name; names hold no "/", ":" or white space and are not "." or ".."`,
    `${F}:7: [setsockopt.o] interface: ".." is not an interface name; names hold no "/", ":" or white space and are not "." or ".."`,
    `${F}:7: [setsockopt.o] interface: "a/b" is not an interface name; names hold no "/", ":" or white space and are not "." or ".."`,
    `${F}:7: [setsockopt.o] interface: "eth0:1" is not an interface name; names hold no "/", ":" or white space and are not "." or ".."`,
    `${F}:7: [setsockopt.o] interface: "a b" is not an interface name; names hold no "/", ":" or white space and are not "." or ".."`,
    `${F}:7: [setsockopt.o] interface: "ééééééééx" is longer than 15 bytes, the most an interface name holds`,
  ], 'IFNAMSIZ counts bytes, not characters');
  t.equal(error(t, opt('as = root\noption = SO_BINDTODEVICE\ninterface = eth0\nvalue = 1\n')),
    `${F}:8: [setsockopt.o] value: SO_BINDTODEVICE takes interface names, not numbers; write interface = a list of names (e.g. eth0) instead`);
  t.strictSame(errors(t, opt('as = root\noption = SO_BINDTODEVICE\nvalue = 1\n')), [
    `${F}:4: [setsockopt.o] interface: missing; add interface = a list of interface names`,
    `${F}:7: [setsockopt.o] value: SO_BINDTODEVICE takes interface names, not numbers; write interface = a list of names (e.g. eth0) instead`,
  ]);
  t.equal(error(t, opt(MARK + 'interface = eth0\n')),
    `${F}:8: [setsockopt.o] interface: only SO_BINDTODEVICE takes interface names; SO_MARK takes value = a list of numbers 0-4294967295 and ranges lo-hi`);
  t.equal(error(t, opt('as = root\noption = IPV6_TRANSPARENT\nvalue = 1\ninterface = lo\n')),
    `${F}:8: [setsockopt.o] interface: only SO_BINDTODEVICE takes interface names; IPV6_TRANSPARENT takes value = 1 (on), 0 (off) or 0, 1`);
  t.strictSame(errors(t, opt('as = root\noption = SO_FOO\nvalue = x\ninterface = a/b\n')), [
    `${F}:6: [setsockopt.o] option: unknown option "SO_FOO"; use SO_MARK, SO_PRIORITY, SO_BINDTODEVICE, SO_RCVBUFFORCE, SO_SNDBUFFORCE, IP_TRANSPARENT or IPV6_TRANSPARENT`,
    `${F}:7: [setsockopt.o] value: "x" is not a number; use numbers 0-4294967295 (decimal, or hex with 0x) and ranges lo-hi`,
    `${F}:8: [setsockopt.o] interface: "a/b" is not an interface name; names hold no "/", ":" or white space and are not "." or ".."`,
  ], 'with a bad option, value and interface are still checked on their own');
});

t.test('setsockopt: errno', async (t) => {
  t.equal(error(t, opt(MARK + 'errno = EAGAIN\n')),
    `${F}:8: [setsockopt.o] errno: EAGAIN does not say "refused"; use one of EPERM, EACCES, ENOSYS, EINVAL, EAFNOSUPPORT, EPROTONOSUPPORT, ESOCKTNOSUPPORT, EOPNOTSUPP`);
});

t.test('two sections for the same option', async (t) => {
  t.equal(error(t, opt(MARK) + '[setsockopt.again]\nas = root\noption = SO_MARK\nvalue = 2\n'),
    `${F}:8: [setsockopt.again]: sets the same option as [setsockopt.o] (line 4); merge their values into one section`);
  t.equal(program(t, opt(MARK) + '[setsockopt.prio]\nas = root\noption = SO_PRIORITY\nvalue = 2\n').calls.length, 2);
});

t.test('socket, bind and setsockopt sections in one file; every error of a file', async (t) => {
  t.strictSame(program(t, PROGRAM + ICMP + bind(BIND_OK).slice(WEB.length) + opt(MARK).slice(WEB.length)).calls
    .map((c) => [c.kind, c.name, c.at.line]), [['socket', 'icmp', 4], ['bind', 'b', 9], ['setsockopt', 'o', 14]]);
  t.strictSame(errors(t, [
    '[program]',                 // 1
    'path = /usr/sbin/webd',    // 2
    'users = www-data',          // 3
    '[bind.http]',               // 4
    'as = root',                 // 5
    'family = inet, unix',       // 6
    'type = stream',             // 7
    'port = 80, 0',              // 8
    'address = 127.0.0.1',       // 9
    '[setsockopt.mark]',         // 10
    'as = root',                 // 11
    'option = SO_MARK',          // 12
    'interface = eth0',          // 13
    '[setsockopt.prio]',         // 14
    'option = SO_PRIORITY',      // 15
    'value = 7',                 // 16
    'colour = red',              // 17
  ].join('\n')), [
    `${F}:6: [bind.http] family: unix sockets are never elevated (their address is a path: binding needs no privilege, only access to the directory); use inet, inet6 or both`,
    `${F}:8: [bind.http] port: port 0 asks the kernel for any free port, which needs no privilege; use ports 1-65535`,
    `${F}:10: [setsockopt.mark] value: missing; add value = a list of numbers 0-4294967295 and ranges lo-hi`,
    `${F}:13: [setsockopt.mark] interface: only SO_BINDTODEVICE takes interface names; SO_MARK takes value = a list of numbers 0-4294967295 and ranges lo-hi`,
    `${F}:14: [setsockopt.prio] as: missing; add as = root or deny`,
    `${F}:17: [setsockopt.prio] colour: unknown key; use as, option, value, interface or errno`,
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
  const rules: RuleSet = { dir: '/etc/elevation.d', files: [F], programs: new Map([[ping.path, [ping]]]) };
  t.strictSame(programRules(rules, '/usr/bin/ping'), [ping]);
  t.strictSame(programRules(rules, '/bin/ping'), []);

  const gid = (name: string) => ({ netdev: 108 } as Record<string, number>)[name];
  t.equal(ruleFor(rules, '/usr/bin/ping', { uid: 1000, user: 'alice', gids: [1000] }, gid), ping);
  t.equal(ruleFor(rules, '/bin/ping', { uid: 1000, user: 'alice', gids: [1000] }, gid), undefined);
  t.equal(ruleFor(rules, '/usr/bin/ping', { uid: 4242, user: undefined, gids: [4242] }, gid), undefined);
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
  t.equal(socketProtocolArg(sockets(ping)[1]), 0x0300);
  t.equal(socketProtocolArg(sockets(ping)[0]), 1);
});

// ---- as = deny -----------------------------------------------------------------------

t.test('as = deny: every section kind, with its errno or the kind\'s default', async (t) => {
  const p = program(t, PROGRAM
    + '[socket.icmp]\nas = deny\ndomain = inet\ntype = raw\nprotocol = icmp\nerrno = EACCES\n'
    + '[socket.icmp6]\nas = deny\ndomain = inet6\ntype = raw\nprotocol = ipv6-icmp\n'
    + '[socket.forge]\nas = deny\ndomain = inet\ntype = raw\nprotocol = raw\n'
    + '[bind.www]\nas = deny\nfamily = inet\ntype = stream\nport = 80\n'
    + '[setsockopt.mark]\nas = deny\noption = SO_MARK\nvalue = 1-10\nerrno = EINVAL\n');
  t.strictSame(p.calls.map((c) => [c.kind, c.name, c.deny, c.errno]), [
    ['socket', 'icmp', true, 13],
    ['socket', 'icmp6', true, 1],
    ['socket', 'forge', true, 1],
    ['bind', 'www', true, 13],
    ['setsockopt', 'mark', true, 22],
  ], 'protocol raw needs no header-included = allow when denied');
  t.equal(program(t, PROGRAM + ICMP).calls[0].deny, undefined, 'as = root grants');
});

t.test('as = deny: what makes no sense on a denied call is refused', async (t) => {
  t.equal(error(t, socket('as = deny\ndomain = inet\ntype = raw\nprotocol = raw\nheader-included = allow\n')),
    `${F}:9: [socket.s] header-included: a section with as = deny creates no socket to forge headers on; remove the line`);
  t.equal(error(t, socket('as = deny\ndomain = inet\ntype = stream\nprotocol = tcp\n')),
    `${F}:7: [socket.s] type: inet stream sockets need no privilege; remove this section`,
    'a deny section covers only calls the broker traps');
  t.equal(error(t, socket('as = Deny\ndomain = inet\ntype = raw\nprotocol = icmp\n')),
    `${F}:5: [socket.s] as: unknown value "Deny"; use root (the call is performed as root) or deny (it is refused with errno)`);
  t.equal(error(t, socket('as =\ndomain = inet\ntype = raw\nprotocol = icmp\n')),
    `${F}:5: [socket.s] as: empty value; use root or deny`);
});

t.test('as = deny: a deny and a grant section for the same socket conflict', async (t) => {
  const deny = ICMP.replace('[socket.icmp]', '[socket.no]').replace('as = root', 'as = deny');
  t.equal(error(t, PROGRAM + ICMP + deny),
    `${F}:9: [socket.no]: denies the same socket as [socket.icmp] (line 4), which grants it; keep one of them`);
  t.equal(error(t, PROGRAM + deny + ICMP),
    `${F}:9: [socket.icmp]: grants the same socket as [socket.no] (line 4), which denies it; keep one of them`);
});

t.test('as = deny: bind sections overlap, the first match decides', async (t) => {
  const p = program(t, PROGRAM
    + '[bind.admin]\nas = root\nfamily = inet\ntype = stream\nport = 80\naddress = 127.0.0.1\n'
    + '[bind.rest]\nas = deny\nfamily = inet\ntype = stream\nport = 1-1023\n');
  t.match(matchBind(p, 2, 1, '127.0.0.1', 80), { name: 'admin', deny: undefined });
  t.match(matchBind(p, 2, 1, '0.0.0.0', 80), { name: 'rest', deny: true });
  program(t, PROGRAM
    + '[bind.admin]\nas = root\nfamily = inet\ntype = stream\nport = 80\naddress = 127.0.0.1\n'
    + '[bind.rest]\nas = deny\nfamily = inet\ntype = stream\nport = 80\nerrno = EPERM\n');
  t.pass('a deny section may answer with its own errno: it answers only the binds it matches');
  t.match(error(t, PROGRAM
    + '[bind.a]\nas = root\nfamily = inet\ntype = stream\nport = 80\n'
    + '[bind.b]\nas = deny\nfamily = inet\ntype = stream\nport = 81\nerrno = EPERM\n'
    + '[bind.c]\nas = root\nfamily = inet\ntype = stream\nport = 82\nerrno = EPERM\n'),
  /\[bind\.c\]: refuses with EPERM but \[bind\.a\] \(line 4\)/, 'grant sections must still agree');
});
