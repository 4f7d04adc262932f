/**
 * The systemd unit as shipped (systemd/stx-elevated.service.in): its
 * capability bounding set, and running the tests' brokers under it.
 */
import { readdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './paths.js'

export const UNIT_TEMPLATE = join(repoRoot, 'systemd', 'stx-elevated.service.in')

/** CapabilityBoundingSet= of the unit, e.g. ['CAP_SETUID', ...], in the unit's order. */
export function unitCapabilities(): string[] {
  const lines = readFileSync(UNIT_TEMPLATE, 'utf8').split('\n').filter(l => l.startsWith('CapabilityBoundingSet='))
  if (lines.length !== 1) throw new Error(`${UNIT_TEMPLATE}: expected one CapabilityBoundingSet= line, found ${lines.length}`)
  const caps = lines[0].slice('CapabilityBoundingSet='.length).trim().split(/\s+/)
  for (const c of caps) if (!/^CAP_[A-Z_]+$/.test(c)) throw new Error(`${UNIT_TEMPLATE}: not a capability name: ${c}`)
  return caps
}

/** The test's own cgroup (v2) directory: mount point (from mountinfo) + /proc/self/cgroup's 0:: path. */
function ownCgroup2Dir(): string {
  const mount = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map(l => l.split(' - '))
    .find(([, after]) => after?.startsWith('cgroup2 '))?.[0].split(' ')[4]
  const own = /^0::(\/.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1]
  if (!mount || !own) throw new Error('STX_TEST_BROKER_CAPS needs cgroup v2 (no cgroup2 mount or no 0:: line)')
  return join(mount, own)
}

/** rmdir dir and the cgroups below it, deepest first; one that still holds a process stays (with its parents). */
function removeEmptyCgroups(dir: string): void {
  let children: string[] = []
  try { children = readdirSync(dir, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name) } catch { return }
  for (const c of children) removeEmptyCgroups(join(dir, c))
  try { rmdirSync(dir) } catch { /* busy: left for a look */ }
}

export interface BrokerWrapper {
  /** what the broker's argv starts with */
  prefix: string[]
  /** after the broker (pid) has exited */
  cleanup(pid: number): void
}

/**
 * STX_TEST_BROKER_CAPS: run every test broker under this capability
 * bounding set (setpriv), to check that the broker works with no more:
 * "unit" for the unit's set, or a list such as CAP_NET_RAW,CAP_SETUID.
 * Each such broker starts in a cgroup of its own, stx-caps.PID below the
 * test's, as under systemd (the service's cgroup is root's, 0755; the root
 * cgroup here is 0555, which only CAP_DAC_OVERRIDE gets past), removed once
 * the broker is gone. Unset: undefined, the broker runs as root does.
 * (One e2e-session subtest then fails by design: it plants dead brokers'
 * subtrees in the test's own cgroup, where such a broker does not look.)
 */
export function brokerWrapper(): BrokerWrapper | undefined {
  const want = process.env.STX_TEST_BROKER_CAPS
  if (!want) return undefined
  const caps = want === 'unit' ? unitCapabilities() : want.split(/[\s,]+/).filter(Boolean)
  const names = caps.map(c => `,+${c.replace(/^CAP_/i, '').toLowerCase()}`).join('')
  const parent = ownCgroup2Dir()
  return {
    prefix: ['sh', '-c', 'd="$1/stx-caps.$$"; shift; mkdir "$d" && echo $$ > "$d/cgroup.procs" && exec "$@"', 'sh', parent,
      'setpriv', `--bounding-set=-all${names}`, '--'],
    cleanup(pid) {
      removeEmptyCgroups(join(parent, `stx-caps.${pid}`))
    },
  }
}
