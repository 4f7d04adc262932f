/*
 * Name tables for x86_64 Linux: socket domains, types, IP protocols,
 * ethertypes, socket option levels and names, and errno values; and the
 * one text form of IP addresses. The parser turns names into the kernel's
 * numbers with them; the audit turns numbers back into names.
 *
 * The tables are written out rather than read from the host (os.constants,
 * /etc/protocols) so that a rule means the same on every machine.
 */

import { isIP } from 'node:net';

/** Names accepted in rules, and decoded in audit records, by number. */
type Table = ReadonlyArray<readonly [name: string, value: number]>;

function byName(table: Table): ReadonlyMap<string, number> {
  return new Map(table);
}

/** First name wins for a number, so aliases listed later never show in audits. */
function byNumber(table: Table): ReadonlyMap<number, string> {
  const out = new Map<number, string>();
  for (const [name, value] of table) if (!out.has(value)) out.set(value, name);
  return out;
}

// ---- address families (AF_*, include/linux/socket.h) ----------------------

export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_PACKET = 17;
/** Highest AF_* number the kernel knows (AF_MCTP); AF_MAX is one more. */
export const AF_LAST = 45;

const DOMAINS: Table = [
  ['unspec', 0], ['unix', 1], ['inet', 2], ['ax25', 3], ['ipx', 4],
  ['appletalk', 5], ['netrom', 6], ['bridge', 7], ['atmpvc', 8], ['x25', 9],
  ['inet6', 10], ['rose', 11], ['decnet', 12], ['netbeui', 13],
  ['security', 14], ['key', 15], ['netlink', 16], ['packet', 17], ['ash', 18],
  ['econet', 19], ['atmsvc', 20], ['rds', 21], ['sna', 22], ['irda', 23],
  ['pppox', 24], ['wanpipe', 25], ['llc', 26], ['ib', 27], ['mpls', 28],
  ['can', 29], ['tipc', 30], ['bluetooth', 31], ['iucv', 32], ['rxrpc', 33],
  ['isdn', 34], ['phonet', 35], ['ieee802154', 36], ['caif', 37], ['alg', 38],
  ['nfc', 39], ['vsock', 40], ['kcm', 41], ['qipcrtr', 42], ['smc', 43],
  ['xdp', 44], ['mctp', 45],
];

/** The domain names a rule may use; other domains are given by number. */
export const RULE_DOMAINS: ReadonlyMap<string, number> =
  byName([['inet', AF_INET], ['inet6', AF_INET6], ['packet', AF_PACKET]]);

// ---- socket types (SOCK_*, include/linux/net.h) ---------------------------

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_RDM = 4;
export const SOCK_SEQPACKET = 5;
/** socket(2) rejects types above this (SOCK_MAX - 1). */
export const SOCK_LAST = 10;
/** Bits of the type argument that are the type; the rest are flags. */
export const SOCK_TYPE_MASK = 0xf;

const TYPES: Table = [
  ['stream', 1], ['dgram', 2], ['raw', 3], ['rdm', 4], ['seqpacket', 5],
  ['dccp', 6], ['packet', 10],
];

/** The type names a rule may use. */
export const RULE_TYPES: ReadonlyMap<string, number> = byName(TYPES.slice(0, 5));

// ---- IP protocols (IPPROTO_*), named as in /etc/protocols -----------------

export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_RAW = 255;

/*
 * Only names that Linux and /etc/protocols agree on: /etc/protocols calls 94
 * "ipip" while the kernel's IPPROTO_IPIP is 4, so neither spelling of that
 * one is here (write the number).
 */
const PROTOCOLS: Table = [
  ['ip', 0], ['icmp', 1], ['igmp', 2], ['ipencap', 4], ['tcp', 6], ['egp', 8],
  ['udp', 17], ['dccp', 33], ['ipv6', 41], ['ipv6-route', 43],
  ['ipv6-frag', 44], ['rsvp', 46], ['gre', 47], ['esp', 50], ['ah', 51],
  ['ipv6-icmp', 58], ['ipv6-nonxt', 59], ['ipv6-opts', 60], ['ospf', 89],
  ['pim', 103], ['ipcomp', 108], ['vrrp', 112], ['l2tp', 115], ['sctp', 132],
  ['udplite', 136], ['mpls-in-ip', 137], ['ethernet', 143], ['raw', 255],
];

