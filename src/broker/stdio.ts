/*
 * The stdio fds of a run: what a client may hand over as the program's
 * stdin, stdout and stderr.
 *
 * MUST:
 *  - refuse an fd that cannot serve as stdio: an O_PATH fd (no read or
 *    write on it ever succeeds) or a directory (a client that sends one is
 *    confused or probing, and the program would get a directory at fd 0-2);
 *  - refuse a connection to this broker: the program would hold the
 *    client's end of a session (its own or another), so the client going
 *    away would never reach the broker as a hang-up and the session would
 *    outlive its client, and the program could speak the protocol in the
 *    client's name;
 *  - never block: the flags, the cached file type and the socket options
 *    are read from the kernel's own state, never from a file system
 *    (fileTypeCached), so a user's FUSE or NFS file cannot stall the loop.
 */
import { AF_UNIX, SysError, fileStatusFlags, fileTypeCached, O_PATH, peerCred, socketKind } from '../shared/native/libc.js';
import { ProtocolError } from '../shared/protocol.js';

const S_IFDIR = 0o040000;
const S_IFSOCK = 0o140000;
const NAMES = ['stdin', 'stdout', 'stderr'];

/** Throws a ProtocolError naming the first of fds[0..2] that cannot be the program's stdio. */
export function checkStdio(fds: readonly number[]): void {
  for (let i = 0; i < 3; i++) {
    const problem = stdioProblem(fds[i]);
    if (problem) throw new ProtocolError(`${NAMES[i]} (fd ${i} of the run) ${problem}`);
  }
}

function stdioProblem(fd: number): string | null {
  try {
    if (fileStatusFlags(fd) & O_PATH) return 'is an O_PATH fd, which cannot be read or written';
    const type = fileTypeCached(fd);
    if (type === S_IFDIR) return 'is a directory; stdio must be a file, pipe, socket or terminal';
    if (type === S_IFSOCK && isBrokerConnection(fd)) return 'is a connection to the broker itself';
    return null;
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    return `cannot be inspected: ${e.message}`;
  }
}

/**
 * A unix socket connected to one of this broker's listening sockets: the
 * kernel gives a connected socket the credentials its peer had at
 * listen(), and only this process listens with this pid.
 */
function isBrokerConnection(fd: number): boolean {
  if (socketKind(fd)?.domain !== AF_UNIX) return false;
  try {
    return peerCred(fd).pid === process.pid;
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENOTCONN') return false;
    throw e;
  }
}
