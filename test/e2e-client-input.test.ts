// End to end: bad client input. Every malformed message closes that client
// only, with an `error` message and a `client-rejected` audit record; the
// broker keeps serving (doc/CONTRACTS.md, "Wire protocol").
import t from 'tap'
import { readAudit, waitForAudit } from './lib/audit.js'
import { probeRule } from './lib/rules.js'
import { runAs } from './lib/run.js'
import { rawClient as rawClientAs } from './lib/raw-client.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const broker = sharedBroker(t, tree, () => ({
  rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) },
}))

/** raw-client.py as the user against the broker. */
const rawClient = (socket: string, kase: string) => rawClientAs(user, fx, socket, kase)

t.test('the raw client speaks the protocol: a valid run is started and exits 0', async t => {
  const b = await broker()
  const r = await rawClient(b.socket, 'valid')
  t.equal(r.error, null)
  t.equal(r.fds, 4)
  t.match(r.replies[0], { v: 1, type: 'started', pid: Number }, 'started')
  t.same(r.replies[r.replies.length - 1], { v: 1, type: 'exit', code: 0, signal: null }, 'exit 0')
  t.ok(r.eof, 'then the broker closes')
})

const bad: Array<{ kase: string, what: string }> = [
  { kase: 'garbage', what: 'garbage bytes' },
  { kase: 'truncated', what: 'truncated JSON' },
  { kase: 'oversized', what: 'a datagram over 131072 bytes' },
  { kase: 'run-0fds', what: 'a run with no fds' },
  { kase: 'run-5fds', what: 'a run with 5 fds' },
  { kase: 'run-uid', what: 'a run claiming "uid":0' },
  { kase: 'signal-first', what: 'a signal before run' },
  { kase: 'unknown-type', what: 'an unknown message type' },
]

for (const { kase, what } of bad) {
  t.test(`${what}: that client is closed with an error and a client-rejected record; the next client is served`, async t => {
    const b = await broker()
    const r = await rawClient(b.socket, kase)
    t.equal(r.error, null, 'the raw client sent its message')
    t.ok(r.sent > 0)
    if (kase === 'oversized') t.ok(r.sent > 131072, `sent ${r.sent} bytes`)
    t.equal(r.replies.length, 1, `one reply: ${JSON.stringify(r.replies)}`)
    t.match(r.replies[0], { v: 1, type: 'error', reason: String }, 'an error message')
    t.ok(r.eof, 'then the broker closes the connection')
    t.notOk(r.timeout, 'promptly')

    const rec = await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.pid === r.pid, 5000, `client-rejected record for pid ${r.pid}`)
    t.equal(rec.uid, user.uid, 'uid from the kernel')
    t.equal(rec.user, user.name)
    t.type(rec.reason, 'string')
    t.notOk(readAudit(b.audit).some(a => a.event === 'launch' && a.client?.pid === r.pid), 'nothing was launched for it')
    t.ok(b.alive(), 'the broker is still running')

    const ok = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'))
    t.equal(ok.code, 0, `a valid client right after is served (stderr: ${ok.stderr})`)
  })
}

t.test('an empty datagram is a malformed message (an error and a client-rejected record), not the client closing', async t => {
  const b = await broker()
  const r = await rawClient(b.socket, 'empty')
  t.equal(r.error, null, 'the raw client sent it')
  t.equal(r.sent, 0)
  t.same(r.replies, [{ v: 1, type: 'error', reason: 'empty message' }], 'answered: empty message')
  t.ok(r.eof, 'then the broker closes the connection')
  const rec = await waitForAudit(b.audit, a => a.event === 'client-rejected' && a.pid === r.pid, 5000, `client-rejected record for pid ${r.pid}`)
  t.equal(rec.reason, 'empty message')
  const next = await rawClient(b.socket, 'list')
  t.match(next.replies[0], { type: 'programs' }, 'the next client is served')
})

t.test('after all that, the broker is still up and serving', async t => {
  const b = await broker()
  t.ok(b.alive())
  const r = await rawClient(b.socket, 'valid')
  t.match(r.replies[0], { type: 'started' })
})