export const RULE_PROTOCOLS: ReadonlyMap<string, number> = byName(PROTOCOLS);

// ---- ethertypes for packet sockets (ETH_P_*, host byte order) -------------

export const ETH_P_ALL = 0x0003;

const ETHERTYPES: Table = [
  ['all', 0x0003], ['ip', 0x0800], ['arp', 0x0806], ['ipv6', 0x86dd],
];

export const RULE_ETHERTYPES: ReadonlyMap<string, number> = byName(ETHERTYPES);

/**
 * A packet socket's protocol as socket(2) receives it: the ethertype in
 * network byte order (htons), while rules and the model keep host order.
 */
export function htons16(n: number): number {
  return ((n & 0xff) << 8) | ((n >> 8) & 0xff);
}

// ---- socket option levels and names (asm-generic/socket.h, linux/in.h, linux/in6.h)

export const SOL_IP = 0;
export const SOL_SOCKET = 1;
export const SOL_IPV6 = 41;
export const SOL_RAW = 255;

const LEVELS: Table = [
  ['SOL_IP', 0], ['SOL_SOCKET', 1], ['SOL_TCP', 6], ['SOL_UDP', 17], ['SOL_IPV6', 41], ['SOL_RAW', 255],
];

export const SO_REUSEADDR = 2;
export const SO_PRIORITY = 12;
export const SO_REUSEPORT = 15;
export const SO_BINDTODEVICE = 25;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_MARK = 36;
export const IP_TRANSPARENT = 19;
export const IPV6_TRANSPARENT = 75;

/** Interface names hold at most IFNAMSIZ - 1 bytes (linux/if.h: IFNAMSIZ 16). */
export const IFNAMSIZ = 16;
/** SO_PRIORITY values 0 (TC_PRIO_BESTEFFORT) to 6 (TC_PRIO_INTERACTIVE) need no privilege. */
export const TC_PRIO_INTERACTIVE = 6;

