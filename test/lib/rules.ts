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

export const ICMP4 = ['[socket.icmp]', 'as = root', 'domain = inet', 'type = raw', 'protocol = icmp', ''].join('\n')
export const ICMP6 = ['[socket.icmp6]', 'as = root', 'domain = inet6', 'type = raw', 'protocol = ipv6-icmp', ''].join('\n')

/** A rule granting raw ICMP (IPv4) to `path`: the probe's rule. */
export function probeRule(p: ProgramRuleText): string {
  return `; stx-probe: raw ICMP for the e2e tests\n${program(p)}\n${ICMP4}`
}

/** A rule granting raw ICMP for IPv4 and IPv6 to `path`: ping's rule. */
export function pingRule(p: ProgramRuleText): string {
  return `; ping: ICMP echo without setuid\n${program(p)}\n${ICMP4}\n${ICMP6}`
}
