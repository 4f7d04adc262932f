// End to end: `stx-elevate watch`, the broker's live audit stream (issue 9).
// Root and members of the watch group (here stxtestgrp, which the test user
// is in and the other user is not) see every record as the broker writes
// it, the same fields as the audit log; filters narrow it in the broker;
// anyone else is refused with a refuse record; watchers count against
// limits; and a watcher that never reads stalls no program: it misses
// records and is told how many.
import t from 'tap'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker, type Broker } from './lib/broker.js'
import { dirname } from 'node:path'
import { PYTHON3, SAFE_PATH, SUPP_GROUP } from './lib/paths.js'
import { pingRule, probeRule } from './lib/rules.js'
import { escapeRe, jsonLine, runAs, sleep, spawnAs, type RunningAs } from './lib/run.js'
import { rawClient as rawClientAs, type RawResult } from './lib/raw-client.js'
import { setupE2E, sharedBroker } from './lib/setup.js'
import type { TestUser } from './lib/users.js'

const e = await setupE2E(t)
const { user, other, fx, tree } = e
const root: TestUser = { name: 'root', uid: 0, gid: 0 }

const rules = {
  'probe.conf': probeRule({ path: fx.probe, users: [user.name] }),
  'ping.conf': pingRule({ path: fx.ping, users: [user.name] }),
}
const WATCH_GROUP = ['--watch-group', SUPP_GROUP]
const broker = sharedBroker(t, tree, () => ({ rules, extraArgs: WATCH_GROUP }))

const ACK = /^stx-elevate: watching the audit records of the broker at .*; interrupt to stop$/m
const TIME = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'

/** Poll a running command's stderr (bounded) until it matches. */
async function waitForStderr(run: RunningAs, re: RegExp, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!re.test(run.stderr())) {
    if (Date.now() > deadline) throw new Error(`no ${re} on stderr within ${timeoutMs} ms:\n${run.stderr()}\n--- stdout:\n${run.stdout()}`)
    await sleep(25)
  }
}

/** `stx-elevate watch ARGS` as `who`, once the broker has said "watching"; killed in teardown. */
async function watcher(t: { teardown(fn: () => unknown): void }, who: TestUser, b: Broker, ...args: string[]): Promise<RunningAs> {
  // the probe's directory on PATH: --program may name it
  const run = spawnAs(who, e.client(b.socket, 'watch', ...args), { env: { PATH: `${dirname(fx.probe)}:${SAFE_PATH}` } })
  t.teardown(() => run.kill('SIGKILL'))
  await waitForStderr(run, ACK)
  return run
}

/** Every JSON line printed so far. */
const records = (run: RunningAs): AuditRecord[] => run.stdout().split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l))

/** Wait (bounded) until the watcher printed a JSON record satisfying pred. */
async function waitForRecord(run: RunningAs, pred: (r: AuditRecord) => boolean, what: string): Promise<AuditRecord> {
  const line = await run.waitForLine(l => l.startsWith('{') && pred(JSON.parse(l)), 15_000).catch((err: Error) => {
    throw new Error(`watcher: no ${what}: ${err.message}`)
  })
  return JSON.parse(line)
}

t.test('a member of the watch group sees a grant and a refusal live, one line each; SIGINT ends it with status 0', async t => {
  const b = await broker()
  const w = await watcher(t, user, b)
  // a raw ICMP socket (granted), then IP_HDRINCL on it (refused: the rule does not allow header-included)
  const r = await runAs(user, e.client(b.socket, fx.probe, 'hdrincl'))
  t.match(jsonLine(r.stdout), { raw: Number, hdrincl: 'EPERM' }, `the probe got its socket, not the option: ${r.stdout} ${r.stderr}`)
  const grant = await w.waitForLine(l => / grant /.test(l))
  t.match(grant, new RegExp(`^${TIME} grant ${user.name} ${escapeRe(fx.probe)} socket\\(domain=inet, type=raw, protocol=icmp\\) = \\d+$`))
  const refuse = await w.waitForLine(l => / refuse /.test(l))
  t.match(refuse, new RegExp(`^${TIME} refuse ${user.name} ${escapeRe(fx.probe)} setsockopt\\(fd=\\d+, option=IP_HDRINCL\\) `
    + 'refused EPERM: \\[socket\\.icmp\\] does not allow IP_HDRINCL \\(header-included = allow\\)$'))
  const exit = await w.waitForLine(l => / exit /.test(l))
  t.match(exit, new RegExp(`^${TIME} exit ${user.name} ${escapeRe(fx.probe)} pid \\d+: status \\d+$`))
  const launch = new RegExp(`^${TIME} launch ${user.name} ${escapeRe(fx.probe)} pid \\d+: ${escapeRe(fx.probe)} hdrincl$`)
  const lines = w.stdout().split('\n').slice(0, -1)
  t.equal(lines.length, 4, 'one line per record')
  t.ok(lines.some(l => launch.test(l)), 'the launch')
  // the launch is recorded once the broker read the exec's end of file: its place among the calls may vary
  t.same(lines.filter(l => !launch.test(l)), [grant, refuse, exit], 'the calls and the exit in order')

  w.kill('SIGINT')
  const done = await w.wait(10_000)
  t.equal(done.code, 0, 'interrupted: status 0')
  t.match(done.stderr, /^stx-elevate: watching [^\n]*\n$/, 'nothing on stderr but the first line')
})

