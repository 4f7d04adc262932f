// End to end: the elevated program cannot hand its grant on (a later exec is
// refused; IP_HDRINCL on the brokered raw socket is refused) and nothing of
// the broker's context reaches it: it runs with the client's limits, umask,
// groups and cwd, a filtered environment, only fds 0-2, as a secure exec.
import t from 'tap'
import { waitForAudit } from './lib/audit.js'
import { probeRule } from './lib/rules.js'
import { jsonLine, runAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const e = await setupE2E(t)
const { user, fx, tree } = e

const broker = sharedBroker(t, tree, () => ({
  rules: { 'probe.conf': probeRule({ path: fx.probe, users: [user.name] }) },
}))

t.test('control: stx-probe run directly can exec /usr/bin/id', async t => {
  const r = await runAs(user, [fx.probe, 'exec', '/usr/bin/id'])
  t.equal(r.code, 0)
  t.match(r.stdout, new RegExp(`^uid=${user.uid}\\(${user.name}\\)`, 'm'), 'id ran')
})

t.test('the elevated program cannot exec: execve gets EPERM, with a refuse record', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'exec', '/usr/bin/id'))
  t.equal(r.code, 3, `the probe reports the failed exec (stderr: ${r.stderr})`)
  t.equal(jsonLine(r.stdout, 'exec').exec, 'EPERM')
  t.notMatch(r.stdout, /uid=/, 'id did not run')
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.uid === user.uid && a.call?.name === 'execve', 5000, 'refuse record for execve')
  t.equal(rec.user, user.name)
  t.equal(rec.program, fx.probe)
  t.equal(rec.errno, 'EPERM')
  t.type(rec.pid, 'number')
  t.type(rec.reason, 'string')
})

t.test('control: stx-probe run directly gets no raw socket', async t => {
  const r = await runAs(user, [fx.probe, 'hdrincl'])
  t.equal(jsonLine(r.stdout, 'raw').raw, 'EPERM')
})

t.test('control: on a raw socket of a setcap program, IP_HDRINCL succeeds', async t => {
  const r = await runAs(user, [fx.probeCap, 'hdrincl'])
  const o = jsonLine(r.stdout, 'raw')
  t.type(o.raw, 'number', 'the setcap copy opens a raw socket')
  t.equal(o.hdrincl, 'ok', 'and may forge headers')
  t.equal(r.code, 0)
})

t.test('IP_HDRINCL on the brokered raw socket is refused, with a refuse record', async t => {
  const b = await broker()
  const r = await runAs(user, e.client(b.socket, fx.probe, 'hdrincl'))
  const o = jsonLine(r.stdout, 'raw')
  t.type(o.raw, 'number', `the broker granted the raw socket (stderr: ${r.stderr})`)
  t.equal(o.hdrincl, 'EPERM', 'IP_HDRINCL refused')
  t.equal(r.code, 1, "the probe's status for a refused option")
  const grant = await waitForAudit(b.audit, a => a.event === 'grant' && a.uid === user.uid && a.program === fx.probe && a.call?.name === 'socket', 5000, 'grant record for the raw socket')
  const rec = await waitForAudit(b.audit, a => a.event === 'refuse' && a.session === grant.session && a.call?.name === 'setsockopt', 5000, 'refuse record for setsockopt')
  t.equal(rec.user, user.name)
  t.equal(rec.program, fx.probe)
  t.equal(rec.errno, 'EPERM')
  t.ok(rec.call?.args !== undefined && rec.call?.args !== null, 'with the decoded arguments')
})

// --- context -------------------------------------------------------------

