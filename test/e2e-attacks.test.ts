// End to end: issue 10's attacks that earlier files did not cover, each
// refused with its audit record (doc/ATTACKS.md maps every attack to its
// test): argc 0 and huge argv/environment, stdio fds of the wrong kind, an
// x32 call from the program, 10,000 connections from one user, a rules file
// or directory replaced by a symlink before a reload, a binary renamed over
// the pinned one while runs start.
import t, { type Test } from 'tap'
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker, type Broker } from './lib/broker.js'
import { PYTHON3 } from './lib/paths.js'
import { probeRule } from './lib/rules.js'
import { rawClient as rawClientAs, type RawResult } from './lib/raw-client.js'
import { escapeRe, jsonLine, runAs, sleep, spawnAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, other, fx, tree } = e

const broker = sharedBroker(t, tree, () => ({
  rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) },
}))

const rawClient = (socket: string, kase: string) => rawClientAs(user, fx, socket, kase)

/** The broker's answer to a rejected client: one error, then the close; a client-rejected record; nothing launched. */
async function assertRejected(t: Test, audit: string, r: RawResult, reason: RegExp) {
  t.equal(r.error, null, 'the raw client sent its message')
  t.match(r.replies, [{ v: 1, type: 'error', reason }], `one error answer: ${JSON.stringify(r.replies).slice(0, 300)}`)
  t.equal(r.replies.length, 1)
  t.ok(r.eof, 'then the broker closes the connection')
  const rec = await waitForAudit(audit, a => a.event === 'client-rejected' && a.pid === r.pid, 5000, `client-rejected record for pid ${r.pid}`)
  t.match(rec, { uid: user.uid, user: user.name, reason })
  t.notOk(readAudit(audit).some(a => a.event === 'launch' && a.client?.pid === r.pid), 'nothing was launched for it')
}

/* ---- argc 0, huge argv and environment (PwnKit-style) ---- */

t.test('control: a run with an argument of 120000 bytes is within the limits and served', async t => {
  const b = await broker()
  const r = await rawClient(b.socket, 'argv-big')
  t.equal(r.error, null)
  t.ok(r.sent > 120000 && r.sent <= 131072, `sent ${r.sent} bytes`)
  t.match(r.replies[0], { type: 'started', pid: Number })
  t.same(r.replies[r.replies.length - 1], { v: 1, type: 'exit', code: 0, signal: null }, 'the program ran and exited 0')
})

const wire: Array<{ kase: string, what: string, reason: RegExp }> = [
  { kase: 'argv-empty', what: 'a run with argv [] (argc 0)', reason: /^argv must not be empty$/ },
  { kase: 'argv-many', what: 'a run with 4097 arguments', reason: /^argv has 4097 entries; the limit is 4096$/ },
  { kase: 'argv-over', what: 'a run whose argument puts it over 131072 bytes', reason: /^message longer than 131072 bytes$/ },
  { kase: 'env-many', what: 'a run with 1025 environment variables', reason: /^env has 1025 entries; the limit is 1024$/ },
]

for (const { kase, what, reason } of wire) {
  t.test(`${what} is a protocol error: an error answer and a client-rejected record`, async t => {
    const b = await broker()
    const r = await rawClient(b.socket, kase)
    await assertRejected(t, b.audit, r, reason)
    t.ok(b.alive(), 'the broker is still running')
  })
}

/* ---- stdio fds a client should not send ---- */

const badFds: Array<{ kase: string, what: string, reason: RegExp }> = [
  { kase: 'stdin-dir', what: 'a directory fd as stdin', reason: /^stdin \(fd 0 of the run\) is a directory; stdio must be a file, pipe, socket or terminal$/ },
  { kase: 'stdout-opath', what: 'an O_PATH fd as stdout', reason: /^stdout \(fd 1 of the run\) is an O_PATH fd, which cannot be read or written$/ },
  { kase: 'stdout-self', what: 'the client\'s own connection to the broker as stdout', reason: /^stdout \(fd 1 of the run\) is a connection to the broker itself$/ },
  { kase: 'stdout-broker', what: 'another connection to the broker as stdout', reason: /^stdout \(fd 1 of the run\) is a connection to the broker itself$/ },
]

for (const { kase, what, reason } of badFds) {
  t.test(`${what}: the run is rejected with an error and a client-rejected record`, async t => {
    const b = await broker()
    const r = await rawClient(b.socket, kase)
    await assertRejected(t, b.audit, r, reason)
    const ok = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
    t.equal(ok.code, 0, `a valid client right after is served (stderr: ${ok.stderr})`)
  })
}

/* ---- x32 ---- */

t.test('control: an x32 socket call from stx-probe run directly returns (ENOSYS without x32 support)', async t => {
  const r = await runAs(user, [fx.probe, 'x32'])
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.ok('x32' in jsonLine(r.stdout, 'x32'), 'the call returned')
})

