// stx-elevate strip and restore on copies of real privileged binaries
// (Debian's setcap ping, setuid passwd, setgid chage) in a test directory,
// with a test rules directory, state directory and shim directory: restore
// puts back exactly what strip removed, and every refusal changes nothing.
// No broker is needed: these are the metadata parts (e2e-strip-ping runs
// the stripped ping through one).
import t from 'tap'
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { dpkgHooks, fileState, statOverrides, treeState } from './lib/file-state.js'
import { getcap } from './lib/fixtures.js'
import { mustRunRoot, runRoot } from './lib/proc.js'
import { pingRule } from './lib/rules.js'
import { escapeRe, runAs } from './lib/run.js'
import { setupE2E } from './lib/setup.js'

const e = await setupE2E(t)
const { tree, user } = e
const base = tree.path('strip-test')
mkdirSync(base, { mode: 0o755 })
chmodSync(base, 0o755)
const STX_RUN = tree.path('native', 'build', 'stx-run')
const SHADOW_GID = 42

interface Case { dir: string, bin: string, rules: string, state: string, shims: string }
let n = 0

/** A fresh root-owned 0755 directory with bin/, rules/ and shims/ (state/ is strip's to make). */
function makeCase(): Case {
  const dir = join(base, `c${n++}`)
  const c = { dir, bin: join(dir, 'bin'), rules: join(dir, 'rules'), state: join(dir, 'state'), shims: join(dir, 'shims') }
  for (const d of [c.dir, c.bin, c.rules, c.shims]) {
    mkdirSync(d, { recursive: true, mode: 0o755 })
    chmodSync(d, 0o755)
  }
  return c
}

/** A copy of a real binary, root-owned (group gid), with mode and, given cap, a file capability. */
async function copyOf(c: Case, source: string, name: string, o: { mode: number, gid?: number, cap?: string }): Promise<string> {
  const p = join(c.bin, name)
  copyFileSync(source, p)
  chownSync(p, 0, o.gid ?? 0)
  chmodSync(p, o.mode)
  if (o.cap) await mustRunRoot(['setcap', o.cap, p])
  return p
}

function writeRule(dir: string, file: string, path: string): string {
  const f = join(dir, file)
  writeFileSync(f, pingRule({ path, users: [user.name] }))
  chmodSync(f, 0o644)
  return f
}

const strip = (c: Case, ...args: string[]) =>
  runRoot([tree.client, 'strip', '--rules', c.rules, '--state-dir', c.state, '--shim-dir', c.shims, ...args], { timeoutMs: 60_000 })
const restore = (c: Case, ...args: string[]) =>
  runRoot([tree.client, 'restore', '--state-dir', c.state, ...args], { timeoutMs: 60_000 })

/** Everything strip or restore could change for case c (the binaries' capabilities too). */
async function everything(c: Case, paths: string[]) {
  return { files: paths.map(fileState), tree: treeState(c.dir), overrides: await statOverrides(), hooks: dpkgHooks() }
}

function records(c: Case): string[] {
  const dir = join(c.state, 'stripped')
  return existsSync(dir) ? readdirSync(dir).filter(f => f.endsWith('.json')).map(f => join(dir, f)) : []
}

const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex')

t.test('control: setcap, getcap and the binaries copied here are installed (libcap2-bin, iputils-ping, passwd)', async t => {
  for (const p of ['/usr/bin/ping', '/usr/bin/passwd', '/usr/bin/chage']) t.ok(existsSync(p), p)
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  t.equal(await getcap(p), `${p} cap_net_raw=ep`)
})

const KINDS = [
  { kind: 'setcap (cap_net_raw=ep, 0755)', source: '/usr/bin/ping', mode: 0o755, cap: 'cap_net_raw=ep', text: 'cap_net_raw=ep', stripped: '0755' },
  { kind: 'setuid root (4755)', source: '/usr/bin/passwd', mode: 0o4755, stripped: '0755' },
  { kind: 'setgid shadow (2755, group shadow)', source: '/usr/bin/chage', mode: 0o2755, gid: SHADOW_GID, stripped: '0755' },
  { kind: 'setuid and setcap (4750, cap_net_raw,cap_net_admin=eip)', source: '/usr/bin/ping', mode: 0o4750, cap: 'cap_net_raw,cap_net_admin=eip', text: 'cap_net_admin,cap_net_raw=eip', stripped: '0750' },
]

