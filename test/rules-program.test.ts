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
import { argsValue } from '../src/client/learn/rule-text.js';

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

// ---- args that leave an interpreter's code to the user ------------------------------------------

/** The warnings of a rule for `path` with `args` (the file must stand). */
function argsWarnings(path: string, args: string): string[] {
  const r = parseRuleFile(F, `[program]\npath = ${path}\nusers = alice\nargs = ${args}\n`);
  if (!r.program || r.errors.length > 0) throw new Error(r.errors.join('\n'));
  return r.warnings.map(String);
}

const GRANTS = 'so this rule grants its calls to any code the user writes there';
const PIN_SCRIPT = 'pin the code: put it in a root-owned script and name the script';

t.test('args: a code-taking option followed by a wildcard draws a warning, one per family', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['/usr/bin/python3.11', '-c *', 'python3.11 runs the code -c gives it, and args = -c * leaves it to the user'],
    ['/usr/bin/python3.11', '-I -m * ...', 'python3.11 loads the module -m names, and args = -I -m * ... leaves it to the user (-m *)'],
    ['/usr/bin/pypy3', '-c ...', 'pypy3 runs the code -c gives it, and args = -c ... leaves it to the user'],
    ['/usr/bin/perl', '-e *', 'perl runs the code -e gives it, and args = -e * leaves it to the user'],
    ['/usr/bin/perl5.36.0', '-I * /usr/local/lib/probe.pl', 'perl5.36.0 loads code from where -I says, and args = -I * /usr/local/lib/probe.pl leaves it to the user (-I *)'],
    ['/usr/bin/ruby3.1', '-e *', 'ruby3.1 runs the code -e gives it, and args = -e * leaves it to the user'],
    ['/usr/bin/ruby3.1', '-r * /srv/app.rb', 'ruby3.1 loads the module -r names, and args = -r * /srv/app.rb leaves it to the user (-r *)'],
    ['/usr/bin/node', '-e *', 'node runs the code -e gives it, and args = -e * leaves it to the user'],
    ['/usr/bin/node', '--eval *', 'node runs the code --eval gives it, and args = --eval * leaves it to the user'],
    ['/usr/bin/node', '-p *', 'node runs the code -p gives it, and args = -p * leaves it to the user'],
    ['/usr/bin/nodejs', '--print ...', 'nodejs runs the code --print gives it, and args = --print ... leaves it to the user'],
    ['/usr/bin/node', '--require * /srv/app.js', 'node loads the module --require names, and args = --require * /srv/app.js leaves it to the user (--require *)'],
    ['/usr/bin/lua5.4', '-e *', 'lua5.4 runs the code -e gives it, and args = -e * leaves it to the user'],
    ['/usr/bin/luajit', '-l * /srv/probe.lua', 'luajit loads the module -l names, and args = -l * /srv/probe.lua leaves it to the user (-l *)'],
    ['/usr/bin/php8.2', '-r *', 'php8.2 runs the code -r gives it, and args = -r * leaves it to the user'],
    ['/usr/bin/php8.2', '-d * /srv/probe.php', 'php8.2 reads the configuration -d gives it, which can load modules, and args = -d * /srv/probe.php leaves it to the user (-d *)'],
    ['/usr/bin/bash', '-c *', 'bash runs the code -c gives it, and args = -c * leaves it to the user'],
    ['/usr/bin/dash', '-e -c *', 'dash runs the code -c gives it, and args = -e -c * leaves it to the user (-c *)'],
    ['/usr/bin/mawk', '-f *', 'mawk runs the file -f names, and args = -f * leaves it to the user'],
    ['/usr/bin/gawk', '--source *', 'gawk runs the code --source gives it, and args = --source * leaves it to the user'],
    ['/usr/bin/gawk', '-l * -f /srv/probe.awk', 'gawk loads the module -l names, and args = -l * -f /srv/probe.awk leaves it to the user (-l *)'],
  ];
  for (const [path, args, problem] of cases) {
    t.strictSame(argsWarnings(path, args), [`${F}:4: [program] args: ${problem}, ${GRANTS}; ${PIN_SCRIPT}`], `${path} args = ${args}`);
  }
});

