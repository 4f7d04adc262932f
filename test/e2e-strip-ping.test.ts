// End to end: strip Debian's real /usr/bin/ping (its cap_net_raw=ep), with a
// real broker on the shipped ping rule. The bare `ping` keeps working for
// an unprivileged user through the shim; `apt-get install --reinstall
// iputils-ping` (whose postinst runs setcap again) leaves it stripped and
// working; restore gives back exactly the capability it had.
//
// /usr/bin/ping is the system's: teardown always puts it back as it was
// (owner, mode, the capability's bytes, no stat override, no dpkg hook),
// from a backup if restore failed.
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { closeSync, copyFileSync, existsSync, fchmodSync, fchownSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { fsetxattr } from '../src/shared/native/xattr.js'
import { waitForAudit } from './lib/audit.js'
import { DPKG_HOOK_DIR, dpkgHooks, fileState } from './lib/file-state.js'
import { getcap } from './lib/fixtures.js'
import { SAFE_PATH } from './lib/paths.js'
import { rootEnv, runRoot } from './lib/proc.js'
import { escapeRe, runAs } from './lib/run.js'
import { setupE2E, sharedBroker } from './lib/setup.js'

const PING = '/usr/bin/ping'
/** The name dpkg knows it by on a merged-/usr Debian 12. */
const DPKG_PING = '/bin/ping'

const e = await setupE2E(t)
const { user, tree } = e
const STX_RUN = tree.path('native', 'build', 'stx-run')
const hasRunner = existsSync(STX_RUN)

const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex')
const pingOverride = async () => (await runRoot(['dpkg-statoverride', '--list', DPKG_PING])).stdout.trim()

// ---- what /usr/bin/ping was, and the safety net that puts it back ----------

const original = fileState(PING)
if (original.cap === null) {
  throw new Error(`${PING} has no file capability before the test (${JSON.stringify(original)}): `
    + 'a previous run may have left it stripped; apt-get install --reinstall iputils-ping gives it back')
}
const backup = tree.path('ping-backup')
copyFileSync(PING, backup)
const originalSha = sha256(PING)
const overrideBefore = await pingOverride()
const hooksBefore = dpkgHooks()

const dir = tree.path('strip-ping')
const state = join(dir, 'state')
const shims = join(dir, 'shim-bin')
for (const d of [dir, shims]) {
  mkdirSync(d, { recursive: true, mode: 0o755 })
  chmodSync(d, 0o755)
}

t.teardown(async () => {
  if (existsSync(join(state, 'stripped')) && readdirSync(join(state, 'stripped')).some(f => f.endsWith('.json'))) {
    await runRoot([tree.client, 'restore', '--state-dir', state, PING], { timeoutMs: 60_000 }).catch(() => undefined)
  }
  if (sha256(PING) !== originalSha) {
    // not expected (a reinstall unpacks the same version): put the original content back
    const tmp = `${PING}.stx-test-restore`
    copyFileSync(backup, tmp)
    renameSync(tmp, PING)
  }
  const now = fileState(PING)
  if (JSON.stringify(now) !== JSON.stringify(original)) {
    const fd = openSync(PING, 'r')
    try {
      fchownSync(fd, original.uid, original.gid)
      fchmodSync(fd, parseInt(original.mode, 8))
      fsetxattr(fd, 'security.capability', Buffer.from(original.cap!, 'base64'), PING)
    } finally {
      closeSync(fd)
    }
  }
  if (overrideBefore === '' && await pingOverride() !== '') await runRoot(['dpkg-statoverride', '--remove', DPKG_PING])
  for (const h of dpkgHooks()) if (!hooksBefore.includes(h)) rmSync(join(DPKG_HOOK_DIR, h), { force: true })
})

// ---- the broker, and how the user runs ping -------------------------------

const shippedPing = readFileSync(join(tree.shippedRules, 'ping.conf'), 'utf8')
const broker = sharedBroker(t, tree, () => ({ rules: { 'ping.conf': shippedPing } }))

/** The bare `ping -c1 127.0.0.1` as the user, with the shim directory first on PATH when shim. */
async function barePing(opts: { shim: boolean, socket?: string }) {
  const env: Record<string, string> = { PATH: opts.shim ? `${shims}:${SAFE_PATH}` : SAFE_PATH }
  if (opts.shim) {
    env.STX_ELEVATE_STATE_DIR = state
    env.STX_ELEVATE_SOCKET = opts.socket ?? (await broker()).socket
  }
  return runAs(user, ['sh', '-c', 'ping -c1 -W2 127.0.0.1'], { env, timeoutMs: 30_000 })
}

function needsRunner(t: Test): boolean {
  if (!hasRunner) t.fail(`${STX_RUN} is missing: the shim runner (native/stx-run) is not built or not installed`)
  return hasRunner
}

t.test('control: Debian ping has cap_net_raw=ep and works for the user as it is', async t => {
  t.equal(await getcap(PING), `${PING} cap_net_raw=ep`)
  t.equal(overrideBefore, '', `no stat override for ${DPKG_PING} before the test`)
  const r = await barePing({ shim: false })
  t.equal(r.code, 0, `ping as ${user.name}: ${r.stderr}`)
  t.match(r.stdout, /1 received/)
})

t.test('the shim runner native/build/stx-run is installed', async t => {
  t.ok(hasRunner, `${STX_RUN} exists`)
})

t.test(`strip ${PING}: capability removed, stat override and dpkg hook in place, shim made`, async t => {
  const b = await broker()
  const r = await runRoot([tree.client, 'strip', '--rules', b.rulesDir, '--state-dir', state, '--shim-dir', shims,
    ...(hasRunner ? [] : ['--no-shim']), PING], { timeoutMs: 120_000 })
  t.equal(r.code, 0, `strip exits 0: ${r.stderr}`)
  t.match(r.stdout, new RegExp(`^remove capability cap_net_raw=ep from ${PING}$`, 'm'))
  t.match(r.stdout, new RegExp(`^dpkg-statoverride --add root root 0755 ${DPKG_PING} \\(package iputils-ping`, 'm'))
  t.match(r.stdout, new RegExp(`^install dpkg hook ${escapeRe(DPKG_HOOK_DIR)}/stx-elevate-[0-9a-f]{12} `, 'm'))
  t.match(r.stdout, new RegExp(`^stripped ${PING} .*rule ${escapeRe(join(b.rulesDir, 'ping.conf'))}`, 'm'))
  t.match(r.stdout, /^note: \/usr\/bin\/ping4, \/usr\/bin\/ping6 also name \/usr\/bin\/ping/m, 'says ping4 and ping6 get no shim')
  if (hasRunner) {
    t.match(r.stderr, new RegExp(`^stx-elevate strip: warning: /etc/login\\.defs:\\d+: this PATH \\(/usr/local/bin:/usr/bin:.*\\) finds /usr/bin/ping and not ${escapeRe(shims)} at all`, 'm'),
      'warns that users\' default PATH (login.defs ENV_PATH) reaches the stripped ping, not the test shim directory')
  }

  t.equal(await getcap(PING), '', 'no capability')
  t.same(fileState(PING), { ...original, cap: null })
  t.equal(await pingOverride(), `root root 755 ${DPKG_PING}`, 'dpkg will unpack it without privilege')
  const hooks = dpkgHooks().filter(h => !hooksBefore.includes(h))
  t.equal(hooks.length, 1, 'one hook file')
  const hook = readFileSync(join(DPKG_HOOK_DIR, hooks[0]), 'utf8')
  t.match(hook, new RegExp(`^post-invoke="if \\[ -x \\S+ \\] && \\[ -f ${escapeRe(tree.client)} \\]; then timeout \\d+ \\S+ ${escapeRe(tree.client)} strip --reapply --state-dir ${escapeRe(state)} </dev/null \\|\\| true; fi"$`, 'm'))
  if (hasRunner) {
    t.equal(readlinkSync(join(shims, 'ping')), STX_RUN, 'the shim links to the runner')
    t.equal(readlinkSync(join(state, 'shims', 'ping')), PING, 'the state link names the real ping')
  }
})

t.test('control: without the shim, the bare ping fails for the user (no privilege left)', async t => {
  const r = await barePing({ shim: false })
  t.equal(r.code, 2, `ping's own failure status: ${r.stdout}`)
  t.match(r.stderr, /Operation not permitted/)
})

t.test('the bare `ping -c1 127.0.0.1` works for the user through the shim and the broker', async t => {
  if (!needsRunner(t)) return
  const b = await broker()
  const r = await barePing({ shim: true })
  t.equal(r.code, 0, `exit 0: ${r.stderr}`)
  t.match(r.stdout, /1 packets transmitted, 1 received/)
  const launch = await waitForAudit(b.audit, a => a.event === 'launch' && a.program === PING && a.uid === user.uid, 5000, 'launch record')
  await waitForAudit(b.audit, a => a.event === 'grant' && a.session === launch.session && a.call?.name === 'socket', 5000, 'grant record')
})

t.test('with no broker running, the shim says so', async t => {
  if (!needsRunner(t)) return
  const socket = tree.path('no-broker-here.sock')
  const r = await barePing({ shim: true, socket })
  t.equal(r.code, 1, 'exit 1')
  t.match(r.stderr, socket, 'names the socket')
  t.match(r.stderr, /stx-elevated/, 'names the broker')
  t.notMatch(r.stdout, /bytes from/, 'ping did not run')
})

t.test('apt-get install --reinstall iputils-ping: the postinst gives the capability back, the hook strips it again', async t => {
  const r = await runRoot(['apt-get', 'install', '--reinstall', '-y', '-q', '-o', 'DPkg::Lock::Timeout=120', 'iputils-ping'],
    { env: rootEnv({ DEBIAN_FRONTEND: 'noninteractive' }), timeoutMs: 400_000 })
  t.equal(r.code, 0, `apt-get exits 0: ${r.stderr.slice(-2000)}`)
  t.match(r.stdout, /Setting up iputils-ping/, 'the package was configured again (its postinst ran)')
  t.match(r.stdout, new RegExp(`stx-elevate strip --reapply: ${PING} had its privilege back \\(capability cap_net_raw=ep`),
    'the postinst put the capability back and the dpkg hook removed it again')
  t.equal(await getcap(PING), '', 'still no capability')
  t.same(fileState(PING), { ...original, cap: null }, 'mode and owner as stripped')
  t.equal(await pingOverride(), `root root 755 ${DPKG_PING}`, 'the stat override is still there')
  const rec = JSON.parse(readFileSync(join(state, 'stripped', readdirSync(join(state, 'stripped')).find(f => f.endsWith('.json'))!), 'utf8'))
  t.match(rec.reapplied, { removed: 'capability cap_net_raw=ep' }, 'the record says when it was stripped again')
  t.equal(rec.removed.capability.raw, original.cap, 'and still holds the original capability')

  const b = await broker()
  const viaClient = await runAs(user, e.client(b.socket, PING, '-c1', '-W2', '127.0.0.1'))
  t.equal(viaClient.code, 0, `stx-elevate ping still works: ${viaClient.stderr}`)
  if (needsRunner(t)) {
    const bare = await barePing({ shim: true })
    t.equal(bare.code, 0, `the bare ping still works through the shim: ${bare.stderr}`)
  }
})

t.test(`restore ${PING}: cap_net_raw=ep exactly as before; override, hook and shim gone`, async t => {
  const r = await runRoot([tree.client, 'restore', '--state-dir', state, PING], { timeoutMs: 120_000 })
  t.equal(r.code, 0, `restore exits 0: ${r.stderr}`)
  t.match(r.stdout, new RegExp(`^put back mode ${original.mode}, owner 0:0, capability cap_net_raw=ep on ${PING}`, 'm'))
  t.match(r.stdout, new RegExp(`^dpkg-statoverride --remove ${DPKG_PING}$`, 'm'))
  t.match(r.stdout, /^remove dpkg hook /m)
  t.equal(await getcap(PING), `${PING} cap_net_raw=ep`, 'getcap shows cap_net_raw=ep')
  t.same(fileState(PING), original, 'mode, owner and the capability\'s bytes exactly as before')
  t.equal(await pingOverride(), '', 'no stat override')
  t.same(dpkgHooks(), hooksBefore, 'the dpkg hook is gone')
  for (const p of [join(shims, 'ping'), join(state, 'shims', 'ping')]) {
    t.notOk((() => { try { lstatSync(p); return true } catch { return false } })(), `${p} is gone`)
  }
  t.same(readdirSync(join(state, 'stripped')).filter(f => f.endsWith('.json')), [], 'no record left')
})

t.test('control: after restore, ping works for the user as it did', async t => {
  const r = await barePing({ shim: false })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /1 received/)
})
