// End to end: the rule language at run time and the checkers. An argument
// pattern and a sha256 pin, each with a matching and a refused invocation
// (and a binary changed after its pin); keep-env; `stx-elevate check` on a
// good directory (the examples of elevation.d(5), read from the page) and a
// bad one; `stx-elevated --check`; the broker refusing to start on invalid
// rules with status 78.
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { appendFileSync, chmodSync, chownSync, closeSync, copyFileSync, mkdirSync, openSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { readAudit, waitForAudit } from './lib/audit.js'
import { startBrokerExpectFailure } from './lib/broker.js'
import { manExamples } from './lib/man.js'
import { runRoot } from './lib/proc.js'
import { escapeRe, jsonLine, runAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'
import { SETTLE_MS } from '../src/broker/binary-digests.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

function rootFile(path: string, text: string | Buffer, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 })
  writeFileSync(path, text)
  chownSync(path, 0, 0)
  chmodSync(path, mode)
}

function rootCopy(from: string, to: string): string {
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 })
  copyFileSync(from, to)
  chownSync(to, 0, 0)
  chmodSync(to, 0o755)
  return to
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

// ---- argv pattern, sha256 pin, keep-env: one broker -----------------------------------

const pinned = rootCopy(fx.probe, tree.path('pinned', 'stx-probe-pinned'))
const changed = rootCopy(fx.probe, tree.path('pinned', 'stx-probe-changed'))
const changedPin = sha256(changed)
// changed after its rule pinned it: still a valid program, another content
appendFileSync(changed, Buffer.from('\0stx-elevate: changed after the pin\0'))
// pinned, run until the broker remembers its digest, then changed in place:
// a trailer of fixed size to rewrite, and an mtime in whole seconds to put back
const settled = rootCopy(fx.probe, tree.path('pinned', 'stx-probe-settled'))
const TRAILER = (tag: string) => Buffer.from(`\0stx-elevate trailer ${tag}\0`)
appendFileSync(settled, TRAILER('A'))
const SETTLED_MTIME = 1_700_000_000
utimesSync(settled, SETTLED_MTIME, SETTLED_MTIME)
const settledPin = sha256(settled)

const broker = sharedBroker(t, tree, () => ({
  rules: {
    'args.conf': `[program]\npath = ${fx.probe}\nusers = ${user.name}\nargs = exit *\n`,
    'pinned.conf': `[program]\npath = ${pinned}\nusers = ${user.name}\nsha256 = ${sha256(pinned).toUpperCase()}\nkeep-env = STX_KEEP\n`,
    'changed.conf': `[program]\npath = ${changed}\nusers = ${user.name}\nsha256 = ${changedPin}\n`,
    'settled.conf': `[program]\npath = ${settled}\nusers = ${user.name}\nsha256 = ${settledPin}\n`,
  },
}))

function refusedRun(t: Test, r: { code: number | null, stdout: string, stderr: string }, line: RegExp): void {
  t.equal(r.code, 1, 'the client exits 1')
  t.match(r.stderr, line)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.equal(r.stdout, '', 'the program did not run')
}

t.test('args = exit *: a matching invocation runs with its arguments', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'exit', '7'))
  t.equal(r.code, 7, `the probe ran "exit 7" (stderr: ${r.stderr})`)
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.program === fx.probe, 5000, 'launch record')
  t.same(launch.argv?.slice(1), ['exit', '7'])
})

for (const args of [['exit', '7', '8'], ['ctx'], []]) {
  t.test(`args = exit *: ${JSON.stringify(args)} is refused, with a refuse record`, async t => {
    const b = await broker()
    const r = await runAs(user, e.client(b.socket, fx.probe, ...args))
    const file = join(b.rulesDir, 'args.conf')
    refusedRun(t, r, new RegExp(`^stx-elevate: the broker refused to run ${escapeRe(fx.probe)}: the arguments do not match the rule ${escapeRe(file)} \\(args = exit \\*\\)\\n$`))
    const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.call?.name === 'run' && a.program === fx.probe &&
      typeof a.reason === 'string' && a.reason.includes('arguments do not match'), 5000, 'refuse record')
    t.match(rec, { uid: user.uid, user: user.name, errno: 'EPERM', rule: { file, section: 'program' } })
    t.match(rec.call, { args: { path: fx.probe } })
  })
}

