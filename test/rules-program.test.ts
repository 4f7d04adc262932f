// [program]'s sha256, args and keep-env: the model, the matching, the
// environment; several files for one program; the check command's report
// (runs as root: rule directories are made root-owned in /tmp).
import t from 'tap';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { check } from '../src/client/commands/check.js';
import { programEnvironment } from '../src/broker/environment.js';
import { describeProgram } from '../src/broker/rules/describe.js';
import { matchArgs, ruleFor } from '../src/broker/rules/match.js';
import { loadRules } from '../src/broker/rules/load.js';
import { parseRuleFile } from '../src/broker/rules/parse.js';
import type { ProgramRule } from '../src/broker/rules/model.js';
import { rulesDirs } from './lib/rules-dir.js';

const F = '/etc/elevation.d/t.conf';
const P = '[program]\npath = /usr/bin/ping\nusers = *\n';

function program(text: string): ProgramRule {
  const r = parseRuleFile(F, text);
  if (!r.program) throw new Error(r.errors.join('\n'));
  return r.program;
}

t.test('sha256 is kept in lowercase', async (t) => {
  t.equal(program(P + `sha256 = ${'AbC0'.repeat(16)}\n`).sha256, 'abc0'.repeat(16));
  t.equal(program(P).sha256, undefined, 'absent: not pinned');
});

t.test('args: the model', async (t) => {
  t.strictSame(program(P + 'args = -c 3 * ...\n').args, { words: ['-c', '3', null], rest: true, text: '-c 3 * ...' });
  t.strictSame(program(P + 'args = ""\n').args, { words: [], rest: false, text: '""' });
  t.strictSame(program(P + 'args = \\* \\... a\\b\n').args, { words: ['*', '...', 'a\\b'], rest: false, text: '\\* \\... a\\b' },
    '\\* and \\... are the words themselves; other backslashes are ordinary');
  t.strictSame(program(P + 'args = a\\;b \\#c ; comment\n').args!.words, ['a;b', '#c'], "ini's escapes for ; and #");
  t.strictSame(program(P + 'args = -c\t\t3\n').args!.words, ['-c', '3'], 'tabs separate words too');
  t.strictSame(program(P + 'args = ...\n').args, { words: [], rest: true, text: '...' });
  t.equal(program(P).args, undefined, 'absent: any arguments');
});

t.test('args: matching argv[1..]', async (t) => {
  const cases: Array<[string, string[], boolean]> = [
    ['-c 3 *', ['-c', '3', 'host'], true],
    ['-c 3 *', ['-c', '3', ''], true],
    ['-c 3 *', ['-c', '3'], false],
    ['-c 3 *', ['-c', '3', 'host', 'more'], false],
    ['-c 3 *', ['-c', '4', 'host'], false],
    ['-c 3 *', ['-c3', 'host'], false],
    ['-c 3 *', ['-C', '3', 'host'], false],
    ['-c 3 *', ['-c', '3 ', 'host'], false],
    ['/srv/app.py ...', ['/srv/app.py'], true],
    ['/srv/app.py ...', ['/srv/app.py', '--port', '80'], true],
    ['/srv/app.py ...', ['/srv/app.pyc'], false],
    ['/srv/app.py ...', [], false],
    ['""', [], true],
    ['""', [''], false],
    ['...', [], true],
    ['...', ['anything', 'at', 'all'], true],
    ['\\*', ['*'], true],
    ['\\*', ['x'], false],
    ['* *', ['a', 'b'], true],
    ['* *', ['a'], false],
  ];
  for (const [pattern, args, expected] of cases) {
    t.equal(matchArgs(program(P + `args = ${pattern}\n`), args), expected, `args = ${pattern} vs ${JSON.stringify(args)}`);
  }
  t.ok(matchArgs(program(P), ['anything']), 'no args key: anything');
});