// variables interpreters and the loader honour (even under AT_SECURE for
// the interpreters), and one no allow-list can know; NODE_OPTIONS is also
// read by the client itself, so only a harmless option
const LEAKY = {
  PYTHONPATH: '/nonexistent/python', LD_LIBRARY_PATH: '/nonexistent/lib', FOO_UNKNOWN: 'leaked',
  PERL5LIB: '/nonexistent/perl', NODE_OPTIONS: '--no-deprecation',
}
const CWD = '/usr/share'
// personality flags a setuid exec clears (PER_CLEAR_ON_SETID)
const READ_IMPLIES_EXEC = 0x0400000
const ADDR_NO_RANDOMIZE = 0x0040000
const ADDR_COMPAT_LAYOUT = 0x0200000
const MMAP_PAGE_ZERO = 0x0100000
const PER_CLEAR_ON_SETID = READ_IMPLIES_EXEC | ADDR_NO_RANDOMIZE | ADDR_COMPAT_LAYOUT | MMAP_PAGE_ZERO

/**
 * `sh -c 'ulimit -n 64; umask 077; exec 7</dev/null; exec setarch -R ARGV'`
 * as the user, with LEAKY in the env; the probe's ctx.
 */
async function ctxUnder(argv: string[]) {
  const r = await runAs(user, ['/bin/sh', '-c', 'ulimit -n 64 && umask 077 && exec 7</dev/null && exec setarch -R "$@"', 'sh', ...argv], { env: LEAKY, cwd: CWD })
  return { r, ctx: jsonLine(r.stdout, 'umask') }
}

const sorted = (a: number[]) => [...a].sort((x, y) => x - y)
let clientGroups: number[] | undefined

t.test('control: the context the client has (probe run directly in the same shell)', async t => {
  const { r, ctx } = await ctxUnder([fx.probe, 'ctx'])
  t.equal(r.code, 0)
  t.same(ctx.nofile, { soft: 64, hard: 64 }, 'ulimit -n 64')
  t.equal(ctx.umask, '0077')
  t.ok([0, 1, 2, 7].every(fd => ctx.fds.includes(fd)), `fds 0-2 and the extra fd 7: ${ctx.fds}`)
  t.equal(ctx.cwd, CWD)
  t.match(ctx.env, LEAKY, 'the variables are set')
  t.same(sorted(ctx.groups), sorted([user.gid, e.suppGid]), "the user's groups")
  t.equal(ctx.at_secure, 0)
  t.equal(ctx.dumpable, 1)
  t.equal(ctx.no_new_privs, 0)
  t.ok(ctx.personality & ADDR_NO_RANDOMIZE, 'setarch -R set ADDR_NO_RANDOMIZE')
  clientGroups = ctx.groups
})

t.test("the elevated program runs in the client's context, filtered, as a secure exec", async t => {
  const b = await broker()
  const { r, ctx } = await ctxUnder(e.client(b.socket, fx.probe, 'ctx'))
  t.equal(r.code, 0, `stderr: ${r.stderr}`)
  t.match(ctx, { uid: user.uid, euid: user.uid, suid: user.uid, egid: user.gid, sgid: user.gid }, 'runs as the user')
  t.not(ctx.gid, 0, 'no root group')
  t.same(sorted(ctx.groups), sorted(clientGroups ?? [user.gid, e.suppGid]), "the client's groups")
  t.same(ctx.nofile, { soft: 64, hard: 64 }, "the client's RLIMIT_NOFILE")
  t.equal(ctx.umask, '0077', "the client's umask")
  t.same(ctx.fds, [0, 1, 2], "only fds 0-2, not the client's fd 7")
  t.equal(ctx.cwd, CWD, "the client's cwd")
  for (const k of [...Object.keys(LEAKY), 'LD_PRELOAD']) t.notOk(k in ctx.env, `no ${k}`)
  t.equal(ctx.at_secure, 1, 'AT_SECURE')
  t.equal(ctx.dumpable, 0, 'not dumpable')
  t.equal(ctx.no_new_privs, 1, 'no_new_privs')
  t.equal(ctx.seccomp, 2, 'under a seccomp filter')
  for (const k of ['cap_prm', 'cap_eff', 'cap_amb', 'cap_inh']) t.equal(ctx[k], '0000000000000000', `${k} empty`)
  t.equal(ctx.personality & PER_CLEAR_ON_SETID, 0, 'personality flags a setuid exec clears are cleared')
})