t.test('sha256: the pinned binary runs, and keep-env passes its variable', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, pinned, 'ctx'), { env: { STX_KEEP: 'kept: /a/path', STX_DROP: 'dropped' } })
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  const ctx = jsonLine(r.stdout, 'env')
  t.equal(ctx.env.STX_KEEP, 'kept: /a/path', 'keep-env: kept as given, a path included')
  t.notOk('STX_DROP' in ctx.env, 'other variables are still dropped')
  await waitForAudit(b.audit, a => a.event === 'launch' && a.program === pinned, 5000, 'launch record')
})

t.test('sha256: a binary changed after its pin is refused, with a refuse record', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, changed, 'exit', '0'))
  const file = join(b.rulesDir, 'changed.conf')
  refusedRun(t, r, new RegExp(`^stx-elevate: the broker refused to run ${escapeRe(changed)}: its content does not match the sha256 pin in ${escapeRe(file)} \\(it hashes to ${sha256(changed)}\\)\\n$`))
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.program === changed, 5000, 'refuse record')
  t.match(rec, { uid: user.uid, user: user.name, errno: 'EPERM', rule: { file, section: 'program' }, call: { name: 'run', args: { path: changed } } })
  t.notOk(readAudit(b.audit).some(a => a.event === 'launch' && a.program === changed), 'no launch record')
})

/** Rewrite the trailer of `settled` in place: same inode, same size, mtime put back. */
function rewriteTrailer(tag: string): void {
  const size = statSync(settled).size, trailer = TRAILER(tag)
  const fd = openSync(settled, 'r+')
  try {
    writeSync(fd, trailer, 0, trailer.length, size - trailer.length)
  } finally {
    closeSync(fd)
  }
  utimesSync(settled, SETTLED_MTIME, SETTLED_MTIME)
}

t.test('sha256: a remembered digest is not trusted for the binary changed in place (size and mtime kept) or replaced', async t => {
  const b = await broker()
  const file = join(b.rulesDir, 'settled.conf')
  // The broker remembers digests only of files whose ctime is SETTLE_MS old (binary-digests.ts): wait for that (bounded).
  await new Promise(r => setTimeout(r, Math.max(0, statSync(settled).ctimeMs + SETTLE_MS + 500 - Date.now())))
  for (const n of [1, 2]) {
    const r = await runAs(user, e.client(b.socket, settled, 'exit', '0'))
    t.equal(r.code, 0, `run ${n} of the pinned binary (hashed, then remembered): ${r.stderr}`)
  }
  const inode = statSync(settled).ino
  rewriteTrailer('B')
  t.equal(statSync(settled).ino, inode, 'the same inode')
  t.equal(statSync(settled).mtimeMs, SETTLED_MTIME * 1000, 'the same mtime')
  t.not(sha256(settled), settledPin, 'another content')
  const r = await runAs(user, e.client(b.socket, settled, 'exit', '0'))
  refusedRun(t, r, new RegExp(`^stx-elevate: the broker refused to run ${escapeRe(settled)}: its content does not match the sha256 pin in ${escapeRe(file)} \\(it hashes to ${sha256(settled)}\\)\\n$`))
  await waitForAudit(b.audit, a => a.event === 'refuse' && a.program === settled && typeof a.reason === 'string' && a.reason.includes(sha256(settled)), 5000, 'refuse record')

  rewriteTrailer('A')
  t.equal(sha256(settled), settledPin, 'the pinned content again')
  const back = await runAs(user, e.client(b.socket, settled, 'exit', '0'))
  t.equal(back.code, 0, `put back in place: hashed again and run: ${back.stderr}`)

  // Replaced by rename with another content (of the same size and mtime): another inode.
  const next = `${settled}.next`
  copyFileSync(settled, next)
  chmodSync(next, 0o755)
  const fd = openSync(next, 'r+')
  const trailer = TRAILER('C')
  writeSync(fd, trailer, 0, trailer.length, statSync(next).size - trailer.length)
  closeSync(fd)
  utimesSync(next, SETTLED_MTIME, SETTLED_MTIME)
  renameSync(next, settled)
  const replaced = await runAs(user, e.client(b.socket, settled, 'exit', '0'))
  refusedRun(t, replaced, new RegExp(`^stx-elevate: the broker refused to run ${escapeRe(settled)}: its content does not match the sha256 pin in ${escapeRe(file)} \\(it hashes to ${sha256(settled)}\\)\\n$`))
})

