// Runs as root: owners and modes are set with chown/chmod on temp dirs.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import {
  chmodSync, chownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { loadRules } from '../src/broker/rules/load.js';
import { rulesDirs } from './lib/rules-dir.js';

const PING = readFileSync(new URL('../elevation.d/ping.conf', import.meta.url), 'utf8');
const rule = (path: string) => `[program]\npath = ${path}\nusers = *\n`;

// /tmp is root-owned and sticky: a root 0755 directory in it is a safe place
const { base, make: rulesDir } = rulesDirs(t, '/tmp/stx-rules-');
let links = 0;

function errors(dir: string): string[] {
  return loadRules(dir).errors.map(String);
}

function refused(t: Test, dir: string, expected: string[]): void {
  const { rules, errors } = loadRules(dir);
  t.strictSame(errors.map(String), expected);
  t.equal(rules.programs.size, 0, 'nothing loaded from it');
}

t.test('a clean directory loads, in name order, skipping other names', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING, 'a.conf': rule('/usr/bin/a'), '.hidden.conf': 'junk', 'README': 'junk', 'x.conf~': 'junk' });
  const { rules, errors } = loadRules(dir);
  t.strictSame(errors, []);
  t.equal(rules.dir, dir);
  t.strictSame(rules.files, [`${dir}/a.conf`, `${dir}/ping.conf`]);
  t.strictSame([...rules.programs.keys()], ['/usr/bin/a', '/usr/bin/ping']);
  t.equal(rules.programs.get('/usr/bin/ping')![0].calls.length, 2);
  t.equal(rules.programs.get('/usr/bin/ping')![0].file, `${dir}/ping.conf`);
});

t.test('warnings are passed on and do not refuse a file', async (t) => {
  const web = rule('/usr/sbin/httpd-x') + '[bind.http]\nas = root\nfamily = inet\ntype = stream\nport = 80, 8080\n';
  const dir = rulesDir({ 'web.conf': web, 'ping.conf': PING });
  const { rules, errors, warnings } = loadRules(dir);
  t.strictSame(errors, []);
  t.strictSame(warnings.map(String), [
    `${dir}/web.conf:8: [bind.http] port: port 8080 needs no privilege while net.ipv4.ip_unprivileged_port_start is 1024 (the default); the broker lets such binds run with the user's own rights`,
    `${dir}/web.conf:8: [bind.http] port: port 80 is below 1024 and users = * lets every user bind it: any user could serve there, where clients expect the system's service; name the users or groups that run the service`,
  ]);
  t.strictSame([...rules.programs.keys()], ['/usr/bin/ping', '/usr/sbin/httpd-x']);
});

t.test('an empty directory loads nothing, without error', async (t) => {
  const { rules, errors } = loadRules(rulesDir());
  t.strictSame(errors, []);
  t.equal(rules.programs.size, 0);
});

t.test('group-writable file', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING });
  chmodSync(`${dir}/ping.conf`, 0o664);
  refused(t, dir, [`${dir}/ping.conf: is writable by group or other (mode 0664); make it 0644 or stricter`]);
});

t.test('world-writable file', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING });
  chmodSync(`${dir}/ping.conf`, 0o606);
  refused(t, dir, [`${dir}/ping.conf: is writable by group or other (mode 0606); make it 0604 or stricter`]);
});

t.test('file owned by another user', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING });
  chownSync(`${dir}/ping.conf`, 65534, 65534);
  refused(t, dir, [`${dir}/ping.conf: is owned by uid 65534; make root its owner`]);
});

t.test('symlinked .conf', async (t) => {
  const dir = rulesDir({ 'real.txt': PING });
  symlinkSync(`${dir}/real.txt`, `${dir}/ping.conf`);
  refused(t, dir, [`${dir}/ping.conf: is a symbolic link; rule files must be regular files`]);
});

t.test('a directory or a fifo named .conf', async (t) => {
  const dir = rulesDir();
  mkdirSync(`${dir}/a.conf`);
  execFileSync('mkfifo', [`${dir}/b.conf`]);
  refused(t, dir, [
    `${dir}/a.conf: is a directory; rule files must be regular files`,
    `${dir}/b.conf: is a fifo; rule files must be regular files`,
  ]);
});

t.test('every bad file is reported, good ones still load', async (t) => {
  const dir = rulesDir({ 'a.conf': rule('/usr/bin/a'), 'b.conf': PING, 'c.conf': '[program]\npath = bin/c\nusers = *\n' });
  chmodSync(`${dir}/b.conf`, 0o666);
  const { rules, errors } = loadRules(dir);
  t.strictSame(errors.map(String), [
    `${dir}/b.conf: is writable by group or other (mode 0666); make it 0644 or stricter`,
    `${dir}/c.conf:2: [program] path: "bin/c" is not absolute; use the full path, e.g. /usr/bin/ping`,
  ]);
  t.strictSame([...rules.programs.keys()], ['/usr/bin/a'], 'the caller decides: it refuses any set with errors');
});