t.test('keep-env: the model and the environment', async (t) => {
  const p = program(P + 'keep-env = HTTP_PROXY, http_proxy, TERM\n');
  t.strictSame(p.keepEnv, ['HTTP_PROXY', 'http_proxy'], 'names kept anyway are left out');
  const user = { name: 'alice', uid: 1000, gid: 1000, dir: '/home/alice', shell: '/bin/sh' };
  const env = programEnvironment({
    HTTP_PROXY: 'http://proxy:3128/', TERM: 'xterm', LD_PRELOAD: '/x.so', HOME: '/tmp', OTHER: '1',
  }, user as never, p.keepEnv);
  t.strictSame({ ...env }, {
    TERM: 'xterm', HTTP_PROXY: 'http://proxy:3128/',
    HOME: '/home/alice', LOGNAME: 'alice', USER: 'alice', SHELL: '/bin/sh', PATH: '/usr/local/bin:/usr/bin:/bin',
  }, 'kept names pass as given (paths too), the rest as before');
  t.strictSame({ ...programEnvironment({ LD_PRELOAD: '/x.so', PATH: '/evil' }, user as never, ['LD_PRELOAD', 'PATH']) }, {
    HOME: '/home/alice', LOGNAME: 'alice', USER: 'alice', SHELL: '/bin/sh', PATH: '/usr/local/bin:/usr/bin:/bin',
  }, 'forbidden names never pass, even if a model held them');
});

t.test('several files for one program: who gets which rule', async (t) => {
  const a = { ...program('[program]\npath = /usr/bin/ping\nusers = alice\n'), file: '/r/a.conf' };
  const b = { ...program('[program]\npath = /usr/bin/ping\ngroups = wheel\n'), file: '/r/b.conf' };
  const c = { ...program('[program]\npath = /usr/bin/ping\ngroups = netdev\n'), file: '/r/c.conf' };
  const rules = { dir: '/r', files: [], programs: new Map([['/usr/bin/ping', [a, b, c]]]) };
  const gid = (name: string) => ({ wheel: 10, netdev: 108 } as Record<string, number>)[name];
  const who = (user: string | undefined, gids: number[]) => ruleFor(rules, '/usr/bin/ping', { uid: 1, user, gids }, gid)?.file;
  t.equal(who('alice', [10, 108]), '/r/a.conf', 'a rule naming the user wins over groups');
  t.equal(who('bob', [108, 10]), '/r/b.conf', 'among groups, the first file in name order');
  t.equal(who('bob', [108]), '/r/c.conf');
  t.equal(who('bob', [5]), undefined, 'none: refused');
  t.equal(who(undefined, [108]), '/r/c.conf', 'groups need no passwd entry');
});

t.test('describeProgram: one line per rule', async (t) => {
  const ping = readFileSync(new URL('../elevation.d/ping.conf', import.meta.url), 'utf8');
  t.equal(describeProgram(program(ping)), '/usr/bin/ping: users *; socket inet raw icmp, socket inet6 raw ipv6-icmp');
  t.equal(describeProgram(program([
    '[program]', 'path = /usr/sbin/webd', 'users = www-data, alice', 'groups = web', 'args = -c /etc/webd.conf',
    `sha256 = ${'0'.repeat(64)}`, 'keep-env = WEBD_MODE', 'sandboxed-clients = allow',
    '[bind.http]', 'as = root', 'family = inet, inet6', 'type = stream', 'port = 80, 443, 600-610', 'address = 127.0.0.1, ::1',
    'reuseport = allow',
    '[setsockopt.mark]', 'as = root', 'option = SO_MARK', 'value = 2, 5-9',
    '[setsockopt.dev]', 'as = root', 'option = SO_BINDTODEVICE', 'interface = eth0, wg0',
    '[socket.arp]', 'as = root', 'domain = packet', 'type = dgram', 'protocol = arp',
  ].join('\n'))), '/usr/sbin/webd: users www-data, alice; groups web; args -c /etc/webd.conf; sha256 pinned; keep-env WEBD_MODE; '
    + 'sandboxed clients too; bind inet/inet6 stream port 80,443,600-610 address 127.0.0.1,::1 reuseport, '
    + 'setsockopt SO_MARK 2,5-9, setsockopt SO_BINDTODEVICE eth0,wg0, socket packet dgram arp');
  t.equal(describeProgram(program('[program]\npath = /usr/bin/x\ngroups = g\nargs = ""\n')), '/usr/bin/x: groups g; no arguments; nothing as root');
});

// ---- the check command ----------------------------------------------------------------------

// /tmp is root-owned and sticky: root 0755 directories in it are fine for rules
const { make: rulesDir } = rulesDirs(t, '/tmp/stx-check-');

function run(dir: string, files: string[] = []): { status: number, lines: string[] } {
  const lines: string[] = [];
  const status = check(dir, files, (l) => lines.push(l));
  return { status, lines };
}

const TRUE_SHA = createHash('sha256').update(readFileSync('/usr/bin/true')).digest('hex');
const rule = (path: string, extra = '') => `[program]\npath = ${path}\nusers = alice\n${extra}`;

