/*
 * npm run bench: issue 7's benchmarks, as root, in one run. Builds the C
 * programs (cc) into the installed tree, creates the test user, sets
 * ping_group_range "1 0", starts a broker on a private socket with private
 * rules, measures, prints a table of medians and ratios to the baselines
 * measured in the same run, and undoes everything (also on failure, on
 * SIGINT/SIGTERM, and past a global deadline).
 *
 * BENCH_ROUNDS (default 5) rounds of parts 1-3; BENCH_SCALE (default 1000)
 * programs at once in part 4 (0 skips it); BENCH_SCALE_CALLS (default 20).
 * BENCH_PROFILE=DIR: the broker runs with --cpu-prof into DIR.
 * BENCH_STRACE_BROKER=FILE: first a strace -c of the broker over 2000 socket() calls.
 * Part 3 runs ping -c1 as a setcap copy, through a shim (a link ping ->
 * stx-run with a state directory, as `stx-elevate strip` lays it out), through
 * stx-run by name and through stx-elevate; the shim's target is setcap + 3 ms.
 */
import { spawn } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { takeE2ELock } from '../test/lib/lock.js'
import { ensureTestUsers } from '../test/lib/users.js'
import { withSysctl } from '../test/lib/sysctl.js'
import { installTree } from '../test/lib/install.js'
import { startBroker } from '../test/lib/broker.js'
import { cleanArgv, killUserProcesses, mustRunRoot, runRoot, sleep } from '../test/lib/proc.js'
import { asUser, runAs, userEnv } from '../test/lib/run.js'
import { bindSection, icmp4, pingRule, ruleFile } from '../test/lib/rules.js'
import { repoRoot } from '../test/lib/paths.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SCALE = Number(process.env.BENCH_SCALE ?? 1000)
const SCALE_CALLS = Number(process.env.BENCH_SCALE_CALLS ?? 20)
const UNTRAPPED_N = 2_000_000
const TRAPPED_N = 2000
const DEADLINE_MS = 20 * 60_000

const teardowns: Array<() => unknown> = []
let passing = true
const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) }, passing: () => passing }
let cleaning: Promise<void> | undefined
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (teardowns.length) {
      try { await teardowns.pop()!() } catch (e) { process.stderr.write(`bench cleanup: ${(e as Error).message}\n`) }
    }
  })()
  return cleaning
}
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => { passing = false; void cleanup().then(() => process.exit(130)) })
const deadline = setTimeout(() => {
  process.stderr.write(`bench: over ${DEADLINE_MS / 60000} minutes, giving up\n`)
  passing = false
  void cleanup().then(() => process.exit(1))
}, DEADLINE_MS)

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN }
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] }
const log = (m: string) => process.stderr.write(`bench: ${m}\n`)

/** rows of the table: name -> samples */
const samples = new Map<string, { unit: string, xs: number[] }>()
const add = (name: string, unit: string, x: number) => {
  if (!Number.isFinite(x)) return
  const r = samples.get(name) ?? { unit, xs: [] }
  r.xs.push(x); samples.set(name, r)
}
const med = (name: string) => median(samples.get(name)?.xs ?? [])

function parseWork(out: string, what: string): { n: number, ok: number, perCall: number, t0: number, t1: number, lats: number[] } {
  const line = out.split('\n').find(l => /^(getppid|read|socket|bind) /.test(l))
  if (!line) throw new Error(`${what}: no result line in ${JSON.stringify(out.slice(-500))}`)
  const f = line.trim().split(' ')
  return { n: Number(f[1]), ok: Number(f[2]), perCall: Number(f[4]), t0: Number(f[5]), t1: Number(f[6]), lats: f.slice(7).map(Number) }
}

