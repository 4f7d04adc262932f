/**
 * Start stx-elevated (as root) on a private socket, a private rules
 * directory and a private audit file, all inside the installed tree.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { InstalledTree } from './install.js'
import { cleanArgv, rootEnv, sleep } from './proc.js'
import { brokerWrapper } from './unit.js'

export interface TapLike {
  teardown(fn: () => unknown): void
  passing(): boolean
}

export interface BrokerOptions {
  /** rule files: name (e.g. "probe.conf") -> text; written root:root 0644 */
  rules: Record<string, string>
  /** mode of some rule files instead of 0644 (e.g. {"probe.conf": 0o664}) */
  fileModes?: Record<string, number>
  /** owner of some rule files instead of root (e.g. {"probe.conf": {uid, gid}}) */
  fileOwners?: Record<string, { uid: number, gid: number }>
  /** mode of the rules directory instead of 0755 */
  rulesDirMode?: number
  /** owner of the rules directory instead of root */
  rulesDirOwner?: { uid: number, gid: number }
  /** socket path (default <tree>/brokers/N/broker.sock) */
  socket?: string
  /** more arguments for stx-elevated */
  extraArgs?: string[]
  /** how long to wait for the socket (default 10 s) */
  readyTimeoutMs?: number
  /** node options before the broker's script (e.g. --cpu-prof for bench/) */
  nodeArgs?: string[]
  /** a root command the broker runs under (e.g. ['keyctl', 'session', '-']) */
  prefix?: string[]
}

export interface Broker {
  socket: string
  audit: string
  rulesDir: string
  proc: ChildProcess
  stdout(): string
  stderr(): string
  /** the process has not exited */
  alive(): boolean
  /** SIGTERM, bounded wait, then SIGKILL; idempotent */
  stop(): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

let counter = 0

interface Prepared { dir: string, rulesDir: string, socket: string, audit: string }

function prepare(tree: InstalledTree, opts: BrokerOptions): Prepared {
  if (!existsSync(tree.broker)) {
    throw new Error(`not built: ${tree.broker} is missing (missing from the checkout: ${tree.missing.join(', ') || 'nothing?'}); run npm run build`)
  }
  const dir = tree.path('brokers', String(++counter))
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  chmodSync(tree.path('brokers'), 0o755)
  chmodSync(dir, 0o755)
  const rulesDir = join(dir, 'rules')
  mkdirSync(rulesDir, { mode: 0o755 })
  for (const [name, text] of Object.entries(opts.rules)) {
    const f = join(rulesDir, name)
    writeFileSync(f, text)
    chownSync(f, opts.fileOwners?.[name]?.uid ?? 0, opts.fileOwners?.[name]?.gid ?? 0)
    chmodSync(f, opts.fileModes?.[name] ?? 0o644)
  }
  chownSync(rulesDir, opts.rulesDirOwner?.uid ?? 0, opts.rulesDirOwner?.gid ?? 0)
  chmodSync(rulesDir, opts.rulesDirMode ?? 0o755)
  return { dir, rulesDir, socket: opts.socket ?? join(dir, 'broker.sock'), audit: join(dir, 'audit.jsonl') }
}

function launch(tree: InstalledTree, p: Prepared, opts: BrokerOptions) {
  const args = [tree.broker, '--socket', p.socket, '--rules', p.rulesDir, '--audit', p.audit, ...(opts.extraArgs ?? [])]
  const wrapper = brokerWrapper()
  const full = cleanArgv([...(wrapper?.prefix ?? []), ...(opts.prefix ?? []), process.execPath, ...(opts.nodeArgs ?? []), ...args], rootEnv())
  const proc = spawn(full[0], full.slice(1), {
    cwd: tree.root, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  })
  let out = ''
  let err = ''
  const cap = (s: string, d: string) => (s + d).slice(-200_000)
  proc.stdout!.setEncoding('utf8').on('data', d => { out = cap(out, d) })
  proc.stderr!.setEncoding('utf8').on('data', d => { err = cap(err, d) })
  let exited: { code: number | null, signal: NodeJS.Signals | null } | undefined
  let closed = false
  let spawnError: Error | undefined
  proc.on('error', e => { spawnError = e })
  proc.on('exit', (code, signal) => {
    exited = { code, signal }
    if (proc.pid !== undefined) wrapper?.cleanup(proc.pid)
  })
  proc.on('close', () => { closed = true })
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited: () => exited,
    closed: () => closed,
    spawnError: () => spawnError,
    args,
  }
}

