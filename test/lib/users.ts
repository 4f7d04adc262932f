/**
 * Unprivileged test users and groups, created on demand (idempotent: they
 * may persist between runs).
 */
import { execFileSync } from 'node:child_process'
import { EXEC_GROUP, OTHER_USER, SUPP_GROUP, USER } from './paths.js'
import { killUserProcesses, rootEnv } from './proc.js'

export interface TestUser {
  name: string
  uid: number
  gid: number          // primary group (a group of the same name)
}

function getent(db: 'passwd' | 'group', key: string): string[] | undefined {
  try {
    const out = execFileSync('getent', [db, key], { encoding: 'utf8', env: rootEnv(), stdio: ['ignore', 'pipe', 'ignore'] })
    return out.trim().split('\n')[0].split(':')
  } catch {
    return undefined  // exit 2: no such entry
  }
}

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { env: rootEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
}

/** Create the group if missing (a system group with system: true); returns its gid. */
export function ensureGroup(name: string, opts: { system?: boolean } = {}): number {
  let e = getent('group', name)
  if (!e) {
    try {
      run('groupadd', opts.system ? ['--system', name] : [name])
    } catch (err) {
      // lost a race with another creator: fine if it exists now
      if (!getent('group', name)) throw err
    }
    e = getent('group', name)
    if (!e) throw new Error(`groupadd ${name} did not create the group`)
  }
  return Number(e[2])
}

/** Members of a group as listed in /etc/group (supplementary members). */
function groupMembers(name: string): string[] {
  const e = getent('group', name)
  return e && e[3] ? e[3].split(',') : []
}

/**
 * Create an unprivileged user if missing, with its own primary group of the
 * same name, no home directory and no login shell; add it to `supplementary`
 * groups (created if missing). Returns its name, uid and gid.
 */
export function ensureUser(name: string, opts: { supplementary?: string[] } = {}): TestUser {
  const gid = ensureGroup(name)
  const supp = opts.supplementary ?? []
  for (const g of supp) ensureGroup(g)
  let e = getent('passwd', name)
  if (!e) {
    run('useradd', ['-M', '-N', '-g', name, ...(supp.length ? ['-G', supp.join(',')] : []),
      '-d', '/nonexistent', '-s', '/usr/sbin/nologin', name])
    e = getent('passwd', name)
    if (!e) throw new Error(`useradd ${name} did not create the user`)
  }
  for (const g of supp) {
    if (!groupMembers(g).includes(name)) run('usermod', ['-a', '-G', g, name])
  }
  const uid = Number(e[2])
  if (uid === 0) throw new Error(`test user ${name} has uid 0`)
  if (Number(e[3]) !== gid) run('usermod', ['-g', name, name])
  return { name, uid, gid }
}

export interface TestUsers {
  /** The user the rules name; member of SUPP_GROUP. */
  user: TestUser
  /** A user no rule names. */
  other: TestUser
  /** gid of SUPP_GROUP. */
  suppGid: number
  /** gid of the broker's exec group (`stx-elevate`). */
  execGid: number
}

/** All users and groups the e2e tests need; kills any leftover processes of the test users. */
export async function ensureTestUsers(): Promise<TestUsers> {
  const execGid = ensureGroup(EXEC_GROUP, { system: true })
  const suppGid = ensureGroup(SUPP_GROUP)
  const user = ensureUser(USER, { supplementary: [SUPP_GROUP] })
  const other = ensureUser(OTHER_USER)
  await killUserProcesses(user.uid)
  await killUserProcesses(other.uid)
  return { user, other, suppGid, execGid }
}
