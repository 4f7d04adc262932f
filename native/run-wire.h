/* stx-run's socket to the broker: SOCK_SEQPACKET, one message a datagram,
 * fds by SCM_RIGHTS. Each call fails with -1 and errno. */
#ifndef RUN_WIRE_H
#define RUN_WIRE_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

/* The longest socket path: sun_path less its NUL. */
#define WIRE_MAX_SOCKET_PATH (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* The connected socket (close-on-exec); ENAMETOOLONG for a path over WIRE_MAX_SOCKET_PATH. */
int wire_connect(const char *path);

/* One datagram with nfds fds attached; MSG_NOSIGNAL, so a gone broker is EPIPE, not SIGPIPE. */
int wire_send(int sock, const char *data, size_t len, const int *fds, int nfds);

/* One datagram without waiting: its length (0: the broker closed), or -1
 * (EAGAIN: none yet). Fds sent along are closed: none is expected.
 * *truncated when it was longer than cap. */
ssize_t wire_recv(int sock, char *buf, size_t cap, int *truncated);

#endif
