// End to end: every program the broker starts has a session keyring of its
// own. A broker in a session keyring (systemd gives each service a private
// one, KeyringMode=private; a broker started from a login has the login's)
// would otherwise hand that one keyring (@s) to every program it starts,
// whatever their users: user A's program could leave a key there that user
// B's program reads.
import t from 'tap'
import { probeRule } from './lib/rules.js'
import { jsonLine, runAs } from './lib/run.js'
import { runRoot } from './lib/proc.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, other, fx, tree } = e

// keyutils' keyctl: the broker runs in an anonymous session keyring of its own
const broker = sharedBroker(t, tree, () => ({
  rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name, other.name] }) },
  prefix: ['keyctl', 'session', '-'],
}))

const keyringOf = async (who: typeof user, b: { socket: string }) => {
  const r = await runAs(who, e.client(b.socket, fx.probe, 'keyring'))
  t.equal(r.code, 0, r.stderr)
  return jsonLine<{ keyring: number | string }>(r.stdout, 'keyring').keyring
}

t.test('control: a program started under keyctl session - shares the session keyring of its parent', async t => {
  const r = await runRoot(['keyctl', 'session', '-', 'sh', '-c', `keyctl show @s | sed -n 2p; ${fx.probe} keyring`], { timeoutMs: 10_000 })
  t.equal(r.code, 0, r.stderr)
  const parent = Number(/^\s*(\d+)/.exec(r.stdout)?.[1])
  t.ok(parent > 0, `the parent's session keyring: ${r.stdout}`)
  t.equal(jsonLine<{ keyring: number }>(r.stdout, 'keyring').keyring, parent, 'inherited, as the launcher would inherit the broker\'s')
})

t.test('each program gets a session keyring of its own: none shared between users, or between runs', async t => {
  const b = await broker()
  const a1 = await keyringOf(user, b)
  const b1 = await keyringOf(other, b)
  const a2 = await keyringOf(user, b)
  for (const k of [a1, b1, a2]) t.type(k, 'number', `a keyring, not an error: ${k}`)
  t.not(a1, b1, `${user.name}'s and ${other.name}'s programs are in different keyrings`)
  t.not(a1, a2, 'and so are two runs of one user')
})