/* x86_64 names: SO_RCVTIMEO is SO_RCVTIMEO_OLD there, and so on. */
const SOCKET_OPTIONS: Table = [
  ['SO_DEBUG', 1], ['SO_REUSEADDR', 2], ['SO_TYPE', 3], ['SO_ERROR', 4], ['SO_DONTROUTE', 5],
  ['SO_BROADCAST', 6], ['SO_SNDBUF', 7], ['SO_RCVBUF', 8], ['SO_KEEPALIVE', 9], ['SO_OOBINLINE', 10],
  ['SO_NO_CHECK', 11], ['SO_PRIORITY', 12], ['SO_LINGER', 13], ['SO_BSDCOMPAT', 14], ['SO_REUSEPORT', 15],
  ['SO_PASSCRED', 16], ['SO_PEERCRED', 17], ['SO_RCVLOWAT', 18], ['SO_SNDLOWAT', 19], ['SO_RCVTIMEO', 20],
  ['SO_SNDTIMEO', 21], ['SO_SECURITY_AUTHENTICATION', 22], ['SO_SECURITY_ENCRYPTION_TRANSPORT', 23],
  ['SO_SECURITY_ENCRYPTION_NETWORK', 24], ['SO_BINDTODEVICE', 25], ['SO_ATTACH_FILTER', 26],
  ['SO_DETACH_FILTER', 27], ['SO_PEERNAME', 28], ['SO_TIMESTAMP', 29], ['SO_ACCEPTCONN', 30],
  ['SO_PEERSEC', 31], ['SO_SNDBUFFORCE', 32], ['SO_RCVBUFFORCE', 33], ['SO_PASSSEC', 34],
  ['SO_TIMESTAMPNS', 35], ['SO_MARK', 36], ['SO_TIMESTAMPING', 37], ['SO_PROTOCOL', 38], ['SO_DOMAIN', 39],
  ['SO_RXQ_OVFL', 40], ['SO_WIFI_STATUS', 41], ['SO_PEEK_OFF', 42], ['SO_NOFCS', 43], ['SO_LOCK_FILTER', 44],
  ['SO_SELECT_ERR_QUEUE', 45], ['SO_BUSY_POLL', 46], ['SO_MAX_PACING_RATE', 47], ['SO_BPF_EXTENSIONS', 48],
  ['SO_INCOMING_CPU', 49], ['SO_ATTACH_BPF', 50], ['SO_ATTACH_REUSEPORT_CBPF', 51],
  ['SO_ATTACH_REUSEPORT_EBPF', 52], ['SO_CNX_ADVICE', 53], ['SO_MEMINFO', 55], ['SO_INCOMING_NAPI_ID', 56],
  ['SO_COOKIE', 57], ['SO_PEERGROUPS', 59], ['SO_ZEROCOPY', 60], ['SO_TXTIME', 61], ['SO_BINDTOIFINDEX', 62],
  ['SO_TIMESTAMP_NEW', 63], ['SO_TIMESTAMPNS_NEW', 64], ['SO_TIMESTAMPING_NEW', 65], ['SO_RCVTIMEO_NEW', 66],
  ['SO_SNDTIMEO_NEW', 67], ['SO_DETACH_REUSEPORT_BPF', 68], ['SO_PREFER_BUSY_POLL', 69],
  ['SO_BUSY_POLL_BUDGET', 70], ['SO_NETNS_COOKIE', 71], ['SO_BUF_LOCK', 72], ['SO_RESERVE_MEM', 73],
  ['SO_TXREHASH', 74], ['SO_RCVMARK', 75],
];

const IP_OPTIONS: Table = [
  ['IP_TOS', 1], ['IP_TTL', 2], ['IP_HDRINCL', 3], ['IP_OPTIONS', 4], ['IP_ROUTER_ALERT', 5],
  ['IP_RECVOPTS', 6], ['IP_RETOPTS', 7], ['IP_PKTINFO', 8], ['IP_PKTOPTIONS', 9], ['IP_MTU_DISCOVER', 10],
  ['IP_RECVERR', 11], ['IP_RECVTTL', 12], ['IP_RECVTOS', 13], ['IP_MTU', 14], ['IP_FREEBIND', 15],
  ['IP_IPSEC_POLICY', 16], ['IP_XFRM_POLICY', 17], ['IP_PASSSEC', 18], ['IP_TRANSPARENT', 19],
  ['IP_ORIGDSTADDR', 20], ['IP_MINTTL', 21], ['IP_NODEFRAG', 22], ['IP_CHECKSUM', 23],
  ['IP_BIND_ADDRESS_NO_PORT', 24], ['IP_RECVFRAGSIZE', 25], ['IP_RECVERR_RFC4884', 26],
  ['IP_MULTICAST_IF', 32], ['IP_MULTICAST_TTL', 33], ['IP_MULTICAST_LOOP', 34], ['IP_ADD_MEMBERSHIP', 35],
  ['IP_DROP_MEMBERSHIP', 36], ['IP_UNBLOCK_SOURCE', 37], ['IP_BLOCK_SOURCE', 38],
  ['IP_ADD_SOURCE_MEMBERSHIP', 39], ['IP_DROP_SOURCE_MEMBERSHIP', 40], ['IP_MSFILTER', 41],
  ['IP_MULTICAST_ALL', 49], ['IP_UNICAST_IF', 50], ['IP_LOCAL_PORT_RANGE', 51], ['IP_PROTOCOL', 52],
];

