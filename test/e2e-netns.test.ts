// End to end: the elevated program runs in the client's network namespace,
// and the broker creates its raw sockets there. A client in a fresh
// namespace (unshare --net) whose loopback is down cannot ping 127.0.0.1
// through the broker, although the broker's own namespace can; with the
// loopback up it can; and the program sees the client's namespace.
import t from 'tap'
import { readlinkSync } from 'node:fs'
import { waitForAudit } from './lib/audit.js'
import { pingRule, probeRule } from './lib/rules.js'
import { jsonLine, runAs, userEnv } from './lib/run.js'
import { runRoot, type Captured } from './lib/proc.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const broker = sharedBroker(t, tree, () => ({
  rules: {
    'ping.conf': pingRule({ path: fx.ping, users: [user.name] }),
    'probe.conf': probeRule({ path: fx.probe, users: [user.name] }),
  },
}))

/**
 * As root: a new network namespace (it vanishes with its last process), lo
 * brought up or left down, the namespace printed as "netns=net:[N]", then
 * argv exec'd as the user with the user's clean environment. Bounded.
 */
const SCRIPT = [
  'set -e',
  'if [ "$1" = up ]; then ip link set lo up; fi',
  'printf "netns=%s\\n" "$(readlink /proc/self/ns/net)"',
  'u=$2; g=$3; shift 3',
  'exec setpriv --reuid="$u" --regid="$g" --init-groups -- env -i "$@"',
].join('\n')

async function inNewNetns(lo: 'up' | 'down', argv: string[], timeoutMs = 20_000): Promise<Captured & { netns: string }> {
  const env = Object.entries(userEnv(user)).map(([k, v]) => `${k}=${v}`)
  const r = await runRoot(['unshare', '--net', '--', '/bin/sh', '-c', SCRIPT, 'sh', lo, String(user.uid), String(user.gid), ...env, ...argv], { timeoutMs })
  const m = /^netns=(net:\[\d+\])$/m.exec(r.stdout)
  if (!m) throw new Error(`the namespace shell did not get to exec (code ${r.code}): ${r.stdout}\n${r.stderr}`)
  return { ...r, netns: m[1] }
}

const ownNetns = readlinkSync('/proc/self/ns/net')
const PING4 = ['-4', '-c1', '-W2', '127.0.0.1']
const PING6 = ['-6', '-c1', '-W2', '::1']

// --- controls: what a fresh namespace does to a ping that needs no broker ----

t.test('control: in a fresh net namespace with lo up, the setcap /usr/bin/ping reaches 127.0.0.1 and ::1', async t => {
  for (const args of [PING4, PING6]) {
    const r = await inNewNetns('up', ['/usr/bin/ping', ...args])
    t.not(r.netns, ownNetns, 'a namespace of its own')
    t.equal(r.code, 0, `ping ${args.join(' ')}: ${r.stderr}`)
    t.match(r.stdout, /1 received/)
  }
})

t.test('control: in a fresh net namespace with lo down, the setcap /usr/bin/ping fails: network unreachable', async t => {
  const r = await inNewNetns('down', ['/usr/bin/ping', ...PING4])
  t.not(r.code, 0, 'non-zero status')
  t.match(r.stderr, /Network is unreachable/i, `says why: ${r.stderr}`)
  t.notMatch(r.stdout, /bytes from/)
})

// --- through the broker -------------------------------------------------------

t.test("ping through the broker from the broker's own namespace works (the comparison)", async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.ping, ...PING4))
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.match(r.stdout, /1 received/)
})

t.test('ping through the broker from a fresh namespace with lo down fails like the setcap ping there', async t => {
  const b = await broker()
  const r = await inNewNetns('down', e.client(b.socket, fx.ping, ...PING4))
  t.not(r.code, 0, 'non-zero status')
  t.notOk(r.code === 1 && /^stx-elevate: /m.test(r.stderr), `the program ran (not a client failure): ${r.stderr}`)
  t.match(r.stderr, /Network is unreachable/i, `ping says the network is unreachable: ${r.stderr}`)
  t.notMatch(r.stdout, /bytes from/, 'no reply: the packets did not go out in the broker\'s namespace')
})

t.test('ping through the broker from a fresh namespace with lo up works, with a grant record', async t => {
  const b = await broker()
  for (const [args, section] of [[PING4, 'socket.icmp'], [PING6, 'socket.icmp6']] as const) {
    const r = await inNewNetns('up', e.client(b.socket, fx.ping, ...args))
    t.equal(r.code, 0, `ping ${args.join(' ')}: ${r.stderr}`)
    t.match(r.stdout, /1 received/)
    const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.program === fx.ping &&
      JSON.stringify(a.argv?.slice(1)) === JSON.stringify(args), 5000, `launch record for ping ${args.join(' ')}`)
    await waitForAudit(b.audit, a => a.event === 'grant' && a.session === launch.session && a.rule?.section === section,
      5000, `grant record for [${section}]`)
  }
})

t.test("the elevated program runs in the client's network namespace", async t => {
  const b = await broker()
  const brokerNetns = readlinkSync(`/proc/${b.proc.pid}/ns/net`)
  const r = await inNewNetns('up', e.client(b.socket, fx.probe, 'netns'))
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  const { netns } = jsonLine<{ netns: string }>(r.stdout, 'netns')
  t.not(r.netns, brokerNetns, "control: the client's namespace is not the broker's")
  t.equal(netns, r.netns, "the program's net namespace is the client's")
})
