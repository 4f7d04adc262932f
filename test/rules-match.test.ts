import t from 'tap';
import { parseRuleFile } from '../src/broker/rules/parse.js';
import {
  bindRulesFor, matchBind, matchSetsockopt, matchSocket, needsNoPrivilege, setsockoptRulesFor,
} from '../src/broker/rules/match.js';
import type { ProgramRule } from '../src/broker/rules/model.js';

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const STREAM = 1;
const DGRAM = 2;
const SOL_IP = 0;
const SOL_SOCKET = 1;
const SOL_IPV6 = 41;
const SO_PRIORITY = 12;
const SO_BINDTODEVICE = 25;
const SO_MARK = 36;
const SO_RCVBUFFORCE = 33;
const IP_TRANSPARENT = 19;
const IPV6_TRANSPARENT = 75;

/** A program whose rule file is [program] followed by `sections`; the file must be valid. */
function rule(sections: string): ProgramRule {
  const r = parseRuleFile('/etc/elevation.d/t.conf', `[program]\npath = /usr/sbin/x\nusers = *\n${sections}`);
  if (!r.program) throw new Error(r.errors.join('\n'));
  return r.program;
}

const WEB = rule(`
[bind.http]
as = root
family = inet, inet6
type = stream
port = 80, 443, 8000-8010
address = 127.0.0.1, ::0001
`);

t.test('bind: port, range edges', async (t) => {
  const name = (address: string, port: number) => matchBind(WEB, AF_INET, STREAM, address, port)?.name;
  t.equal(name('127.0.0.1', 80), 'http');
  t.equal(name('127.0.0.1', 443), 'http');
  t.equal(name('127.0.0.1', 81), undefined, 'a port the rule does not list');
  t.equal(name('127.0.0.1', 79), undefined);
  t.equal(name('127.0.0.1', 7999), undefined);
  t.equal(name('127.0.0.1', 8000), 'http', 'range start');
  t.equal(name('127.0.0.1', 8005), 'http');
  t.equal(name('127.0.0.1', 8010), 'http', 'range end');
  t.equal(name('127.0.0.1', 8011), undefined);
  t.equal(name('127.0.0.1', 0), undefined);
  t.equal(name('127.0.0.1', 80.5), undefined, 'not an integer');
  t.equal(name('127.0.0.1', NaN), undefined);
});

t.test('bind: addresses, normalised, the wildcard only where listed', async (t) => {
  t.equal(matchBind(WEB, AF_INET6, STREAM, '::1', 80)?.name, 'http', 'the rule wrote ::0001');
  t.equal(matchBind(WEB, AF_INET6, STREAM, '0:0:0:0:0:0:0:1', 80)?.name, 'http', 'the request is canonicalised too');
  t.equal(matchBind(WEB, AF_INET, STREAM, '127.0.0.2', 80), undefined, 'an address the rule does not list');
  t.equal(matchBind(WEB, AF_INET, STREAM, '0.0.0.0', 80), undefined, 'the wildcard is not listed');
  t.equal(matchBind(WEB, AF_INET6, STREAM, '::', 80), undefined);
  t.equal(matchBind(WEB, AF_INET6, STREAM, '::ffff:127.0.0.1', 80), undefined,
    'an inet6 socket\'s IPv4-mapped address is not the IPv4 address');
  t.equal(matchBind(WEB, AF_INET6, STREAM, 'localhost', 80), undefined);

  const any = rule('[bind.any]\nas = root\nfamily = inet, inet6\ntype = stream\nport = 80\n');
  t.equal(matchBind(any, AF_INET, STREAM, '0.0.0.0', 80)?.name, 'any', 'no address list: the wildcard too');
  t.equal(matchBind(any, AF_INET, STREAM, '192.0.2.7', 80)?.name, 'any');
  t.equal(matchBind(any, AF_INET6, STREAM, '::', 80)?.name, 'any');
  t.equal(matchBind(any, AF_INET6, STREAM, '::ffff:192.0.2.7', 80)?.name, 'any');
  t.equal(matchBind(any, AF_INET6, STREAM, 'fe80::1%eth0', 80), undefined, 'text that is no address never matches');

  const wild = rule('[bind.wild]\nas = root\nfamily = inet6\ntype = stream\nport = 80\naddress = ::\n');
  t.equal(matchBind(wild, AF_INET6, STREAM, '::', 80)?.name, 'wild', 'the wildcard where it is written');
  t.equal(matchBind(wild, AF_INET6, STREAM, '::1', 80), undefined, ':: means the wildcard bind, not every address');
});

