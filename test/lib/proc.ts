/**
 * Process helpers: a bounded wait, run-as-root with capture, and killing
 * processes by uid or by a path in their command line (no procps needed).
 */
import { spawn, type SpawnOptions } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { SAFE_PATH } from './paths.js'

export const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))

/**
 * argv run through `env -i` with exactly `env`: tap's processinfo plugin
 * patches child_process to inject NODE_OPTIONS (its --import hooks) into
 * every child's environment, whatever env the spawn is given; a node child
 * (the client, the broker, npm) would then load tap's hooks from the
 * checkout and write into .tap/. `env -i` drops them.
 */
export function cleanArgv(argv: string[], env: Record<string, string>): string[] {
  for (const k of Object.keys(env)) if (k === '' || k.includes('=')) throw new Error(`bad environment name ${k}`)
  return ['/usr/bin/env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv]
}

/** A minimal environment for root-run helpers (no NODE_OPTIONS from tap). */
export function rootEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: SAFE_PATH, HOME: '/root', LANG: 'C.UTF-8', ...extra }
}

export interface Captured {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Run a command as root (the test process's own credentials), bounded.
 * Rejects on timeout (after SIGKILL of its process group) or spawn failure.
 */
export function runRoot(argv: string[], opts: { timeoutMs?: number, cwd?: string, env?: Record<string, string>, input?: string } = {}): Promise<Captured> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  return new Promise((resolvePromise, reject) => {
    const full = cleanArgv(argv, opts.env ?? rootEnv())
    const so: SpawnOptions = { cwd: opts.cwd ?? '/', stdio: ['pipe', 'pipe', 'pipe'], detached: true }
    const child = spawn(full[0], full.slice(1), so)
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout!.setEncoding('utf8').on('data', d => { stdout += d })
    child.stderr!.setEncoding('utf8').on('data', d => { stderr += d })
    child.stdin!.on('error', () => {})
    child.stdin!.end(opts.input ?? '')
    const timer = setTimeout(() => {
      timedOut = true
      try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ }
    }, timeoutMs)
    child.on('error', err => { clearTimeout(timer); reject(err) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (timedOut) reject(new Error(`timed out after ${timeoutMs} ms: ${argv.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`))
      else resolvePromise({ code, signal, stdout, stderr })
    })
  })
}

/** Like runRoot, but rejects unless the command exits 0. */
export async function mustRunRoot(argv: string[], opts: Parameters<typeof runRoot>[1] = {}): Promise<Captured> {
  const r = await runRoot(argv, opts)
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (code ${r.code}, signal ${r.signal}): ${r.stderr || r.stdout}`)
  return r
}

function pids(): number[] {
  return readdirSync('/proc').filter(n => /^\d+$/.test(n)).map(Number).filter(p => p !== process.pid)
}

/**
 * The real, effective, saved and fs uids of a live process, or undefined if
 * it is gone or a zombie (a zombie cannot be killed, only reaped).
 */
export function procUids(pid: number): number[] | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    if (/^State:\s+[ZX]/m.test(status)) return undefined
    const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status)
    return m ? m.slice(1).map(Number) : undefined
  } catch {
    return undefined
  }
}

function procCmdline(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ') } catch { return '' }
}

/** SIGKILL every process that has `uid` as any of its uids; bounded wait until none is left. */
export async function killUserProcesses(uid: number, timeoutMs = 5000): Promise<void> {
  if (uid === 0) throw new Error('refusing to kill root processes')
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const victims = pids().filter(p => procUids(p)?.includes(uid))
    if (victims.length === 0) return
    for (const p of victims) { try { process.kill(p, 'SIGKILL') } catch { /* gone */ } }
    if (Date.now() > deadline) throw new Error(`processes of uid ${uid} survive SIGKILL: ${victims.join(' ')}`)
    await sleep(50)
  }
}

/** SIGKILL every process whose command line mentions `needle` (e.g. a stale test tree). */
export async function killProcessesMentioning(needle: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const victims = pids().filter(p => procCmdline(p).includes(needle))
    if (victims.length === 0) return
    for (const p of victims) { try { process.kill(p, 'SIGKILL') } catch { /* gone */ } }
    if (Date.now() > deadline) throw new Error(`processes mentioning ${needle} survive SIGKILL: ${victims.join(' ')}`)
    await sleep(50)
  }
}
