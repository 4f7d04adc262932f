/**
 * Rule texts for the tests (the grammar of issue 3: [program] with path,
 * users, groups; [socket.NAME] with as, domain, type, protocol; issue 5:
 * [bind.NAME], [setsockopt.NAME], packet sockets, see man/elevation.d.5).
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

// ---- issue 5: [bind.NAME], [setsockopt.NAME], packet sockets (man/elevation.d.5) ----

/** A rule file: `[program]`, then the sections as given, with an optional comment line first. */
export function ruleFile(p: ProgramRuleText, sections: string[], comment?: string): string {
  return `${comment ? `; ${comment}\n` : ''}${program(p)}${sections.map(s => `\n${s}`).join('')}`
}

export interface BindSectionText {
  /** NAME of [bind.NAME] */
  name: string
  families: Array<'inet' | 'inet6'>
  types: Array<'stream' | 'dgram'>
  /** ports and ranges as written, e.g. [80, '8000-8010'] */
  ports: Array<number | string>
  /** address = ... (absent: the line is left out: any address) */
  addresses?: string[]
  /** reuseport = allow | deny (absent: the default, deny) */
  reuseport?: 'allow' | 'deny'
  /** errno = NAME (absent: the default, EACCES) */
  errno?: string
}

/** [bind.NAME] with as = root. */
export function bindSection(b: BindSectionText): string {
  return [
    `[bind.${b.name}]`,
    'as = root',
    `family = ${b.families.join(', ')}`,
    `type = ${b.types.join(', ')}`,
    `port = ${b.ports.join(', ')}`,
    ...(b.addresses ? [`address = ${b.addresses.join(', ')}`] : []),
    ...(b.reuseport ? [`reuseport = ${b.reuseport}`] : []),
    ...(b.errno ? [`errno = ${b.errno}`] : []),
    '',
  ].join('\n')
}

export interface SetsockoptSectionText {
  /** NAME of [setsockopt.NAME] */
  name: string
  /** SO_MARK, SO_PRIORITY, SO_BINDTODEVICE, SO_RCVBUFFORCE, SO_SNDBUFFORCE, IP_TRANSPARENT, IPV6_TRANSPARENT */
  option: string
  /** value = ... (numbers and ranges as written; not for SO_BINDTODEVICE) */
  values?: Array<number | string>
  /** interface = ... (SO_BINDTODEVICE only) */
  interfaces?: string[]
  /** errno = NAME (absent: the default, EPERM) */
  errno?: string
}

/** [setsockopt.NAME] with as = root. */
export function setsockoptSection(s: SetsockoptSectionText): string {
  return [
    `[setsockopt.${s.name}]`,
    'as = root',
    `option = ${s.option}`,
    ...(s.values ? [`value = ${s.values.join(', ')}`] : []),
    ...(s.interfaces ? [`interface = ${s.interfaces.join(', ')}`] : []),
    ...(s.errno ? [`errno = ${s.errno}`] : []),
    '',
  ].join('\n')
}

export interface PacketSocketText {
  /** NAME of [socket.NAME] */
  name: string
  type: 'raw' | 'dgram'
  /** an ethertype name (all, ip, arp, ipv6) or number, host order as rules write it */
  protocol: string | number
  errno?: string
}

/** [socket.NAME] for a packet socket (domain = packet). */
export function packetSocket(p: PacketSocketText): string {
  return [
    `[socket.${p.name}]`, 'as = root', 'domain = packet', `type = ${p.type}`, `protocol = ${p.protocol}`,
    ...(p.errno ? [`errno = ${p.errno}`] : []), '',
  ].join('\n')
}