// ---- stx-elevate check ------------------------------------------------------------------

let dirs = 0
/** A root-owned 0755 rules directory in the tree, files root 0644. */
function rulesDir(files: Record<string, string>): string {
  const dir = tree.path('check-rules', String(++dirs))
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  chmodSync(tree.path('check-rules'), 0o755)
  chmodSync(dir, 0o755)
  for (const [name, text] of Object.entries(files)) rootFile(join(dir, name), text)
  return dir
}

/**
 * The examples name binaries this machine may not have (nginx, arping, the
 * uplink daemon): each gets a root-owned copy of /usr/bin/true at the same
 * path under <tree>/man-bins, so the binary checks run on real files and
 * the name (and with it the interpreter warnings) stays the example's.
 */
const examples = manExamples().map((text, i) => {
  const path = /^path = (.*)$/m.exec(text)![1]
  const copy = rootCopy('/usr/bin/true', tree.path('man-bins', path))
  return { name: `example-${i + 1}.conf`, text: text.replace(/^path = .*$/m, `path = ${copy}`), copy }
})

t.test('stx-elevate check: the examples of elevation.d(5) are valid, with a summary per rule', async t => {
  t.equal(examples.length, 6)
  const dir = rulesDir(Object.fromEntries(examples.map(x => [x.name, x.text])))
  const r = await runAs(user, [tree.client, 'check', '--rules', dir])
  t.equal(r.code, 0, `exit 0; stdout:\n${r.stdout}\nstderr: ${r.stderr}`)
  t.equal(r.stderr, '')
  const bin = (p: string) => tree.path('man-bins', p)
  t.strictSame(r.stdout.trimEnd().split('\n'), [
    `${bin('/usr/bin/arping')}: groups netdev; socket packet dgram 0`,
    `${bin('/usr/bin/fping')}: groups netops; socket inet raw icmp, socket inet6 raw ipv6-icmp denied with EAFNOSUPPORT`,
    `${bin('/usr/bin/ping')}: users *; socket inet raw icmp, socket inet6 raw ipv6-icmp`,
    `${bin('/usr/bin/python3.11')}: users alice; args -I -m http.server 80 --bind 127.0.0.1 --directory /srv/www; bind inet stream port 80 address 127.0.0.1`,
    `${bin('/usr/local/sbin/uplink-probe')}: groups netadmin; setsockopt SO_MARK 2,3`,
    `${bin('/usr/sbin/nginx')}: users www-data; args -c /etc/nginx/nginx.conf; bind inet/inet6 stream port 80,443`,
    `${dir} (6 files): valid: 6 rules`,
  ])
})

t.test('stx-elevate check: a bad directory, every problem, exit 1', async t => {
  const missing = tree.path('man-bins', 'no-such-binary')
  const writable = rootCopy('/usr/bin/true', tree.path('writable-bin', 'true'))
  chmodSync(writable, 0o775)
  const dir = rulesDir({
    'args.conf': `[program]\npath = ${fx.probe}\nusers = ${user.name}\nargs = ... exit\n`,
    'changed.conf': `[program]\npath = ${changed}\nusers = ${user.name}\nsha256 = ${changedPin}\n`,
    'missing.conf': `[program]\npath = ${missing}\nusers = *\n`,
    'ports.conf': '[program]\npath = /usr/bin/true\nusers = *\n\n[bind.dns]\nas = root\nfamily = inet\ntype = dgram\nport = 53, 0\n',
    'writable.conf': `[program]\npath = ${writable}\ngroups = ${e.user.name}\n`,
  })
  const r = await runAs(user, [tree.client, 'check', '--rules', dir])
  t.equal(r.code, 1, `exit 1; stdout:\n${r.stdout}`)
  t.strictSame(r.stdout.trimEnd().split('\n'), [
    `${dir}/args.conf:4: [program] args: "..." stands for all further arguments, so it can only be the last word; use * for any one argument`,
    `${dir}/changed.conf:4: [program] sha256: ${changed} hashes to ${sha256(changed)}, not to the pin: the binary changed since the rule was written; the broker refuses to run it (check the new binary, then update the pin)`,
    `${dir}/missing.conf:2: [program] path: ${missing} does not exist; the broker refuses to run it`,
    `${dir}/ports.conf:9: [bind.dns] port: port 0 asks the kernel for any free port, which needs no privilege; use ports 1-65535`,
    `${dir}/writable.conf:2: [program] path: ${writable} is writable by group or other (mode 0775); only root may be able to change it; the broker refuses to run it`,
    `${missing}: users *; nothing as root`,
    `${changed}: users ${user.name}; sha256 pinned; nothing as root`,
    `${writable}: groups ${user.name}; nothing as root`,
    `${dir} (5 files): invalid: 5 errors`,
  ])
  t.equal(r.stderr, '')
})