for (const k of KINDS) {
  t.test(`strip then restore of a ${k.kind} copy: mode, owner and capability bytes exactly as before`, async t => {
    const c = makeCase()
    const p = await copyOf(c, k.source, 'prog', k)
    writeRule(c.rules, 'prog.conf', p)
    const before = fileState(p)
    const overrides = await statOverrides()
    const hooks = dpkgHooks()

    const s = await strip(c, '--no-shim', p)
    t.equal(s.code, 0, `strip exits 0: ${s.stderr}`)
    t.match(s.stdout, new RegExp(`^record .* of ${escapeRe(p)} in ${escapeRe(c.state)}/stripped/prog\\.[0-9a-f]{16}\\.json$`, 'm'), 'the record first')
    if (k.text) t.match(s.stdout, new RegExp(`^remove capability ${escapeRe(k.text)} from ${escapeRe(p)}$`, 'm'))
    if (k.mode & 0o6000) t.match(s.stdout, new RegExp(`^chmod ${(k.mode).toString(8).padStart(4, '0')} -> ${k.stripped} ${escapeRe(p)}$`, 'm'))
    t.match(s.stdout, new RegExp(`^stripped ${escapeRe(p)} .*rule ${escapeRe(join(c.rules, 'prog.conf'))}`, 'm'), 'a summary naming the rule')
    t.ok(s.stdout.indexOf('record ') < s.stdout.indexOf(k.cap ? 'remove capability' : 'chmod'), 'recorded before the change')

    t.same(fileState(p), { mode: k.stripped, uid: 0, gid: k.gid ?? 0, cap: null }, 'stripped: no setuid/setgid bit, no capability')
    t.equal(await getcap(p), '', 'getcap prints nothing')

    const recs = records(c)
    t.equal(recs.length, 1, 'one record')
    const rec = JSON.parse(readFileSync(recs[0], 'utf8'))
    t.match(rec, {
      version: 1, path: p, strippedMode: k.stripped, sha256: sha256(p),
      removed: { mode: before.mode, uid: 0, gid: k.gid ?? 0, capability: k.cap ? { raw: before.cap } : null },
      rule: { file: join(c.rules, 'prog.conf'), installed: false }, dpkg: null, shim: null, hook: null,
    }, 'the record holds what was removed')
    t.match(rec.time, /^\d{4}-\d\d-\d\dT/)
    const st = lstatSync(recs[0])
    t.equal(st.uid, 0)
    t.equal(st.mode & 0o022, 0, 'the record is not writable by group or other')
    t.equal(await statOverrides(), overrides, 'no stat override for a file no package owns')
    t.same(dpkgHooks(), hooks, 'no dpkg hook for a file no package owns')

    const r = await restore(c, p)
    t.equal(r.code, 0, `restore exits 0: ${r.stderr}`)
    t.match(r.stdout, new RegExp(`^put back mode ${before.mode}, owner 0:${k.gid ?? 0}.* on ${escapeRe(p)}`, 'm'))
    t.match(r.stdout, new RegExp(`^restored ${escapeRe(p)}`, 'm'))
    t.same(fileState(p), before, 'mode, owner and the raw capability bytes exactly as before')
    if (k.text) t.equal(await getcap(p), `${p} ${k.text}`, 'getcap shows the capability again')
    t.same(records(c), [], 'the record is gone')
  })
}

