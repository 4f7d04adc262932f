/**
 * Build the C fixtures into <tree>/fixtures-bin (root-owned 0755), make the
 * setcap copy of the probe, copy the helper scripts, and put a copy of
 * /usr/bin/ping without its file capability into <tree>/bin-under-test.
 */
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { InstalledTree } from './install.js'
import { fixturesSrc } from './paths.js'
import { mustRunRoot, runRoot } from './proc.js'

export interface Fixtures {
  /** <tree>/fixtures-bin */
  dir: string
  /** the rule-covered probe (see test/fixtures/stx-probe.c) */
  probe: string
  /** a copy of the probe with cap_net_raw+ep (the IP_HDRINCL control) */
  probeCap: string
  /** the attacker, covered by no rule (test/fixtures/stx-attack.c) */
  attack: string
  /** LD_PRELOAD library announcing "PRELOADED exe=..." on stderr */
  preload: string
  /** `seccomp-exec filter|none PROGRAM ARGS...`, run as root: a seccomp filter without no_new_privs (test/fixtures/seccomp-exec.c) */
  seccompExec: string
  /** raw SOCK_SEQPACKET client for bad-input tests (python3) */
  rawClient: string
  /** <tree>/bin-under-test/ping: /usr/bin/ping copied without its file capability */
  ping: string
}

const CFLAGS = ['-O2', '-Wall', '-Wextra', '-Werror']

async function cc(args: string[]): Promise<void> {
  await mustRunRoot(['cc', ...args], { timeoutMs: 120_000 })
}

function rootExec(path: string, mode = 0o755): void {
  chownSync(path, 0, 0)
  chmodSync(path, mode)
}

/** `getcap PATH` output ('' when the file has no capability). */
export async function getcap(path: string): Promise<string> {
  const r = await runRoot(['getcap', path], { timeoutMs: 10_000 })
  if (r.code !== 0) throw new Error(`getcap ${path}: ${r.stderr}`)
  return r.stdout.trim()
}

export async function buildFixtures(tree: InstalledTree): Promise<Fixtures> {
  const dir = tree.path('fixtures-bin')
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  rootExec(dir)
  const src = (f: string) => join(fixturesSrc, f)
  const out = (f: string) => join(dir, f)

  await cc([...CFLAGS, '-o', out('stx-probe'), src('stx-probe.c')])
  await cc([...CFLAGS, '-o', out('stx-attack'), src('stx-attack.c')])
  await cc([...CFLAGS, '-shared', '-fPIC', '-o', out('preload.so'), src('preload.c')])
  await cc([...CFLAGS, '-o', out('seccomp-exec'), src('seccomp-exec.c')])
  for (const f of ['stx-probe', 'stx-attack', 'preload.so', 'seccomp-exec']) rootExec(out(f))

  copyFileSync(out('stx-probe'), out('stx-probe-cap'))
  rootExec(out('stx-probe-cap'))
  await mustRunRoot(['setcap', 'cap_net_raw+ep', out('stx-probe-cap')])
  const cap = await getcap(out('stx-probe-cap'))
  if (!/cap_net_raw[=+]ep/.test(cap)) throw new Error(`setcap did not stick on ${out('stx-probe-cap')}: ${cap}`)

  copyFileSync(src('raw-client.py'), out('raw-client.py'))
  rootExec(out('raw-client.py'), 0o644)

  const bin = tree.path('bin-under-test')
  mkdirSync(bin, { recursive: true, mode: 0o755 })
  rootExec(bin)
  const ping = join(bin, 'ping')
  copyFileSync('/usr/bin/ping', ping)  // a plain copy carries no file capability
  rootExec(ping)

  return {
    dir,
    probe: out('stx-probe'),
    probeCap: out('stx-probe-cap'),
    attack: out('stx-attack'),
    preload: out('preload.so'),
    seccompExec: out('seccomp-exec'),
    rawClient: out('raw-client.py'),
    ping,
  }
}

/**
 * A copy of a system binary (e.g. /usr/bin/arping, which Debian ships with
 * cap_net_raw) in <tree>/bin-under-test, root-owned 0755 and without any
 * file capability: the program a rule covers. Throws, saying which package
 * to install, when the binary is missing.
 */
export async function binaryWithoutCaps(tree: InstalledTree, source: string, pkg: string): Promise<string> {
  if (!existsSync(source)) throw new Error(`${source} is missing: install ${pkg} (.ci/run does)`)
  const bin = tree.path('bin-under-test')
  mkdirSync(bin, { recursive: true, mode: 0o755 })
  rootExec(bin)
  const copy = join(bin, basename(source))
  copyFileSync(source, copy)  // a plain copy carries no file capability
  rootExec(copy)
  const cap = await getcap(copy)
  if (cap !== '') throw new Error(`${copy} still has a file capability: ${cap}`)
  return copy
}
