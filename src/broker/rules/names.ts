/*
 * Name tables for x86_64 Linux: socket domains, types, IP protocols,
 * ethertypes and errno values. The parser turns names into the kernel's
 * numbers with them; the audit turns numbers back into names.
 *
 * The tables are written out rather than read from the host (os.constants,
 * /etc/protocols) so that a rule means the same on every machine.
 */

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

/** `errnoName(1) === 'EPERM'`. */
export function errnoName(n: number): string | undefined {
  return errnoNames.get(n);
}

/** `errnoNumber('EPERM') === 1`; aliases (ENOTSUP, EWOULDBLOCK) accepted. */
export function errnoNumber(name: string): number | undefined {
  return errnoNumbers.get(name);
}