t.test('strip without a covering rule is refused and changes nothing', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'other.conf', '/usr/bin/passwd')  // covers another program only
  const before = await everything(c, [p])
  const r = await strip(c, '--no-shim', p)
  t.equal(r.code, 1, 'exit 1')
  t.match(r.stderr, `${p}: no rule covers it`)
  t.match(r.stderr, `no file in ${c.rules} (installed)`, 'says where installed rules live')
  t.match(r.stderr, /\(shipped\)/, 'and the shipped ones')
  t.match(r.stderr, `path = ${p}`, 'names the rule that is missing')
  t.match(r.stderr, /elevation\.d\(5\)/, 'says how to write one')
  t.match(r.stderr, `stx-elevate learn -u USER -o ${c.rules}/NAME.conf -- ${p} ARGS...`, 'or how to learn one')
  t.match(r.stderr, /nothing changed/)
  t.equal(r.stdout, '')
  t.same(await everything(c, [p]), before, 'nothing changed (file, capability, state, rules, overrides, hooks)')
  t.notOk(existsSync(c.state), 'no state directory made')
})

t.test('strip of a binary a non-root user could change is refused and changes nothing', async t => {
  const variants: Array<{ what: string, setup: (c: Case, p: string) => void, says: RegExp }> = [
    { what: 'the file is owned by the user', setup: (_c, p) => { chownSync(p, user.uid, 0); chmodSync(p, 0o4755) }, says: new RegExp(`is owned by uid ${user.uid}, not root`) },
    { what: 'the file is group-writable', setup: (_c, p) => chmodSync(p, 0o4775), says: /is writable by group or other \(mode 04775\)/ },
    { what: 'its directory is owned by the user', setup: c => chownSync(c.bin, user.uid, user.gid), says: new RegExp(`/bin is owned by uid ${user.uid}, not root`) },
    { what: 'its directory is writable by everyone', setup: c => chmodSync(c.bin, 0o777), says: /\/bin is writable by group or other \(mode 0777\)/ },
  ]
  for (const v of variants) {
    const c = makeCase()
    const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o4755 })
    v.setup(c, p)
    writeRule(c.rules, 'ping.conf', p)
    const before = await everything(c, [p])
    const r = await strip(c, '--no-shim', p)
    t.equal(r.code, 1, `${v.what}: exit 1`)
    t.match(r.stderr, v.says, `${v.what}: says what is unsafe`)
    t.match(r.stderr, /someone other than root could change/, `${v.what}: and why that matters`)
    t.same(await everything(c, [p]), before, `${v.what}: nothing changed`)
    t.notOk(existsSync(c.state), `${v.what}: no state directory made`)
  }
})

t.test('strip and restore refuse to run as a user who is not root, and change nothing', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'ping.conf', p)
  const before = await everything(c, [p])
  for (const argv of [
    [tree.client, 'strip', '--rules', c.rules, '--state-dir', c.state, '--no-shim', p],
    [tree.client, 'strip', '--reapply', '--state-dir', c.state],
    [tree.client, 'restore', '--state-dir', c.state, p],
  ]) {
    const r = await runAs(user, argv)
    t.equal(r.code, 1, `${argv[1]} as ${user.name}: exit 1`)
    t.match(r.stderr, new RegExp(`^stx-elevate ${argv[1]}: must be run as root`), 'says root is needed')
  }
  t.same(await everything(c, [p]), before, 'nothing changed')
})

t.test('--dry-run prints the changes and changes nothing (file, capability, state, rules, overrides, hooks)', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o4755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'ping.conf', p)
  const before = await everything(c, [p])
  const r = await strip(c, '--dry-run', '--no-shim', p)
  t.equal(r.code, 0, `exit 0: ${r.stderr}`)
  t.match(r.stdout, new RegExp(`^would record .* of ${escapeRe(p)} in `, 'm'))
  t.match(r.stdout, new RegExp(`^would remove capability cap_net_raw=ep from ${escapeRe(p)}$`, 'm'))
  t.match(r.stdout, new RegExp(`^would chmod 4755 -> 0755 ${escapeRe(p)}$`, 'm'))
  t.match(r.stdout, new RegExp(`^would strip ${escapeRe(p)}`, 'm'))
  t.match(r.stdout, /^dry run: nothing changed$/m)
  t.notMatch(r.stdout, /^(record|remove|chmod|stripped) /m, 'no line says a change was made')
  t.same(await everything(c, [p]), before, 'nothing changed')
  t.notOk(existsSync(c.state), 'no state directory made')

  t.equal((await strip(c, '--no-shim', p)).code, 0, 'the real strip')
  const stripped = await everything(c, [p])
  const d = await restore(c, '--dry-run', p)
  t.equal(d.code, 0, `restore --dry-run exits 0: ${d.stderr}`)
  t.match(d.stdout, new RegExp(`^would put back mode 4755, owner 0:0, capability cap_net_raw=ep on ${escapeRe(p)}`, 'm'))
  t.match(d.stdout, /^would remove record /m)
  t.match(d.stdout, /^dry run: nothing changed$/m)
  t.same(await everything(c, [p]), stripped, 'restore --dry-run changed nothing')
  t.equal((await restore(c, p)).code, 0, 'the real restore')
  t.same(fileState(p), before.files[0])
})

