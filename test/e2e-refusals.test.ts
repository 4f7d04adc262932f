// End to end: refusals, each with its audit record. A user the rule does not
// name, a program with no rule, rule files or directories that others can
// write (the broker refuses to start), binaries that the user could swap.
import t, { type Test } from 'tap'
import { chmodSync, chownSync, copyFileSync, mkdirSync, symlinkSync } from 'node:fs'
import { basename, join } from 'node:path'
import { readAudit, waitForAudit } from './lib/audit.js'
import { startBroker, startBrokerExpectFailure, type BrokerOptions } from './lib/broker.js'
import { probeRule } from './lib/rules.js'
import { escapeRe, runAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'

const e = await setupE2E(t)
const { user, other, fx, tree } = e

const probeConf = () => ({ 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) })

/** The client's one line for a refused launch, exit status 1, and the program did not run. */
function assertRefusedRun(t: Test, r: { code: number | null, signal: string | null, stdout: string, stderr: string }, line: RegExp) {
  t.equal(r.code, 1, `the client exits 1 (signal ${r.signal})`)
  t.match(r.stderr, line)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line on stderr')
  t.notMatch(r.stdout, /"uid"/, 'the program did not run')
}

t.test('a user the rule does not name is refused; the named user is served', async t => {
  const b = await startBroker(t, tree, { rules: probeConf() })
  const r = await runAs(other, e.client(b.socket, fx.probe, 'ctx'))
  assertRefusedRun(t, r, new RegExp(`^stx-elevate: no rule lets ${other.name} run ${escapeRe(fx.probe)}\\n?$`))
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === other.uid, 5000, `refuse record for ${other.name}`)
  t.equal(rec.user, other.name)
  t.equal(rec.call?.name, 'run')
  t.match(rec.call?.args, { path: fx.probe })
  t.type(rec.reason, 'string')
  t.notOk(readAudit(b.audit).some(a => a.event === 'launch' && a.uid === other.uid), 'no launch record for the refused user')

  const ok = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
  t.equal(ok.code, 0, `the user the rule names is served (stderr: ${ok.stderr})`)
})

t.test('a program with no rule is refused', async t => {
  const b = await startBroker(t, tree, { rules: probeConf() })
  const r = await runAs(user, e.client(b.socket, '/usr/bin/id'))
  assertRefusedRun(t, r, new RegExp(`^stx-elevate: no rule lets ${user.name} run /usr/bin/id\\n?$`))
  t.notMatch(r.stdout, /uid=/, 'id did not run')
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === user.uid && a.call?.name === 'run', 5000, 'refuse record for /usr/bin/id')
  t.equal(rec.user, user.name)
  t.match(rec.call?.args, { path: '/usr/bin/id' })
  t.type(rec.reason, 'string')
})

// Rule files and the rules directory: anything but root-owned and not
// group/world-writable makes the broker refuse to start, naming the file.
const badRules: Array<{ name: string, opts: Partial<BrokerOptions>, names: 'file' | 'dir' }> = [
  { name: 'a group-writable rule file', opts: { fileModes: { 'probe.conf': 0o664 } }, names: 'file' },
  { name: 'a world-writable rule file', opts: { fileModes: { 'probe.conf': 0o646 } }, names: 'file' },
  { name: 'a rule file owned by the user', opts: { fileOwners: { 'probe.conf': { uid: user.uid, gid: user.gid } } }, names: 'file' },
  { name: 'a rules directory owned by the user', opts: { rulesDirOwner: { uid: user.uid, gid: user.gid } }, names: 'dir' },
  { name: 'a world-writable rules directory', opts: { rulesDirMode: 0o757 }, names: 'dir' },
]

for (const bad of badRules) {
  t.test(`the broker refuses to start on ${bad.name}, naming it`, async t => {
    const f = await startBrokerExpectFailure(t, tree, { rules: probeConf(), ...bad.opts })
    const named = bad.names === 'file' ? join(f.rulesDir, 'probe.conf') : f.rulesDir
    // the directory itself, not merely a file inside it
    const names = new RegExp(`${escapeRe(named)}(?!/)`)
    t.notOk(f.timedOut, 'the broker exits by itself')
    t.notOk(f.listened, 'the broker never listened')
    t.equal(f.code, 78, `exit status 78 (EX_CONFIG); stderr: ${f.stderr}`)
    t.match(f.stderr, names, `stderr names ${named}`)
    const rec = await waitForAudit(f.audit, a => a.event === 'rules-rejected', 2000, 'rules-rejected record')
    t.equal(rec.dir, f.rulesDir)
    t.ok(Array.isArray(rec.errors) && rec.errors.some(s => typeof s === 'string' && names.test(s)), `errors name ${named}: ${JSON.stringify(rec.errors)}`)
  })
}