async function main() {
  let release = () => {}
  t.teardown(() => release())
  release = await takeE2ELock()
  const { user } = await ensureTestUsers()
  withSysctl(t, 'net/ipv4/ping_group_range', '1 0')
  const tree = await installTree()
  t.teardown(async () => { await killUserProcesses(user.uid); await tree.remove() })

  // ---- build ----
  const bin = tree.path('bench-bin')
  mkdirSync(bin, { mode: 0o755 })
  for (const p of ['work', 'csup', 'tm']) {
    await mustRunRoot(['cc', '-O2', '-Wall', '-Wextra', '-D_GNU_SOURCE', '-o', join(bin, p), join(repoRoot, 'bench', 'c', `${p}.c`)], { timeoutMs: 120_000 })
    chownSync(join(bin, p), 0, 0); chmodSync(join(bin, p), 0o755)
  }
  copyFileSync('/usr/bin/ping', join(bin, 'ping'))  // a copy has no file capability
  chmodSync(join(bin, 'ping'), 0o755)
  const work = join(bin, 'work'), csup = join(bin, 'csup'), tm = join(bin, 'tm'), ping = join(bin, 'ping')
  // the setcap baseline: a copy of ping with the file capability Debian gives it (whatever /usr/bin/ping holds now)
  const setcapPing = join(bin, 'ping-setcap')
  copyFileSync('/usr/bin/ping', setcapPing); chmodSync(setcapPing, 0o755)
  await mustRunRoot(['setcap', 'cap_net_raw+ep', setcapPing])
  // a shim as `stx-elevate strip` lays it out: SHIMS/ping -> stx-run, STATE/shims/ping -> the capability-less copy
  const shimBin = join(bin, 'shim-bin'), state = join(bin, 'state')
  mkdirSync(join(state, 'shims'), { recursive: true, mode: 0o755 }); mkdirSync(shimBin, { mode: 0o755 })
  for (const d of [state, join(state, 'shims'), shimBin]) chmodSync(d, 0o755)
  symlinkSync(tree.runner, join(shimBin, 'ping'))
  symlinkSync(ping, join(state, 'shims', 'ping'))
  const scaleClient = join(bin, 'scale-client.mjs')
  copyFileSync(join(repoRoot, 'bench', 'scale-client.mjs'), scaleClient); chmodSync(scaleClient, 0o644)

  // ---- broker ----
  const rules = {
    'bench.conf': ruleFile({ path: work, users: [user.name] }, [icmp4(), bindSection({ name: 'http', families: ['inet'], types: ['stream'], ports: [80], addresses: ['127.0.0.1'] })]),
    'ping.conf': pingRule({ path: ping, users: [user.name] }),
  }
  const scaleSessions = Math.max(SCALE + 100, 200)
  const b = await startBroker(t, tree, {
    rules,
    nodeArgs: process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
    extraArgs: ['--max-sessions-per-user', String(scaleSessions), '--max-fds-per-user', String(scaleSessions * 20),
      '--max-notifications-per-user', String(scaleSessions * 4), '--refusal-limit', '1000000'],
  })
  const brokerPid = b.proc.pid!
  // the broker's own filter bytes for the same rules, for the C baselines
  const { loadRuleFile } = await import(`${tree.root}/dist/broker/rules/load.js`)
  const { buildFilter } = await import(`${tree.root}/dist/broker/seccomp/filter.js`)
  for (const [name, file] of [['bench', 'bench.conf'], ['ping', 'ping.conf']]) {
    const r = loadRuleFile(join(b.rulesDir, file))
    if (!r.program) throw new Error(`${file}: ${JSON.stringify(r.errors)}`)
    writeFileSync(join(bin, `${name}.bpf`), buildFilter(r.program))
  }
  const bpf = join(bin, 'bench.bpf'), pingBpf = join(bin, 'ping.bpf')
  const env = userEnv(user)
  const client = (...argv: string[]) => [tree.client, '--socket', b.socket, ...argv]
  const asRootCsup = (filter: string, ...argv: string[]) => [csup, filter, String(user.uid), String(user.gid), ...argv]
  const pin = async (cpus: string) => { await mustRunRoot(['taskset', '-a', '-p', '-c', cpus, String(brokerPid)]) }
  const must = (r: { code: number | null, stdout: string, stderr: string }, what: string) => {
    if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\n${r.stdout.slice(-1000)}\n${r.stderr.slice(-1000)}`)
    return r
  }
  const hasStrace = existsSync('/usr/bin/strace')
  const hasSudo = existsSync('/usr/bin/sudo')
  log(`broker pid ${brokerPid} on ${b.socket}; ${ROUNDS} rounds`)
  if (process.env.BENCH_STRACE_BROKER) {
    // diagnostic: the broker's system calls (counts, kernel time) over 2000 brokered socket() calls
    const st = spawn('strace', ['-c', '-f', '-p', String(brokerPid), '-o', process.env.BENCH_STRACE_BROKER], { stdio: 'ignore' })
    await sleep(1000)
    must(await runAs(user, client(work, 'socket', '2000'), { env, timeoutMs: 120_000 }), 'stx socket under strace')
    st.kill('SIGINT')
    await new Promise(r => st.on('close', r))
  }

  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round}/${ROUNDS}`)
    // 1. untrapped
    for (const mode of ['getppid', 'read']) {
      const N = String(UNTRAPPED_N)
      add(`1 ${mode}: direct (a)`, 'ns/call', parseWork(must(await runAs(user, [work, mode, N], { env }), 'direct').stdout, 'direct').perCall)
      add(`1 ${mode}: C filter (b)`, 'ns/call', parseWork(must(await runRoot(asRootCsup(bpf, work, mode, N)), 'csup').stdout, 'csup').perCall)
      add(`1 ${mode}: stx-elevate (c)`, 'ns/call', parseWork(must(await runAs(user, client(work, mode, N), { env }), 'stx').stdout, 'stx').perCall)
    }
    // 2. trapped
    for (const mode of ['socket', 'bind']) {
      const N = String(TRAPPED_N)
      for (const [place, cpus] of [['same CPU', '0'], ['free', '0,1']]) {
        const ts = ['taskset', '-c', cpus]
        const c = parseWork(must(await runRoot([...ts, ...asRootCsup(bpf, work, mode, N)]), `csup ${mode}`).stdout, 'csup')
        add(`2 ${mode} ${place}: C supervisor`, 'us/call', c.perCall / 1000)
        await pin(cpus)
        const s = parseWork(must(await runAs(user, client(work, mode, N), { env, timeoutMs: 120_000 }), `stx ${mode}`).stdout, 'stx')
        add(`2 ${mode} ${place}: stx-elevate`, 'us/call', s.perCall / 1000)
      }
      await pin('0,1')
      if (hasStrace && mode === 'socket') {
        const r = must(await runRoot(['strace', '-f', '-qq', '-e', 'trace=socket', '-o', '/dev/null', work, mode, N], { timeoutMs: 120_000 }), 'strace')
        add(`2 ${mode} free: strace -f (root)`, 'us/call', parseWork(r.stdout, 'strace').perCall / 1000)
      }
    }
    // 3. whole process (tm runs each command 5 times; its own fork+exec+wait is in every figure alike)
    const times = (out: string) => out.trim().split('\n').map(l => l.split(' ')).filter(f => f[1] === '0').map(f => Number(f[0]) / 1000)
    /** a row of wall times, and with `detail` rows of the client's phases (STX_ELEVATE_TIMING=1 lines, one per run) */
    const phases = (name: string, r: { stdout: string, stderr: string }, detail?: string) => {
      const walls = times(r.stdout)
      for (const x of walls) add(name, 'ms', x)
      if (!detail) return
      const marks = r.stderr.split('\n').filter(l => l.startsWith('stx-elevate timing:')).map(l => Object.fromEntries(l.slice(20).trim().split(' ').map(kv => { const [k, v] = kv.split('='); return [k, Number(v)] })))
      marks.forEach((m, i) => {
        if (walls[i] === undefined) return
        add(`3  ${detail}: exec, load and teardown (wall - exit mark)`, 'ms', walls[i] - m.exit)
        add(`3  ${detail}: connect (start to connected)`, 'ms', m.connected - m.loaded)
        add(`3  ${detail}: launch (connected to started)`, 'ms', m.started - m.connected)
        add(`3  ${detail}: program runs (started to exit message)`, 'ms', m.exited - m.started)
        add(`3  ${detail}: exit (exit message to process exit)`, 'ms', m.exit - m.exited)
      })
    }
    const T = '5'
    const pingArgs = ['-c1', '-W1', '127.0.0.1']
    for (const x of times(must(await runAs(user, [tm, T, setcapPing, ...pingArgs], { env }), 'setcap ping').stdout)) add('3 setcap ping -c1', 'ms', x)
    // the bare name through a shim (stx-run, no node), then stx-run by name, each with its phases
    const shimEnv = { ...env, STX_ELEVATE_SOCKET: b.socket, STX_ELEVATE_STATE_DIR: state, STX_ELEVATE_TIMING: '1' }
    const shim = must(await runAs(user, [tm, T, join(shimBin, 'ping'), ...pingArgs], { env: shimEnv }), 'shim ping')
    phases('3 shim ping -c1 (ping -> stx-run)', shim, 'stx-run')
    phases('3 stx-run ping -c1', must(await runAs(user, [tm, T, tree.runner, '--socket', b.socket, ping, ...pingArgs], { env: shimEnv }), 'stx-run ping'))
    for (const x of times(must(await runAs(user, [tm, T, process.execPath, '-e', '0'], { env }), 'node -e 0').stdout)) add('3 node -e 0', 'ms', x)
    for (const x of times(must(await runRoot([tm, T, ...asRootCsup(pingBpf, ping, ...pingArgs)]), 'csup ping').stdout)) add('3 C supervisor ping -c1 (root starts it)', 'ms', x)
    for (const x of times(must(await runAs(user, [tm, T, ...client(ping, ...pingArgs)], { env }), 'stx ping').stdout)) add('3 stx-elevate ping -c1', 'ms', x)
    for (const x of times(must(await runAs(user, [tm, T, work, 'getppid', '1'], { env }), 'work').stdout)) add('3 trivial program direct', 'ms', x)
    const st = must(await runAs(user, [tm, T, ...client(work, 'getppid', '1')], { env: { ...env, STX_ELEVATE_TIMING: '1' } }), 'stx trivial')
    const walls = times(st.stdout)
    for (const x of walls) add('3 stx-elevate trivial program', 'ms', x)
    const marks = st.stderr.split('\n').filter(l => l.startsWith('stx-elevate timing:')).map(l => Object.fromEntries(l.slice(20).trim().split(' ').map(kv => { const [k, v] = kv.split('='); return [k, Number(v)] })))
    marks.forEach((m, i) => {
      const wall = walls[i]
      if (wall === undefined) return
      add('3  client: node start (exec to timeOrigin, from wall - exit mark)', 'ms', wall - m.exit)
      add('3  client: module load (timeOrigin to loaded)', 'ms', m.loaded)
      add('3  client: connect (loaded to connected)', 'ms', m.connected - m.loaded)
      add('3  client: launch (connected to started)', 'ms', m.started - m.connected)
      add('3  client: program runs (started to exit message)', 'ms', m.exited - m.started)
      add('3  client: exit (exit message to process exit)', 'ms', m.exit - m.exited)
    })
    if (hasSudo) for (const x of times(must(await runRoot([tm, T, '/usr/bin/sudo', '-u', user.name, '/bin/true']), 'sudo').stdout)) add('3 sudo -u USER true', 'ms', x)
  }

  // 4. scale
  let scale: Record<string, unknown> | undefined
  if (SCALE > 0) {
    log(`scale: ${SCALE} programs x ${SCALE_CALLS} socket() calls`)
    const auditStart = readFileSync(b.audit, 'utf8').length
    const logStart = b.stderr().length
    scale = await runScale(user, env, tree.root, b.socket, brokerPid, work, SCALE, SCALE_CALLS)
    // what the broker recorded during the scale run: grants, refusals and why
    const events: Record<string, number> = {}
    for (const l of readFileSync(b.audit, 'utf8').slice(auditStart).split('\n')) {
      if (!l.trim()) continue
      try {
        const a = JSON.parse(l)
        const k = a.event === 'grant' || a.event === 'launch' || a.event === 'exit' ? a.event : `${a.event}: ${a.reason ?? a.errno ?? ''}`
        events[k] = (events[k] ?? 0) + 1
      } catch { events['unparsed'] = (events['unparsed'] ?? 0) + 1 }
    }
    scale.audit = events
    // the broker's own log lines during the run (warnings, failed handling), by message without numbers
    const logs: Record<string, number> = {}
    for (const l of b.stderr().slice(logStart).split('\n')) {
      if (!l.trim()) continue
      let msg = l
      try { msg = JSON.parse(l).msg ?? l } catch { /* plain text */ }
      const k = String(msg).replace(/(session|pid|call) \d+/g, '$1 N').slice(0, 160)
      logs[k] = (logs[k] ?? 0) + 1
    }
    scale.brokerLog = logs
  }
  printTable(hasStrace, hasSudo, scale)
}

