/**
 * A booted systemd for the tests of the systemd paths (test/systemd/README.md):
 * booted on first use with test/systemd/boot.sh, the installed tree bound in
 * at the same path, powered off in the file's teardown. The container's own
 * user is `stxtest` with ids of its own (4001).
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { InstalledTree } from './install.js'
import { repoRoot, USER } from './paths.js'
import { rootEnv, runRoot, sleep, type Captured } from './proc.js'
import type { TapLike } from './broker.js'
import type { TestUser } from './users.js'

const DIR = process.env.STX_SYSTEMD_DIR || '/var/tmp/stx-systemd'
const SCRIPTS = join(repoRoot, 'test', 'systemd')
/** debootstrap (~35 s on a fresh machine) and boot (~1 s), at most */
const BOOT_TIMEOUT_MS = 180_000

/** The container's user: the name the rules give, ids of the container's own (the host's do not matter in there). */
export const CONTAINER_USER: TestUser = { name: USER, uid: 4001, gid: 4001 }

export interface Container {
  /** the container's PID 1, as the host sees it */
  leader: number
  /** what runs a command inside: nsenter into all its namespaces */
  via: string[]
  /** run argv inside as root, bounded */
  run(argv: string[], timeoutMs?: number): Promise<Captured>
}

/** Poll cond (bounded); reject saying what did not happen. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(50)
  }
}

/**
 * The container, booted on the first call of the returned function (so a
 * container that does not boot fails each test that needs it, with the
 * reason), with CONTAINER_USER made and the shell commands `setup` run
 * inside; `nspawn`: more options for systemd-nspawn. Call after setupE2E:
 * tap runs teardowns last-in first-out, so the container is down before the
 * tree it binds is removed and the lock released.
 */
export function systemdContainer(t: TapLike & { comment(...m: unknown[]): void }, tree: InstalledTree, setup: string[] = [], nspawn: string[] = []): {
  /** the container, booted now if it is not yet */
  container: () => Promise<Container>
  /** the container if it was booted (for teardowns), else undefined */
  booted: () => Promise<Container | undefined>
} {
  let booted: Promise<Container> | undefined
  let started = false
  t.teardown(async () => {
    if (!started) return
    const r = await runRoot(['bash', join(SCRIPTS, 'down.sh'), DIR], { timeoutMs: 30_000 }).catch((err: Error) => ({ code: -1, stderr: err.message, stdout: '' }))
    if (r.code !== 0) process.stderr.write(`test/systemd/down.sh ${DIR} failed (code ${r.code}): ${r.stderr}${r.stdout}\n`)
  })
  const boot = async (): Promise<Container> => {
    started = true
    mkdirSync(DIR, { recursive: true, mode: 0o755 })
    const t0 = Date.now()
    const r = await runRoot(['bash', join(SCRIPTS, 'boot.sh'), DIR, `--bind=${tree.root}`, ...nspawn],
      { timeoutMs: BOOT_TIMEOUT_MS, env: rootEnv({ NODE: process.execPath }) })
    const leader = Number(r.stdout.trim().split('\n').pop())
    if (r.code !== 0 || !Number.isInteger(leader) || leader <= 1) {
      throw new Error(`test/systemd/boot.sh ${DIR} failed (code ${r.code}, signal ${r.signal}):\n${r.stderr}${r.stdout}`)
    }
    t.comment(`systemd booted in ${((Date.now() - t0) / 1000).toFixed(1)} s (PID 1 ${leader} on the host)`)
    const via = ['nsenter', '-t', String(leader), '-a']
    const c: Container = { leader, via, run: (argv, timeoutMs = 30_000) => runRoot([...via, ...argv], { timeoutMs }) }
    const u = CONTAINER_USER
    const made = await c.run(['sh', '-ec', [
      `groupadd -g ${u.gid} ${u.name}`,
      `useradd -M -N -u ${u.uid} -g ${u.gid} -d / -s /usr/sbin/nologin ${u.name}`,
      ...setup,
    ].join('\n')])
    if (made.code !== 0) throw new Error(`setting up the container failed (code ${made.code}): ${made.stderr}${made.stdout}`)
    return c
  }
  return {
    container: () => (booted ??= boot()),
    booted: async () => booted?.catch(() => undefined),
  }
}
