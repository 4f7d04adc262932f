// End to end: stx-run, the client in C, and a shim (a link named ping ->
// stx-run, with a state directory whose shims/ping leads to the real
// ping), as the unprivileged user through a real broker with the shipped
// ping rule. The protocol cases themselves are in protocol-clients.test.ts.
import t from 'tap'
import { chmodSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { readAudit, waitForAudit } from './lib/audit.js'
import { probeRule } from './lib/rules.js'
import { escapeRe, runAs, spawnAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, other, fx, tree } = e
const PING = '/usr/bin/ping'
// not the machine's PATH: a shim in /usr/local/bin would stand for ping there
const PATH = '/usr/bin:/bin'

const broker = sharedBroker(t, tree, () => ({
  rules: {
    'ping.conf': readFileSync(join(tree.shippedRules, 'ping.conf'), 'utf8'),
    'probe.conf': probeRule({ path: fx.probe, users: [user.name] }),
  },
}))

// The shim as `stx-elevate strip` lays it out: BIN/ping -> stx-run, STATE/shims/ping -> the program.
const shimBin = tree.path('shim-bin')
const state = tree.path('state')
mkdirSync(join(state, 'shims'), { recursive: true })
mkdirSync(shimBin)
for (const d of [shimBin, state, join(state, 'shims')]) chmodSync(d, 0o755)
symlinkSync(tree.runner, join(shimBin, 'ping'))
symlinkSync(PING, join(state, 'shims', 'ping'))

const runner = (socket: string, ...argv: string[]) => [tree.runner, '--socket', socket, ...argv]

t.test('control: stx-run is installed root-owned and executable by everyone', async t => {
  t.same(tree.missing, [], 'nothing the install needs is missing')
  const st = statSync(tree.runner)
  t.equal(st.uid, 0)
  t.equal(st.mode & 0o7777, 0o755)
})

t.test('control: the user\'s own ping cannot open a raw socket under no_new_privs (what the broker grants)', async t => {
  const r = await runAs(user, ['setpriv', '--no-new-privs', PING, '-c1', '-W2', '127.0.0.1'], { env: { PATH } })
  t.equal(r.code, 2, `ping fails: ${r.stderr}`)
  t.match(r.stderr, /Operation not permitted/)
})

t.test('stx-run ping -c1 127.0.0.1 as the user: ping answers, the broker granted its raw socket', async t => {
  const b = await broker()
  const r = await runAs(user, runner(b.socket, 'ping', '-c1', '-W2', '127.0.0.1'), { env: { PATH } })
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.match(r.stdout, /1 packets transmitted, 1 received/)
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.uid === user.uid && a.program === PING, 5000, 'launch record')
  t.same(launch.argv, ['ping', '-c1', '-W2', '127.0.0.1'])
  t.match(launch.rule, { file: join(b.rulesDir, 'ping.conf'), section: 'program' })
  await waitForAudit(b.audit, a => a.event === 'grant' && a.uid === user.uid && a.program === PING && a.call?.name === 'socket', 5000, 'grant record for the raw socket')
})

for (const [fam, dst] of [['-4', '127.0.0.1'], ['-6', '::1']]) {
  t.test(`the bare "ping ${fam} -c1 ${dst}" through a shim on PATH works for the user`, async t => {
    const b = await broker()
    const r = await runAs(user, ['ping', fam, '-c1', '-W2', dst], {
      env: { PATH: `${shimBin}:${PATH}`, STX_ELEVATE_SOCKET: b.socket, STX_ELEVATE_STATE_DIR: state },
    })
    t.equal(r.code, 0, `stderr: ${r.stderr}`)
    t.match(r.stdout, /1 packets transmitted, 1 received/)
    const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.uid === user.uid && a.program === PING &&
      a.argv?.[1] === fam, 5000, 'launch record')
    t.same(launch.argv, ['ping', fam, '-c1', '-W2', dst], 'argv[0] is the name the user typed')
  })
}

t.test('the shim without a running broker: one line saying so and how to start it, exit 1', async t => {
  const sock = tree.path('no-broker-here.sock')
  const r = await runAs(user, ['ping', '-c1', '127.0.0.1'], {
    env: { PATH: `${shimBin}:${PATH}`, STX_ELEVATE_SOCKET: sock, STX_ELEVATE_STATE_DIR: state },
  })
  t.equal(r.code, 1)
  t.equal(r.stderr, `stx-elevate: cannot reach the broker at ${sock}: No such file or directory: the stx-elevated broker is not running (start it with: systemctl start stx-elevated)\n`)
  t.equal(r.stdout, '')
})

t.test('a user no rule names is refused through stx-run: one line, exit 1, a refuse record', async t => {
  const b = await broker()
  const r = await runAs(other, runner(b.socket, fx.probe, 'exit', '0'), { env: { PATH } })
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`^stx-elevate: no rule lets ${other.name} run ${escapeRe(fx.probe)}\\n$`))
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === other.uid && a.call?.name === 'run', 5000, 'refuse record')
  t.match(rec.call?.args, { path: fx.probe })
  t.notOk(readAudit(b.audit).some(a => a.event === 'launch' && a.uid === other.uid), 'nothing launched for it')
})

t.test('exit statuses pass through stx-run: 7, and 143 for SIGTERM', async t => {
  const b = await broker()
  const r7 = await runAs(user, runner(b.socket, fx.probe, 'exit', '7'), { env: { PATH } })
  t.equal(r7.code, 7, r7.stderr)
  const rt = await runAs(user, runner(b.socket, fx.probe, 'kill', 'SIGTERM'), { env: { PATH } })
  t.equal(rt.code, 143, rt.stderr)
  t.equal(rt.signal, null, 'stx-run exits, it is not killed')
})

t.test('SIGINT to the shimmed ping stops it through the broker: its statistics, exit 0', async t => {
  const b = await broker()
  const run = spawnAs(user, ['ping', '-i0.2', '-W2', '127.0.0.1'], {
    env: { PATH: `${shimBin}:${PATH}`, STX_ELEVATE_SOCKET: b.socket, STX_ELEVATE_STATE_DIR: state },
  })
  t.teardown(() => { try { run.kill('SIGKILL') } catch { /* gone */ } })
  await run.waitForLine(/bytes from 127\.0\.0\.1/, 15_000)
  run.kill('SIGINT')
  const r = await run.wait(15_000)
  t.equal(r.code, 0, `ping's status; stderr: ${r.stderr}`)
  t.equal(r.signal, null)
  t.match(r.stdout, /--- 127\.0\.0\.1 ping statistics ---/)
  await waitForAudit(b.audit, a => a.event === 'exit' && a.program === PING && a.uid === user.uid && a.status === 0, 5000, 'exit record with status 0')
})
