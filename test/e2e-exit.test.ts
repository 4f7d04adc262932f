// End to end: the client exits with the program's status (128+N when the
// program is killed by signal N) and forwards SIGINT to it.
import t from 'tap'
import { waitForAudit } from './lib/audit.js'
import { pingRule, probeRule } from './lib/rules.js'
import { runAs, spawnAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const broker = sharedBroker(t, tree, () => ({
  rules: {
    'ping.conf': pingRule({ path: fx.ping, users: [user.name] }),
    'probe.conf': probeRule({ path: fx.probe, users: [user.name] }),
  },
}))

t.test('control: the probe run directly exits 7 and dies of SIGTERM', async t => {
  const r7 = await runAs(user, [fx.probe, 'exit', '7'])
  t.equal(r7.code, 7)
  const rt = await runAs(user, [fx.probe, 'kill', 'SIGTERM'])
  t.equal(rt.signal, 'SIGTERM')
  t.equal(rt.code, null)
})

t.test('control: ping -p zz fails with status 2 for its bad pattern (Debian ping with its capability)', async t => {
  const r = await runAs(user, ['/usr/bin/ping', '-c1', '-p', 'zz', '127.0.0.1'])
  t.equal(r.code, 2)
  t.match(r.stderr, /patterns must be specified as hex digits/)
})

t.test('a program exit status passes through: stx-probe exit 7 gives 7', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'exit', '7'))
  t.equal(r.code, 7, `stderr: ${r.stderr}`)
  t.equal(r.signal, null)
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.program === fx.probe && a.code === 7, 5000, 'exit record with code 7')
  t.match(exit, { uid: user.uid, user: user.name, signal: null, status: 7 })
})

t.test('the client finds the broker through $STX_ELEVATE_SOCKET without --socket', async t => {
  const b = await broker()
  const r = await runAs(user, [tree.client, fx.probe, 'exit', '5'], { env: { STX_ELEVATE_SOCKET: b.socket } })
  t.equal(r.code, 5, `stderr: ${r.stderr}`)
})

t.test('a failing ping status passes through: ping -c1 -p zz gives 2', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.ping, '-c1', '-p', 'zz', '127.0.0.1'))
  t.equal(r.code, 2)
  t.match(r.stderr, /patterns must be specified as hex digits/, "ping's own message, not a broker failure")
})

t.test('a program killed by SIGTERM gives 143 (128+15)', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'kill', 'SIGTERM'))
  t.equal(r.code, 143, `stderr: ${r.stderr}`)
  t.equal(r.signal, null, 'the client exits, it is not killed')
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.program === fx.probe && a.signal === 'SIGTERM', 5000, 'exit record with signal SIGTERM')
  t.match(exit, { uid: user.uid, user: user.name, code: null, status: 143 })
})

t.test('SIGINT to the client stops ping, which prints its statistics; the client exits 0', async t => {
  const b = await broker()
  const run = spawnAs(user, e.client(b.socket, fx.ping, '-i0.2', '-W2', '127.0.0.1'))
  t.teardown(() => { try { run.kill('SIGKILL') } catch { /* gone */ } })
  await run.waitForLine(/bytes from 127\.0\.0\.1/, 15_000)
  run.kill('SIGINT')
  const r = await run.wait(15_000)
  t.equal(r.code, 0, `the client exits with ping's status 0; stderr: ${r.stderr}`)
  t.equal(r.signal, null)
  t.match(r.stdout, /--- 127\.0\.0\.1 ping statistics ---/, 'ping printed its summary')
  t.match(r.stdout, /packets transmitted, \d+ received, 0% packet loss/)
  await waitForAudit(b.audit, a => a.event === 'exit' && a.program === fx.ping && a.status === 0 && a.uid === user.uid, 5000, 'exit record of ping with status 0')
})