t.test('--json: each record as the audit log has it, field for field, in order', async t => {
  const b = await broker()
  const w = await watcher(t, user, b, '--json')
  const r = await runAs(user, e.client(b.socket, fx.probe, 'raw4'))
  t.equal(r.code, 0, r.stderr)
  const exit = await waitForRecord(w, a => a.event === 'exit' && a.uid === user.uid, 'exit record')
  const logged = readAudit(b.audit).filter(a => a.session === exit.session)
  // (a grant may be logged before its session's launch record: the launch is recorded once the broker has read the exec's end of file)
  t.same(logged.map(a => a.event).sort(), ['exit', 'grant', 'launch'])
  t.strictSame(records(w).filter(a => a.session === exit.session), logged, 'the same records, the same fields')
  w.kill('SIGINT')
  t.equal((await w.wait(10_000)).code, 0)
})

t.test('filters: --user (name or uid) and --program see only their records, chosen in the broker', async t => {
  const b = await broker()
  const byOther = await watcher(t, user, b, '--json', '--user', other.name)
  const byUid = await watcher(t, user, b, '--json', '--user', String(user.uid))
  const byProbe = await watcher(t, user, b, '--json', '--program', fx.probe)
  const byName = await watcher(t, user, b, '--json', '--program', 'stx-probe')
  t.equal((await runAs(user, e.client(b.socket, fx.probe, 'raw4'))).code, 0)
  t.equal((await runAs(user, e.client(b.socket, fx.ping, '-c1', '127.0.0.1'))).code, 0)
  t.equal((await runAs(other, e.client(b.socket, fx.probe, 'raw4'))).code, 1, 'no rule for the other user')
  t.equal((await runAs(other, e.client(b.socket, fx.ping, '-c1', '127.0.0.1'))).code, 1)
  const last = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
  t.equal(last.code, 0, last.stderr)
  const lastLaunch = await waitForAudit(b.audit, a => a.event === 'launch' && a.argv?.[1] === 'exit', 5000, 'the last launch record')
  const lastExit = await waitForAudit(b.audit, a => a.event === 'exit' && a.session === lastLaunch.session, 5000, 'the last exit record')

  await waitForRecord(byOther, a => a.event === 'refuse' && a.call?.name === 'run' && (a.call?.args as { path?: string }).path === fx.ping, 'the other\'s ping refusal')
  t.same(records(byOther).map(a => [a.event, a.user, (a.call?.args as { path?: string })?.path]),
    [['refuse', other.name, fx.probe], ['refuse', other.name, fx.ping]], '--user NAME: that user\'s records only')

  await waitForRecord(byUid, a => a.event === 'exit' && a.session === lastExit.session, 'the last exit')
  const mine = records(byUid)
  t.ok(mine.length >= 3 * 3, `every record of the three runs: ${mine.length}`)
  t.ok(mine.every(a => a.uid === user.uid), '--user UID: that uid\'s records only')
  t.ok(mine.some(a => a.program === fx.ping) && mine.some(a => a.program === fx.probe), 'of both programs')

  await waitForRecord(byProbe, a => a.event === 'exit' && a.session === lastExit.session, 'the last exit')
  const probes = records(byProbe)
  t.ok(probes.every(a => a.program === fx.probe || (a.call?.args as { path?: string })?.path === fx.probe), '--program: that program\'s records only')
  t.ok(probes.some(a => a.uid === other.uid && a.event === 'refuse'), 'the other user\'s refused run of it too')
  t.notOk(probes.some(a => a.program === fx.ping), 'nothing of ping')
  await waitForRecord(byName, a => a.event === 'exit' && a.session === lastExit.session, 'the last exit')
  t.strictSame(records(byName), probes, '--program NAME: looked up in PATH, the same records')
})

