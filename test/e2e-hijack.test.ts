// End to end: the user cannot take over an elevated program. Each attack has
// its control: the same attack against the same program started directly by
// the same user succeeds, so a refusal proves the defence, not the setting.
import t, { type Test } from 'tap'
import { readAudit, waitForAudit } from './lib/audit.js'
import { probeRule } from './lib/rules.js'
import { escapeRe, jsonLine, runAs, spawnAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const broker = sharedBroker(t, tree, () => ({
  rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) },
}))

type Attack = 'ptrace' | 'mem' | 'vmwrite'

interface Outcome {
  ready: { pid: number, addr: string, raw: number | string }
  /** the attacker's verdict: "ok" or "<step>:<ERRNO>" */
  verdict: string
  attackCode: number | null
  /** the probe's `secret` when it ended (42 unless an attack wrote 1337) */
  secret: number
  code: number | null
  signal: string | null
}

/** Start `stx-probe hold` (directly or through the broker), attack it from another process of the user, end it. */
async function holdAndAttack(t: Test, how: 'direct' | 'elevated', attack: Attack): Promise<Outcome> {
  const probe = [fx.probe, 'hold', '20']
  const argv = how === 'direct' ? probe : e.client((await broker()).socket, ...probe)
  const run = spawnAs(user, argv)
  t.teardown(() => run.kill('SIGKILL'))
  const ready = jsonLine(await run.waitForLine(l => l.includes('"ready"'), 15_000), 'ready')
  const args = attack === 'ptrace' ? [String(ready.pid)] : [String(ready.pid), ready.addr]
  const a = await runAs(user, [fx.attack, attack, ...args], { timeoutMs: 15_000 })
  const verdict = jsonLine(a.stdout, attack)[attack]
  run.closeStdin()
  const r = await run.wait(15_000)
  const secret = jsonLine(r.stdout, 'secret').secret
  return { ready, verdict, attackCode: a.code, secret, code: r.code, signal: r.signal }
}

const attacks: Array<{ attack: Attack, what: string, writes: boolean }> = [
  { attack: 'ptrace', what: 'ptrace attach', writes: false },
  { attack: 'mem', what: '/proc/PID/mem write', writes: true },
  { attack: 'vmwrite', what: 'process_vm_writev', writes: true },
]

for (const { attack, what, writes } of attacks) {
  t.test(`control: ${what} from another process of the user works against stx-probe hold run directly`, async t => {
    const o = await holdAndAttack(t, 'direct', attack)
    t.equal(o.ready.raw, 'EPERM', 'run directly, the probe holds no raw socket (not elevated)')
    t.equal(o.verdict, 'ok', `${what} succeeded`)
    t.equal(o.attackCode, 0)
    if (writes) t.equal(o.secret, 1337, 'the attack rewrote the probe\'s memory')
    t.equal(o.code, 0, 'the probe went on and ended normally')
  })

  t.test(`${what} from another process of the user fails against stx-elevate stx-probe hold`, async t => {
    const o = await holdAndAttack(t, 'elevated', attack)
    t.type(o.ready.raw, 'number', 'the probe holds a brokered raw socket (it is elevated)')
    t.not(o.verdict, 'ok', `${what} refused: ${o.verdict}`)
    t.match(o.verdict, /:E[A-Z]+$/, 'with an errno')
    t.equal(o.attackCode, 1)
    t.equal(o.secret, 42, 'the probe\'s memory is untouched')
    t.equal(o.code, 0, 'the elevated probe ended normally and the client exits 0')
  })
}

t.test('control: LD_PRELOAD reaches stx-probe run directly', async t => {
  const r = await runAs(user, [fx.probe, 'exit', '0'], { env: { LD_PRELOAD: fx.preload } })
  t.equal(r.code, 0)
  t.match(r.stderr, new RegExp(`^PRELOADED exe=${escapeRe(fx.probe)}$`, 'm'))
})

t.test('LD_PRELOAD in the client environment does not reach the elevated program', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'exit', '0'), { env: { LD_PRELOAD: fx.preload } })
  t.equal(r.code, 0, `the program ran (stderr: ${r.stderr})`)
  t.match(r.stderr, /^PRELOADED exe=\S*node$/m, 'the client itself loaded it: the variable was set')
  t.notMatch(r.stderr, new RegExp(`PRELOADED exe=${escapeRe(fx.probe)}`), 'the elevated probe did not load it')
})

t.test('control: int $0x80 (i386 socket) works for stx-probe run directly', async t => {
  const r = await runAs(user, [fx.probe, 'int80'])
  t.equal(r.code, 0, `stdout: ${r.stdout} stderr: ${r.stderr}`)
  t.type(jsonLine(r.stdout, 'int80').int80, 'number', 'the i386 call returned a socket')
})

t.test('int $0x80 under stx-elevate kills the program with SIGSYS: the client exits 159', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'int80'))
  t.equal(r.code, 159, `128+SIGSYS (stderr: ${r.stderr})`)
  t.notMatch(r.stdout, /"int80"/, 'the call never returned')
  const exit = await waitForAudit(b.audit, a => a.event === 'exit' && a.uid === user.uid && a.program === fx.probe && a.signal === 'SIGSYS', 5000, 'exit record with SIGSYS')
  t.match(exit, { code: null, status: 159 })
  t.notOk(readAudit(b.audit).some(a => a.event === 'grant' && a.call?.name === 'socket' && a.session === exit.session), 'no socket was granted')
})
