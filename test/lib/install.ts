/**
 * Install the BUILT project into a fresh root-owned, world-readable tree
 * under /opt, so the unprivileged test user can run the client even when the
 * checkout sits under a directory only root can enter, and so that nothing
 * the broker checks (rules, binaries) is reached through a directory others
 * can write (which rules out /tmp).
 */
import {
  chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync,
  readFileSync, readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs'
import { join, relative, sep } from 'node:path'
import { repoRoot } from './paths.js'
import { killProcessesMentioning, rootEnv, runRoot } from './proc.js'

export const TREE_PARENT = '/opt'
export const TREE_PREFIX = 'stx-elevate-test.'

/** Build outputs a working install needs; those absent are reported in `missing`. */
export const REQUIRED = [
  'package.json',
  'bin/stx-elevate',
  'bin/stx-elevated',
  'dist',
  'native/build/stx-launch',
  'native/build/stx-run',
  'build/Release/stx_uvpoll.node',
  'elevation.d',
] as const

export interface InstalledTree {
  /** The tree's root, e.g. /opt/stx-elevate-test.AbC123 (root:root 0755). */
  root: string
  /** <root>/bin/stx-elevate, the client. */
  client: string
  /** <root>/bin/stx-elevated, the broker. */
  broker: string
  /** <root>/native/build/stx-launch */
  launcher: string
  /** <root>/native/build/stx-run, the client in C that shims link to */
  runner: string
  /** <root>/elevation.d, the shipped rules. */
  shippedRules: string
  /** REQUIRED entries that the checkout did not have (not built yet). */
  missing: string[]
  /** Runtime packages copied (paths relative to the repo root). */
  packages: string[]
  /** Absolute path of `rel` inside the tree. */
  path(...rel: string[]): string
  /** Remove the tree (kills processes still running from it first). */
  remove(): Promise<void>
}

/** The mode a copied entry gets: root-owned, nothing writable by group or other. */
function normalize(p: string): void {
  const st = lstatSync(p)
  if (st.isSymbolicLink()) {
    lchownSync(p, 0, 0)
    return
  }
  lchownSync(p, 0, 0)
  if (st.isDirectory()) {
    chmodSync(p, 0o755)
    for (const e of readdirSync(p)) normalize(join(p, e))
  } else {
    chmodSync(p, (st.mode & 0o111) ? 0o755 : 0o644)
  }
}

/** Check that a directory is root-owned and not writable by group or other. */
export function assertRootOnly(dir: string): void {
  const st = statSync(dir)
  if (st.uid !== 0 || (st.mode & 0o022)) {
    throw new Error(`${dir} must be owned by root and not writable by group/other (uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`)
  }
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

/** Remove trees left by test processes that died without their teardown. */
export async function removeStaleTrees(): Promise<string[]> {
  const removed: string[] = []
  for (const name of readdirSync(TREE_PARENT)) {
    if (!name.startsWith(TREE_PREFIX)) continue
    const dir = join(TREE_PARENT, name)
    let owner = NaN
    try { owner = Number(readFileSync(join(dir, '.owner-pid'), 'utf8')) } catch { /* no owner file */ }
    if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) continue
    await killProcessesMentioning(dir + sep)
    rmSync(dir, { recursive: true, force: true })
    removed.push(dir)
  }
  return removed
}

/** Runtime node_modules packages, relative to the repo root (`npm ls --omit=dev --parseable --all`). */
export async function runtimePackages(): Promise<string[]> {
  const r = await runRoot(['npm', 'ls', '--omit=dev', '--parseable', '--all'], {
    cwd: repoRoot, env: rootEnv({ npm_config_update_notifier: 'false', npm_config_fund: 'false' }), timeoutMs: 120_000,
  })
  const lines = r.stdout.split('\n').map(l => l.trim()).filter(Boolean)
  if (lines.length === 0) throw new Error(`npm ls --omit=dev printed nothing (code ${r.code}): ${r.stderr}`)
  return lines
    .map(l => relative(repoRoot, l))
    .filter(rel => rel !== '' && !rel.startsWith('..') && rel.split(sep).includes('node_modules'))
}

/**
 * Install the built project into a fresh /opt/stx-elevate-test.XXXXXX with
 * scripts/install.sh --no-system (bin/, dist/, package.json, native/build/,
 * the uv_poll addon, elevation.d/, man/, systemd/, scripts/install-system.sh
 * and the runtime node_modules; nothing outside the tree). Everything ends
 * up root:root, directories 0755, files 0644 or 0755.
 */
export async function installTree(): Promise<InstalledTree> {
  if (process.getuid!() !== 0) throw new Error('the e2e tests must run as root')
  mkdirSync(TREE_PARENT, { recursive: true, mode: 0o755 })
  assertRootOnly(TREE_PARENT)
  await removeStaleTrees()

  const root = mkdtempSync(join(TREE_PARENT, TREE_PREFIX))
  chmodSync(root, 0o755)
  writeFileSync(join(root, '.owner-pid'), String(process.pid))

  // The project's own installer, so the tests run what admins install.
  const missing: string[] = []
  const r = await runRoot(['bash', join(repoRoot, 'scripts', 'install.sh'), '--prefix', root, '--no-links', '--no-system'], {
    cwd: repoRoot, env: rootEnv({ npm_config_update_notifier: 'false', npm_config_fund: 'false' }), timeoutMs: 300_000,
  })
  if (r.code !== 0) missing.push(`scripts/install.sh (code ${r.code}): ${r.stderr.trim().split('\n').pop()}`)
  // install.sh replaces the directory whole: claim it again.
  if (existsSync(root)) writeFileSync(join(root, '.owner-pid'), String(process.pid))
  for (const rel of REQUIRED) if (!existsSync(join(root, rel))) missing.push(rel)

  let packages: string[] = []
  try {
    packages = await runtimePackages()
  } catch (e) {
    missing.push(`node_modules (${(e as Error).message.split('\n')[0]})`)
  }
  normalize(root)
  assertRootOnly(root)

  const path = (...rel: string[]) => join(root, ...rel)
  return {
    root,
    client: path('bin', 'stx-elevate'),
    broker: path('bin', 'stx-elevated'),
    launcher: path('native', 'build', 'stx-launch'),
    runner: path('native', 'build', 'stx-run'),
    shippedRules: path('elevation.d'),
    missing,
    packages,
    path,
    async remove() {
      await killProcessesMentioning(root + sep)
      rmSync(root, { recursive: true, force: true })
    },
  }
}
