/**
 * cgroup v2 paths for tests that look at, or clean up after, a broker's
 * session cgroups (a broker killed with SIGKILL leaves its subtree and the
 * programs in it).
 */
import { existsSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sleep } from './proc.js'

/** The v2 line of /proc/PID/cgroup. */
export function cgroupOf(pid: number | 'self'): string {
  const m = /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))
  if (!m) throw new Error(`no cgroup v2 line in /proc/${pid}/cgroup`)
  return m[1]
}

/** Where the cgroup v2 hierarchy's root is mounted. */
export function cgroup2Mount(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ')
    const sep = f.indexOf('-', 6)
    if (sep > 0 && f[sep + 1] === 'cgroup2' && f[3] === '/') return f[4]
  }
  throw new Error('no cgroup2 mount of the hierarchy root in /proc/self/mountinfo')
}

/** The directory of broker `pid`'s subtree (<mount><its cgroup>/stx-elevated.PID); read while it runs. */
export function brokerSubtree(pid: number): string {
  const own = cgroupOf(pid)
  return join(cgroup2Mount(), own === '/' ? '' : own, `stx-elevated.${pid}`)
}

/** Every pid in a cgroup directory and below. */
export function pidsUnder(dir: string): number[] {
  if (!existsSync(dir)) return []
  const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) pids.push(...pidsUnder(join(dir, e.name)))
  }
  return pids
}

/** Kill everything in a dead broker's subtree (cgroup.kill) and remove it, bounded. */
export async function killSubtree(dir: string, timeoutMs = 5000): Promise<void> {
  if (!existsSync(dir)) return
  writeFileSync(join(dir, 'cgroup.kill'), '1')
  const deadline = Date.now() + timeoutMs
  while (pidsUnder(dir).length > 0) {
    if (Date.now() > deadline) throw new Error(`${dir} still holds ${pidsUnder(dir).join(' ')} ${timeoutMs} ms after cgroup.kill`)
    await sleep(25)
  }
  const remove = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) remove(join(d, e.name))
    rmdirSync(d)
  }
  remove(dir)
}
