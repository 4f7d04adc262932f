// The rule grammar as a table: bad files, each with every message it must
// produce, exactly (file, line, section, key, what was found, what would be
// right); and the examples of man/elevation.d.5, read from the man page
// itself so that the two cannot drift, which must be valid without warnings.
import t from 'tap';
import { parseRuleFile } from '../src/broker/rules/parse.js';
import { manExamples } from './lib/man.js';

const F = '/etc/elevation.d/t.conf';
const P = '[program]\npath = /usr/bin/ping\nusers = *\n';                              // lines 1-3
const ICMP = '[socket.icmp]\nas = root\ndomain = inet\ntype = raw\nprotocol = icmp\n';   // 4-8 after P
const WEB = '[program]\npath = /usr/sbin/webd\nusers = www-data\n';                      // lines 1-3
const BIND = '[bind.http]\nas = root\nfamily = inet\ntype = stream\nport = 80\n';        // 4-8 after WEB
const MARK = '[setsockopt.mark]\nas = root\noption = SO_MARK\nvalue = 2\n';             // 4-7 after WEB

const ERRNOS = 'one of EPERM, EACCES, ENOSYS, EINVAL, EAFNOSUPPORT, EPROTONOSUPPORT, ESOCKTNOSUPPORT, EOPNOTSUPP';
const ARGS_HINT = 'words are separated by white space and matched as written; write args = "" alone on its line for no arguments, and * for an argument that holds white space or quotes';
const NAME_RULE = 'use lowercase letters, digits, "_" and "-" (not first), at most 32 characters';

