// stx-elevate scan on a test tree of known setuid, setgid and setcap
// files (copies of /bin/true), run from an installed tree as root and as
// the unprivileged user: the exact verdicts and reasons in the table and
// in the JSON, links not followed, other file systems not crossed,
// unreadable directories and bad rules reported; and a scan of the default
// roots of this machine, which finds /usr/bin/ping with its privilege.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { installTree } from './lib/install.js'
import { takeE2ELock } from './lib/lock.js'
import { rootEnv, runRoot } from './lib/proc.js'
import { rulesDirs } from './lib/rules-dir.js'
import { runAs } from './lib/run.js'
import { ensureTestUsers } from './lib/users.js'

// the lock: the test users and /opt trees are shared with the e2e tests
let release = () => {}
t.teardown(() => release())
release = await takeE2ELock()
const { user } = await ensureTestUsers()
const tree = await installTree()
t.teardown(() => tree.remove())
t.strictSame(tree.missing, [], 'the installed tree is complete (npm run build first)')

const LEARN = 'find out with stx-elevate learn'
const gid = (name: string) => Number(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2])

// ---- the test tree -------------------------------------------------------------------

const top = mkdtempSync('/tmp/stx-scan-')
chmodSync(top, 0o755)
const mounts: string[] = []
t.teardown(() => {
  for (const m of mounts.reverse()) execFileSync('umount', [m])
  rmSync(top, { recursive: true, force: true })
})

/** A copy of /bin/true at top/rel: owner, then mode (chown clears setuid), then capabilities (chown clears them too). */
function make(rel: string, mode: number, opts: { uid?: number; gid?: number; caps?: string[] } = {}): string {
  const path = `${top}/${rel}`
  mkdirSync(path.slice(0, path.lastIndexOf('/')), { recursive: true, mode: 0o755 })
  copyFileSync('/bin/true', path)
  chownSync(path, opts.uid ?? 0, opts.gid ?? 0)
  chmodSync(path, mode)
  if (opts.caps) execFileSync('setcap', [...opts.caps, path])
  return path
}

const bin = `${top}/bin`
make('bin/ping', 0o755, { caps: ['cap_net_raw=ep'] })
make('bin/fping-like', 0o755, { caps: ['cap_net_raw=ep'] })
make('bin/su', 0o4755)
make('bin/mystery', 0o4755)
make('bin/wall', 0o2755, { gid: gid('tty') })
make('bin/mailer', 0o2755, { gid: gid('mail') })
make('bin/admin', 0o755, { caps: ['cap_sys_admin=ep'] })
make('bin/ptp-like', 0o755, { caps: ['cap_net_bind_service,cap_net_admin=ep'] })
make('bin/ping6', 0o4755)
make('bin/as-daemon', 0o4755, { uid: 1, gid: 1 })
make('bin/ns-raw', 0o755, { caps: ['-n', '1000', 'cap_net_raw=ep'] })
make('bin/plain', 0o755)
make('lib/deep/er/mount', 0o4755)
symlinkSync(`${bin}/su`, `${bin}/link-to-su`)
symlinkSync(bin, `${top}/linked-dir`)
make('private/hidden-su', 0o4755)
chmodSync(`${top}/private`, 0o700)
mkdirSync(`${top}/mnt`, { mode: 0o755 })
execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'stx-scan-test', `${top}/mnt`])
mounts.push(`${top}/mnt`)
make('mnt/elsewhere-su', 0o4755)

const { make: rulesDir } = rulesDirs(t, '/tmp/stx-scan-rules-')
const rule = (path: string, calls = '') => `[program]\npath = ${path}\nusers = *\n${calls}`
const rules = rulesDir({
  'ping.conf': rule(`${bin}/ping`, '[socket.icmp]\nas = root\ndomain = inet\ntype = raw\nprotocol = icmp\n'),
  'su.conf': rule(`${bin}/su`),
})