t.test('stx-elevate check: usage errors exit 2; a program named like a command runs after --', async t => {
  const bad = await runAs(user, [tree.client, 'check', '--bogus'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /^stx-elevate check: Unknown argument: bogus\nusage: stx-elevate check \[--rules DIR\] \[FILE\.\.\.\]\n$/)
  const b = await broker()
  const program = await runAs(user, [tree.client, '--socket', b.socket, '--', 'check'])
  t.equal(program.code, 1)
  t.equal(program.stderr, 'stx-elevate: check: command not found\n', '-- makes "check" a program name, looked up on PATH')
})

// ---- stx-elevated --check, and the broker's start on invalid rules ----------------------------

const BAD_RULE = '[program]\npath = /usr/bin/ping\nusers = *\n\n[socket.icmp]\nas = root\ndomain = inet\ntype = raw\nprotocol = icmpp\n'
const badLine = (dir: string) =>
  `stx-elevated: ${dir}/ping.conf:9: [socket.icmp] protocol: unknown protocol "icmpp"; use a name from the protocol table (icmp, ipv6-icmp, ...) or a number 0-255`

t.test('stx-elevated --check: exit 0 on valid rules, 78 on invalid ones, nothing started', async t => {
  const good = rulesDir({ 'ping.conf': readFileSync(join(tree.shippedRules, 'ping.conf'), 'utf8') })
  const ok = await runRoot([process.execPath, tree.broker, '--check', '--rules', good])
  t.equal(ok.code, 0, `stderr: ${ok.stderr}`)
  t.equal(ok.stdout, `stx-elevated: the rules in ${good} are valid (1 file)\n`)
  t.equal(ok.stderr, '')

  const bad = rulesDir({ 'ping.conf': BAD_RULE })
  const no = await runRoot([process.execPath, tree.broker, '--check', '--rules', bad])
  t.equal(no.code, 78)
  t.equal(no.stdout, '')
  t.strictSame(no.stderr.trimEnd().split('\n'), [badLine(bad), `stx-elevated: the rules in ${bad} are invalid`])

  const asUser = await runAs(user, [tree.broker, '--check', '--rules', good])
  t.equal(asUser.code, 0, `no root needed: ${asUser.stderr}`)
})

t.test('the broker refuses to start on invalid rules: every error on stderr, exit 78, rules-rejected', async t => {
  const f = await startBrokerExpectFailure(t, tree, {
    rules: { 'ping.conf': BAD_RULE, 'web.conf': '[program]\npath = /usr/sbin/webd\nusers = www-data\n\n[bind.http]\nas = root\nfamily = inet\ntype = raw\nport = 65536\n' },
  })
  t.notOk(f.timedOut, 'it exits by itself')
  t.notOk(f.listened, 'it never listened')
  t.equal(f.code, 78, `exit status 78; stderr: ${f.stderr}`)
  const lines = f.stderr.trimEnd().split('\n').filter(l => !l.startsWith('{'))
  t.strictSame(lines, [
    badLine(f.rulesDir),
    `stx-elevated: ${f.rulesDir}/web.conf:8: [bind.http] type: raw sockets have no ports (binding one needs no privilege); use stream, dgram or both`,
    `stx-elevated: ${f.rulesDir}/web.conf:9: [bind.http] port: port 65536 does not exist; ports go up to 65535`,
    `stx-elevated: refusing to start: the rules in ${f.rulesDir} are invalid`,
  ])
  const rec = await waitForAudit(f.audit, a => a.event === 'rules-rejected', 2000, 'rules-rejected record')
  t.equal(rec.errors?.length, 3, 'the record holds every error')
})
