// End to end: every grant is an audit record, also under load (issue 7).
// Many programs at once make trapped socket() calls while the broker takes
// signals: its programs' SIGCHLDs as they exit, and a stream of SIGCHLDs
// sent on purpose (a signal that lands while the broker waits in
// SECCOMP_IOCTL_NOTIF_ADDFD|SEND makes the kernel answer the program's call
// with 0 and no fd: the bench saw 1-2% of 20,000 calls go that way, each
// without a record). Each program checks that every fd it got is the raw
// ICMP socket it asked for; the audit log must hold one grant record per
// socket, program by program.
import t from 'tap'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker } from './lib/broker.js'
import { probeRule } from './lib/rules.js'
import { jsonLine, runAs, spawnAs, type RunningAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const PROGRAMS = 48
/** Calls of program i: 40 to 160, so that some exit (a SIGCHLD each) while others still call. */
const callsOf = (i: number) => 40 * (1 + (i % 4))

interface SocketsResult {
  pid: number
  calls: number
  sockets: number
  wrong: number
  first_wrong: number | null
  ok: number
  errors: Record<string, number>
}

t.test('control: without the broker the probe counts no socket (its count can fail)', async t => {
  const r = await runAs(user, [fx.probe, 'sockets', '5'], { input: 'x' })
  const o = jsonLine<SocketsResult>(r.stdout, 'calls')
  t.equal(r.code, 1, 'exit 1: not every call got a socket')
  t.match(o, { calls: 5, sockets: 0, wrong: 0, errors: { EPERM: 5 } })
})

t.test(`${PROGRAMS} programs at once, signals at the broker: one grant record per socket received`, async t => {
  const b = await startBroker(t, tree, {
    rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) },
    // room for every program at once: the test is about records, not quotas
    extraArgs: ['--max-sessions-per-user', String(PROGRAMS + 8), '--max-fds-per-user', String(PROGRAMS * 16),
      '--max-notifications-per-user', String(PROGRAMS * 4)],
  })
  const runs: RunningAs[] = []
  for (let i = 0; i < PROGRAMS; i++) {
    const run = spawnAs(user, e.client(b.socket, fx.probe, 'sockets', String(callsOf(i)), '120'))
    t.teardown(() => run.kill('SIGKILL'))
    runs.push(run)
  }
  // every program started and waits for its start byte
  for (const run of runs) await run.waitForLine(l => l.includes('"ready"'), 90_000)

  // SIGCHLD: the broker has a handler (it spawns launchers), so each one
  // interrupts whatever the loop thread is waiting in, and costs nothing else
  const brokerPid = b.proc.pid!
  const storm = setInterval(() => {
    for (let k = 0; k < 4; k++) {
      try { process.kill(brokerPid, 'SIGCHLD') } catch { /* gone: the test fails below */ }
    }
  }, 1)
  t.teardown(() => clearInterval(storm))
  for (const run of runs) run.write('x')
  const results = []
  for (const run of runs) results.push(await run.wait(120_000))
  clearInterval(storm)

  const outs = results.map(r => jsonLine<SocketsResult>(r.stdout, 'calls'))
  const expected = outs.reduce((s, o) => s + o.calls, 0)
  const sockets = outs.reduce((s, o) => s + o.sockets, 0)
  const wrong = outs.filter(o => o.wrong > 0)
  t.equal(wrong.length, 0, `no call answered with an fd that is not the socket asked for: ${JSON.stringify(wrong.slice(0, 5))}`)
  t.equal(sockets, expected, `every call got its socket (${sockets} of ${expected}; errors ${JSON.stringify(outs.filter(o => o.sockets !== o.calls).slice(0, 5))})`)
  t.equal(results.filter(r => r.code !== 0).length, 0, 'every program exits 0')

  // the exit records come after the grants of their session
  await waitForAudit(b.audit, () => readAudit(b.audit).filter(a => a.event === 'exit').length >= PROGRAMS, 30_000, `${PROGRAMS} exit records`)
  const grants = readAudit(b.audit).filter(a => a.event === 'grant')
  t.equal(grants.length, sockets, `one grant record per socket received (${grants.length} records, ${sockets} sockets)`)
  const byPid = new Map<number, AuditRecord[]>()
  for (const g of grants) byPid.set(g.pid!, [...(byPid.get(g.pid!) ?? []), g])
  const mismatched = outs.filter(o => (byPid.get(o.pid)?.length ?? 0) !== o.sockets)
    .map(o => ({ pid: o.pid, sockets: o.sockets, records: byPid.get(o.pid)?.length ?? 0 }))
  t.same(mismatched, [], 'program by program, as many grant records as sockets')
  t.equal(grants.filter(g => g.call?.name === 'socket' && g.rule?.section === 'socket.icmp' && typeof g.result === 'number' && g.result >= 0).length,
    grants.length, 'each record: socket() by [socket.icmp], the fd number in the program as result')
})