// every file the tree holds with privilege, outside private/ and mnt/:
// [verdict, privilege, reason]
const EXPECTED: Record<string, [string, string, string]> = {
  [`${bin}/admin`]: ['not replaceable', 'cap_sys_admin=ep', 'cap_sys_admin: mounts, namespaces and most system administration'],
  [`${bin}/as-daemon`]: ['not replaceable', 'setuid daemon', 'runs as user daemon (credentials)'],
  [`${bin}/fping-like`]: ['network', 'cap_net_raw=ep',
    'cap_net_raw: raw and packet sockets: [socket.NAME] rules (privileged options: [setsockopt.NAME])'],
  [`${bin}/mailer`]: ['not replaceable', 'setgid mail', 'file access as group mail'],
  [`${bin}/mystery`]: ['unknown', 'setuid root', `setuid root, use of privilege unknown; ${LEARN}`],
  [`${bin}/ns-raw`]: ['network', 'cap_net_raw=ep (in the user namespace of uid 1000)',
    'cap_net_raw: raw and packet sockets: [socket.NAME] rules (privileged options: [setsockopt.NAME])'],
  [`${bin}/ping`]: ['covered', 'cap_net_raw=ep', `rule ${rules}/ping.conf (installed)`],
  [`${bin}/ping6`]: ['network', 'setuid root', 'setuid root for raw ICMP sockets (iputils) only'],
  [`${bin}/ptp-like`]: ['unknown', 'cap_net_bind_service,cap_net_admin=ep',
    'cap_net_admin: the broker performs only the socket options that need it (SO_MARK, SO_PRIORITY, SO_RCVBUFFORCE, '
    + 'SO_SNDBUFFORCE, IP_TRANSPARENT), not interface, route or firewall configuration; which the program needs is unknown, '
    + LEARN],
  [`${bin}/su`]: ['covered', 'setuid root',
    `rule ${rules}/su.conf (installed); yet changes credentials: runs a shell as another user, which no rule can grant`],
  [`${bin}/wall`]: ['not replaceable', 'setgid tty', 'writes to other users\' terminals (setgid tty)'],
  [`${top}/lib/deep/er/mount`]: ['not replaceable', 'setuid root', 'mounts file systems (cap_sys_admin)'],
}

t.test('control: the test tree holds what it should (chown after chmod would have cleared the bits)', async t => {
  t.equal(lstatSync(`${bin}/su`).mode & 0o7777, 0o4755)
  t.equal(lstatSync(`${bin}/wall`).mode & 0o7777, 0o2755)
  t.match(execFileSync('getcap', [`${bin}/admin`], { encoding: 'utf8' }), 'cap_sys_admin=ep')
  t.equal(lstatSync(`${top}/mnt`).dev !== lstatSync(top).dev, true, 'mnt is another file system')
})

// ---- running it ----------------------------------------------------------------------

interface Scan { code: number | null; stdout: string; stderr: string }

const scanRoot = (...args: string[]): Promise<Scan> =>
  runRoot([tree.client, 'scan', ...args], { env: rootEnv(), timeoutMs: 120_000 })
const scanAsUser = (...args: string[]): Promise<Scan> =>
  runAs(user, [tree.client, 'scan', ...args], { timeoutMs: 120_000 })

/** The table's rows by path: columns are two or more spaces apart. */
function tableRows(t: Test, stdout: string): Map<string, string[]> {
  const lines = stdout.split('\n')
  const header = lines[0].split(/ {2,}/)
  const rows = new Map<string, string[]>()
  for (const line of lines.slice(1)) {
    if (!line.startsWith('/')) break
    const cells = line.split(/ {2,}/)
    rows.set(cells[0], cells)
  }
  t.strictSame(header, ['PATH', 'MODE', 'PRIVILEGE', 'VERDICT', 'REASON/RULE'], 'the table header')
  return rows
}

function checkJson(t: Test, json: any, expected: Record<string, [string, string, string]>): void {
  t.strictSame(json.files.map((f: any) => f.path), Object.keys(expected).sort(), 'exactly the expected files, sorted by path')
  for (const f of json.files) {
    const [verdict, privilege, reason] = expected[f.path] ?? []
    t.strictSame([f.verdict, f.privilege, f.reason], [verdict, privilege, reason], f.path)
  }
}

t.test('as root: every privileged file once, with its exact verdict and reason, as a table', async t => {
  const r = await scanRoot('--rules', rules, top)
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stderr, '', 'nothing to complain about')
  const rows = tableRows(t, r.stdout)
  const expected = {
    ...EXPECTED,
    [`${top}/private/hidden-su`]: ['unknown', 'setuid root', `setuid root, use of privilege unknown; ${LEARN}`] as [string, string, string],
  }
  t.strictSame([...rows.keys()], Object.keys(expected).sort(), 'rows sorted by path; no link, plain file or other file system')
  for (const [path, [verdict, privilege, reason]] of Object.entries(expected)) {
    t.strictSame(rows.get(path)?.slice(2), [privilege, verdict, reason], path)
  }
  t.equal(rows.get(`${bin}/su`)?.[1], '4755 root:root', 'mode and owner')
  t.equal(rows.get(`${bin}/wall`)?.[1], '2755 root:tty')
  t.equal(rows.get(`${bin}/as-daemon`)?.[1], '4755 daemon:daemon')
  t.match(r.stdout, `\n13 privileged files under ${top}: 2 covered, 3 network, 5 not replaceable, 3 unknown\n`)
  t.match(r.stdout, `\nnot crossed (other file systems; name them as roots to scan them): ${top}/mnt\n`)
})