/** Whether a SOCK_SEQPACKET socket bound to `path` is listening (from /proc/net/unix). */
export function isListening(path: string): boolean {
  let table: string
  try { table = readFileSync('/proc/net/unix', 'utf8') } catch { return false }
  for (const line of table.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = line.trim().split(/\s+/)
    if (f.length < 8 || f.slice(7).join(' ') !== path) continue
    const flags = parseInt(f[3], 16)
    const type = parseInt(f[4], 16)
    if ((flags & 0x10000) && type === 5) return true  // __SO_ACCEPTCON, SOCK_SEQPACKET
  }
  return false
}

async function stopProc(proc: ChildProcess, exited: () => unknown, timeoutMs = 5000) {
  if (proc.pid === undefined) return
  if (!exited()) {
    try { proc.kill('SIGTERM') } catch { /* gone */ }
    const deadline = Date.now() + timeoutMs
    while (!exited() && Date.now() < deadline) await sleep(25)
  }
  // the broker's process group: anything it left behind
  try { process.kill(-proc.pid, 'SIGKILL') } catch { /* gone */ }
  const deadline = Date.now() + 2000
  while (!exited() && Date.now() < deadline) await sleep(25)
}

/**
 * Start the broker with the given rules and wait (bounded) until its socket
 * listens. Rejects with the broker's stderr if it exits or does not listen
 * in time. Stopped in t's teardown.
 */
export async function startBroker(t: TapLike, tree: InstalledTree, opts: BrokerOptions): Promise<Broker> {
  const p = prepare(tree, opts)
  const b = launch(tree, p, opts)
  let stopped: Promise<{ code: number | null, signal: NodeJS.Signals | null }> | undefined
  const stop = () => {
    stopped ??= stopProc(b.proc, b.exited).then(() => b.exited() ?? { code: null, signal: null })
    return stopped
  }
  t.teardown(async () => {
    await stop()
    if (!t.passing()) {
      process.stderr.write(`--- stx-elevated ${p.dir} stderr (tail):\n${b.stderr().slice(-4000)}\n--- audit ${p.audit} (tail):\n${existsSync(p.audit) ? readFileSync(p.audit, 'utf8').slice(-4000) : '(none)'}\n`)
    }
  })
  const timeoutMs = opts.readyTimeoutMs ?? 10_000
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (b.spawnError()) throw b.spawnError()
    const ex = b.exited()
    if (ex) throw new Error(`stx-elevated exited (code ${ex.code}, signal ${ex.signal}) before listening on ${p.socket}\nargs: ${b.args.join(' ')}\nstderr:\n${b.stderr().slice(-4000)}`)
    if (isListening(p.socket)) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`stx-elevated did not listen on ${p.socket} within ${timeoutMs} ms\nstderr:\n${b.stderr().slice(-4000)}`)
    }
    await sleep(50)
  }
  return {
    socket: p.socket,
    audit: p.audit,
    rulesDir: p.rulesDir,
    proc: b.proc,
    stdout: b.stdout,
    stderr: b.stderr,
    alive: () => b.exited() === undefined,
    stop,
  }
}

export interface BrokerFailure {
  /** exit code (null if it had to be killed) */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** the broker listened on its socket (it should not have) */
  listened: boolean
  /** the broker did not exit within the timeout and was killed */
  timedOut: boolean
  audit: string
  rulesDir: string
  socket: string
}

/**
 * Start the broker on rules it must refuse; wait (bounded) for it to exit.
 * Never rejects for a broker that starts anyway: the result says so
 * (listened/timedOut) and the test asserts.
 */
export async function startBrokerExpectFailure(t: TapLike, tree: InstalledTree, opts: BrokerOptions & { exitTimeoutMs?: number }): Promise<BrokerFailure> {
  const p = prepare(tree, opts)
  const b = launch(tree, p, opts)
  t.teardown(() => stopProc(b.proc, b.exited))
  const timeoutMs = opts.exitTimeoutMs ?? 10_000
  const deadline = Date.now() + timeoutMs
  let listened = false
  while (!b.exited() && !b.spawnError() && Date.now() < deadline) {
    listened ||= isListening(p.socket)
    await sleep(25)
  }
  if (b.spawnError()) throw b.spawnError()
  const timedOut = !b.exited()
  if (timedOut) await stopProc(b.proc, b.exited)
  // let the pipes drain (bounded: a child of the broker may hold them)
  const drain = Date.now() + 2000
  while (!b.closed() && Date.now() < drain) await sleep(25)
  const ex = b.exited() ?? { code: null, signal: null }
  return {
    code: timedOut ? null : ex.code,
    signal: ex.signal,
    stdout: b.stdout(),
    stderr: b.stderr(),
    listened,
    timedOut,
    audit: p.audit,
    rulesDir: p.rulesDir,
    socket: p.socket,
  }
}
