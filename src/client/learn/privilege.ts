/*
 * Would this call fail without privilege? The kernel's own rule for each
 * call learn traps, decided on the kernel's objects (the socket, its
 * network namespace), never on what the program says.
 *
 * Every check the kernel makes for these calls is ns_capable(net->user_ns,
 * CAP_NET_RAW / CAP_NET_BIND_SERVICE / CAP_NET_ADMIN) on the network
 * namespace of the socket (or of the caller, for socket()). The program
 * runs with a non-root uid, no capability and no_new_privs, in a user
 * namespace no deeper than learn's own (the launcher enters no other), so:
 *  - in a network namespace owned by learn's user namespace (the host's, or
 *    the one learn itself runs in) it holds none of those capabilities, and
 *    the call fails: learn performs it as root and records it;
 *  - in one owned by another user namespace (one the program made itself,
 *    where it may be all-powerful) it may hold them: learn lets the kernel
 *    decide with the program's own credentials (CONTINUE) and records
 *    nothing, which is also what the broker does with a call no rule names.
 * Trying the call with the user's credentials would be as exact, but needs
 * a second process in the program's namespaces for every call.
 */
import { fstatSync, statSync } from 'node:fs';
import { closeQuietly, ioctlValue } from '../../shared/native/libc.js';
import { unprivilegedPortStart } from '../../broker/seccomp/operations.js';

const NS_GET_USERNS = 0xb701; // _IO(0xb7, 0x1)
const ownUserns = statSync('/proc/self/ns/user');

/** The network namespace `netnsFd` is owned by learn's own user namespace. */
export function ownedByOurUserns(netnsFd: number): boolean {
  const userns = ioctlValue(netnsFd, NS_GET_USERNS, 0, 'ioctl(NS_GET_USERNS)');
  try {
    const st = fstatSync(userns);
    return st.ino === ownUserns.ino && st.dev === ownUserns.dev;
  } finally {
    closeQuietly(userns);
  }
}

/** bind() to `port` in the namespace `netnsFd` needs CAP_NET_BIND_SERVICE (inet_port_requires_bind_service). */
export function portNeedsPrivilege(netnsFd: number, port: number): boolean {
  return port !== 0 && port < unprivilegedPortStart(netnsFd) && ownedByOurUserns(netnsFd);
}
