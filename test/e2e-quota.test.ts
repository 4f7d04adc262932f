// End to end: no user can exhaust or stall the broker for the others
// (issue 4). Per-user caps on sessions, fds and notifications in flight,
// each with a clear error and an audit record; a connection that never
// speaks is closed; refusals are rate-limited with summary records and a
// session past the refusal limit is killed; listeners are served in turns;
// reads of a program's memory run off the loop with a deadline.
import t from 'tap'
import { existsSync } from 'node:fs'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker } from './lib/broker.js'
import { PYTHON3 } from './lib/paths.js'
import { probeRule } from './lib/rules.js'
import { escapeRe, jsonLine, runAs, spawnAs, type RunningAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'
import { withSysctl } from './lib/sysctl.js'

const e = await setupE2E(t)
const { user, other, fx, tree } = e
const users = [user.name, other.name]

/** The probe's rule, naming both test users. */
const probeConf = () => ({ 'probe.conf': probeRule({ path: fx.probe, users }) })

/** The probe's rule with `header-included = allow`: the broker then reads IP_HDRINCL's value from the program. */
const hdrinclConf = () => ({
  'probe.conf': [
    '[program]', `path = ${fx.probe}`, `users = ${users.join(', ')}`, '',
    '[socket.icmp]', 'as = root', 'domain = inet', 'type = raw', 'protocol = icmp', 'header-included = allow', '',
  ].join('\n'),
})

/** Start `argv` as `who`; SIGKILLed in teardown if still running. */
function start(tt: { teardown(fn: () => unknown): void }, who: typeof user, argv: string[]): RunningAs {
  const run = spawnAs(who, argv)
  tt.teardown(() => run.kill('SIGKILL'))
  return run
}

/** The session number of the launch whose argv includes `word`, for `uid`. */
async function sessionOf(audit: string, uid: number, word: string): Promise<number> {
  const rec = await waitForAudit(audit, a => a.event === 'launch' && a.uid === uid && (a.argv ?? []).includes(word), 15_000, `launch record of ${word}`)
  return rec.session!
}

const isSummary = (a: AuditRecord) => a.event === 'refuse' && typeof a.suppressed === 'number'

t.test('a user at the session cap gets a clear error and a record; another user is served meanwhile', async t => {
  const b = await startBroker(t, tree, { rules: probeConf(), extraArgs: ['--max-sessions-per-user', '2'] })
  const holds = [start(t, user, e.client(b.socket, fx.probe, 'hold', '60')), start(t, user, e.client(b.socket, fx.probe, 'hold', '60'))]
  for (const h of holds) await h.waitForLine(l => l.includes('"ready"'), 15_000)

  const r = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'), { timeoutMs: 15_000 })
  t.equal(r.code, 1, 'the third session is refused')
  t.match(r.stderr, new RegExp(`^stx-elevate: too many sessions for ${escapeRe(user.name)} \\(limit 2\\)\\n?$`), 'one clear line')
  const rec = await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.uid === user.uid, 5000, 'client-rejected record')
  t.match(rec, { user: user.name, reason: `too many sessions for ${user.name} (limit 2)` })
  t.type(rec.pid, 'number', 'the client\'s pid')

  const o = await runAs(other, e.client(b.socket, fx.probe, 'raw4'), { timeoutMs: 15_000 })
  t.equal(o.code, 0, `${other.name} is served while ${user.name} is at the cap (stderr: ${o.stderr})`)
  t.type(jsonLine(o.stdout, 'raw4').raw4, 'number', 'with its raw socket')
  await waitForAudit(b.audit, a => a.event === 'grant' && a.uid === other.uid, 5000, `grant record of ${other.name}`)

  holds[0].closeStdin()
  t.equal((await holds[0].wait(15_000)).code, 0, 'a held session ends')
  const again = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'), { timeoutMs: 15_000 })
  t.equal(again.code, 0, `its place is free again (stderr: ${again.stderr})`)
  holds[1].closeStdin()
  t.equal((await holds[1].wait(15_000)).code, 0)
})

