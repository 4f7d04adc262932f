// End to end: every rule shipped in elevation.d/, each with the real program
// it names (Debian's own /usr/bin/X, file capability and all), run by the
// unprivileged user through a broker started on that one shipped file,
// against loopback or a veth pair in namespaces the test makes. Each has its
// control: the same program, run by the user without the broker under
// no_new_privs (as the broker runs it, so its file capability is not
// gained), fails for lack of privilege; ping_group_range is "1 0" (the
// harness), so no unprivileged ICMP socket stands in. Each run checks the
// grant records name the calls the rule file's comment says the program
// makes. A shipped file without a case here fails the first test.
import t, { type Test } from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { readAudit, waitForAudit, type AuditRecord } from './lib/audit.js'
import { startBroker, type Broker } from './lib/broker.js'
import { getcap } from './lib/fixtures.js'
import { mustRunRoot, runRoot } from './lib/proc.js'
import { escapeRe, runAs, spawnAs, type RunResult } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'
import { readSysctl } from './lib/sysctl.js'

const e = await setupE2E(t)
const { user, tree } = e

// --- the test's network for arping: A and B joined by a veth pair -------------------

const ip = (...args: string[]) => mustRunRoot(['ip', ...args], { timeoutMs: 15_000 })

async function netns(role: string): Promise<{ name: string, path: string }> {
  const name = `stx8-${role}-${process.pid}`
  await runRoot(['ip', 'netns', 'del', name], { timeoutMs: 15_000 })  // a leftover, if any
  await ip('netns', 'add', name)
  t.teardown(() => runRoot(['ip', 'netns', 'del', name], { timeoutMs: 15_000 }))
  return { name, path: `/run/netns/${name}` }
}
// TEST-NET-1 (RFC 5737), only ever inside the test's namespaces
const A_ADDR = '192.0.2.1'
const B_ADDR = '192.0.2.2'
const A = await netns('a')
const B = await netns('b')
await ip('-n', A.name, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0', 'netns', B.name)
await ip('-n', A.name, 'addr', 'add', `${A_ADDR}/24`, 'dev', 'a0')
await ip('-n', B.name, 'addr', 'add', `${B_ADDR}/24`, 'dev', 'b0')
for (const [ns, dev] of [[A, 'lo'], [A, 'a0'], [B, 'lo'], [B, 'b0']] as const) await ip('-n', ns.name, 'link', 'set', dev, 'up')
/** Network namespace only (nsenter --net): the mount namespace stays the host's, so the client is no sandboxed client. */
const IN_A = ['nsenter', `--net=${A.path}`, '--']

// --- helpers ---------------------------------------------------------------------------

/** One broker per shipped file, started on that file alone (a copy of the installed tree's). */
const brokers = new Map<string, () => Promise<Broker>>()
function brokerFor(file: string): Promise<Broker> {
  let get = brokers.get(file)
  if (!get) {
    get = sharedBroker(t, tree, () => ({ rules: { [file]: readFileSync(join(tree.shippedRules, file), 'utf8') } }))
    brokers.set(file, get)
  }
  return get()
}

const out = (r: RunResult) => `${r.stdout}${r.stderr}`

/** The exit status, with the output shown when it is not the one expected. */
function exited(t: Test, r: RunResult, code: number) {
  t.equal(r.code, code, `exit status ${code}`, { stdout: r.stdout, stderr: r.stderr })
}

/** The user runs `program args` without the broker, under no_new_privs, as the broker would run it. */
function withoutBroker(program: string, args: string[], via?: string[], input?: string): Promise<RunResult> {
  // A second setpriv, run as the user, sets no_new_privs. Root's setpriv keeps
  // its permitted capabilities across its change of uid (PR_SET_KEEPCAPS),
  // and no_new_privs only keeps an exec from gaining what the process did not
  // have: with --no-new-privs on root's setpriv, the program still gets its
  // file capability (measured here).
  return runAs(user, ['setpriv', '--no-new-privs', '--', program, ...args], { via, input })
}

/** The client runs `name args` (a name as a user types it, resolved on PATH). */
function throughBroker(b: Broker, name: string, args: string[], via?: string[], input?: string): Promise<RunResult> {
  return runAs(user, e.client(b.socket, name, ...args), { via, input })
}

/** The records of the last session of `program` whose argv (after argv[0]) is `args`, once it has exited. */
async function sessionOf(b: Broker, program: string, args: string[]): Promise<AuditRecord[]> {
  const same = (a: AuditRecord) => a.event === 'launch' && a.program === program && JSON.stringify(a.argv?.slice(1)) === JSON.stringify(args)
  await waitForAudit(b.audit, same, 5000, `launch record of ${program} ${args.join(' ')}`)
  const launch = readAudit(b.audit).filter(same).pop()!
  await waitForAudit(b.audit, a => a.event === 'exit' && a.session === launch.session, 10_000, `exit record of session ${launch.session}`)
  return readAudit(b.audit).filter(a => a.session === launch.session)
}

/** A socket call as grant records decode it (a protocol of 0 is left out). */
interface Call { section: string, domain: string, type: string, protocol?: string }

/** Exactly these grants (in any order), each naming its shipped file's section and the socket call. */
function grants(t: Test, b: Broker, file: string, records: AuditRecord[], expected: Call[]) {
  const got = records.filter(a => a.event === 'grant')
  const key = (section?: string, args?: unknown) => JSON.stringify([section, args])
  t.same(got.map(a => key(a.rule?.section, a.call?.args)).sort(),
    expected.map(c => key(c.section, { domain: c.domain, type: c.type, protocol: c.protocol })).sort(),
    `grant records: ${expected.map(c => `[${c.section}]`).join(' ')}`)
  for (const a of got) {
    t.match(a, { uid: user.uid, user: user.name, rule: { file: join(b.rulesDir, file) }, call: { name: 'socket' } })
    t.type(a.result, 'number', 'the fd the program got')
  }
}

const ICMP: Call = { section: 'socket.icmp', domain: 'inet', type: 'raw', protocol: 'icmp' }
const ICMP6: Call = { section: 'socket.icmp6', domain: 'inet6', type: 'raw', protocol: 'ipv6-icmp' }

/** The privilege Debian gave the binary: its file capabilities, or "setuid" (a fallback where xattrs are missing), or "". */
async function privilegeOf(path: string): Promise<string> {
  const cap = (await getcap(path)).replace(/^\S+\s*/, '')
  return cap || ((statSync(path).mode & 0o4000) ? 'setuid' : '')
}

// --- the shipped files and their cases -------------------------------------------------

interface Case {
  /** the rule's [program] path */
  program: string
  /** the Debian package that ships it (.ci/run installs it) */
  pkg: string
  test(t: Test, file: string): Promise<void>
}

const CASES: Record<string, Case> = {
  'ping.conf': {
    program: '/usr/bin/ping',
    pkg: 'iputils-ping',
    async test(t, file) {
      await t.test('control: without the broker, under no_new_privs, ping cannot open its sockets', async t => {
        const r = await withoutBroker('/usr/bin/ping', ['-4', '-c1', '-W2', '127.0.0.1'])
        exited(t, r, 2)
        t.match(r.stderr, /socket: Operation not permitted/)
      })
      // without -4 or -6 ping opens both families, whatever the target (see ping.conf)
      const RUNS = [{ args: ['127.0.0.1'], calls: [ICMP, ICMP6] }, { args: ['-6', '::1'], calls: [ICMP6] }]
      for (const { args, calls } of RUNS) {
        await t.test(`ping ${args.join(' ')} through the broker: ${calls.map(c => `[${c.section}]`).join(' ')}`, async t => {
          const b = await brokerFor(file)
          const argv = ['-c1', '-W2', ...args]
          const r = await throughBroker(b, 'ping', argv)
          exited(t, r, 0)
          t.match(r.stdout, /1 packets transmitted, 1 received/)
          grants(t, b, file, await sessionOf(b, '/usr/bin/ping', argv), calls)
        })
      }
    },
  },

  'arping.conf': {
    program: '/usr/bin/arping',
    pkg: 'iputils-arping',
    async test(t, file) {
      const args = ['-c1', '-w2', '-I', 'a0', B_ADDR]
      await t.test('control: without the broker, under no_new_privs, arping in A cannot open its packet socket', async t => {
        const r = await withoutBroker('/usr/bin/arping', args, IN_A)
        exited(t, r, 2)
        t.match(r.stderr, /socket: Operation not permitted/)
      })
      await t.test(`arping from namespace A gets ${B_ADDR}'s answer from B through the broker: [socket.arp]`, async t => {
        const b = await brokerFor(file)
        const r = await throughBroker(b, 'arping', args, IN_A)
        exited(t, r, 0)
        t.match(r.stdout, new RegExp(`reply from ${escapeRe(B_ADDR)} \\[`))
        t.match(r.stdout, /Received 1 response/)
        grants(t, b, file, await sessionOf(b, '/usr/bin/arping', args), [{ section: 'socket.arp', domain: 'packet', type: 'dgram' }])
      })
    },
  },

  'clockdiff.conf': {
    program: '/usr/bin/clockdiff',
    pkg: 'iputils-clockdiff',
    async test(t, file) {
      const args = ['127.0.0.1']
      // clockdiff calls nice(-16) after its socket (see clockdiff.conf): that
      // needs RLIMIT_NICE >= 36, which the program gets from its client
      const NO_NICE = ['prlimit', '--nice=0:0', '--']
      await t.test('control: without the broker, under no_new_privs, clockdiff cannot open its raw socket', async t => {
        const r = await withoutBroker('/usr/bin/clockdiff', args, NO_NICE)
        exited(t, r, 1)
        t.match(r.stderr, /socket: Operation not permitted/)
      })
      await t.test('control: Debian\'s clockdiff with its capability stops at nice(-16) without a nice limit', async t => {
        const priv = await privilegeOf('/usr/bin/clockdiff')
        t.equal(priv, 'cap_net_raw=ep', 'Debian 12 ships clockdiff with cap_net_raw=ep')
        const r = await runAs(user, ['/usr/bin/clockdiff', ...args], { via: NO_NICE })
        exited(t, r, 1)
        t.match(r.stderr, /nice: Operation not permitted/)
      })
      await t.test('clockdiff through the broker gets its raw socket ([socket.icmp]), then stops at nice(-16) as Debian\'s does', async t => {
        const b = await brokerFor(file)
        const r = await throughBroker(b, 'clockdiff', args, NO_NICE)
        exited(t, r, 1)
        t.match(r.stderr, /nice: Operation not permitted/)
        t.notMatch(r.stderr, /socket:/, 'the socket was not what failed')
        grants(t, b, file, await sessionOf(b, '/usr/bin/clockdiff', args), [ICMP])
      })
      // clockdiff measuring (with a nice limit of 36) is not tested: root
      // here lacks CAP_SYS_RESOURCE and cannot raise RLIMIT_NICE for anyone,
      // the broker included, and a skipped test would read as passed.
    },
  },

  'traceroute.conf': {
    program: '/usr/bin/traceroute.db',
    pkg: 'traceroute',
    async test(t, file) {
      const trace = (...a: string[]) => ['-n', '-m2', '-q1', '-w2', ...a]
      await t.test('control: without the broker, under no_new_privs, traceroute -I has not enough privileges', async t => {
        const r = await withoutBroker('/usr/bin/traceroute.db', trace('-I', '127.0.0.1'))
        exited(t, r, 1)
        t.match(out(r), /socket: Operation not permitted/)
      })
      const RUNS = [
        { args: trace('-I', '127.0.0.1'), call: ICMP },
        { args: trace('-T', '127.0.0.1'), call: { section: 'socket.tcp', domain: 'inet', type: 'raw', protocol: 'tcp' } },
        { args: trace('-6', '-I', '::1'), call: ICMP6 },
        { args: trace('-6', '-T', '::1'), call: { section: 'socket.tcp6', domain: 'inet6', type: 'raw', protocol: 'tcp' } },
      ]
      for (const { args, call } of RUNS) {
        await t.test(`traceroute ${args.join(' ')} through the broker: [${call.section}]`, async t => {
          const b = await brokerFor(file)
          const r = await throughBroker(b, 'traceroute', args)  // the name resolves through /etc/alternatives to traceroute.db
          exited(t, r, 0)
          const dst = args[args.length - 1]
          t.match(r.stdout, new RegExp(`^ 1 +${escapeRe(dst)} +[0-9.]+ ms`, 'm'), 'the first hop is the target')
          grants(t, b, file, await sessionOf(b, '/usr/bin/traceroute.db', args), [call])
        })
      }
      await t.test('a method the rule does not grant (-M raw) fails as without the broker: no grant', async t => {
        const b = await brokerFor(file)
        const args = trace('-M', 'raw', '-P', '47', '127.0.0.1')
        const r = await throughBroker(b, 'traceroute', args)
        exited(t, r, 1)
        t.match(out(r), /socket: Operation not permitted/)
        grants(t, b, file, await sessionOf(b, '/usr/bin/traceroute.db', args), [])
      })
    },
  },

  'mtr-packet.conf': {
    program: '/usr/bin/mtr-packet',
    pkg: 'mtr-tiny',
    async test(t, file) {
      const PROBES = '1 send-probe ip-6 ::1\n2 send-probe ip-6 ::1 protocol udp\n3 send-probe ip-4 127.0.0.1\n'
      await t.test('control: without the broker, under no_new_privs, mtr-packet opens no socket', async t => {
        const r = await withoutBroker('/usr/bin/mtr-packet', [], undefined, PROBES)
        exited(t, r, 1)
        t.match(r.stderr, /Failure to open IPv4 sockets/)
        t.match(r.stderr, /Failure to open IPv6 sockets/)
      })
      await t.test('mtr-packet through the broker: IPv6 probes answered, IPv4 refused (IP_HDRINCL), no capability held', async t => {
        const priv = await privilegeOf('/usr/bin/mtr-packet')
        t.not(priv, '', `control: Debian gave /usr/bin/mtr-packet a privilege (${priv}), which the broker's program must not hold`)
        const b = await brokerFor(file)
        const run = spawnAs(user, e.client(b.socket, 'mtr-packet'))
        t.teardown(() => run.kill('SIGKILL'))
        // this file's broker runs nothing else: its one launch record is this mtr-packet's
        const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.program === '/usr/bin/mtr-packet', 10_000, 'launch record of mtr-packet')
        // mtr-packet waits for commands on stdin: it is running, with whatever the exec gave it
        const status = readFileSync(`/proc/${launch.pid}/status`, 'utf8')
        const field = (name: string) => status.match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1]
        for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) t.equal(field(cap), '0000000000000000', `${cap}: no capability`)
        t.equal(field('NoNewPrivs'), '1', 'no_new_privs, why the file capability (or setuid bit) was not honoured')
        t.equal(field('Uid'), `${user.uid}\t${user.uid}\t${user.uid}\t${user.uid}`, 'every uid is the user\'s')

        run.write(PROBES)
        run.closeStdin()
        const r = await run.wait(20_000)
        exited(t, r, 0)
        t.match(r.stdout, /^1 reply ip-6 ::1 round-trip-time \d+$/m, 'ICMPv6 probe answered')
        t.match(r.stdout, /^2 reply ip-6 ::1 round-trip-time \d+$/m, 'UDP probe over IPv6 answered')
        t.match(r.stdout, /^3 invalid-argument reason ip-version-not-supported$/m, 'IPv4: what the user sees of the refusal')

        const records = await sessionOf(b, '/usr/bin/mtr-packet', [])
        grants(t, b, file, records, [ICMP, ICMP6, ICMP6, { section: 'socket.udp6', domain: 'inet6', type: 'raw', protocol: 'udp' }])
        t.match(records.filter(a => a.event === 'refuse'), [{
          uid: user.uid, rule: { file: join(b.rulesDir, file), section: 'socket.icmp' },
          call: { name: 'setsockopt', args: { option: 'IP_HDRINCL' } }, errno: 'EPERM',
        }], 'one refusal: IP_HDRINCL on the raw ICMP socket')
      })
      await t.test('the opt-in mtr-packet.conf describes (header-included = allow, [socket.raw4]) gives raw IPv4 back', async t => {
        const shippedText = readFileSync(join(tree.shippedRules, file), 'utf8')
        const raw4 = [...shippedText.matchAll(/^;   (.*)$/gm)].map(m => m[1])  // the section, commented out
        t.equal(raw4[0], '[socket.raw4]', 'the comment holds the section')
        const optIn = `${shippedText.replace('[socket.icmp]\n', '[socket.icmp]\nheader-included = allow\n')}\n${raw4.join('\n')}\n`
        t.match(optIn, /^\[socket\.icmp\]\nheader-included = allow$/m)
        const b = await startBroker(t, tree, { rules: { [file]: optIn } })
        const r = await throughBroker(b, 'mtr-packet', [], undefined, '1 send-probe ip-4 127.0.0.1\n2 send-probe ip-4 127.0.0.1 protocol udp\n')
        exited(t, r, 0)
        t.match(r.stdout, /^1 reply ip-4 127\.0\.0\.1 round-trip-time \d+$/m, 'ICMP probe answered')
        t.match(r.stdout, /^2 reply ip-4 127\.0\.0\.1 round-trip-time \d+$/m, 'UDP probe answered')
        const records = await sessionOf(b, '/usr/bin/mtr-packet', [])
        t.ok(records.some(a => a.event === 'grant' && a.rule?.section === 'socket.raw4'), 'a grant for [socket.raw4]')
        t.same(records.filter(a => a.event === 'refuse'), [], 'nothing refused')
      })
    },
  },

  'fping.conf': {
    program: '/usr/bin/fping',
    pkg: 'fping',
    async test(t, file) {
      await t.test('control: without the broker, under no_new_privs, fping cannot create its sockets', async t => {
        const r = await withoutBroker('/usr/bin/fping', ['127.0.0.1'])
        exited(t, r, 4)
        t.match(r.stderr, /can't create socket/)
      })
      await t.test('fping 127.0.0.1 ::1 through the broker: [socket.icmp] and [socket.icmp6]', async t => {
        const b = await brokerFor(file)
        const args = ['-t500', '127.0.0.1', '::1']
        const r = await throughBroker(b, 'fping', args)
        exited(t, r, 0)
        t.match(r.stdout, /^127\.0\.0\.1 is alive$/m)
        t.match(r.stdout, /^::1 is alive$/m)
        grants(t, b, file, await sessionOf(b, '/usr/bin/fping', args), [ICMP, ICMP6])
      })
    },
  },
}