const IPV6_OPTIONS: Table = [
  ['IPV6_ADDRFORM', 1], ['IPV6_2292PKTINFO', 2], ['IPV6_2292HOPOPTS', 3], ['IPV6_2292DSTOPTS', 4],
  ['IPV6_2292RTHDR', 5], ['IPV6_2292PKTOPTIONS', 6], ['IPV6_CHECKSUM', 7], ['IPV6_2292HOPLIMIT', 8],
  ['IPV6_NEXTHOP', 9], ['IPV6_AUTHHDR', 10], ['IPV6_FLOWINFO', 11], ['IPV6_UNICAST_HOPS', 16],
  ['IPV6_MULTICAST_IF', 17], ['IPV6_MULTICAST_HOPS', 18], ['IPV6_MULTICAST_LOOP', 19],
  ['IPV6_ADD_MEMBERSHIP', 20], ['IPV6_DROP_MEMBERSHIP', 21], ['IPV6_ROUTER_ALERT', 22],
  ['IPV6_MTU_DISCOVER', 23], ['IPV6_MTU', 24], ['IPV6_RECVERR', 25], ['IPV6_V6ONLY', 26],
  ['IPV6_JOIN_ANYCAST', 27], ['IPV6_LEAVE_ANYCAST', 28], ['IPV6_MULTICAST_ALL', 29],
  ['IPV6_ROUTER_ALERT_ISOLATE', 30], ['IPV6_RECVERR_RFC4884', 31], ['IPV6_FLOWLABEL_MGR', 32],
  ['IPV6_FLOWINFO_SEND', 33], ['IPV6_IPSEC_POLICY', 34], ['IPV6_XFRM_POLICY', 35], ['IPV6_HDRINCL', 36],
  ['IPV6_RECVPKTINFO', 49], ['IPV6_PKTINFO', 50], ['IPV6_RECVHOPLIMIT', 51], ['IPV6_HOPLIMIT', 52],
  ['IPV6_RECVHOPOPTS', 53], ['IPV6_HOPOPTS', 54], ['IPV6_RTHDRDSTOPTS', 55], ['IPV6_RECVRTHDR', 56],
  ['IPV6_RTHDR', 57], ['IPV6_RECVDSTOPTS', 58], ['IPV6_DSTOPTS', 59], ['IPV6_RECVPATHMTU', 60],
  ['IPV6_PATHMTU', 61], ['IPV6_DONTFRAG', 62], ['IPV6_USE_MIN_MTU', 63], ['IPV6_RECVTCLASS', 66],
  ['IPV6_TCLASS', 67], ['IPV6_AUTOFLOWLABEL', 70], ['IPV6_ADDR_PREFERENCES', 72], ['IPV6_MINHOPCOUNT', 73],
  ['IPV6_ORIGDSTADDR', 74], ['IPV6_TRANSPARENT', 75], ['IPV6_UNICAST_IF', 76], ['IPV6_RECVFRAGSIZE', 77],
  ['IPV6_FREEBIND', 78],
];

const OPTIONS_BY_LEVEL: ReadonlyMap<number, Table> =
  new Map([[SOL_SOCKET, SOCKET_OPTIONS], [SOL_IP, IP_OPTIONS], [SOL_IPV6, IPV6_OPTIONS]]);

/**
 * What a privileged option's value is: a number (int or u32 in the
 * kernel), on/off (the kernel tests != 0), or an interface name.
 */
export type OptionValue = 'int' | 'bool' | 'interface';

export interface PrivilegedOption {
  name: string;
  level: number;
  option: number;
  value: OptionValue;
}

/**
 * The options a [setsockopt.NAME] rule may set as root: each needs
 * CAP_NET_RAW or CAP_NET_ADMIN for some value (SO_PRIORITY above 6,
 * IP_TRANSPARENT and IPV6_TRANSPARENT when on, SO_BINDTODEVICE when the
 * socket is already bound, the others always).
 */