t.test('restore without a record is refused, saying nothing was stripped', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755 })
  const before = await everything(c, [p])
  const r = await restore(c, p)
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`^stx-elevate restore: ${escapeRe(p)}: nothing to restore: stx-elevate has not stripped it \\(no record in ${escapeRe(c.state)}/stripped\\)`, 'm'))
  t.same(await everything(c, [p]), before, 'nothing changed')
})

t.test('a binary with nothing to strip is refused', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755 })
  writeRule(c.rules, 'ping.conf', p)
  const before = await everything(c, [p])
  const r = await strip(c, '--no-shim', p)
  t.equal(r.code, 1)
  t.match(r.stderr, `${p} has no setuid or setgid bit and no file capability (mode 0755): nothing to strip`)
  t.same(await everything(c, [p]), before, 'nothing changed')
})

t.test('one refused PATH among several changes none of them', async t => {
  const c = makeCase()
  const ok = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  const bad = await copyOf(c, '/usr/bin/passwd', 'passwd', { mode: 0o4755 })
  writeRule(c.rules, 'ping.conf', ok)  // none for passwd
  const before = await everything(c, [ok, bad])
  const r = await strip(c, '--no-shim', ok, bad)
  t.equal(r.code, 1)
  t.match(r.stderr, `${bad}: no rule covers it`)
  t.same(await everything(c, [ok, bad]), before, 'the covered one is not stripped either')
})

t.test('a shipped rule is installed by strip (0644 root, with a reload hint) and removed by restore', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  const name = `strip-test-${process.pid}-${n}.conf`
  const shipped = writeRule(tree.shippedRules, name, p)
  t.teardown(() => rmSync(shipped, { force: true }))
  const installed = join(c.rules, name)

  const r = await strip(c, '--no-shim', p)
  t.equal(r.code, 0, `exit 0: ${r.stderr}`)
  t.match(r.stdout, new RegExp(`^install rule ${escapeRe(installed)} \\(the shipped ${escapeRe(shipped)}\\)$`, 'm'))
  t.match(r.stdout, /^note: the broker must reload its rules before users can run .*systemctl reload stx-elevated, or send SIGHUP to stx-elevated$/m)
  t.equal(readFileSync(installed, 'utf8'), readFileSync(shipped, 'utf8'), 'the same text')
  const st = lstatSync(installed)
  t.equal(st.uid, 0)
  t.equal(st.mode & 0o7777, 0o644)
  t.match(JSON.parse(readFileSync(records(c)[0], 'utf8')).rule, { file: installed, installed: true, sha256: sha256(installed) })

  const check = await runRoot([tree.client, 'check', '--rules', c.rules])
  t.equal(check.code, 0, `the rules directory with the installed rule is valid: ${check.stdout}`)

  const x = await restore(c, p)
  t.equal(x.code, 0, `restore exits 0: ${x.stderr}`)
  t.match(x.stdout, new RegExp(`^remove rule ${escapeRe(installed)} \\(strip installed it\\)$`, 'm'))
  t.notOk(existsSync(installed), 'the rule strip installed is removed')
  t.ok(existsSync(shipped), 'the shipped one stays')
})

