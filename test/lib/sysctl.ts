/**
 * Set a sysctl for a test's duration and restore it in teardown. Written
 * through /proc/sys (no procps needed).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

type Teardown = { teardown(fn: () => unknown): void }

const norm = (v: string) => v.trim().split(/\s+/).join(' ')

export function readSysctl(key: string): string {
  return norm(readFileSync(join('/proc/sys', key), 'utf8'))
}

export function writeSysctl(key: string, value: string): void {
  writeFileSync(join('/proc/sys', key), value)
  const now = readSysctl(key)
  if (now !== norm(value)) throw new Error(`sysctl ${key}: wrote "${value}", reads "${now}"`)
}

/** e.g. withSysctl(t, 'net/ipv4/ping_group_range', '1 0'); returns the old value. */
export function withSysctl(t: Teardown, key: string, value: string): string {
  const old = readSysctl(key)
  writeSysctl(key, value)
  t.teardown(() => writeSysctl(key, old))
  return old
}
