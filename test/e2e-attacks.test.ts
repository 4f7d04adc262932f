// End to end: issue 10's attacks that earlier files did not cover, each
// refused with its audit record (doc/ATTACKS.md maps every attack to its
// test): argc 0 and huge argv/environment, stdio fds of the wrong kind, an
// x32 call from the program.
import t, { type Test } from 'tap'
import { readAudit, waitForAudit } from './lib/audit.js'
import { probeRule } from './lib/rules.js'
import { rawClient as rawClientAs, type RawResult } from './lib/raw-client.js'
import { jsonLine, runAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

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