t.test('bind: family and type must match', async (t) => {
  t.equal(matchBind(WEB, AF_INET, DGRAM, '127.0.0.1', 80), undefined, 'type');
  t.equal(matchBind(WEB, AF_INET, STREAM, '::1', 80), undefined, 'an IPv6 address on an inet socket');
  t.equal(matchBind(WEB, AF_INET6, STREAM, '127.0.0.1', 80), undefined, 'an IPv4 address on an inet6 socket');
  t.equal(matchBind(WEB, AF_UNIX, STREAM, '127.0.0.1', 80), undefined, 'unix');
  t.equal(matchBind(WEB, 17, STREAM, '127.0.0.1', 80), undefined, 'packet');
  t.strictSame(bindRulesFor(WEB, AF_INET, DGRAM), []);
  t.strictSame(bindRulesFor(WEB, AF_INET6, STREAM).map((b) => b.name), ['http']);
});

t.test('bind: overlapping sections, the first match decides', async (t) => {
  const p = rule(`
[bind.dns]
as = root
family = inet
type = dgram, stream
port = 53
errno = EPERM

[bind.low]
as = root
family = inet, inet6
type = stream
port = 1-1023
reuseport = allow
errno = EPERM
`);
  t.strictSame(bindRulesFor(p, AF_INET, STREAM).map((b) => b.name), ['dns', 'low'], 'in file order');
  t.strictSame(bindRulesFor(p, AF_INET, DGRAM).map((b) => b.name), ['dns']);
  t.strictSame(bindRulesFor(p, AF_INET6, STREAM).map((b) => b.name), ['low']);
  t.equal(matchBind(p, AF_INET, STREAM, '10.0.0.1', 53)?.name, 'dns', 'both match: the first');
  t.equal(matchBind(p, AF_INET, STREAM, '10.0.0.1', 53)?.reusePort, false, 'with its reuseport');
  t.equal(matchBind(p, AF_INET, STREAM, '10.0.0.1', 54)?.name, 'low');
  t.equal(matchBind(p, AF_INET, DGRAM, '10.0.0.1', 54), undefined);
  t.equal(bindRulesFor(p, AF_INET, STREAM)[0].errno, 1, 'a bind none matches gets the (common) errno');
});

const OPTS = rule(`
[setsockopt.mark]
as = root
option = SO_MARK
value = 1-100, 200, 0xffffffff

[setsockopt.dev]
as = root
option = SO_BINDTODEVICE
interface = eth0, lo

[setsockopt.tp]
as = root
option = IP_TRANSPARENT
value = 1

[setsockopt.tp6]
as = root
option = IPV6_TRANSPARENT
value = 0, 1

[setsockopt.prio]
as = root
option = SO_PRIORITY
value = 7
errno = EACCES
`);

t.test('setsockopt: value ranges', async (t) => {
  const mark = (int: number) => matchSetsockopt(OPTS, SOL_SOCKET, SO_MARK, { int })?.name;
  t.equal(mark(0), undefined);
  t.equal(mark(1), 'mark', 'range start');
  t.equal(mark(50), 'mark');
  t.equal(mark(100), 'mark', 'range end');
  t.equal(mark(101), undefined);
  t.equal(mark(200), 'mark');
  t.equal(mark(0xffffffff), 'mark');
  t.equal(mark(0x100000000), undefined, 'beyond 32 bits');
  t.equal(mark(-1), undefined, 'the caller passes unsigned values');
  t.equal(mark(1.5), undefined);
  t.equal(matchSetsockopt(OPTS, SOL_SOCKET, SO_MARK, { interface: 'eth0' }), undefined, 'a name for a number');
  t.equal(matchSetsockopt(OPTS, SOL_IP, SO_MARK, { int: 1 }), undefined, 'the level matters');
  t.equal(matchSetsockopt(OPTS, SOL_SOCKET, SO_RCVBUFFORCE, { int: 1 }), undefined, 'no rule for the option');
  t.equal(matchSetsockopt(OPTS, SOL_SOCKET, SO_PRIORITY, { int: 7 })?.errno, 13);
  t.equal(matchSetsockopt(OPTS, SOL_SOCKET, SO_PRIORITY, { int: 3 }), undefined, 'only what the rule lists');
});

