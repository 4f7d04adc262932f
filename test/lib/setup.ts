/**
 * One call for a test file's set-up: users and groups, no leftover
 * processes, ping_group_range closed ("1 0"), the built project installed
 * under /opt, the fixtures compiled; all undone in teardown.
 */
import { installTree, type InstalledTree } from './install.js'
import { takeE2ELock } from './lock.js'
import { buildFixtures, type Fixtures } from './fixtures.js'
import { killUserProcesses } from './proc.js'
import { withSysctl } from './sysctl.js'
import { ensureTestUsers, type TestUsers } from './users.js'
import { startBroker, type Broker, type BrokerOptions, type TapLike } from './broker.js'

export interface E2E extends TestUsers {
  tree: InstalledTree
  fx: Fixtures
  /** the client's argv for a broker: [client, --socket, S, ...argv] */
  client(socket: string, ...argv: string[]): string[]
}

export async function setupE2E(t: TapLike): Promise<E2E> {
  // registered first: tap runs teardowns last-in first-out, so the lock is
  // released after every teardown registered later, wherever set-up stops
  let release = () => {}
  t.teardown(() => release())
  release = await takeE2ELock()
  const users = await ensureTestUsers()
  // Systemd hosts open ICMP datagram sockets to everyone; then ping needs no
  // privilege and a passing ping proves nothing. Close it for the test.
  withSysctl(t, 'net/ipv4/ping_group_range', '1 0')
  const tree = await installTree()
  t.teardown(async () => {
    await killUserProcesses(users.user.uid)
    await killUserProcesses(users.other.uid)
    await tree.remove()
  })
  const fx = await buildFixtures(tree)
  return {
    ...users,
    tree,
    fx,
    client: (socket, ...argv) => [tree.client, '--socket', socket, ...argv],
  }
}

/**
 * A broker shared by the tests of a file, started on first use (so that a
 * broker that cannot start fails each test that needs it, not the file) and
 * stopped in the file's teardown.
 */
export function sharedBroker(t: TapLike, tree: InstalledTree, opts: () => BrokerOptions): () => Promise<Broker> {
  let p: Promise<Broker> | undefined
  return () => {
    p ??= startBroker(t, tree, opts())
    return p
  }
}
