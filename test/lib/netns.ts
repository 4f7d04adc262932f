// Network namespaces a test makes for itself (ip netns), so that what it
// binds or sends never meets the host's own listeners: removed in teardown.
import type { Test } from 'tap'
import { statSync } from 'node:fs'
import { mustRunRoot, runRoot } from './proc.js'

export interface TestNetns {
  /** the ip netns name */
  name: string
  /** /run/netns/NAME, for nsenter --net= */
  path: string
  /** net:[INODE], as /proc/PID/ns/net reads */
  id: string
}

/** A fresh namespace `name` (a leftover of an aborted run is removed first), loopback up unless told otherwise. */
export async function testNetns(t: Test, name: string, opts: { loopback?: 'up' | 'down' } = {}): Promise<TestNetns> {
  await runRoot(['ip', 'netns', 'del', name], { timeoutMs: 15_000 })
  await mustRunRoot(['ip', 'netns', 'add', name], { timeoutMs: 15_000 })
  t.teardown(() => runRoot(['ip', 'netns', 'del', name], { timeoutMs: 15_000 }))
  if ((opts.loopback ?? 'up') === 'up') await mustRunRoot(['ip', '-n', name, 'link', 'set', 'lo', 'up'], { timeoutMs: 15_000 })
  const path = `/run/netns/${name}`
  return { name, path, id: `net:[${statSync(path).ino}]` }
}

/**
 * A root prefix that enters the namespace (network only: the mount
 * namespace, and with it the broker's socket, stays the host's), for
 * runAs/spawnAs `via` or before asUser(...).
 */
export const enterNetns = (ns: { path: string }): string[] => ['nsenter', `--net=${ns.path}`, '--']