const BAD: Array<{ name: string, text: string, errors: string[] }> = [
  // ---- the file's structure
  { name: 'no [program] section', text: ICMP,
    errors: [`${F}: no [program] section; add one with the path of the program and who may run it (users or groups)`] },
  { name: 'an unknown section', text: P + '[connect.http]\nport = 80\n',
    errors: [`${F}:4: [connect.http]: unknown section; use [program], [socket.NAME], [bind.NAME] or [setsockopt.NAME]`] },
  { name: 'an invalid rule name', text: P + '[socket.Icmp]\nas = root\n',
    errors: [`${F}:4: [socket.Icmp]: invalid rule name "Icmp"; use lowercase letters, digits, "_" and "-", starting with a letter or digit`] },
  { name: 'a section twice', text: P + '[program]\npath = /bin/x\n',
    errors: [`${F}:4: [program]: duplicate section (first at line 1); merge the two into one`] },
  { name: 'a key outside any section', text: 'users = *\n' + P,
    errors: [`${F}:1: users: key outside any section; put it under [program], [socket.NAME], [bind.NAME] or [setsockopt.NAME]`] },
  { name: 'a header with a comment', text: '[program] ; ping\npath = /usr/bin/ping\nusers = *\n',
    errors: [`${F}:1: malformed section header "[program] ; ping"; write [name] alone on its line, comments on a line of their own`] },
  { name: 'a line without "="', text: P + 'users\n',
    errors: [`${F}:4: [program]: expected key = value, found "users"`] },
  { name: 'a control character', text: '[program]\npath = /usr/bin/ping\nusers = *\u0007\n',
    errors: [`${F}:3: [program]: contains a control character; remove it`] },
  { name: 'a stray quote', text: '[program]\npath = "/usr/bin/ping" ; c\nusers = *\n',
    errors: [`${F}:2: [program] path: "\\"/usr/bin/ping\\"" has a stray quote; quote the whole value, comments go on their own line`] },

  // ---- [program]
  { name: 'an unknown key', text: P + 'user = alice\n',
    errors: [`${F}:4: [program] user: unknown key; use path, users, groups, sandboxed-clients, sha256, args or keep-env`] },
  { name: 'a key twice', text: P + 'path = /bin/ping\n',
    errors: [`${F}:4: [program] path: duplicate key (first at line 2); keep one`] },
  { name: 'an empty value', text: '[program]\npath = /usr/bin/ping\nusers =\n',
    errors: [`${F}:3: [program] users: empty value; use * or a list of user names`] },
  { name: 'a relative path', text: '[program]\npath = bin/ping\nusers = *\n',
    errors: [`${F}:2: [program] path: "bin/ping" is not absolute; use the full path, e.g. /usr/bin/ping`] },
  { name: 'a path with ..', text: '[program]\npath = /usr/bin/../bin/ping\nusers = *\n',
    errors: [`${F}:2: [program] path: "/usr/bin/../bin/ping" is not canonical (no ".", "..", "//" or trailing "/"); write "/usr/bin/ping"`] },
  { name: '* beside user names', text: '[program]\npath = /usr/bin/ping\nusers = *, alice\n',
    errors: [`${F}:3: [program] users: "*" must stand alone; write users = * for every user, or list names without it`] },
  { name: 'an invalid user name', text: '[program]\npath = /usr/bin/ping\nusers = Alice\n',
    errors: [`${F}:3: [program] users: "Alice" is not a valid user name; ${NAME_RULE}`] },
  { name: 'groups = *', text: '[program]\npath = /usr/bin/ping\ngroups = *\n',
    errors: [`${F}:3: [program] groups: "*" is not a group name; write users = * for every user`] },
  { name: 'neither users nor groups', text: '[program]\npath = /usr/bin/ping\n',
    errors: [`${F}:1: [program]: names no users or groups; add users = * (every user), users = a list of names, or groups = a list of groups`] },
  { name: 'sandboxed-clients neither allow nor deny', text: P + 'sandboxed-clients = maybe\n',
    errors: [`${F}:4: [program] sandboxed-clients: unknown value "maybe"; use allow or deny`] },
  { name: 'a short sha256', text: P + 'sha256 = abc123\n',
    errors: [`${F}:4: [program] sha256: "abc123" has 6 hexadecimal digits; a sha256 digest has 64 (sha256sum PATH prints it)`] },
  { name: "sha256sum's whole line", text: P + `sha256 = ${'A'.repeat(64)}  /usr/bin/ping\n`,
    errors: [`${F}:4: [program] sha256: write the 64 hexadecimal digits alone: sha256 = ${'a'.repeat(64)}`] },
  { name: 'a sha256 that is not hexadecimal', text: P + `sha256 = ${'g'.repeat(64)}\n`,
    errors: [`${F}:4: [program] sha256: "${'g'.repeat(64)}" is not a sha256 digest; use the 64 hexadecimal digits sha256sum PATH prints`] },
  { name: 'args in quotes', text: P + 'args = "-c 3"\n',
    errors: [`${F}:4: [program] args: quotes do not group words in args, found "-c 3"; ${ARGS_HINT}`] },
  { name: 'args with a quoted word', text: P + "args = -c 'a b'\n",
    errors: [`${F}:4: [program] args: quotes do not group words in args, found 'a b'; ${ARGS_HINT}`] },
  { name: 'args with ... before the end', text: P + 'args = ... -c\n',
    errors: [`${F}:4: [program] args: "..." stands for all further arguments, so it can only be the last word; use * for any one argument`] },
  { name: 'args empty', text: P + 'args =\n',
    errors: [`${F}:4: [program] args: empty value; use the arguments as words ("*" for any one, "..." last for any more), or "" for none`] },
  { name: 'keep-env LD_PRELOAD', text: P + 'keep-env = TERM, LD_PRELOAD\n',
    errors: [`${F}:4: [program] keep-env: LD_PRELOAD can make the program load code or read files the user chooses: it is never kept; remove it`] },
  { name: 'keep-env PYTHONPATH', text: P + 'keep-env = PYTHONPATH\n',
    errors: [`${F}:4: [program] keep-env: PYTHONPATH can make the program load code or read files the user chooses: it is never kept; remove it`] },
  { name: 'keep-env PATH', text: P + 'keep-env = PATH\n',
    errors: [`${F}:4: [program] keep-env: PATH is set by the broker from the password database: it is never kept; remove it`] },
  { name: 'keep-env invalid names', text: P + 'keep-env = 1FOO, A-B\n',
    errors: [
      `${F}:4: [program] keep-env: "1FOO" is not a variable name; use letters, digits and "_", not starting with a digit, at most 128 characters`,
      `${F}:4: [program] keep-env: "A-B" is not a variable name; use letters, digits and "_", not starting with a digit, at most 128 characters`,
    ] },
  { name: 'keep-env with an empty item', text: P + 'keep-env = FOO,,BAR\n',
    errors: [`${F}:4: [program] keep-env: empty name in the list "FOO,,BAR"; separate names with single commas`] },

  // ---- [socket.NAME]
  { name: 'an unknown protocol', text: P + ICMP.replace('protocol = icmp', 'protocol = icmpp'),
    errors: [`${F}:8: [socket.icmp] protocol: unknown protocol "icmpp"; use a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`] },
  { name: 'an inet stream socket', text: P + ICMP.replace('type = raw', 'type = stream'),
    errors: [`${F}:7: [socket.icmp] type: inet stream sockets need no privilege; remove this section`] },
  { name: 'a unix socket', text: P + ICMP.replace('domain = inet', 'domain = unix'),
    errors: [`${F}:6: [socket.icmp] domain: "unix" is the unix domain, which needs no privilege; remove this section`] },
  { name: 'a raw socket of protocol 0', text: P + ICMP.replace('protocol = icmp', 'protocol = 0'),
    errors: [`${F}:8: [socket.icmp] protocol: raw sockets need a protocol (the kernel refuses ip, 0); name one, e.g. icmp`] },
  { name: 'protocol raw without header-included', text: P + ICMP.replace('protocol = icmp', 'protocol = raw'),
    errors: [`${F}:8: [socket.icmp] protocol: raw (255) sockets write their own ip header, so they can forge packets; set header-included = allow if that is intended, or name the protocol, e.g. icmp`] },
  { name: 'header-included on a packet socket',
    text: P + '[socket.p]\nas = root\ndomain = packet\ntype = raw\nprotocol = all\nheader-included = allow\n',
    errors: [`${F}:9: [socket.p] header-included: applies to domains inet and inet6 only (packet sockets build whole frames anyway); remove the line`] },
  { name: 'socket keys missing', text: P + '[socket.icmp]\nas = root\n',
    errors: [
      `${F}:4: [socket.icmp] domain: missing; add domain = inet, inet6, packet or a number 0-45`,
      `${F}:4: [socket.icmp] type: missing; add type = stream, dgram, raw, seqpacket, rdm or a number 1-10`,
      `${F}:4: [socket.icmp] protocol: missing; add protocol = a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`,
    ] },
  { name: 'an unknown errno', text: P + ICMP + 'errno = EFOO\n',
    errors: [`${F}:9: [socket.icmp] errno: unknown errno "EFOO"; use ${ERRNOS}`] },
  { name: 'an errno that does not say refused', text: P + ICMP + 'errno = EAGAIN\n',
    errors: [`${F}:9: [socket.icmp] errno: EAGAIN does not say "refused"; use ${ERRNOS}`] },
  { name: 'as another user', text: P + ICMP.replace('as = root', 'as = alice'),
    errors: [`${F}:5: [socket.icmp] as: unknown value "alice"; use root (the call is performed as root) or deny (it is refused with errno)`] },
  { name: 'two sections for one socket', text: P + ICMP + ICMP.replace('[socket.icmp]', '[socket.again]'),
    errors: [`${F}:9: [socket.again]: grants the same socket as [socket.icmp] (line 4); keep one of them`] },

  // ---- [bind.NAME]
  { name: 'bind on a raw socket type', text: WEB + BIND.replace('type = stream', 'type = raw'),
    errors: [`${F}:7: [bind.http] type: raw sockets have no ports (binding one needs no privilege); use stream, dgram or both`] },
  { name: 'port 0', text: WEB + BIND.replace('port = 80', 'port = 0'),
    errors: [`${F}:8: [bind.http] port: port 0 asks the kernel for any free port, which needs no privilege; use ports 1-65535`] },
  { name: 'port 65536', text: WEB + BIND.replace('port = 80', 'port = 65536'),
    errors: [`${F}:8: [bind.http] port: port 65536 does not exist; ports go up to 65535`] },
  { name: 'a port that is not a number', text: WEB + BIND.replace('port = 80', 'port = http'),
    errors: [`${F}:8: [bind.http] port: "http" is not a port; use ports 1-65535 and ranges lo-hi (e.g. 8000-8010)`] },
  { name: 'a backwards range', text: WEB + BIND.replace('port = 80', 'port = 90-80'),
    errors: [`${F}:8: [bind.http] port: range "90-80" runs backwards; write 80-90`] },
  { name: 'family unix', text: WEB + BIND.replace('family = inet', 'family = unix'),
    errors: [`${F}:6: [bind.http] family: unix sockets are never elevated (their address is a path: binding needs no privilege, only access to the directory); use inet, inet6 or both`] },
  { name: 'an address of an unlisted family', text: WEB + BIND + 'address = ::1\n',
    errors: [
      `${F}:9: [bind.http] address: ::1 is an inet6 address but family is inet only; add inet6 to family or remove the address`,
      `${F}:9: [bind.http] address: lists no inet address, so every inet bind would be refused; add one (0.0.0.0 for the wildcard) or remove inet from family`,
    ] },
  { name: 'a host name for an address', text: WEB + BIND + 'address = localhost\n',
    errors: [`${F}:9: [bind.http] address: "localhost" is not an IPv4 or IPv6 address; write literals, e.g. 127.0.0.1 or ::1 (no host names)`] },
  { name: 'bind sections that disagree on errno',
    text: WEB + BIND + BIND.replace('[bind.http]', '[bind.other]').replace('port = 80', 'port = 443') + 'errno = EPERM\n',
    errors: [`${F}:9: [bind.other]: refuses with EPERM but [bind.http] (line 4), which also covers inet stream binds, with EACCES; give both the same errno`] },

  // ---- [setsockopt.NAME]
  { name: 'an option that needs no privilege', text: WEB + MARK.replace('SO_MARK', 'SO_REUSEADDR'),
    errors: [`${F}:6: [setsockopt.mark] option: SO_REUSEADDR needs no privilege: the program sets it with its own rights; remove this section`] },
  { name: 'an option in lowercase', text: WEB + MARK.replace('SO_MARK', 'so_mark'),
    errors: [`${F}:6: [setsockopt.mark] option: option names are written in capitals; write SO_MARK`] },
  { name: 'a value for SO_BINDTODEVICE', text: WEB + MARK.replace('SO_MARK', 'SO_BINDTODEVICE'),
    errors: [
      `${F}:4: [setsockopt.mark] interface: missing; add interface = a list of interface names`,
      `${F}:7: [setsockopt.mark] value: SO_BINDTODEVICE takes interface names, not numbers; write interface = a list of names (e.g. eth0) instead`,
    ] },
  { name: 'an on/off option set to 2', text: WEB + MARK.replace('SO_MARK', 'IP_TRANSPARENT'),
    errors: [`${F}:7: [setsockopt.mark] value: 2 is neither on nor off; IP_TRANSPARENT takes value = 1 (on), 0 (off) or 0, 1`] },
  { name: 'a value beyond 32 bits', text: WEB + MARK.replace('value = 2', 'value = 4294967296'),
    errors: [`${F}:7: [setsockopt.mark] value: 4294967296 is out of range; values go up to 4294967295 (0xffffffff)`] },
  { name: 'an interface name too long',
    text: WEB + '[setsockopt.dev]\nas = root\noption = SO_BINDTODEVICE\ninterface = abcdefghijklmnop\n',
    errors: [`${F}:7: [setsockopt.dev] interface: "abcdefghijklmnop" is longer than 15 bytes, the most an interface name holds`] },
  { name: 'two sections for one option', text: WEB + MARK + MARK.replace('[setsockopt.mark]', '[setsockopt.again]'),
    errors: [`${F}:8: [setsockopt.again]: sets the same option as [setsockopt.mark] (line 4); merge their values into one section`] },

  // ---- every bad line of a file, not only the first
  { name: 'every error of a file',
    text: '[program]\npath = bin/ping\nusers = Alice\nsha256 = 12\n[socket.icmp]\nas = root\ndomain = inet\ntype = stream\nprotocol = icmpp\n[bind.x]\nport = 0\n',
    errors: [
      `${F}:2: [program] path: "bin/ping" is not absolute; use the full path, e.g. /usr/bin/ping`,
      `${F}:3: [program] users: "Alice" is not a valid user name; ${NAME_RULE}`,
      `${F}:4: [program] sha256: "12" has 2 hexadecimal digits; a sha256 digest has 64 (sha256sum PATH prints it)`,
      `${F}:9: [socket.icmp] protocol: unknown protocol "icmpp"; use a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`,
      `${F}:10: [bind.x] as: missing; add as = root or deny`,
      `${F}:10: [bind.x] family: missing; add family = inet, inet6 or both`,
      `${F}:10: [bind.x] type: missing; add type = stream, dgram or both`,
      `${F}:11: [bind.x] port: port 0 asks the kernel for any free port, which needs no privilege; use ports 1-65535`,
    ] },
];

