/**
 * Rules directories for the rules tests: a root-owned 0755 temp dir (removed
 * in teardown) and a maker of fresh 0755 subdirectories holding 0644 files.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { Test } from 'tap'

export function rulesDirs(t: Test, prefix: string): { base: string; make: (files?: Record<string, string>) => string } {
  const base = mkdtempSync(prefix)
  chmodSync(base, 0o755)
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  let n = 0
  const make = (files: Record<string, string> = {}): string => {
    const dir = `${base}/d${n++}`
    mkdirSync(dir, { mode: 0o755 })
    chmodSync(dir, 0o755)
    for (const [name, text] of Object.entries(files)) {
      writeFileSync(`${dir}/${name}`, text)
      chmodSync(`${dir}/${name}`, 0o644)
    }
    return dir
  }
  return { base, make }
}