t.test('a user outside the watch group is refused: one line, status 1, and a refuse record', async t => {
  const b = await broker()
  const r = await runAs(other, e.client(b.socket, 'watch', '--user', user.name))
  const reason = `${other.name} may not watch the audit stream: only root and members of the group ${SUPP_GROUP} may`
  t.equal(r.code, 1)
  t.equal(r.stderr, `stx-elevate: ${reason}\n`)
  t.equal(r.stdout, '')
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === other.uid && a.call?.name === 'watch', 5000, 'the refused watch')
  t.match(rec, { user: other.name, errno: 'EPERM', reason, group: SUPP_GROUP, call: { name: 'watch', args: { user: user.name, program: null } } })
  t.ok(b.alive())
})

t.test('root may watch; so may a user whose primary group is the watch group', async t => {
  const b = await startBroker(t, tree, { rules, extraArgs: ['--watch-group', other.name] })
  const asRoot = await watcher(t, root, b, '--json')
  const asOther = await watcher(t, other, b, '--json')
  const refused = await runAs(user, e.client(b.socket, 'watch'))
  t.equal(refused.code, 1, 'the test user is not in the other user\'s group')
  t.equal(refused.stderr, `stx-elevate: ${user.name} may not watch the audit stream: only root and members of the group ${other.name} may\n`)
  for (const w of [asRoot, asOther]) {
    const rec = await waitForRecord(w, a => a.event === 'refuse' && a.call?.name === 'watch', 'the refused watch')
    t.equal(rec.uid, user.uid, 'sees the other users\' records')
  }
})

t.test('a watch group that does not exist: a warning at start, and only root may watch', async t => {
  const b = await startBroker(t, tree, { rules, extraArgs: ['--watch-group', 'stx-no-such-group'] })
  t.match(b.stderr(), /the watch group stx-no-such-group does not exist: only root may watch the audit stream/)
  const r = await runAs(user, e.client(b.socket, 'watch'))
  t.equal(r.code, 1)
  t.equal(r.stderr, `stx-elevate: ${user.name} may not watch the audit stream: only root may (the watch group stx-no-such-group does not exist)\n`)
  await waitForAudit(b.audit, a => a.event === 'refuse' && a.call?.name === 'watch' && a.uid === user.uid, 5000, 'the refused watch')
  await watcher(t, root, b)
})

t.test('watcher limits, per user and in all, refuse with a clear reason and a client-rejected record', async t => {
  const b = await startBroker(t, tree, { rules, extraArgs: [...WATCH_GROUP, '--max-watchers-per-user', '2', '--max-watchers', '3'] })
  const first = await watcher(t, user, b)
  await watcher(t, user, b)
  const third = await runAs(user, e.client(b.socket, 'watch'))
  t.equal(third.code, 1)
  t.equal(third.stderr, `stx-elevate: too many watchers for ${user.name} (limit 2)\n`)
  await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.uid === user.uid && a.reason === `too many watchers for ${user.name} (limit 2)`, 5000, 'the per-user refusal')

  await watcher(t, root, b)
  const fourth = await runAs(root, e.client(b.socket, 'watch'))
  t.equal(fourth.code, 1)
  t.equal(fourth.stderr, 'stx-elevate: too many watchers (limit 3 for all users)\n')
  await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.uid === 0 && a.reason === 'too many watchers (limit 3 for all users)', 5000, 'the overall refusal')

  first.kill('SIGINT')
  t.equal((await first.wait(10_000)).code, 0)
  // its place is free again once the broker has seen the close (bounded: the close is an event the broker reads)
  const deadline = Date.now() + 10_000
  for (;;) {
    const again = spawnAs(user, e.client(b.socket, 'watch'))
    t.teardown(() => again.kill('SIGKILL'))
    const first = await Promise.race([
      waitForStderr(again, ACK).then(() => 'watching', () => 'no answer'),
      again.wait(15_000).then(r => r.stderr),
    ])
    if (first === 'watching') break
    t.equal(first, `stx-elevate: too many watchers for ${user.name} (limit 2)\n`, 'refused only while the close is on its way')
    if (Date.now() > deadline) throw new Error('the closed watcher\'s place was not freed within 10 s')
    await sleep(100)
  }
})