t.test('the table holds at least 40 bad files', async (t) => {
  t.ok(BAD.length >= 40, `${BAD.length} bad files`);
  t.equal(new Set(BAD.map((b) => b.name)).size, BAD.length, 'names are unique');
});

for (const bad of BAD) {
  t.test(`bad: ${bad.name}`, async (t) => {
    const r = parseRuleFile(F, bad.text);
    t.equal(r.program, undefined, 'the file yields no rule');
    t.strictSame(r.errors.map(String), bad.errors);
  });
}

// ---- warnings: the same format, and the file stands ---------------------------------------

const WARN: Array<{ name: string, text: string, warnings: string[] }> = [
  { name: 'an interpreter without args', text: '[program]\npath = /usr/bin/python3.11\nusers = alice\n',
    warnings: [`${F}:2: [program] path: python3.11 is an interpreter and args is not set, so this rule grants its calls to whatever code the user makes it run; pin what it runs with args (the script or configuration, and the options around it), see elevation.d(5)`] },
  { name: 'an interpreter whose args name no argument', text: '[program]\npath = /bin/bash\nusers = alice\nargs = ""\n',
    warnings: [`${F}:4: [program] args: bash is an interpreter and args = "" names none of its arguments (with none it reads code from standard input), so this rule grants its calls to whatever code the user makes it run; pin the script it runs`] },
  { name: 'a plugin loader without args', text: '[program]\npath = /usr/sbin/nginx\nusers = www-data\n',
    warnings: [`${F}:2: [program] path: nginx loads the modules its command line names and args is not set, so this rule grants its calls to whatever code the user makes it run; pin what it runs with args (the script or configuration, and the options around it), see elevation.d(5)`] },
  { name: 'a privileged port for users = *', text: P + '[bind.dns]\nas = root\nfamily = inet\ntype = dgram, stream\nport = 53, 1000-1100\n',
    warnings: [
      `${F}:8: [bind.dns] port: ports 1024-1100 need no privilege while net.ipv4.ip_unprivileged_port_start is 1024 (the default); the broker lets such binds run with the user's own rights`,
      `${F}:8: [bind.dns] port: ports 53, 1000-1023 are below 1024 and users = * lets every user bind them: any user could serve there, where clients expect the system's service; name the users or groups that run the service`,
    ] },
  { name: 'keep-env of a name kept anyway', text: P + 'keep-env = FOO, TERM, LC_ALL\n',
    warnings: [`${F}:4: [program] keep-env: TERM, LC_ALL are kept anyway (when the value is not a path); remove them from keep-env`] },
];