// --- the tests -------------------------------------------------------------------------

const shipped = readdirSync(tree.shippedRules).filter(f => f.endsWith('.conf')).sort()

t.test('every shipped rule file has a case here, and every case a shipped file', async t => {
  t.same(shipped, Object.keys(CASES).sort())
})

t.test('control: ICMP datagram sockets are closed to the user (ping_group_range 1 0)', async t => {
  t.equal(readSysctl('net/ipv4/ping_group_range'), '1 0')
})

t.test('the shipped rules are valid, without a warning (stx-elevate check, stx-elevated --check)', async t => {
  const r = await runRoot([tree.client, 'check', '--rules', tree.shippedRules], { timeoutMs: 30_000 })
  exited(t, r, 0)
  t.notMatch(out(r), /warning/i)
  t.match(r.stdout, new RegExp(`: valid: ${shipped.length} rules$`, 'm'))
  const d = await runRoot([tree.broker, '--check', '--rules', tree.shippedRules], { timeoutMs: 30_000 })
  exited(t, d, 0)
  t.notMatch(out(d), /warning/i)
})

for (const file of shipped) {
  const c = CASES[file]
  if (!c) continue
  t.test(file, async t => {
    const text = readFileSync(join(tree.shippedRules, file), 'utf8')
    t.match(text, new RegExp(`^path = ${escapeRe(c.program)}$`, 'm'), `[program] path is ${c.program}`)
    t.ok(statSync(c.program, { throwIfNoEntry: false })?.isFile(), `${c.program} is installed (package ${c.pkg}; .ci/run installs it)`)
    await c.test(t, file)
  })
}