export const PRIVILEGED_OPTIONS: ReadonlyMap<string, PrivilegedOption> = new Map(([
  ['SO_MARK', SOL_SOCKET, SO_MARK, 'int'],
  ['SO_PRIORITY', SOL_SOCKET, SO_PRIORITY, 'int'],
  ['SO_BINDTODEVICE', SOL_SOCKET, SO_BINDTODEVICE, 'interface'],
  ['SO_RCVBUFFORCE', SOL_SOCKET, SO_RCVBUFFORCE, 'int'],
  ['SO_SNDBUFFORCE', SOL_SOCKET, SO_SNDBUFFORCE, 'int'],
  ['IP_TRANSPARENT', SOL_IP, IP_TRANSPARENT, 'bool'],
  ['IPV6_TRANSPARENT', SOL_IPV6, IPV6_TRANSPARENT, 'bool'],
] as const).map(([name, level, option, value]) => [name, { name, level, option, value }]));

/** The privileged option at (level, option), if it is one. */
export function privilegedOption(level: number, option: number): PrivilegedOption | undefined {
  for (const o of PRIVILEGED_OPTIONS.values()) if (o.level === level && o.option === option) return o;
  return undefined;
}

/** Every option name this table knows (any level), for telling "unknown" from "not supported". */
export const KNOWN_OPTIONS: ReadonlySet<string> =
  new Set([...OPTIONS_BY_LEVEL.values()].flatMap((t) => t.map(([name]) => name)));

// ---- IP addresses: one text form ----------------------------------------------

/*
 * Rules and the broker must agree on the text of an address, so both go
 * through these: a rule's literal through canonicalAddress, the bytes the
 * program passed to bind() through addressText. IPv6 is written as RFC 5952
 * says (lowercase, no leading zeros, the longest run of two or more zero
 * groups as "::", the first on a tie), IPv4-mapped addresses as
 * ::ffff:a.b.c.d; IPv4 as dotted decimal.
 */

/** The 4 or 16 bytes of an IPv4 or IPv6 literal; undefined for anything else (names, zones, brackets). */
export function addressBytes(text: string): Uint8Array | undefined {
  const family = isIP(text);
  if (family === 4) return Uint8Array.from(text.split('.').map(Number));
  if (family !== 6 || text.includes('%')) return undefined;
  // isIP checked the syntax: at most one "::", groups of 1-4 hex digits, an optional dotted tail
  const groups = (part: string): number[] => part === '' ? [] : part.split(':').flatMap((g) => {
    if (!g.includes('.')) return [parseInt(g, 16)];
    const [a, b, c, d] = g.split('.').map(Number);
    return [(a << 8) | b, (c << 8) | d];
  });
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const words = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const out = new Uint8Array(16);
  words.forEach((w, i) => { out[2 * i] = w >> 8; out[2 * i + 1] = w & 0xff; });
  return out;
}