t.test('as root, --json: the same verdicts, with owner, mode, capabilities and rule', async t => {
  const r = await scanRoot('--rules', rules, '--json', top)
  t.equal(r.code, 0, r.stderr)
  const json = JSON.parse(r.stdout)
  checkJson(t, json, {
    ...EXPECTED,
    [`${top}/private/hidden-su`]: ['unknown', 'setuid root', `setuid root, use of privilege unknown; ${LEARN}`],
  })
  const byPath = new Map(json.files.map((f: any) => [f.path, f]))
  t.match(byPath.get(`${bin}/ping`), {
    mode: '0755', uid: 0, user: 'root', gid: 0, group: 'root', setuid: false, setgid: false,
    capabilities: { text: 'cap_net_raw=ep', permitted: ['cap_net_raw'], inheritable: [], effective: true },
    verdict: 'covered', judged: 'network', rule: { file: `${rules}/ping.conf`, where: 'installed' },
  })
  t.match(byPath.get(`${bin}/ns-raw`), { capabilities: { rootid: 1000 } })
  t.match(byPath.get(`${bin}/wall`), { mode: '2755', setgid: true, group: 'tty', capabilities: null, rule: null })
  t.match(byPath.get(`${bin}/su`), { verdict: 'covered', judged: 'not replaceable' })
  t.strictSame(byPath.get(`${bin}/ptp-like`) && (byPath.get(`${bin}/ptp-like`) as any).privileges.map((p: any) => [p.privilege, p.verdict]),
    [['cap_net_bind_service', 'network'], ['cap_net_admin', 'unknown']], 'each privilege judged on its own')
  t.strictSame(json.summary, { files: 13, covered: 2, network: 3, 'not replaceable': 5, unknown: 3 })
  t.strictSame(json.roots, [top])
  t.strictSame(json.notCrossed, [`${top}/mnt`])
  t.strictSame(json.errors, [])
  t.strictSame(json.rules, { installed: rules, shipped: tree.shippedRules })
})

t.test('a mount point named as a root is scanned; several roots are reported once', async t => {
  const r = await scanRoot('--rules', rules, '--json', `${top}/mnt`, `${top}/linked-dir`, bin, `${bin}/su`)
  t.equal(r.code, 0, r.stderr)
  const json = JSON.parse(r.stdout)
  t.strictSame(json.roots, [`${top}/mnt`, bin], 'the linked directory is resolved to bin, walked once')
  const paths = json.files.map((f: any) => f.path)
  t.ok(paths.includes(`${top}/mnt/elsewhere-su`))
  t.equal(paths.filter((p: string) => p === `${bin}/su`).length, 1, 'su once')
  t.notOk(paths.some((p: string) => p.includes('linked-dir') || p.includes('link-to-su')), 'reported by canonical paths only')
})

t.test('as the unprivileged user: the same verdicts; an unreadable directory is said, not skipped silently', async t => {
  const r = await scanAsUser('--rules', rules, top)
  t.equal(r.code, 0, 'the scan completed')
  t.equal(r.stderr, `stx-elevate scan: ${top}/private: cannot be read (permission denied); the files in it were not scanned\n`)
  const rows = tableRows(t, r.stdout)
  t.strictSame([...rows.keys()], Object.keys(EXPECTED).sort(), 'hidden-su not seen')
  for (const [path, [verdict, , reason]] of Object.entries(EXPECTED)) t.strictSame(rows.get(path)?.slice(3), [verdict, reason], path)

  const j = await scanAsUser('--rules', rules, '--json', top)
  t.equal(j.code, 0)
  t.equal(j.stderr, '', 'JSON mode: everything is in the document')
  const json = JSON.parse(j.stdout)
  checkJson(t, json, EXPECTED)
  t.strictSame(json.errors, [{ kind: 'file', path: `${top}/private`, message: 'cannot be read (permission denied); the files in it were not scanned' }])
})