for (const w of WARN) {
  t.test(`warning: ${w.name}`, async (t) => {
    const r = parseRuleFile(F, w.text);
    t.strictSame(r.errors, []);
    t.ok(r.program, 'the file stands');
    t.strictSame(r.warnings.map(String), w.warnings);
  });
}

t.test('pinned interpreters and loaders draw no warning', async (t) => {
  for (const text of [
    '[program]\npath = /usr/bin/python3.11\nusers = alice\nargs = -I /usr/local/lib/app/serve.py ...\n',
    '[program]\npath = /usr/bin/perl5.36.0\nusers = alice\nargs = /usr/local/bin/tool *\n',
    '[program]\npath = /usr/sbin/nginx\nusers = www-data\nargs = ""\n',
    '[program]\npath = /usr/bin/pinger\nusers = *\n',
  ]) {
    const r = parseRuleFile(F, text);
    t.strictSame([...r.errors, ...r.warnings].map(String), [], text.split('\n')[1]);
  }
});

// ---- the man page's examples ------------------------------------------------------------------

t.test('the examples of elevation.d(5) are valid, without warnings', async (t) => {
  const examples = manExamples();
  t.equal(examples.length, 6, 'ping, fping with IPv6 denied, a web server, arping, SO_MARK, Python pinned');
  for (const text of examples) {
    t.notMatch(text, /\\/, 'no roff escape left');
    const r = parseRuleFile(F, text);
    t.strictSame([...r.errors, ...r.warnings].map(String), [], text.split('\n').find((l) => l.startsWith('path')));
    t.ok(r.program);
  }
  const paths = examples.map((e) => parseRuleFile(F, e).program!.path);
  t.strictSame(paths, ['/usr/bin/ping', '/usr/bin/fping', '/usr/sbin/nginx', '/usr/bin/arping', '/usr/local/sbin/uplink-probe', '/usr/bin/python3.11']);
  t.strictSame(examples.map((e) => parseRuleFile(F, e).program!.calls.map((c) => c.kind)),
    [['socket', 'socket'], ['socket', 'socket'], ['bind'], ['socket'], ['setsockopt'], ['bind']]);
  t.strictSame(parseRuleFile(F, examples[1]).program!.calls.map((c) => c.deny), [undefined, true], 'IPv6 denied');
});