t.test('setsockopt: interface names', async (t) => {
  const dev = (name: string) => matchSetsockopt(OPTS, SOL_SOCKET, SO_BINDTODEVICE, { interface: name })?.name;
  t.equal(dev('eth0'), 'dev');
  t.equal(dev('lo'), 'dev');
  t.equal(dev('eth1'), undefined);
  t.equal(dev('ETH0'), undefined, 'names are exact');
  t.equal(dev(''), undefined, 'unbinding is not granted');
  t.equal(matchSetsockopt(OPTS, SOL_SOCKET, SO_BINDTODEVICE, { int: 0 }), undefined, 'a number for a name');
});

t.test('setsockopt: on/off options', async (t) => {
  const tp = (int: number) => matchSetsockopt(OPTS, SOL_IP, IP_TRANSPARENT, { int })?.name;
  t.equal(tp(1), 'tp');
  t.equal(tp(2), 'tp', 'any non-zero value is on');
  t.equal(tp(0xffffffff), 'tp');
  t.equal(tp(0), undefined, 'off is not listed');
  t.equal(matchSetsockopt(OPTS, SOL_IPV6, IPV6_TRANSPARENT, { int: 0 })?.name, 'tp6');
  t.equal(matchSetsockopt(OPTS, SOL_IPV6, IPV6_TRANSPARENT, { int: 5 })?.name, 'tp6');
  t.equal(matchSetsockopt(OPTS, SOL_IP, IPV6_TRANSPARENT, { int: 1 }), undefined);
});

t.test('setsockoptRulesFor: one per option to trap', async (t) => {
  t.strictSame(setsockoptRulesFor(OPTS).map((c) => [c.level, c.option, c.optionName]), [
    [1, 36, 'SO_MARK'], [1, 25, 'SO_BINDTODEVICE'], [0, 19, 'IP_TRANSPARENT'], [41, 75, 'IPV6_TRANSPARENT'],
    [1, 12, 'SO_PRIORITY'],
  ]);
  t.strictSame(setsockoptRulesFor(WEB), []);
  t.equal(matchSetsockopt(WEB, SOL_SOCKET, SO_MARK, { int: 1 }), undefined);
});

t.test('needsNoPrivilege: values the user may set alone', async (t) => {
  t.ok(needsNoPrivilege(SOL_SOCKET, SO_PRIORITY, { int: 0 }));
  t.ok(needsNoPrivilege(SOL_SOCKET, SO_PRIORITY, { int: 6 }));
  t.notOk(needsNoPrivilege(SOL_SOCKET, SO_PRIORITY, { int: 7 }));
  t.notOk(needsNoPrivilege(SOL_SOCKET, SO_PRIORITY, { int: 0xffffffff }), 'a negative priority');
  t.ok(needsNoPrivilege(SOL_IP, IP_TRANSPARENT, { int: 0 }));
  t.notOk(needsNoPrivilege(SOL_IP, IP_TRANSPARENT, { int: 1 }));
  t.ok(needsNoPrivilege(SOL_IPV6, IPV6_TRANSPARENT, { int: 0 }));
  t.notOk(needsNoPrivilege(SOL_SOCKET, SO_MARK, { int: 0 }), 'SO_MARK always needs privilege');
  t.notOk(needsNoPrivilege(SOL_SOCKET, SO_BINDTODEVICE, { interface: 'lo' }), 'depends on the socket');
});

t.test('call kinds do not mix', async (t) => {
  const p = rule(`
[socket.icmp]
as = root
domain = inet
type = raw
protocol = icmp

[bind.http]
as = root
family = inet
type = stream
port = 80

[setsockopt.mark]
as = root
option = SO_MARK
value = 1
`);
  t.equal(matchSocket(p, AF_INET, 3, 1)?.name, 'icmp');
  t.equal(matchSocket(p, AF_INET, STREAM, 0), undefined);
  t.strictSame(bindRulesFor(p, AF_INET, STREAM).map((b) => b.kind), ['bind']);
  t.strictSame(setsockoptRulesFor(p).map((c) => c.kind), ['setsockopt']);
  t.equal(matchBind(p, AF_INET, STREAM, '127.0.0.1', 80)?.name, 'http');
});