async function brokerState(pid: number): Promise<{ rssKb: number, fds: number }> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1])
  return { rssKb, fds: readdirSync(`/proc/${pid}/fd`).length }
}

async function runScale(user: { uid: number, gid: number, name: string }, env: Record<string, string>, treeRoot: string, socket: string,
  brokerPid: number, work: string, count: number, calls: number): Promise<Record<string, unknown>> {
  // settle, then measure the broker idle
  await sleep(500)
  const before = await brokerState(brokerPid)
  const argv = cleanArgv(asUser(user as any, [process.execPath, join(treeRoot, 'bench-bin', 'scale-client.mjs'), treeRoot, socket, String(count), work, 'socket', String(calls), 'bl']), env)
  const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
  let out = '', err = ''
  p.stdout!.setEncoding('utf8').on('data', d => { out += d })
  p.stderr!.setEncoding('utf8').on('data', d => { err += d })
  let gone = false
  const exited = new Promise<void>(r => p.on('close', () => { gone = true; r() }))
  const until = async (cond: () => boolean, ms: number, what: string) => {
    const end = Date.now() + ms
    while (!cond()) { if (Date.now() > end || gone) throw new Error(`scale: ${what} not within ${ms} ms\n${err.slice(-2000)}`); await sleep(50) }
  }
  try {
    const t0 = Date.now()
    await until(() => /started \d+/.test(err) || /RESULT/.test(err), 180_000, 'all sessions started')
    const startMs = Date.now() - t0
    const during = await brokerState(brokerPid)
    p.stdin!.write(Buffer.alloc(count, 0x31))
    await until(() => /RESULT/.test(err), 180_000, 'all programs exited')
    await Promise.race([exited, sleep(5000)])
    const result = JSON.parse(/RESULT (.*)/.exec(err)![1])
    const lines = out.split('\n').filter(l => l.startsWith('socket '))
    const parsed = lines.map(l => parseWork(l, 'scale'))
    const lats = parsed.flatMap(r => r.lats).map(ns => ns / 1000)
    const answered = parsed.reduce((s, r) => s + r.ok, 0)
    // calls answered with an fd that is not the socket asked for (work.c checks each)
    const wrong = [...err.matchAll(/socket: (\d+) of \d+ calls returned an fd that is not a raw ICMP socket/g)].reduce((s, m) => s + Number(m[1]), 0)
    const t0s = Math.min(...parsed.map(r => r.t0)), t1s = Math.max(...parsed.map(r => r.t1))
    await sleep(1000)
    const after = await brokerState(brokerPid)
    return {
      programs: count, callsEach: calls, startAllMs: startMs,
      started: result.started, exitStatuses: result.statuses, exited: result.exited, exitedOk: result.ok, failed: result.failed, failures: result.failures,
      resultLines: lines.length, callsAnswered: answered, callsExpected: count * calls, wrongAnswers: wrong,
      callsPerSec: answered / ((t1s - t0s) / 1e9), p50us: pct(lats, 0.5), p99us: pct(lats, 0.99),
      rssKbPerSession: (during.rssKb - before.rssKb) / count, fdsPerSession: (during.fds - before.fds) / count,
      broker: { before, during, after },
    }
  } finally {
    try { process.kill(-p.pid!, 'SIGKILL') } catch { /* gone */ }
  }
}