t.test('an x32 call under stx-elevate kills the program with SIGSYS: the client exits 159, with its exit record', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'x32'))
  t.equal(r.code, 159, `128+SIGSYS (stderr: ${r.stderr})`)
  t.notMatch(r.stdout, /"x32"/, 'the call never returned')
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.uid === user.uid && (a.argv ?? []).includes('x32'), 5000, 'launch record')
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.session === launch.session, 5000, 'exit record')
  t.match(exit, { program: fx.probe, signal: 'SIGSYS', code: null, status: 159 })
  t.notOk(readAudit(b.audit).some(a => (a.event === 'grant' || a.event === 'refuse') && a.session === exit.session), 'the call never reached the broker')
})

/* ---- 10,000 connections from one user ---- */

const FLOOD = 10_000
const CAP = 32 // the default --max-sessions-per-user
const LOGGED = 20 // the default number of refusals recorded one by one

t.test(`${FLOOD} connections from one user: ${CAP} held, the rest turned away with a clear error; the records are summarized; others are served`, async t => {
  const b = await startBroker(t, tree, {
    rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name, other.name] }) },
    extraArgs: ['--idle-timeout', '300'],
  })
  // the user's own fd limit must allow the flood: raised by root before setpriv
  const flood = spawnAs(user, [PYTHON3, fx.rawClient, b.socket, 'flood', String(FLOOD)], { via: ['prlimit', `--nofile=${FLOOD + 100}`, '--'] })
  t.teardown(() => flood.kill('SIGKILL'))
  const out = jsonLine(await flood.waitForLine(l => l.includes('"connected"'), 240_000), 'connected')
  const why = `too many sessions for ${user.name} (limit ${CAP})`
  t.equal(out.error, null)
  t.equal(out.connected, FLOOD, 'every connection was accepted by the kernel')
  t.same(out.reasons, { [`refused: ${why}`]: FLOOD - CAP }, 'every connection past the cap was refused, saying why')
  t.equal(out.eof, FLOOD - CAP, 'and closed')
  t.equal(out.silent, CAP, `${CAP} connections hold their sessions`)

  const r = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'), { timeoutMs: 15_000 })
  t.equal(r.code, 1, 'the real client at the cap exits 1')
  t.match(r.stderr, new RegExp(`^stx-elevate: ${escapeRe(why)}\\n?$`), 'with one clear line')
  const o = await runAs(other, e.client(b.socket, fx.probe, 'raw4'), { timeoutMs: 15_000 })
  t.equal(o.code, 0, `${other.name} is served meanwhile (stderr: ${o.stderr})`)

  flood.closeStdin()
  t.equal((await flood.wait(60_000)).code, 0, 'the flood closes its connections')
  // its sessions end as the broker reads the hang-ups; then the user is served again (bounded retries)
  let again = r
  let retries = 0 // turned away too, while the broker still reads the hang-ups
  for (let i = 0; i < 50 && again.code !== 0; i++) {
    await sleep(200)
    again = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'), { timeoutMs: 15_000 })
    if (again.code !== 0) retries++
  }
  t.equal(again.code, 0, `${user.name} is served again (stderr: ${again.stderr})`)

  const mine = (a: AuditRecord) => a.event === 'client-rejected' && a.uid === user.uid
  const turnedAway = (recs: AuditRecord[]) => recs.filter(mine).reduce((n, a) => n + (typeof a.suppressed === 'number' ? a.suppressed : 1), 0)
  const deadline = Date.now() + 10_000
  const expected = FLOOD - CAP + 1 + retries
  while (turnedAway(readAudit(b.audit)) < expected && Date.now() < deadline) await sleep(100)
  const recs = readAudit(b.audit).filter(mine)
  t.equal(turnedAway(recs), expected, 'every turned-away connection (the real client\'s too) is in a record or a summary count')
  const full = recs.filter(a => a.suppressed === undefined)
  // a retry turned away after a session ended starts a new spell, recorded in full
  t.ok(full.length >= LOGGED && full.length <= LOGGED + retries, `the first ${LOGGED} have a record each (${full.length} with ${retries} retries)`)
  t.ok(full.every(a => a.reason === why && typeof a.pid === 'number'), 'naming the reason and the client\'s pid')
  const summaries = recs.filter(a => typeof a.suppressed === 'number')
  t.ok(summaries.length >= 1 && summaries.length < 200, `the rest in ${summaries.length} summary records, not ${FLOOD - CAP - LOGGED}`)
  t.ok(summaries.every(a => /^\d+ more connections turned away \(too many sessions for /.test(a.reason ?? '')), 'each summary says what it counts')
  t.ok(b.alive(), 'the broker is still running')
})

/* ---- rules replaced through a symlink ---- */

/** SIGHUP the broker and wait (bounded) for the next rules-loaded or rules-rejected record. */
async function reload(b: Broker): Promise<AuditRecord> {
  const before = readAudit(b.audit).filter(a => a.event === 'rules-loaded' || a.event === 'rules-rejected').length
  process.kill(b.proc.pid!, 'SIGHUP')
  const deadline = Date.now() + 5000
  for (;;) {
    const recs = readAudit(b.audit).filter(a => a.event === 'rules-loaded' || a.event === 'rules-rejected')
    if (recs.length > before) return recs[recs.length - 1]
    if (Date.now() > deadline) throw new Error('no rules-loaded or rules-rejected record within 5000 ms of SIGHUP')
    await sleep(25)
  }
}