t.test('args: a plugin loader whose module or configuration option is followed by a wildcard', async (t) => {
  const fix = 'pin the code: name a root-owned file, or write the value itself';
  const cases: Array<[string, string, string]> = [
    ['/usr/sbin/nginx', '-g *', 'nginx reads the configuration -g gives it, which can load modules, and args = -g * leaves it to the user'],
    ['/usr/sbin/nginx', '-c *', 'nginx reads the configuration -c gives it, which can load modules, and args = -c * leaves it to the user'],
    ['/usr/sbin/apache2', '-C * -DFOREGROUND', 'apache2 reads the configuration -C gives it, which can load modules, and args = -C * -DFOREGROUND leaves it to the user (-C *)'],
    ['/usr/sbin/httpd', '-c *', 'httpd reads the configuration -c gives it, which can load modules, and args = -c * leaves it to the user'],
    ['/usr/bin/openssl', 's_server -accept 443 -engine *', 'openssl loads the module -engine names, and args = s_server -accept 443 -engine * leaves it to the user (-engine *)'],
    ['/usr/bin/java', '-cp * Main', 'java loads code from where -cp says, and args = -cp * Main leaves it to the user (-cp *)'],
    ['/usr/bin/java', '-classpath * Main', 'java loads code from where -classpath says, and args = -classpath * Main leaves it to the user (-classpath *)'],
    ['/usr/bin/java', '-jar *', 'java runs the file -jar names, and args = -jar * leaves it to the user'],
  ];
  for (const [path, args, problem] of cases) {
    t.strictSame(argsWarnings(path, args), [`${F}:4: [program] args: ${problem}, ${GRANTS}; ${fix}`], `${path} args = ${args}`);
  }
});

t.test('args: a wildcard where the program still reads options or its script', async (t) => {
  const fix = `${PIN_SCRIPT} before any * or ... (or end the options with -- before them)`;
  const cases: Array<[string, string, string]> = [
    ['/usr/bin/python3.11', '-I ...', 'python3.11 reads options up to its script, and args = -I ... has ... there, where the user can add -c, -m or a script of their own'],
    ['/usr/bin/python3.11', '-W ignore * /srv/app.py', 'python3.11 reads options up to its script, and args = -W ignore * /srv/app.py has * there, where the user can add -c, -m or a script of their own'],
    ['/usr/bin/perl', '-e print(1) ...', 'perl reads options after -e and its code, and args = -e print(1) ... has ... there, where the user can add -e, -E or -I'],
    ['/usr/bin/node', '-e 0 *', 'node reads options after -e and its code, and args = -e 0 * has * there, where the user can add -e, --eval or -p'],
    ['/usr/bin/mawk', '-F : *', 'mawk reads options up to its program text, and args = -F : * has * there, where the user can add -f or a program text of their own'],
    ['/usr/bin/mawk', '-f /srv/probe.awk *', 'mawk reads options after -f and its code, and args = -f /srv/probe.awk * has * there, where the user can add -f'],
  ];
  for (const [path, args, problem] of cases) {
    t.strictSame(argsWarnings(path, args), [`${F}:4: [program] args: ${problem}, ${GRANTS}; ${fix}`], `${path} args = ${args}`);
  }
  t.strictSame(argsWarnings('/usr/bin/python3.11', '-I -- *'), [
    `${F}:4: [program] args: python3.11 takes its script after --, and args = -I -- * leaves it to the user, ${GRANTS}; ${PIN_SCRIPT}`,
  ]);
  t.strictSame(argsWarnings('/usr/sbin/nginx', '-c /etc/nginx/nginx.conf ...'), [
    `${F}:4: [program] args: nginx reads options in all its arguments, and args = -c /etc/nginx/nginx.conf ... has ... there, where the user can add -g or -c, ${GRANTS}; write out every option (a wildcard among them can hold one that loads code)`,
  ]);
});