t.test('a shipped rule is not installed over a different file of the same name; an edited installed rule is kept', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  const name = `strip-test-${process.pid}-${n}.conf`
  const shipped = writeRule(tree.shippedRules, name, p)
  t.teardown(() => rmSync(shipped, { force: true }))
  writeRule(c.rules, name, '/usr/bin/passwd')
  const before = await everything(c, [p])
  const r = await strip(c, '--no-shim', p)
  t.equal(r.code, 1)
  t.match(r.stderr, `the shipped rule ${shipped} would be installed as ${join(c.rules, name)}, but a different file of that name is there`)
  t.same(await everything(c, [p]), before, 'nothing changed')

  rmSync(join(c.rules, name))
  t.equal((await strip(c, '--no-shim', p)).code, 0, 'strip installs it once the name is free')
  writeFileSync(join(c.rules, name), `${readFileSync(join(c.rules, name), 'utf8')}; edited by the admin\n`)
  const x = await restore(c, p)
  t.equal(x.code, 0)
  t.match(x.stdout, `note: kept the rule ${join(c.rules, name)}: strip installed it, but it was changed since`)
  t.ok(existsSync(join(c.rules, name)), 'the edited rule is kept')
})

t.test('invalid installed rules refuse the strip, naming their problems', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'ping.conf', p)
  writeFileSync(join(c.rules, 'broken.conf'), '[program]\npath = relative/path\n')
  chmodSync(join(c.rules, 'broken.conf'), 0o644)
  const before = await everything(c, [p])
  const r = await strip(c, '--no-shim', p)
  t.equal(r.code, 1)
  t.match(r.stderr, `the rules in ${c.rules} are invalid`)
  t.match(r.stderr, `${join(c.rules, 'broken.conf')}:2`, 'names the file and line')
  t.same(await everything(c, [p]), before, 'nothing changed')
})

t.test('a PATH through a symbolic link is stripped at its real path, and strip says so', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'ping.conf', p)
  const link = join(c.dir, 'ping-link')
  symlinkSync(p, link)
  const before = fileState(p)
  const r = await strip(c, '--no-shim', link)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, `note: ${link} is ${p} (through a symbolic link): acting on ${p}`)
  t.equal(fileState(p).cap, null)
  t.equal(JSON.parse(readFileSync(records(c)[0], 'utf8')).path, p, 'the record names the real path')
  t.equal((await restore(c, link)).code, 0, 'restore through the link finds the record')
  t.same(fileState(p), before)
})

t.test('strip --reapply strips again a privilege that came back; restore still puts back the original', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'ping.conf', p)
  const before = fileState(p)
  t.equal((await strip(c, '--no-shim', p)).code, 0)

  const quiet = await strip(c, '--reapply')
  t.same([quiet.code, quiet.stdout, quiet.stderr], [0, '', ''], 'nothing came back: quiet, exit 0')

  // what a package's maintainer script does (iputils-ping's postinst runs setcap)
  await mustRunRoot(['setcap', 'cap_net_raw,cap_net_admin+ep', p])
  chmodSync(p, 0o4755)
  const r = await strip(c, '--reapply')
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, new RegExp(`^stx-elevate strip --reapply: ${escapeRe(p)} had its privilege back \\(setuid .*capability cap_net_admin,cap_net_raw=ep.*\\): removed it again$`, 'm'))
  t.same(fileState(p), { mode: '0755', uid: 0, gid: 0, cap: null }, 'stripped again')
  const rec = JSON.parse(readFileSync(records(c)[0], 'utf8'))
  t.match(rec.reapplied, { removed: /cap_net_admin,cap_net_raw=ep/ })
  t.equal(rec.removed.capability.raw, before.cap, 'the record still holds the original capability')

  t.equal((await restore(c, p)).code, 0)
  t.same(fileState(p), before, 'restore puts back the original, not what came back')

  const none = await runRoot([tree.client, 'strip', '--reapply', '--state-dir', join(c.dir, 'no-such-state')])
  t.same([none.code, none.stdout, none.stderr], [0, '', ''], 'no state directory: quiet, exit 0')
})

