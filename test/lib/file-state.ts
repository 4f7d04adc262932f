/**
 * Snapshots for "exactly as before" and "nothing changed" checks around
 * strip and restore: a binary's mode, owner and raw capability bytes; a
 * directory tree; dpkg's stat overrides and hook files.
 */
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { lgetxattr } from '../../src/shared/native/xattr.js'
import { runRoot } from './proc.js'

export interface FileState {
  /** st_mode & 07777, octal text */
  mode: string
  uid: number
  gid: number
  /** the raw security.capability value, base64; null when there is none */
  cap: string | null
}

export function fileState(path: string): FileState {
  const st = lstatSync(path)
  const cap = lgetxattr(path, 'security.capability')
  return { mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid, gid: st.gid, cap: cap && cap.toString('base64') }
}

/** Every entry under dir (path -> type, mode, owner, content hash or link target); {} when dir is missing. */
export function treeState(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  if (!existsSync(dir)) return out
  const walk = (p: string): void => {
    const st = lstatSync(p)
    const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`
    if (st.isSymbolicLink()) out[p] = `link -> ${readlinkSync(p)}`
    else if (st.isDirectory()) {
      out[p] = `dir ${meta}`
      for (const e of readdirSync(p)) walk(join(p, e))
    } else out[p] = `file ${meta} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`
  }
  walk(dir)
  return out
}

/** `dpkg-statoverride --list` (all overrides), or '' without dpkg. */
export async function statOverrides(): Promise<string> {
  const r = await runRoot(['dpkg-statoverride', '--list'], { timeoutMs: 30_000 })
  return r.code === 0 || r.code === 1 ? r.stdout : `dpkg-statoverride failed: ${r.stderr}`
}

export const DPKG_HOOK_DIR = '/etc/dpkg/dpkg.cfg.d'

/** stx-elevate's hook files in /etc/dpkg/dpkg.cfg.d. */
export function dpkgHooks(): string[] {
  return existsSync(DPKG_HOOK_DIR) ? readdirSync(DPKG_HOOK_DIR).filter(n => n.startsWith('stx-elevate')).sort() : []
}