t.test('a watcher that never reads stalls no program; when it reads, it is told how many records it missed', async t => {
  const CALLS = 2000
  const b = await startBroker(t, tree, { rules, extraArgs: WATCH_GROUP })
  const stalled = spawnAs(user, [PYTHON3, fx.rawClient, b.socket, 'watch-stall', fx.probe])
  t.teardown(() => stalled.kill('SIGKILL'))
  await stalled.waitForLine(l => l.includes('"stalled"'))

  // two programs at once, each far more trapped calls than the watcher's queue holds
  const runs = [0, 1].map(() => runAs(user, e.client(b.socket, fx.probe, 'sockets', String(CALLS)), { timeoutMs: 120_000 }))
  for (const r of await Promise.all(runs)) {
    t.equal(r.code, 0, `the program finished, every call answered: ${r.stderr}`)
    t.match(jsonLine(r.stdout, 'calls'), { calls: CALLS, sockets: CALLS })
  }
  const live = await watcher(t, user, b, '--json')
  t.equal((await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))).code, 0)
  await waitForRecord(live, a => a.event === 'exit', 'an exit record: the broker still serves watchers and programs')

  stalled.closeStdin()
  const done = await stalled.wait(60_000)
  t.equal(done.code, 0, done.stderr)
  const out = jsonLine<RawResult>(done.stdout, 'replies')
  t.equal(out.error, null)
  t.same(out.replies[0], { v: 1, type: 'watching' })
  const events = out.replies.filter(m => m.type === 'event').map(m => m.record as AuditRecord)
  const notices = out.replies.filter(m => m.type === 'dropped')
  t.ok(notices.length > 0, 'told of dropped records')
  t.ok(notices.every(m => Number.isInteger(m.count) && (m.count as number) > 0), 'each with a count')
  const dropped = notices.reduce((n, m) => n + (m.count as number), 0)
  t.equal(out.replies.length, 1 + events.length + notices.length, 'nothing else')

  // every record written since the watch began was either sent or counted, in order
  const logged = readAudit(b.audit).slice(1) // after rules-loaded
  t.equal(events.length + dropped, logged.length, `sent ${events.length} + dropped ${dropped} = written ${logged.length}`)
  t.ok(inOrder(events, logged), 'the records sent are the log\'s, field for field, in its order')
  t.ok(b.alive())
})

t.test('a watcher outlives the idle timeout; the broker going away ends it with one line and status 1', async t => {
  const b = await startBroker(t, tree, { rules, extraArgs: [...WATCH_GROUP, '--idle-timeout', '1'] })
  const w = await watcher(t, user, b)
  await sleep(2500) // past the idle timeout, which closes connections that never ask
  t.equal((await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))).code, 0)
  await w.waitForLine(l => / exit /.test(l))
  await b.stop()
  const r = await w.wait(10_000)
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`\\nstx-elevate: the broker at ${escapeRe(b.socket)} closed the connection\\n$`))
})

t.test('usage errors: status 2', async t => {
  const b = await broker()
  for (const [args, message] of [
    [['--user', 'a:b'], /^stx-elevate watch: --user "a:b" is neither a user name nor a uid\n/],
    [['--user', 'stx-no-such-user'], /^stx-elevate watch: --user stx-no-such-user: no such user \(give a uid to watch one that is not in the password database\)\n/],
    [['--program', 'stx-no-such-program'], /^stx-elevate watch: --program stx-no-such-program: not found in PATH/],
    [['extra'], /^stx-elevate watch: Unknown argument: extra\n/],
  ] as const) {
    const r = await runAs(user, e.client(b.socket, 'watch', ...args))
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, message)
    t.match(r.stderr, /\nusage: stx-elevate \[--socket PATH\] watch \[--json\] \[--user USER\] \[--program PROGRAM\]\n$/)
  }
})

/** Whether every one of `part` is in `whole`, equal field for field, in the same order. */
function inOrder(part: AuditRecord[], whole: AuditRecord[]): boolean {
  let at = 0
  for (const r of part) {
    const text = JSON.stringify(r)
    while (at < whole.length && JSON.stringify(whole[at]) !== text) at++
    if (at === whole.length) return false
    at++
  }
  return true
}

/** raw-client.py as the user against the broker. */
const rawClient = (socket: string, kase: string) => rawClientAs(user, fx, socket, kase)

for (const { kase, reason } of [
  { kase: 'watch-key', reason: /^unexpected key "uid" in watch message$/ },
  { kase: 'watch-bad-user', reason: /^watch user must be null, a user name or a uid/ },
]) {
  t.test(`protocol: ${kase} is an error and a client-rejected record`, async t => {
    const b = await broker()
    const r = await rawClient(b.socket, kase)
    t.equal(r.error, null)
    t.equal(r.replies.length, 1, JSON.stringify(r.replies))
    t.match(r.replies[0], { v: 1, type: 'error', reason })
    t.ok(r.eof)
    const rec = await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.pid === r.pid, 5000, `client-rejected for pid ${r.pid}`)
    t.match(rec.reason, reason)
  })
}

t.test('protocol: nothing may follow a watch: a list after it is an error, and the watch ends', async t => {
  const b = await broker()
  const r = await rawClient(b.socket, 'watch-then-list')
  t.equal(r.error, null)
  t.same(r.replies[0], { v: 1, type: 'watching' })
  t.match(r.replies.at(-1), { v: 1, type: 'error', reason: 'list is not allowed now (watching)' })
  t.ok(r.eof)
  await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.pid === r.pid && a.reason === 'list is not allowed now (watching)', 5000, 'the rejection')
})