t.test('a run carrying more fds than the fd cap is refused with a clear error and a record', async t => {
  const b = await startBroker(t, tree, { rules: probeConf(), extraArgs: ['--max-fds-per-user', '3'] })
  const r = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'), { timeoutMs: 15_000 })
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`^stx-elevate: too many fds held for ${escapeRe(user.name)} \\(limit 3\\)\\n?$`))
  const rec = await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.uid === user.uid, 5000, 'client-rejected record')
  t.equal(rec.reason, `too many fds held for ${user.name} (limit 3)`)
  t.notOk(readAudit(b.audit).some(a => a.event === 'launch'), 'nothing was launched')
})

t.test('a connection that never sends a request is closed after the idle time, with a record', async t => {
  const b = await startBroker(t, tree, { rules: probeConf(), extraArgs: ['--idle-timeout', '1'] })
  const t0 = Date.now()
  const r = await runAs(user, [PYTHON3, fx.rawClient, b.socket, 'silent', fx.probe], { timeoutMs: 20_000 })
  const elapsed = Date.now() - t0
  t.equal(r.code, 0, r.stderr)
  const out = jsonLine(r.stdout, 'replies')
  t.equal(out.error, null)
  t.ok(out.eof, 'the broker closed the connection')
  t.notOk(out.timeout, 'well before the raw client\'s own 10 s')
  t.ok(elapsed < 8000, `closed after ${elapsed} ms`)
  t.match(out.replies, [{ v: 1, type: 'error', reason: /no request within 1 s/ }], 'the broker said why')
  const rec = await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.uid === user.uid, 5000, 'client-rejected record')
  t.equal(rec.pid, out.pid, 'the record names the silent client')
  t.match(rec.reason, /no request within 1 s/)
})

t.test('an exec loop of 100,000 refused calls: a bounded log with summaries, killed past the refusal limit', async t => {
  const b = await startBroker(t, tree, { rules: probeConf() })
  const flood = start(t, user, e.client(b.socket, fx.probe, 'flood-exec', '100000'))
  const r = await flood.wait(120_000)
  t.equal(r.code, 137, `killed (SIGKILL) before its 100,000 calls; stdout: ${r.stdout.slice(0, 300)}`)
  const session = await sessionOf(b.audit, user.uid, 'flood-exec')
  const kill = await waitForAudit(b.audit, a => a.event === 'kill' && a.session === session, 10_000, 'kill record of the flood')
  t.match(kill, { reason: 'more than 10000 refusals in this session' }, 'the kill record says why')
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.session === session, 10_000, 'exit record of the flood')
  t.match(exit, { signal: 'SIGKILL', status: 137 })

  const recs = readAudit(b.audit).filter(a => a.session === session)
  t.ok(recs.length < 100, `${recs.length} records for the session`)
  const single = recs.filter(a => a.event === 'refuse' && !isSummary(a))
  const summaries = recs.filter(isSummary)
  t.equal(single.length, 21, 'the first 20 refusals one by one, and the one past the limit')
  t.match(single.slice(0, 20), Array(20).fill({ call: { name: 'execve', args: { path: '/nonexistent/stx-flood' } }, errno: 'EPERM' }))
  t.match(single[20], { call: { name: 'execve' }, reason: /more than 10000 refusals in this session: the session is killed/ })
  t.ok(summaries.length >= 1, `${summaries.length} summary records`)
  for (const s of summaries) {
    t.match(s, { call: { name: 'execve' }, reason: `${s.suppressed} more refusals of execve suppressed` })
  }
  const counted = single.length + summaries.reduce((n, s) => n + (s.suppressed as number), 0)
  t.equal(counted, 10001, 'every refusal is a record or counted in a summary')
})