t.test('group-writable directory', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING });
  chmodSync(dir, 0o775);
  refused(t, dir, [`${dir}: is writable by group or other (mode 0775); make it 0755 or stricter`]);
});

t.test('sticky does not excuse the rules directory itself', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING });
  chmodSync(dir, 0o1777);
  refused(t, dir, [`${dir}: is writable by group or other (mode 1777); make it 1755 or stricter`]);
});

t.test('directory owned by another user', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING });
  chownSync(dir, 65534, 65534);
  refused(t, dir, [`${dir}: is owned by uid 65534; make root its owner`]);
});

t.test('an unsafe directory above the rules', async (t) => {
  const home = rulesDir();
  const dir = `${home}/rules`;
  mkdirSync(dir, { mode: 0o755 });
  writeFileSync(`${dir}/ping.conf`, PING);
  chownSync(home, 65534, 65534);
  refused(t, dir, [`${home}: is owned by uid 65534; every directory above the rules must be owned by root`]);
  chownSync(home, 0, 0);
  chmodSync(home, 0o775);
  refused(t, dir, [`${home}: is writable by group or other (mode 0775); make it 0755 or stricter`]);
  chmodSync(home, 0o1777);
  t.strictSame(errors(dir), [], 'a sticky directory above is fine, as /tmp is');
});

t.test('a symlink on the way to the directory', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING });
  const link = `${base}/link${links++}`;
  symlinkSync(dir, link);
  refused(t, link, [`${link}: is a symbolic link; name the real directory (${dir})`]);
  refused(t, `${link}/.`, [`${link}: is a symbolic link; name the real directory (${dir})`]);
});

t.test('missing directory', async (t) => {
  refused(t, `${base}/nope`, [`${base}/nope: does not exist; create it (owned by root, mode 0755) or name another directory`]);
});

t.test('not a directory', async (t) => {
  const dir = rulesDir({ 'ping.conf': PING });
  refused(t, `${dir}/ping.conf`, [`${dir}/ping.conf: is not a directory`]);
});

t.test('two files for the same program: only for disjoint users and groups', async (t) => {
  const users = (u: string, g?: string) => `[program]\npath = /usr/bin/ping\nusers = ${u}\n${g ? `groups = ${g}\n` : ''}`;
  const groups = (g: string) => `[program]\npath = /usr/bin/ping\ngroups = ${g}\n`;
  let dir = rulesDir({ 'a.conf': PING, 'b.conf': '; again\n' + rule('/usr/bin/ping') });
  t.strictSame(errors(dir), [
    `${dir}/b.conf:4: [program] users: users = * gives every user a rule for /usr/bin/ping, which ${dir}/a.conf:14 also has; keep one file for it, or name users and groups in each`,
  ]);
  dir = rulesDir({ 'a.conf': PING, 'b.conf': groups('netdev') });
  t.strictSame(errors(dir), [
    `${dir}/b.conf:1: [program] users: ${dir}/a.conf:16 gives every user (users = *) a rule for /usr/bin/ping; keep one file for it, or name users and groups in each`,
  ]);
  dir = rulesDir({ 'a.conf': users('alice, bob'), 'b.conf': users('carol, bob') });
  t.strictSame(errors(dir), [
    `${dir}/b.conf:3: [program] users: bob also has a rule for /usr/bin/ping in ${dir}/a.conf:3; merge the two, or name each user in one file only`,
  ]);
  dir = rulesDir({ 'a.conf': users('alice', 'wheel, netdev'), 'b.conf': users('carol', 'netdev') });
  t.strictSame(errors(dir), [
    `${dir}/b.conf:4: [program] groups: group netdev also has a rule for /usr/bin/ping in ${dir}/a.conf:4; merge the two, or name each group in one file only`,
  ]);
  dir = rulesDir({ 'a.conf': users('alice'), 'b.conf': groups('wheel'), 'c.conf': groups('netdev') });
  const loaded = loadRules(dir);
  t.strictSame(loaded.errors, []);
  t.strictSame(loaded.warnings.map(String), [
    `${dir}/c.conf:3: [program] groups: ${dir}/b.conf:3 also gives groups a rule for /usr/bin/ping; a user in groups of both gets the rule of the file first in name order (${dir}/b.conf)`,
  ]);
  t.strictSame(loaded.rules.programs.get('/usr/bin/ping')!.map((p) => p.file), ['a', 'b', 'c'].map((n) => `${dir}/${n}.conf`));
  t.strictSame(loaded.rules.files, ['a', 'b', 'c'].map((n) => `${dir}/${n}.conf`));
});

t.test('a file too large or not UTF-8', async (t) => {
  const dir = rulesDir({ 'big.conf': '; x\n'.repeat(300_000) });
  writeFileSync(`${dir}/bin.conf`, Buffer.from([0x5b, 0xff, 0xfe, 0x5d]));
  chmodSync(`${dir}/bin.conf`, 0o600);
  refused(t, dir, [
    `${dir}/big.conf: is larger than 1 MiB; a rule file is a few lines`,
    `${dir}/bin.conf: is not valid UTF-8 text`,
  ]);
});