t.test('args: no warning when the code or script is pinned, or for other programs', async (t) => {
  const pinned: Array<[string, string]> = [
    ['/usr/bin/python3.11', '/usr/local/lib/probe.py *'],
    ['/usr/bin/python3.11', '-I /usr/local/lib/probe.py ...'],
    ['/usr/bin/python3.11', '-c print(1)'],
    ['/usr/bin/python3.11', '-c print(1) ...'],
    ['/usr/bin/python3.11', '-I -m http.server 80 --bind 127.0.0.1 --directory /srv/www'],
    ['/usr/bin/python3.11', '-m http.server * ...'],
    ['/usr/bin/python3.11', '-I -- /srv/app.py *'],
    ['/usr/bin/python3.11', '-W * /srv/app.py'],
    ['/usr/bin/perl', '-e print(1) -- ...'],
    ['/usr/bin/perl', '-T /usr/local/lib/probe.pl *'],
    ['/usr/bin/ruby3.1', '-r json /srv/app.rb ...'],
    ['/usr/bin/node', '/srv/app.js ...'],
    ['/usr/bin/lua5.4', '/srv/probe.lua *'],
    ['/usr/bin/php8.2', '/srv/probe.php *'],
    ['/usr/bin/bash', '-c exit *'],
    ['/usr/bin/bash', '/usr/local/lib/probe.sh *'],
    ['/usr/bin/dash', '-c /usr/local/lib/probe.sh ...'],
    ['/usr/bin/mawk', '{print} *'],
    ['/usr/bin/mawk', '-f /srv/probe.awk -- *'],
    ['/usr/bin/gawk', '-F : -f /srv/probe.awk -- ...'],
    ['/usr/sbin/nginx', '-c /etc/nginx/nginx.conf'],
    ['/usr/sbin/nginx', '-c /etc/nginx/nginx.conf -s *'],
    ['/usr/sbin/apache2', '-DFOREGROUND -f /etc/apache2/apache2.conf'],
    ['/usr/bin/java', '-jar /srv/app.jar ...'],
    ['/usr/bin/java', '-cp /srv/app.jar Main ...'],
    ['/usr/bin/openssl', 's_server -accept 443 -cert *'],
  ];
  for (const [path, args] of pinned) t.strictSame(argsWarnings(path, args), [], `${path} args = ${args}`);
  for (const args of ['-c *', '-e *', '-g *', '-cp * Main', '-engine *', '...', '* ...']) {
    t.strictSame(argsWarnings('/usr/bin/ping', args), [], `not an interpreter: ping args = ${args}`);
  }
});

t.test('learn and check agree: a pin learn writes for an interpreter never draws a warning', async (t) => {
  const runs: Array<[string, string[]]> = [
    ['/usr/bin/python3.11', ['-c', 'print(1)']],
    ['/usr/bin/python3.11', ['-m', 'http.server', '80', '--bind', '127.0.0.1']],
    ['/usr/bin/python3.11', ['-I', '/usr/local/lib/probe.py', '...', '*']],
    ['/usr/bin/perl', ['-e', 'print(1)', '-e', 'exit']],
    ['/usr/bin/node', ['-e', '0']],
    ['/usr/bin/bash', ['-c', 'exit']],
    ['/usr/bin/mawk', ['-F', ':', '{print}']],
    ['/usr/sbin/nginx', ['-c', '/etc/nginx/nginx.conf', '-g', 'daemon;']],
    ['/usr/bin/java', ['-cp', '/srv/app.jar', 'Main']],
  ];
  for (const [path, argv] of runs) {
    const pin = argsValue(argv);
    t.strictSame(pin.loose, [], `${argv.join(' ')}: every word can be written`);
    t.strictSame(argsWarnings(path, pin.text), [], `${path} args = ${pin.text}`);
  }
  // what learn cannot write it refuses, rather than write a * there
  t.strictSame(argsValue(['-c', 'print("ran")']).loose, ['print("ran")']);
});
