/**
 * One e2e test file at a time on a machine, across tap runs: every file
 * kills the test users' processes and sets ping_group_range, so two runs at
 * once (two developers, or a developer and CI) would break each other. The
 * lock is a directory (mkdir is atomic) holding the owner's pid; a lock
 * whose owner is gone is taken over.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sleep } from './proc.js'

export const LOCK_DIR = '/opt/.stx-elevate-e2e.lock'

function owner(): number | undefined {
  try { return Number(readFileSync(join(LOCK_DIR, 'pid'), 'utf8')) } catch { return undefined }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

/**
 * Take the machine-wide e2e lock, waiting at most timeoutMs (default 240 s,
 * or STX_E2E_LOCK_WAIT_S seconds where several people's runs share a
 * machine); returns the release function.
 */
export async function takeE2ELock(timeoutMs = Number(process.env.STX_E2E_LOCK_WAIT_S ?? 240) * 1000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      mkdirSync(LOCK_DIR, { mode: 0o755 })
      writeFileSync(join(LOCK_DIR, 'pid'), String(process.pid))
      return () => { if (owner() === process.pid) rmSync(LOCK_DIR, { recursive: true, force: true }) }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    const pid = owner()
    let age = 0
    try { age = Date.now() - statSync(LOCK_DIR).mtimeMs } catch { continue }
    if ((pid !== undefined && Number.isInteger(pid) && pid > 0 && !alive(pid)) || (pid === undefined && age > 10_000)) {
      rmSync(LOCK_DIR, { recursive: true, force: true })
      continue
    }
    if (Date.now() > deadline) throw new Error(`another e2e run (pid ${pid}) holds ${LOCK_DIR} for more than ${timeoutMs} ms`)
    await sleep(200)
  }
}
