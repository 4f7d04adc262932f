/*
 * A unix datagram socket connected to one address: how the broker talks to
 * the journal, to syslog (/dev/log) and to systemd's NOTIFY_SOCKET.
 */
import { constants as osConstants } from 'node:os';
import {
  AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOL_SOCKET, SysError, closeQuietly, connectUnix, connectUnixAbstract,
  sendmsg, setsockoptRaw, socket,
} from '../shared/native/libc.js';

const SO_SNDBUF = 7;
const SO_SNDBUFFORCE = 32;
/** As sd-journal does: a large record must fit one datagram (the kernel's limit is the send buffer). */
const SEND_BUFFER = 8 * 1024 * 1024;

export class UnixDatagram {
  private fd: number;

  /** Connected to `address` (a path, or "@name" in the abstract namespace); throws SysError. */
  constructor(readonly address: string) {
    this.fd = UnixDatagram.open(address);
  }

  private static open(address: string): number {
    const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    try {
      const size = Buffer.alloc(4);
      size.writeInt32LE(SEND_BUFFER);
      // FORCE needs CAP_NET_ADMIN (the broker's unit has it); else as large as net.core.wmem_max allows.
      if (setsockoptRaw(fd, SOL_SOCKET, SO_SNDBUFFORCE, size) !== 0) setsockoptRaw(fd, SOL_SOCKET, SO_SNDBUF, size);
      if (address.startsWith('@')) connectUnixAbstract(fd, address.slice(1));
      else connectUnix(fd, address);
      return fd;
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
  }

  /**
   * One datagram, blocking until the receiver takes it. A receiver that
   * restarted (journald) has a new socket: connect again, once. Throws
   * SysError when it still fails.
   */
  send(data: Buffer): void {
    let reconnected = false;
    for (;;) {
      try {
        sendmsg(this.fd, data);
        return;
      } catch (e) {
        if (!(e instanceof SysError)) throw e;
        if (e.errno === osConstants.errno.EINTR) continue;
        const gone = e.errno === osConstants.errno.ECONNREFUSED || e.errno === osConstants.errno.ENOTCONN
          || e.errno === osConstants.errno.ENOENT;
        if (!gone || reconnected) throw e;
        const fd = UnixDatagram.open(this.address);
        closeQuietly(this.fd);
        this.fd = fd;
        reconnected = true;
      }
    }
  }

  close(): void {
    closeQuietly(this.fd);
    this.fd = -1;
  }
}