t.test('check: a valid directory', async (t) => {
  const ping = readFileSync(new URL('../elevation.d/ping.conf', import.meta.url), 'utf8');
  const dir = rulesDir({ 'ping.conf': ping, 'true.conf': rule('/usr/bin/true', `sha256 = ${TRUE_SHA}\n`), 'README': 'x' });
  t.strictSame(run(dir), { status: 0, lines: [
    '/usr/bin/ping: users *; socket inet raw icmp, socket inet6 raw ipv6-icmp',
    '/usr/bin/true: users alice; sha256 pinned; nothing as root',
    `${dir} (2 files): valid: 2 rules`,
  ] });
});

t.test('check: every error and warning, the binaries, the verdict', async (t) => {
  const dir = rulesDir({
    'a.conf': rule('/usr/bin/no-such-binary'),
    'b.conf': rule('/usr/bin/true', `sha256 = ${'0'.repeat(64)}\n`),
    'c.conf': '[program]\npath = /usr/bin/python3.11\nusers = bob\n',
    'd.conf': '[program]\npath = /usr/bin/ping\nusers = *\n[socket.x]\nas = root\ndomain = inet\ntype = raw\nprotocol = icmpp\n',
    'e.conf': rule('/usr/bin/python3', 'args = -I /usr/local/lib/x.py\n'),
    'f.conf': '[program]\npath = /usr/bin/true\nusers = alice\n',
  });
  writeFileSync(`${dir}/g.conf`, rule('/usr/bin/false'));
  chmodSync(`${dir}/g.conf`, 0o666);
  const r = run(dir);
  t.equal(r.status, 1);
  t.strictSame(r.lines, [
    `${dir}/a.conf:2: [program] path: /usr/bin/no-such-binary does not exist; the broker refuses to run it`,
    `${dir}/b.conf:4: [program] sha256: /usr/bin/true hashes to ${TRUE_SHA}, not to the pin: the binary changed since the rule was written; the broker refuses to run it (check the new binary, then update the pin)`,
    `warning: ${dir}/c.conf:2: [program] path: python3.11 is an interpreter and args is not set, so this rule grants its calls to whatever code the user makes it run; pin what it runs with args (the script or configuration, and the options around it), see elevation.d(5)`,
    `${dir}/d.conf:8: [socket.x] protocol: unknown protocol "icmpp"; use a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`,
    `${dir}/e.conf:2: [program] path: /usr/bin/python3 is a symlink; rules must name the real path; the broker refuses to run it`,
    `${dir}/f.conf:3: [program] users: alice also has a rule for /usr/bin/true in ${dir}/b.conf:3; merge the two, or name each user in one file only`,
    `${dir}/g.conf: is writable by group or other (mode 0666); make it 0644 or stricter`,
    '/usr/bin/no-such-binary: users alice; nothing as root',
    '/usr/bin/python3: users alice; args -I /usr/local/lib/x.py; nothing as root',
    '/usr/bin/python3.11: users bob; nothing as root',
    '/usr/bin/true: users alice; sha256 pinned; nothing as root',
    `${dir} (7 files): invalid: 6 errors, 1 warning`,
  ]);
});

t.test('check FILE: as if installed into DIR', async (t) => {
  const dir = rulesDir({ 'true.conf': rule('/usr/bin/true'), 'other.conf': '[program]\npath = /usr/bin/id\nusers = bob\n' });
  const elsewhere = rulesDir({
    'true.conf': rule('/usr/bin/true', 'args = --version\n'),   // replaces dir/true.conf: no conflict
    'id.conf': '[program]\npath = /usr/bin/id\nusers = bob, carol\n', // conflicts with dir/other.conf
  });
  t.strictSame(run(dir, [`${elsewhere}/true.conf`]), { status: 0, lines: [
    '/usr/bin/true: users alice; args --version; nothing as root',
    '1 file: valid: 1 rule',
  ] });
  t.strictSame(run(dir, [`${elsewhere}/id.conf`, `${elsewhere}/nope.conf`]), { status: 1, lines: [
    `${elsewhere}/id.conf:3: [program] users: bob also has a rule for /usr/bin/id in ${dir}/other.conf:3; merge the two, or name each user in one file only`,
    `${elsewhere}/nope.conf: does not exist`,
    '2 files: invalid: 2 errors',
  ] });
  t.equal(loadRules(dir).errors.length, 0, 'the directory itself is untouched');
});