function printTable(hasStrace: boolean, hasSudo: boolean, scale?: Record<string, unknown>) {
  const rows: string[] = []
  const fmt = (x: number) => Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2)) : '-'
  rows.push(`stx-elevate benchmarks: medians of ${ROUNDS} rounds (${new Date().toISOString()}, ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, node ${process.version})`)
  rows.push('')
  rows.push(`${'measurement'.padEnd(66)} ${'median'.padStart(9)} unit     n   ratio`)
  const ratio = (name: string) => {
    const m = /^(\d) (\S+)( same CPU| free)?:/.exec(name)
    if (name.startsWith('1 ') && name.endsWith('(c)')) {
      const base = name.replace(' stx-elevate (c)', '')
      return `(c)/(a) ${fmt(med(name) / med(`${base} direct (a)`))}  (c)/(b) ${fmt(med(name) / med(`${base} C filter (b)`))}`
    }
    if (m && name.startsWith('2 ') && !name.endsWith('C supervisor')) {
      return `/C supervisor ${fmt(med(name) / med(`2 ${m[2]}${m[3] ?? ' free'}: C supervisor`))}`
    }
    if (name === '3 stx-elevate ping -c1') {
      const budget = med('3 setcap ping -c1') + med('3 node -e 0') + 10
      return `/setcap ${fmt(med(name) / med('3 setcap ping -c1'))}; target setcap+node+10 = ${fmt(budget)} ms, over by ${fmt(med(name) - budget)} ms`
    }
    if (name === '3 shim ping -c1 (ping -> stx-run)' || name === '3 stx-run ping -c1') {
      const over = med(name) - med('3 setcap ping -c1')
      return `setcap +${fmt(over)} ms; target setcap+3 = ${fmt(med('3 setcap ping -c1') + 3)} ms: ${over <= 3 ? 'met' : `over by ${fmt(over - 3)} ms`}`
    }
    if (name === '3 stx-elevate trivial program') return `/node -e 0 ${fmt(med(name) / med('3 node -e 0'))}`
    return ''
  }
  for (const [name, r] of samples) {
    rows.push(`${name.slice(2).padEnd(66)} ${fmt(median(r.xs)).padStart(9)} ${r.unit.padEnd(7)} ${String(r.xs.length).padStart(3)}   ${ratio(name)}`)
    if (name.startsWith('2 ') && r.unit === 'us/call') rows.push(`${''.padEnd(66)} ${fmt(1e6 / median(r.xs)).padStart(9)} calls/s`)
  }
  if (!hasStrace) rows.push('(strace not installed: no ptrace row)')
  if (!hasSudo) rows.push('(sudo not installed: no sudo row)')
  if (scale) {
    rows.push('')
    rows.push(`4 scale: ${scale.programs} programs at once on one broker, ${scale.callsEach} raw socket() calls each`)
    rows.push(`  total ${fmt(scale.callsPerSec as number)} calls/s, latency p50 ${fmt(scale.p50us as number)} us, p99 ${fmt(scale.p99us as number)} us`)
    rows.push(`  broker per session: ${fmt(scale.rssKbPerSession as number)} KB RSS, ${fmt(scale.fdsPerSession as number)} fds; all ${scale.programs} started in ${scale.startAllMs} ms`)
    rows.push(`  lost: started ${scale.started}/${scale.programs}, exit statuses delivered ${scale.exited}/${scale.programs} (${JSON.stringify(scale.exitStatuses)}), result lines ${scale.resultLines}, calls answered with a raw socket ${scale.callsAnswered}/${scale.callsExpected}, with another fd ${scale.wrongAnswers}, failures ${scale.failed} ${JSON.stringify(scale.failures)}`)
    rows.push(`  audit records: ${JSON.stringify(scale.audit)} (grant records ${(scale.audit as Record<string, number>).grant ?? 0} for ${scale.callsAnswered} sockets received)`)
    rows.push(`  broker log lines: ${JSON.stringify(scale.brokerLog)}`)
    rows.push(`  broker RSS/fds: idle ${JSON.stringify((scale.broker as any).before)}, loaded ${JSON.stringify((scale.broker as any).during)}, after ${JSON.stringify((scale.broker as any).after)}`)
  }
  process.stdout.write(rows.join('\n') + '\n')
}

main().then(() => cleanup(), async (e) => {
  passing = false
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`)
  await cleanup()
  process.exitCode = 1
}).finally(() => clearTimeout(deadline))