/** The canonical text of 4 (IPv4) or 16 (IPv6) address bytes in network order. */
export function addressText(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${bytes.subarray(12).join('.')}`;
  }
  let best = { at: -1, length: 1 };   // runs of one zero group stay written out
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (best.at < 0) return hex(words);
  return `${hex(words.slice(0, best.at))}::${hex(words.slice(best.at + best.length))}`;
}

/** An address literal in its canonical text (::0001 -> ::1); undefined if it is no literal. */
export function canonicalAddress(text: string): string | undefined {
  const bytes = addressBytes(text);
  return bytes && addressText(bytes);
}

/** 0.0.0.0 and ::, which bind() takes as "every address of the host". */
export function isWildcardAddress(canonical: string): boolean {
  return canonical === '0.0.0.0' || canonical === '::';
}

/** A bind() address as the program passed it: struct sockaddr_in or sockaddr_in6. */
export interface InetSockaddr {
  family: number;      // AF_INET or AF_INET6, from sa_family
  address: string;     // canonical text
  port: number;        // host order
  scopeId: number;     // sin6_scope_id (0 for inet, and for a 24-byte sockaddr_in6)
}

/**
 * Decodes a sockaddr for bind(): sa_family in host order, then the port
 * in network order. The lengths are the kernel's minimums (inet_bind:
 * sizeof(sockaddr_in), inet6_bind: SIN6_LEN_RFC2133, 24 bytes, without
 * the scope id). undefined: too short, or a family other than AF_INET and
 * AF_INET6 (the kernel's AF_UNSPEC compatibility case included: refuse it).
 * Decode the broker's own copy, once.
 */
export function decodeInetSockaddr(buf: Uint8Array): InetSockaddr | undefined {
  if (buf.length < 2) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const family = view.getUint16(0, true);
  if (family === AF_INET && buf.length >= 16) {
    return { family, address: addressText(buf.slice(4, 8)), port: view.getUint16(2, false), scopeId: 0 };
  }
  if (family === AF_INET6 && buf.length >= 24) {
    const scopeId = buf.length >= 28 ? view.getUint32(24, true) : 0;
    return { family, address: addressText(buf.slice(8, 24)), port: view.getUint16(2, false), scopeId };
  }
  return undefined;
}

// ---- errno (asm-generic/errno-base.h, asm-generic/errno.h) ---------------

const ERRNOS: Table = [
  ['EPERM', 1], ['ENOENT', 2], ['ESRCH', 3], ['EINTR', 4], ['EIO', 5],
  ['ENXIO', 6], ['E2BIG', 7], ['ENOEXEC', 8], ['EBADF', 9], ['ECHILD', 10],
  ['EAGAIN', 11], ['ENOMEM', 12], ['EACCES', 13], ['EFAULT', 14],
  ['ENOTBLK', 15], ['EBUSY', 16], ['EEXIST', 17], ['EXDEV', 18],
  ['ENODEV', 19], ['ENOTDIR', 20], ['EISDIR', 21], ['EINVAL', 22],
  ['ENFILE', 23], ['EMFILE', 24], ['ENOTTY', 25], ['ETXTBSY', 26],
  ['EFBIG', 27], ['ENOSPC', 28], ['ESPIPE', 29], ['EROFS', 30],
  ['EMLINK', 31], ['EPIPE', 32], ['EDOM', 33], ['ERANGE', 34],
  ['EDEADLK', 35], ['ENAMETOOLONG', 36], ['ENOLCK', 37], ['ENOSYS', 38],
  ['ENOTEMPTY', 39], ['ELOOP', 40], ['ENOMSG', 42], ['EIDRM', 43],
  ['ECHRNG', 44], ['EL2NSYNC', 45], ['EL3HLT', 46], ['EL3RST', 47],
  ['ELNRNG', 48], ['EUNATCH', 49], ['ENOCSI', 50], ['EL2HLT', 51],
  ['EBADE', 52], ['EBADR', 53], ['EXFULL', 54], ['ENOANO', 55],
  ['EBADRQC', 56], ['EBADSLT', 57], ['EBFONT', 59], ['ENOSTR', 60],
  ['ENODATA', 61], ['ETIME', 62], ['ENOSR', 63], ['ENONET', 64],
  ['ENOPKG', 65], ['EREMOTE', 66], ['ENOLINK', 67], ['EADV', 68],
  ['ESRMNT', 69], ['ECOMM', 70], ['EPROTO', 71], ['EMULTIHOP', 72],
  ['EDOTDOT', 73], ['EBADMSG', 74], ['EOVERFLOW', 75], ['ENOTUNIQ', 76],
  ['EBADFD', 77], ['EREMCHG', 78], ['ELIBACC', 79], ['ELIBBAD', 80],
  ['ELIBSCN', 81], ['ELIBMAX', 82], ['ELIBEXEC', 83], ['EILSEQ', 84],
  ['ERESTART', 85], ['ESTRPIPE', 86], ['EUSERS', 87], ['ENOTSOCK', 88],
  ['EDESTADDRREQ', 89], ['EMSGSIZE', 90], ['EPROTOTYPE', 91],
  ['ENOPROTOOPT', 92], ['EPROTONOSUPPORT', 93], ['ESOCKTNOSUPPORT', 94],
  ['EOPNOTSUPP', 95], ['EPFNOSUPPORT', 96], ['EAFNOSUPPORT', 97],
  ['EADDRINUSE', 98], ['EADDRNOTAVAIL', 99], ['ENETDOWN', 100],
  ['ENETUNREACH', 101], ['ENETRESET', 102], ['ECONNABORTED', 103],
  ['ECONNRESET', 104], ['ENOBUFS', 105], ['EISCONN', 106], ['ENOTCONN', 107],
  ['ESHUTDOWN', 108], ['ETOOMANYREFS', 109], ['ETIMEDOUT', 110],
  ['ECONNREFUSED', 111], ['EHOSTDOWN', 112], ['EHOSTUNREACH', 113],
  ['EALREADY', 114], ['EINPROGRESS', 115], ['ESTALE', 116], ['EUCLEAN', 117],
  ['ENOTNAM', 118], ['ENAVAIL', 119], ['EISNAM', 120], ['EREMOTEIO', 121],
  ['EDQUOT', 122], ['ENOMEDIUM', 123], ['EMEDIUMTYPE', 124],
  ['ECANCELED', 125], ['ENOKEY', 126], ['EKEYEXPIRED', 127],
  ['EKEYREVOKED', 128], ['EKEYREJECTED', 129], ['EOWNERDEAD', 130],
  ['ENOTRECOVERABLE', 131], ['ERFKILL', 132], ['EHWPOISON', 133],
  // aliases: accepted by errnoNumber, never produced by errnoName
  ['EWOULDBLOCK', 11], ['EDEADLOCK', 35], ['ENOTSUP', 95],
];

export const EPERM = 1;
export const EACCES = 13;

/*
 * The errno values a rule may answer a refusal with. Others (EINTR, EAGAIN,
 * ...) would send a program into a retry loop instead of telling it "no".
 */
export const REFUSAL_ERRNOS: readonly string[] = [
  'EPERM', 'EACCES', 'ENOSYS', 'EINVAL', 'EAFNOSUPPORT', 'EPROTONOSUPPORT',
  'ESOCKTNOSUPPORT', 'EOPNOTSUPP',
];

// ---- decoding, for audit records -----------------------------------------

const domainNames = byNumber(DOMAINS);
const typeNames = byNumber(TYPES);
const protocolNames = byNumber(PROTOCOLS);
const ethertypeNames = byNumber(ETHERTYPES);
const levelNames = byNumber(LEVELS);
const optionNames = new Map([...OPTIONS_BY_LEVEL].map(([level, table]) => [level, byNumber(table)]));
const errnoNames = byNumber(ERRNOS);
const errnoNumbers = byName(ERRNOS);

/** `domainName(2) === 'inet'`; undefined for a number the kernel lacks. */
export function domainName(n: number): string | undefined {
  return domainNames.get(n);
}

/** Name of a base socket type; strip SOCK_NONBLOCK/SOCK_CLOEXEC first. */
export function typeName(n: number): string | undefined {
  return typeNames.get(n);
}

/**
 * Name of socket(2)'s protocol argument in a domain: an IP protocol for
 * inet/inet6, an ethertype for packet (the argument is in network byte
 * order there, htons(ETH_P_ALL) for "all"); undefined for other domains and
 * unnamed numbers.
 */
export function protocolName(domain: number, n: number): string | undefined {
  if (domain === AF_INET || domain === AF_INET6) return protocolNames.get(n);
  if (domain === AF_PACKET && n >= 0 && n <= 0xffff) return ethertypeNames.get(htons16(n));
  return undefined;
}

/** `levelName(1) === 'SOL_SOCKET'`. */
export function levelName(level: number): string | undefined {
  return levelNames.get(level);
}

/** `optionName(1, 36) === 'SO_MARK'`; undefined for a level or option not in the tables. */
export function optionName(level: number, option: number): string | undefined {
  return optionNames.get(level)?.get(option);
}

/** `errnoName(1) === 'EPERM'`. */
export function errnoName(n: number): string | undefined {
  return errnoNames.get(n);
}

/** `errnoNumber('EPERM') === 1`; aliases (ENOTSUP, EWOULDBLOCK) accepted. */
export function errnoNumber(name: string): number | undefined {
  return errnoNumbers.get(name);
}