t.test('a root that cannot be scanned: exit 1, said; the other roots are still scanned', async t => {
  const r = await scanAsUser('--rules', rules, `${top}/private`, `${top}/lib`, '/nonexistent-stx', '/proc', '/dev/null')
  t.equal(r.code, 1)
  t.strictSame(r.stderr.split('\n').filter(Boolean), [
    `stx-elevate scan: ${top}/private: cannot be scanned: permission denied`,
    'stx-elevate scan: /nonexistent-stx: cannot be scanned: does not exist',
    'stx-elevate scan: /proc: is on a proc file system, which holds no programs; not scanned',
    'stx-elevate scan: /dev/null: is neither a directory nor a regular file; not scanned',
  ])
  t.match(r.stdout, `${top}/lib/deep/er/mount `)
  const j = await scanAsUser('--rules', rules, '--json', `${top}/private`, `${top}/lib`)
  t.equal(j.code, 1)
  t.strictSame(JSON.parse(j.stdout).errors, [{ kind: 'root', path: `${top}/private`, message: 'cannot be scanned: permission denied' }])
})

t.test('bad or missing rules are reported, and scan still judges', async t => {
  const bad = rulesDir({ 'ping.conf': rule(`${bin}/ping`), 'su.conf': rule(`${bin}/su`) })
  chmodSync(`${bad}/su.conf`, 0o666)
  const r = await scanRoot('--rules', bad, '--json', bin)
  t.equal(r.code, 0, 'the scan itself completed')
  const json = JSON.parse(r.stdout)
  t.strictSame(json.errors, [{
    kind: 'rules', path: bad,
    message: `installed rules: a problem (stx-elevate check --rules ${bad} lists every one); first: `
      + `${bad}/su.conf: is writable by group or other (mode 0666); make it 0644 or stricter`,
  }])
  const byPath = new Map(json.files.map((f: any) => [f.path, f]))
  t.match(byPath.get(`${bin}/ping`), { verdict: 'covered' }, 'the file that loaded still covers')
  t.match(byPath.get(`${bin}/su`), { verdict: 'not replaceable', rule: null }, 'the refused file covers nothing')

  const human = await scanRoot('--rules', bad, bin)
  t.match(human.stderr, `stx-elevate scan: ${bad}: installed rules: a problem`)

  const missing = await scanRoot('--rules', `${top}/no-such-rules`, '--json', bin)
  t.equal(missing.code, 0)
  t.match(JSON.parse(missing.stdout).errors, [{ kind: 'rules', path: `${top}/no-such-rules`, message: /does not exist/ }],
    'a rules directory named on the command line must exist')
})

t.test('usage errors exit 2', async t => {
  const r = await scanRoot('--bogus')
  t.equal(r.code, 2)
  t.match(r.stderr, /^stx-elevate scan: Unknown argument: bogus\nusage: stx-elevate scan /)
  const empty = await scanRoot('')
  t.equal(empty.code, 2)
  t.match(empty.stderr, 'an empty ROOT')
})

t.test('the default roots of this machine: /usr/bin/ping with its privilege, covered by the shipped rule', async t => {
  // control: what ping holds, from stat and getcap rather than from scan
  const st = lstatSync('/usr/bin/ping')
  const getcap = execFileSync('getcap', ['/usr/bin/ping'], { encoding: 'utf8' }).trim()
  const caps = getcap.split(' ')[1] ?? null
  t.ok(caps !== null || (st.mode & 0o4000) !== 0, `/usr/bin/ping holds a privilege here (iputils-ping installed): ${getcap || 'no capability'}, mode ${(st.mode & 0o7777).toString(8)}`)
  const empty = rulesDir()
  const r = await scanRoot('--rules', empty, '--json')
  t.equal(r.code, 0, r.stderr)
  const json = JSON.parse(r.stdout)
  t.ok(json.roots.includes('/usr'), 'the default roots include /usr')
  const ping = json.files.find((f: any) => f.path === '/usr/bin/ping')
  t.ok(ping, '/usr/bin/ping found')
  t.equal(ping?.capabilities?.text ?? null, caps, 'with the capability getcap reports')
  t.equal(ping?.setuid, (st.mode & 0o4000) !== 0, 'and its setuid bit as stat says')
  t.strictSame(ping?.rule, { file: `${tree.shippedRules}/ping.conf`, where: 'shipped' })
  t.equal(ping?.reason, `shipped rule ${tree.shippedRules}/ping.conf (not installed; stx-elevate strip installs it)`)
  t.notOk(json.files.some((f: any) => f.path.startsWith('/bin/') || f.path.startsWith('/sbin/')), 'merged /usr: each file once, under /usr')
})

