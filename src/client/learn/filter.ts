/*
 * The learning filter: every call that could need privilege is trapped,
 * whatever its arguments, so that learn can see it and decide. The rest
 * runs untouched, as under the broker.
 *
 *   call        arguments                                  why
 *   ----------  -----------------------------------------  --------------------------------
 *   socket      domain == inet,  (type & ~flags) == raw   CAP_NET_RAW
 *   socket      domain == inet6, (type & ~flags) == raw   CAP_NET_RAW
 *   socket      domain == packet                          CAP_NET_RAW
 *   bind        (socklen_t)addrlen == 16 or 28            a port below ip_unprivileged_port_start
 *   setsockopt  (int)level, (int)optname of each          CAP_NET_RAW / CAP_NET_ADMIN for
 *               option [setsockopt.*] can grant           some values
 *   (and the broker's own rows for every program: exec, the header-including options, io_uring)
 *
 * Only kinds a rule can grant are trapped: an ICMP datagram socket, for
 * one, is refused (EACCES) when ping_group_range excludes the user, but
 * no rule can create it as root (it is not a raw socket), and programs
 * fall back to a raw one, which is what learn then sees. Other domains'
 * sockets need no CAP_NET_RAW (netlink, unix, ...) or are not the
 * broker's to grant.
 */
import { type FilterRow, alwaysTrapped, compileFilter, SOCK_FLAGS_MASK } from '../../broker/seccomp/filter.js';
import { AF_INET, AF_INET6, AF_PACKET, PRIVILEGED_OPTIONS, SOCK_RAW } from '../../broker/rules/names.js';

const U32 = 0xffffffffn;
const U64 = 0xffffffffffffffffn;
const TYPE_MASK = U64 & ~BigInt(SOCK_FLAGS_MASK);

function rawSocket(domain: number, name: string): FilterRow {
  return {
    syscall: 'socket',
    args: [
      { arg: 0, mask: U64, value: BigInt(domain), text: `domain == ${domain}` },
      { arg: 1, mask: TYPE_MASK, value: BigInt(SOCK_RAW), text: `(type & ~(SOCK_NONBLOCK|SOCK_CLOEXEC)) == ${SOCK_RAW}` },
    ],
    why: `a raw ${name} socket needs CAP_NET_RAW`,
  };
}

export function learningTable(): FilterRow[] {
  return [
    rawSocket(AF_INET, 'inet'),
    rawSocket(AF_INET6, 'inet6'),
    { syscall: 'socket', args: [{ arg: 0, mask: U64, value: BigInt(AF_PACKET), text: `domain == ${AF_PACKET}` }], why: 'a packet socket needs CAP_NET_RAW' },
    ...[16, 28].map((len) => ({
      syscall: 'bind',
      args: [{ arg: 2, mask: U32, value: BigInt(len), text: `(socklen_t)addrlen == ${len}` }],
      why: 'a port below ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE',
    })),
    ...[...PRIVILEGED_OPTIONS.values()].map((o) => ({
      syscall: 'setsockopt',
      args: [
        { arg: 1, mask: U32, value: BigInt(o.level), text: `(int)level == ${o.level}` },
        { arg: 2, mask: U32, value: BigInt(o.option), text: `(int)optname == ${o.option} (${o.name})` },
      ],
      why: `${o.name} needs CAP_NET_RAW or CAP_NET_ADMIN for some values`,
    })),
    ...alwaysTrapped(),
  ];
}

export function buildLearningFilter(): Buffer {
  return compileFilter(learningTable());
}