t.test('a rules file or the rules directory replaced by a symlink: the reload is rejected, the old rules stay in force', async t => {
  const b = await startBroker(t, tree, { rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) } })
  // the user's own directory holds the wider rule the symlinks point at
  const mine = tree.path('attacks-user-rules')
  mkdirSync(mine, { recursive: true })
  chownSync(mine, user.uid, user.gid)
  const wide = join(mine, 'probe.conf')
  writeFileSync(wide, probeRule({ path: fx.probe, users: [user.name, other.name] }))
  t.teardown(() => rmSync(mine, { recursive: true, force: true }))
  const served = async (who: typeof user) => (await runAs(who, e.client(b.socket, fx.probe, 'raw4'), { timeoutMs: 15_000 })).code === 0
  t.notOk(await served(other), `control: ${other.name} is not served by the rules in force`)

  const file = join(b.rulesDir, 'probe.conf')
  renameSync(file, `${file}.orig`)
  symlinkSync(wide, file)
  const r1 = await reload(b)
  t.match(r1, { event: 'rules-rejected', dir: b.rulesDir }, 'the file as a symlink: rejected')
  t.match(r1.errors, [`${file}: is a symbolic link; rule files must be regular files`])
  t.notOk(await served(other), `${other.name} is still not served`)
  t.ok(await served(user), `${user.name} is still served by the old rules`)
  rmSync(file)
  renameSync(`${file}.orig`, file)

  const real = `${b.rulesDir}.real`
  renameSync(b.rulesDir, real)
  symlinkSync(mine, b.rulesDir)
  t.teardown(() => {
    rmSync(b.rulesDir, { force: true })
    renameSync(real, b.rulesDir)
  })
  const r2 = await reload(b)
  t.match(r2, { event: 'rules-rejected', dir: b.rulesDir }, 'the directory as a symlink: rejected')
  t.match(r2.errors, [new RegExp(`^${escapeRe(b.rulesDir)}: is a symbolic link; name the real directory`)])
  t.notOk(await served(other), `${other.name} is still not served`)
  t.ok(await served(user), `${user.name} is still served by the old rules`)
  t.ok(b.alive(), 'the broker keeps running')
})

/* ---- a binary swapped between the broker's checks and the exec ---- */

const RUNS = 40

t.test('a binary renamed over the pinned one while runs start: the impostor never runs', async t => {
  // root (an upgrade, or an admin's mistake) swaps the rule's path between
  // the pinned probe and an impostor, by rename, as fast as it can; each
  // run must execute the very file the broker opened and hashed.
  const dir = tree.path('attacks-swap')
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  const path = join(dir, 'stx-probe')
  const probe = join(dir, 'probe.bin'), impostor = join(dir, 'impostor.bin')
  copyFileSync(fx.probe, probe)
  copyFileSync('/usr/bin/true', impostor) // exits 0 whatever its arguments; the probe `exit 7` exits 7
  for (const f of [probe, impostor]) chmodSync(f, 0o755)
  copyFileSync(probe, path)
  chmodSync(path, 0o755)
  const pin = createHash('sha256').update(readFileSync(probe)).digest('hex')
  const b = await startBroker(t, tree, { rules: { 'swap.conf': `[program]\npath = ${path}\nusers = ${user.name}\nsha256 = ${pin}\n` } })

  const swapper = spawn('/bin/sh', ['-c', `while :; do ln -f "$1" "$3.a" && mv -f "$3.a" "$3"; ln -f "$2" "$3.b" && mv -f "$3.b" "$3"; done`,
    'sh', probe, impostor, path], { stdio: 'ignore', detached: true })
  t.teardown(() => {
    try { process.kill(-swapper.pid!, 'SIGKILL') } catch { /* gone */ }
  })
  const codes: Record<string, number> = {}
  for (let i = 0; i < RUNS; i++) {
    const r = await runAs(user, e.client(b.socket, path, 'exit', '7'), { timeoutMs: 15_000 })
    const what = r.code === 7 ? 'probe' : r.code === 1 && /does not match the sha256 pin/.test(r.stderr) ? 'refused' : `code ${r.code}: ${r.stderr.trim()}`
    codes[what] = (codes[what] ?? 0) + 1
  }
  process.kill(-swapper.pid!, 'SIGKILL')
  t.comment(`outcomes: ${JSON.stringify(codes)}`)
  t.same(Object.keys(codes).filter(k => k !== 'probe' && k !== 'refused'), [], 'every run either ran the pinned probe or was refused: the impostor never ran')
  const recs = readAudit(b.audit)
  t.equal(recs.filter(a => a.event === 'refuse' && a.call?.name === 'run' && /does not match the sha256 pin/.test(a.reason ?? '')).length, codes.refused ?? 0,
    'a refuse record for each refused run')
  t.equal(recs.filter(a => a.event === 'launch').length, codes.probe ?? 0, 'a launch record for each run of the probe, and none else')
})
