/**
 * Run commands as an unprivileged user, through util-linux's setpriv, with
 * a clean environment and a bounded time. A command that overruns is
 * SIGKILLed (its whole process group) and the call rejects, so the test
 * fails instead of hanging CI.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { SAFE_PATH } from './paths.js'
import { cleanArgv, sleep } from './proc.js'
import type { TestUser } from './users.js'

export interface RunOptions {
  /** added to (or, with value undefined, removed from) the clean environment */
  env?: Record<string, string | undefined>
  /** working directory (default /) */
  cwd?: string
  /** SIGKILL and reject after this long (default 30 s) */
  timeoutMs?: number
  /** written to stdin, then stdin is closed (default: closed at once) */
  input?: string
  /** a root command that setpriv runs under, e.g. ['nsenter', '-t', PID, '-a'] (default: none) */
  via?: string[]
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** The clean environment a test user's commands get, plus `extra`. */
export function userEnv(user: TestUser, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: SAFE_PATH, HOME: '/', LANG: 'C.UTF-8', USER: user.name, LOGNAME: user.name, ...extra,
  }
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined))
}

/** argv prefixed with setpriv so it runs as the user, with the user's groups from /etc/group. */
export function asUser(user: TestUser, argv: string[]): string[] {
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', ...argv]
}

/** A command started as the user, still running. */
export interface RunningAs {
  child: ChildProcess
  pid: number
  /** everything printed so far */
  stdout(): string
  stderr(): string
  /** resolves with the first stdout line matching, rejects after timeoutMs or when the process ends first */
  waitForLine(match: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>
  /** send a signal to the process itself (not its group) */
  kill(signal: NodeJS.Signals): void
  /** close its stdin */
  closeStdin(): void
  write(data: string): void
  /** wait for it to end (process exit and stdio closed); on timeout SIGKILL its group and reject */
  wait(timeoutMs?: number): Promise<RunResult>
}

/** Start argv as the user, in its own process group, stdio piped. */
export function spawnAs(user: TestUser, argv: string[], opts: RunOptions = {}): RunningAs {
  // env -i runs as root, then setpriv execs argv as the user: the pid is
  // argv's (without `via`; nsenter, for one, forks)
  const full = cleanArgv([...(opts.via ?? []), ...asUser(user, argv)], userEnv(user, opts.env))
  const child = spawn(full[0], full.slice(1), {
    cwd: opts.cwd ?? '/', stdio: ['pipe', 'pipe', 'pipe'], detached: true,
  })
  let out = ''
  let err = ''
  let closed: RunResult | undefined
  let spawnError: Error | undefined
  const waiters: Array<() => void> = []
  const notify = () => { for (const w of waiters.splice(0)) w() }
  child.stdout!.setEncoding('utf8').on('data', d => { out += d; notify() })
  child.stderr!.setEncoding('utf8').on('data', d => { err += d; notify() })
  child.stdin!.on('error', () => { /* EPIPE when the program does not read */ })
  child.on('error', e => { spawnError = e; notify() })
  child.on('close', (code, signal) => { closed = { code, signal, stdout: out, stderr: err }; notify() })
  if (opts.input !== undefined) child.stdin!.end(opts.input)
  const describe = () => `${argv.join(' ')}\n--- stdout:\n${out}\n--- stderr:\n${err}`
  const killGroup = () => {
    if (child.pid === undefined) return
    try { process.kill(-child.pid, 'SIGKILL') } catch { /* gone */ }
  }
  const until = (cond: () => boolean, timeoutMs: number, what: string) => new Promise<void>((resolveP, reject) => {
    const check = () => {
      if (spawnError) { clearTimeout(timer); reject(spawnError); return true }
      if (cond()) { clearTimeout(timer); resolveP(); return true }
      return false
    }
    const timer = setTimeout(() => {
      killGroup()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${describe()}`))
    }, timeoutMs)
    const loop = () => { if (!check()) waiters.push(loop) }
    loop()
  })

  return {
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    async waitForLine(match, timeoutMs = 15_000) {
      const test = typeof match === 'function' ? match : (l: string) => match.test(l)
      let found: string | undefined
      const scan = () => {
        const lines = out.split('\n')
        lines.pop() // an unfinished line
        found = lines.find(test)
        return found !== undefined || closed !== undefined
      }
      await until(scan, timeoutMs, `a line matching ${match}`)
      if (found === undefined) throw new Error(`ended before printing a line matching ${match}: code ${closed?.code} signal ${closed?.signal}\n${describe()}`)
      return found
    },
    kill(signal) { if (closed === undefined) child.kill(signal) },
    closeStdin() { child.stdin!.end() },
    write(data) { child.stdin!.write(data) },
    async wait(timeoutMs = 30_000) {
      await until(() => closed !== undefined, timeoutMs, 'the process to end')
      return closed!
    },
  }
}

/** Run argv as the user to completion, bounded; stdin gets `input` (or EOF). */
export async function runAs(user: TestUser, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = spawnAs(user, argv, { ...opts, input: opts.input ?? '' })
  return r.wait(opts.timeoutMs ?? 30_000)
}

/** The client's argv: <tree>/bin/stx-elevate --socket SOCKET PROGRAM ARGS... */
export function clientArgv(client: string, socket: string, argv: string[]): string[] {
  return [client, '--socket', socket, ...argv]
}

/** Parse the first line of `text` that is a JSON object (the probe's and the raw client's output). */
export function jsonLine<T = any>(text: string, key?: string): T {
  for (const line of text.split('\n')) {
    const l = line.trim()
    if (!l.startsWith('{')) continue
    try {
      const v = JSON.parse(l)
      if (key === undefined || key in v) return v
    } catch { /* not JSON */ }
  }
  throw new Error(`no JSON line${key ? ` with "${key}"` : ''} in: ${JSON.stringify(text)}`)
}

export { sleep }

/** `s` as a literal inside a RegExp. */
export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