t.test('the same rules, root-owned 0644 in a root-owned 0755 directory, load', async t => {
  const b = await startBroker(t, tree, { rules: probeConf() })
  const rec = await waitForAudit(b.audit, a => a.event === 'rules-loaded', 5000, 'rules-loaded record')
  t.equal(rec.dir, b.rulesDir)
  t.same((rec.files ?? []).map(f => basename(f)), ['probe.conf'], 'files: probe.conf')
})

// Binaries the user could swap or rewrite: the rule loads, the launch is refused.
let copies = 0
function probeCopy(dir: string, owner: { uid: number, gid: number }, mode: number): string {
  mkdirSync(dir, { recursive: true })
  const p = join(dir, `stx-probe.${++copies}`)
  copyFileSync(fx.probe, p)
  chownSync(p, owner.uid, owner.gid)
  chmodSync(p, mode)
  return p
}

function userDir(name: string): string {
  const d = tree.path(name)
  mkdirSync(d, { recursive: true })
  chownSync(d, user.uid, user.gid)
  chmodSync(d, 0o755)
  return d
}

const rootOwned = { uid: 0, gid: 0 }
const rootDir = tree.path('refusal-bins')
mkdirSync(rootDir, { recursive: true, mode: 0o755 })

// made now, so that the controls below need nothing of the product
const userBinDir = userDir('user-dir-bin')
const linkDir = userDir('user-dir-link')
const linkTarget = probeCopy(rootDir, rootOwned, 0o755) // a root-owned binary no other rule names
const link = join(linkDir, 'stx-probe-link')
symlinkSync(linkTarget, link)

const swappable: Array<{ name: string, path: string, writable: string }> = [
  { name: 'a binary owned by the user', path: probeCopy(rootDir, { uid: user.uid, gid: user.gid }, 0o755) },
  { name: "a binary writable by the user's group", path: probeCopy(rootDir, { uid: 0, gid: user.gid }, 0o775) },
  { name: 'a world-writable binary', path: probeCopy(rootDir, rootOwned, 0o757) },
].map(s => ({ ...s, writable: s.path }))
swappable.push({ name: 'a root-owned binary in a directory the user owns', path: probeCopy(userBinDir, rootOwned, 0o755), writable: userBinDir })

for (const { name, writable } of [...swappable, { name: 'a symlink in a directory the user owns', writable: linkDir }]) {
  t.test(`control: the user can write ${writable} (${name})`, async t => {
    const w = await runAs(user, ['/usr/bin/test', '-w', writable])
    t.equal(w.code, 0, `${writable} is writable by ${user.name}`)
  })
}

for (const { name, path } of swappable) {
  t.test(`launch refused: ${name}`, async t => {
    const b = await startBroker(t, tree, { rules: { 'swappable.conf': probeRule({ path, users: [user.name] }) } })
    const r = await runAs(user, e.client(b.socket, path, 'ctx'))
    assertRefusedRun(t, r, new RegExp(`^stx-elevate: the broker refused to run ${escapeRe(path)}: .+`))
    const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === user.uid && a.call?.name === 'run', 5000, 'refuse record')
    t.equal(rec.user, user.name)
    t.match(rec.call?.args, { path })
    t.type(rec.reason, 'string')
    t.notOk(readAudit(b.audit).some(a => a.event === 'launch'), 'no launch record')
  })
}

t.test('launch refused: a rule path through a symlink in a directory the user owns', async t => {
  const target = linkTarget
  const b = await startBroker(t, tree, { rules: { 'link.conf': probeRule({ path: link, users: [user.name] }) } })
  const r = await runAs(user, e.client(b.socket, link, 'ctx'))
  assertRefusedRun(t, r, new RegExp(`^stx-elevate: (the broker refused to run (${escapeRe(link)}|${escapeRe(target)}): .+|no rule lets ${user.name} run (${escapeRe(link)}|${escapeRe(target)}))\\n?$`))
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === user.uid && a.call?.name === 'run', 5000, 'refuse record')
  t.equal(rec.user, user.name)
  t.ok([link, target].includes((rec.call?.args as { path?: string } | undefined)?.path ?? ''), 'names the link or its target')
  t.notOk(readAudit(b.audit).some(a => a.event === 'launch'), 'no launch record')
})
