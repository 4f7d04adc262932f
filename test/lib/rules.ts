/**
 * Rule texts for the tests (the grammar of issue 3: [program] with path,
 * users, groups; [socket.NAME] with as, domain, type, protocol).
 */

export interface ProgramRuleText {
  path: string
  users?: string[]
  groups?: string[]
  /** sandboxed-clients = allow | deny (absent: the default, deny) */
  sandboxedClients?: 'allow' | 'deny'
}

function program(p: ProgramRuleText): string {
  return [
    '[program]',
    `path = ${p.path}`,
    ...(p.users ? [`users = ${p.users.join(', ')}`] : []),
    ...(p.groups ? [`groups = ${p.groups.join(', ')}`] : []),
    ...(p.sandboxedClients ? [`sandboxed-clients = ${p.sandboxedClients}`] : []),
    '',
  ].join('\n')
}

/** Optional keys of a [socket.NAME] section (absent: the line is left out). */
export interface SocketOptions {
  /** header-included = allow | deny */
  headerIncluded?: 'allow' | 'deny'
  /** errno = NAME (one of the refusal errnos, e.g. EACCES) */
  errno?: string
}

function socketOptions(o: SocketOptions): string[] {
  return [
    ...(o.headerIncluded ? [`header-included = ${o.headerIncluded}`] : []),
    ...(o.errno ? [`errno = ${o.errno}`] : []),
  ]
}

/** [socket.icmp]: raw ICMP over IPv4. */
export function icmp4(o: SocketOptions = {}): string {
  return ['[socket.icmp]', 'as = root', 'domain = inet', 'type = raw', 'protocol = icmp', ...socketOptions(o), ''].join('\n')
}

/** [socket.icmp6]: raw ICMPv6. */
export function icmp6(o: SocketOptions = {}): string {
  return ['[socket.icmp6]', 'as = root', 'domain = inet6', 'type = raw', 'protocol = ipv6-icmp', ...socketOptions(o), ''].join('\n')
}

export const ICMP4 = icmp4()
export const ICMP6 = icmp6()

/**
 * A rule granting raw ICMP (IPv4) to `path`: the probe's rule. With
 * `o.icmp6` raw ICMPv6 too; `o`'s socket options go into every socket section.
 */
export function probeRule(p: ProgramRuleText, o: SocketOptions & { icmp6?: boolean } = {}): string {
  return `; stx-probe: raw ICMP for the e2e tests\n${program(p)}\n${icmp4(o)}${o.icmp6 ? `\n${icmp6(o)}` : ''}`
}

/** A rule granting raw ICMP for IPv4 and IPv6 to `path`: ping's rule. */
export function pingRule(p: ProgramRuleText): string {
  return `; ping: ICMP echo without setuid\n${program(p)}\n${ICMP4}\n${ICMP6}`
}