t.test('a setsockopt loop of 100,000 refused calls finishes with a bounded log; another user\'s grant meanwhile is logged', async t => {
  const b = await startBroker(t, tree, { rules: probeConf(), extraArgs: ['--refusal-limit', '1000000'] })
  const flood = start(t, user, e.client(b.socket, fx.probe, 'flood-hdrincl', '100000'))
  const session = await sessionOf(b.audit, user.uid, 'flood-hdrincl')
  await waitForAudit(b.audit, a => a.session === session && isSummary(a), 30_000, 'a first summary record')
  const o = await runAs(other, e.client(b.socket, fx.probe, 'raw4'), { timeoutMs: 30_000 })
  t.equal(o.code, 0, `${other.name} is served during the flood (stderr: ${o.stderr})`)
  const grant = await waitForAudit(b.audit, a => a.event === 'grant' && a.uid === other.uid, 5000, `grant record of ${other.name}`)

  const r = await flood.wait(180_000)
  t.equal(r.code, 0, r.stderr)
  const result = jsonLine(r.stdout, 'calls')
  t.match(result, { calls: 100000, ok: 0, errors: { EPERM: 100000 } }, 'every call refused with EPERM')

  const all = readAudit(b.audit)
  const exitAt = all.findIndex(a => a.event === 'exit' && a.session === session)
  t.ok(exitAt >= 0, 'the flood\'s exit record')
  t.ok(all.indexOf(all.find(a => a.event === 'grant' && a.uid === other.uid && a.time === grant.time)!) < exitAt,
    `${other.name}'s grant is logged before the flood ended`)
  const recs = all.filter(a => a.session === session)
  const single = recs.filter(a => a.event === 'refuse' && !isSummary(a))
  const summaries = recs.filter(isSummary)
  t.equal(single.length, 20, 'the first 20 refusals one by one')
  t.match(single, Array(20).fill({ call: { name: 'setsockopt', args: { option: 'IP_HDRINCL' } }, errno: 'EPERM' }))
  const suppressed = summaries.reduce((n, s) => n + (s.suppressed as number), 0)
  t.equal(single.length + suppressed, 100000, 'every refusal is a record or counted in a summary')
  const launch = recs.find(a => a.event === 'launch')!
  const seconds = (Date.parse(recs[recs.length - 1].time!) - Date.parse(launch.time!)) / 1000
  t.ok(summaries.length <= Math.ceil(seconds) + 2, `${summaries.length} summaries over ${seconds} s: at most one a second, and one at the end`)
  for (const s of summaries) t.match(s, { call: { name: 'setsockopt' }, reason: `${s.suppressed} more refusals of setsockopt suppressed` })
  t.ok(recs.length <= 20 + summaries.length + 3, `${recs.length} records for the session`)
})

t.test('round robin: while one program floods trapped calls from 8 threads, another user\'s single call is answered', async t => {
  const b = await startBroker(t, tree, { rules: probeConf(), extraArgs: ['--refusal-limit', '1000000000'] })
  const flood = start(t, user, e.client(b.socket, fx.probe, 'flood-hdrincl', '100000000', '8', '60'))
  const session = await sessionOf(b.audit, user.uid, 'flood-hdrincl')
  await waitForAudit(b.audit, a => a.session === session && isSummary(a), 30_000, 'the flood under way')
  for (let i = 0; i < 3; i++) {
    const o = await runAs(other, e.client(b.socket, fx.probe, 'raw4-timed'), { timeoutMs: 30_000 })
    t.equal(o.code, 0, `${other.name}'s call ${i + 1} (stderr: ${o.stderr})`)
    const res = jsonLine(o.stdout, 'raw4')
    t.type(res.raw4, 'number', 'granted')
    t.ok(res.us < 2_000_000, `answered in ${res.us} µs (bound 2 s)`)
  }
  t.notOk(readAudit(b.audit).some(a => a.event === 'exit' && a.session === session), 'the flood was running all along')
  flood.kill('SIGINT') // forwarded: the probe dies of it
  const r = await flood.wait(30_000)
  t.equal(r.code, 130, 'the flood ends on SIGINT')
})

