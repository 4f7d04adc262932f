// End to end: Debian's ping, stripped of its file capability, works for an
// unprivileged user through the broker, and only through the broker.
import t from 'tap'
import { join } from 'node:path'
import { waitForAudit } from './lib/audit.js'
import { getcap } from './lib/fixtures.js'
import { pingRule } from './lib/rules.js'
import { escapeRe, runAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'
import { readSysctl } from './lib/sysctl.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const broker = sharedBroker(t, tree, () => ({
  rules: { 'ping.conf': pingRule({ path: fx.ping, users: [user.name] }) },
}))

const TARGETS = [
  { fam: '-4', dst: '127.0.0.1', section: 'socket.icmp' },
  { fam: '-6', dst: '::1', section: 'socket.icmp6' },
]

t.test('the built project is installed completely', async t => {
  t.same(tree.missing, [], 'nothing the install needs is missing from the checkout')
})

t.test('control: ICMP datagram sockets are closed to the user (ping_group_range 1 0)', async t => {
  t.equal(readSysctl('net/ipv4/ping_group_range'), '1 0')
})

t.test('control: the copy of ping under test has no file capability', async t => {
  t.equal(await getcap(fx.ping), '', `getcap ${fx.ping} prints nothing`)
})

t.test('control: loopback answers ping (Debian ping with its capability)', async t => {
  for (const { fam, dst } of TARGETS) {
    const r = await runAs(user, ['/usr/bin/ping', fam, '-c1', '-W2', dst])
    t.equal(r.code, 0, `/usr/bin/ping ${fam} ${dst} as ${user.name}: ${r.stderr}`)
    t.match(r.stdout, /1 received/)
  }
})

t.test('control: the capability-less ping run directly by the user fails', async t => {
  for (const { fam, dst } of TARGETS) {
    const r = await runAs(user, [fx.ping, fam, '-c1', '-W2', dst])
    t.equal(r.code, 2, `${fam} ${dst} fails with ping's status 2`)
    t.match(r.stderr, /Operation not permitted/, 'for lack of privilege')
    t.notMatch(r.stdout, /bytes from/)
  }
})

t.test('without a running broker the client exits 1 and says it cannot reach it', async t => {
  const sock = tree.path('no-broker-here.sock')
  const r = await runAs(user, e.client(sock, fx.ping, '-c1', '-W2', '127.0.0.1'))
  t.equal(r.code, 1, 'exit status 1')
  t.match(r.stderr, new RegExp(`^stx-elevate: cannot reach the broker at ${escapeRe(sock)}: .+: the stx-elevated broker is not running \\(start it with: systemctl start stx-elevated\\)`))
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.notMatch(r.stdout, /bytes from/, 'ping did not run')
})

for (const { fam, dst, section } of TARGETS) {
  t.test(`ping ${fam} ${dst} as ${user.name} works through the broker, with launch, grant and exit records`, async t => {
    const b = await broker()
    const args = [fam, '-c3', '-i0.2', '-W2', dst]
    const r = await runAs(user, e.client(b.socket, fx.ping, ...args))
    t.equal(r.code, 0, `exit status 0; stderr: ${r.stderr}`)
    t.match(r.stdout, /3 packets transmitted, 3 received/)
    t.notMatch(r.stderr, /Operation not permitted/)

    const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.program === fx.ping &&
      JSON.stringify(a.argv?.slice(1)) === JSON.stringify(args), 5000, 'launch record')
    t.equal(launch.uid, user.uid)
    t.equal(launch.user, user.name)
    t.type(launch.session, 'number', 'a session number')
    t.type(launch.pid, 'number')
    t.match(launch.rule, { file: join(b.rulesDir, 'ping.conf'), section: 'program' }, 'launch rule names the file and [program]')
    t.type(launch.client?.pid, 'number')
    t.match(launch.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'ISO 8601 time')

    const grant = await waitForAudit(b.audit, a => a.event === 'grant' && a.session === launch.session &&
      a.rule?.section === section, 5000, `grant record for [${section}]`)
    t.equal(grant.uid, user.uid)
    t.equal(grant.user, user.name)
    t.equal(grant.program, fx.ping)
    t.equal(grant.pid, launch.pid, 'the call was made by the program (single-threaded ping)')
    t.same(grant.rule, { file: join(b.rulesDir, 'ping.conf'), section }, 'rule {file, section}')
    t.equal(grant.call?.name, 'socket')
    t.ok(grant.call?.args !== undefined && grant.call?.args !== null, 'call has decoded args')
    t.type(grant.result, 'number', 'result: the fd number in the program')

    const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.session === launch.session, 5000, 'exit record')
    t.match(exit, { uid: user.uid, user: user.name, pid: launch.pid, program: fx.ping, code: 0, signal: null, status: 0 })
  })
}