t.test('records in a directory others can write are not trusted', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'ping.conf', p)
  t.equal((await strip(c, '--no-shim', p)).code, 0)
  chmodSync(join(c.state, 'stripped'), 0o777)
  const stripped = fileState(p)
  const r = await restore(c, p)
  t.equal(r.code, 1)
  t.match(r.stderr, `${join(c.state, 'stripped')} is writable by group or other (mode 0777)`)
  t.same(fileState(p), stripped, 'no privilege given back on an untrusted record')
  chmodSync(join(c.state, 'stripped'), 0o755)

  const rec = records(c)[0]
  chownSync(rec, user.uid, user.gid)
  const r2 = await restore(c, p)
  t.equal(r2.code, 1)
  t.match(r2.stderr, `${rec} is not safe (owner uid ${user.uid}`)
  t.same(fileState(p), stripped)
  chownSync(rec, 0, 0)
  t.equal((await restore(c, p)).code, 0)
})

t.test('usage errors exit 2', async t => {
  const c = makeCase()
  for (const argv of [['strip'], ['strip', '--bogus', '/x'], ['restore'], ['strip', '--reapply', '/usr/bin/ping']]) {
    const r = await runRoot([tree.client, ...argv, '--state-dir', c.state])
    t.equal(r.code, 2, `${argv.join(' ')}: exit 2`)
    t.match(r.stderr, /usage: stx-elevate (strip|restore)/)
  }
})

// ---- the shim: needs the native runner (native/build/stx-run, another part of issue 8)

t.test('the shim runner native/build/stx-run is installed', async t => {
  t.ok(existsSync(STX_RUN), `${STX_RUN} exists (build it with npm run build; scripts/install.sh installs it)`)
})

t.test('strip creates the shim (SHIMDIR/NAME -> stx-run, STATE/shims/NAME -> the binary); restore removes both', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'stxping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'ping.conf', p)
  const shim = join(c.shims, 'stxping')
  const stateLink = join(c.state, 'shims', 'stxping')

  const before = await everything(c, [p])
  const d = await strip(c, '--dry-run', p)
  t.equal(d.code, 0, d.stderr)
  t.match(d.stdout, `would create shim ${shim} -> ${STX_RUN} (runs ${p} through the broker; ${stateLink} -> ${p})`)
  t.equal(d.stderr, '', 'no warning: no default PATH finds the test binary (e2e-strip-ping checks the warning for /usr/bin/ping)')
  t.same(await everything(c, [p]), before, 'the dry run changed nothing')

  const r = await strip(c, p)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, `create shim ${shim} -> ${STX_RUN}`)
  t.equal(readlinkSync(shim), STX_RUN, 'SHIMDIR/NAME links to the runner')
  t.equal(readlinkSync(stateLink), p, 'STATE/shims/NAME links to the stripped binary')
  t.match(JSON.parse(readFileSync(records(c)[0], 'utf8')).shim, { link: shim, runner: STX_RUN, stateLink })

  const x = await restore(c, p)
  t.equal(x.code, 0, x.stderr)
  t.match(x.stdout, `remove shim ${shim}`)
  t.notOk(existsSync(shim) || lstatExists(shim), 'the shim is gone')
  t.notOk(lstatExists(stateLink), 'the state link is gone')
})

t.test('strip refuses to replace a SHIMDIR/NAME that is not a shim, and changes nothing', async t => {
  const c = makeCase()
  const p = await copyOf(c, '/usr/bin/ping', 'ping', { mode: 0o755, cap: 'cap_net_raw=ep' })
  writeRule(c.rules, 'ping.conf', p)
  writeFileSync(join(c.shims, 'ping'), '#!/bin/sh\necho an admin script\n')
  chmodSync(join(c.shims, 'ping'), 0o755)
  const before = await everything(c, [p])
  const r = await strip(c, p)
  t.equal(r.code, 1)
  t.match(r.stderr, `${join(c.shims, 'ping')} exists and is not a stx-elevate shim`)
  t.match(r.stderr, /--shim-dir DIR.*--no-shim/)
  t.same(await everything(c, [p]), before, 'nothing changed')
})

function lstatExists(p: string): boolean {
  try { lstatSync(p); return true } catch { return false }
}