const uffd = existsSync('/proc/sys/vm/unprivileged_userfaultfd')

t.test('a read of program memory that stalls is off the loop: others are served, the session is killed at the deadline', { skip: !uffd && 'no userfaultfd' }, async t => {
  // The program stalls the broker's read with userfaultfd (as a FUSE
  // mapping would): only root may unless this is 1.
  withSysctl(t, 'vm/unprivileged_userfaultfd', '1')
  const b = await startBroker(t, tree, { rules: hdrinclConf(), extraArgs: ['--read-timeout', '3'] })
  const stall = start(t, user, e.client(b.socket, fx.probe, 'stall-read'))
  const line = jsonLine(await stall.waitForLine(l => l.includes('"stalled"') || l.includes('"uffd"'), 15_000))
  t.notOk('uffd' in line, `userfaultfd works for the user: ${JSON.stringify(line)}`)
  t.type(line.raw_during_stall, 'number', 'the same program\'s other call is served while its read waits')
  t.ok(line.us < 2_000_000, `in ${line.us} µs`)
  const o = await runAs(other, e.client(b.socket, fx.probe, 'raw4-timed'), { timeoutMs: 15_000 })
  t.equal(o.code, 0, `${other.name} is served while the read is stuck (stderr: ${o.stderr})`)
  t.ok(jsonLine(o.stdout, 'raw4').us < 2_000_000)

  const r = await stall.wait(30_000)
  t.equal(r.code, 137, 'killed (SIGKILL) at the deadline')
  const session = await sessionOf(b.audit, user.uid, 'stall-read')
  const refuse = await waitForAudit(b.audit, a => a.event === 'refuse' && a.session === session, 5000, 'refuse record of the stalled call')
  t.match(refuse, { call: { name: 'setsockopt', args: { option: 'IP_HDRINCL' } }, errno: 'EFAULT', reason: /ran longer than 3000 ms: the session is killed/ })
  const kill = await waitForAudit(b.audit, a => a.event === 'kill' && a.session === session, 5000, 'kill record')
  t.match(kill, { reason: /ran longer than 3000 ms/ })
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.session === session, 5000, 'exit record')
  t.match(exit, { signal: 'SIGKILL' })

  const again = await runAs(user, e.client(b.socket, fx.probe, 'raw4'), { timeoutMs: 15_000 })
  t.equal(again.code, 0, `${user.name} is served again afterwards (stderr: ${again.stderr})`)
})

t.test('notifications in flight are capped per user: over the cap a call fails with EAGAIN and a record; others are served', { skip: !uffd && 'no userfaultfd' }, async t => {
  withSysctl(t, 'vm/unprivileged_userfaultfd', '1')
  const b = await startBroker(t, tree, { rules: hdrinclConf(), extraArgs: ['--read-timeout', '3', '--max-notifications-per-user', '1'] })
  const stall = start(t, user, e.client(b.socket, fx.probe, 'stall-read'))
  const line = jsonLine(await stall.waitForLine(l => l.includes('"stalled"') || l.includes('"uffd"'), 15_000))
  t.equal(line.raw_during_stall, 'EAGAIN', 'the stalled read holds the user\'s one place')
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === user.uid && a.errno === 'EAGAIN', 5000, 'refuse record for the cap')
  t.match(rec, { call: { name: 'socket' }, reason: `too many notifications in flight for ${user.name} (limit 1)` })
  const o = await runAs(other, e.client(b.socket, fx.probe, 'raw4'), { timeoutMs: 15_000 })
  t.equal(o.code, 0, `${other.name} has places of their own (stderr: ${o.stderr})`)
  t.type(jsonLine(o.stdout, 'raw4').raw4, 'number')
  t.equal((await stall.wait(30_000)).code, 137, 'the stalled session is killed at the deadline')
})
