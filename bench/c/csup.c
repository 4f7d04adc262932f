/*
 * The baseline: a minimal C seccomp supervisor.
 *   csup FILTER.bpf UID GID PROGRAM ARGS...
 * Forks; the child becomes UID/GID, sets no_new_privs, installs the filter
 * (the broker's own bytes) with NEW_LISTENER, hands the listener back by
 * SCM_RIGHTS and execs PROGRAM. The parent sets SYNC_WAKE_UP and serves
 * the listener from an epoll loop: exec -> CONTINUE; socket -> socket() +
 * ADDFD|SEND; bind -> pidfd_getfd + read the address + ID_VALID + bind;
 * anything else -> EPERM. Exits with the child's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

static void die(const char *m) { perror(m); exit(111); }

static int recv_fd(int sock) {
  char c; struct iovec io = { &c, 1 };
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) <= 0) return -1;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) return -1;
  int fd; memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

static void send_fd(int sock, int fd) {
  char c = 0; struct iovec io = { &c, 1 };
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  if (sendmsg(sock, &mh, 0) != 1) die("sendmsg");
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: csup FILTER.bpf UID GID PROGRAM ARGS...\n"); return 2; }
  int ffd = open(argv[1], O_RDONLY);
  if (ffd < 0) die(argv[1]);
  static struct sock_filter insns[4096];
  ssize_t len = read(ffd, insns, sizeof insns);
  if (len <= 0 || len % sizeof(struct sock_filter)) die("filter");
  close(ffd);
  struct sock_fprog prog = { .len = len / sizeof(struct sock_filter), .filter = insns };
  uid_t uid = atoi(argv[2]); gid_t gid = atoi(argv[3]);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) die("socketpair");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(sv[0]);
    if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) die("drop");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs");
    int lfd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (lfd < 0) die("seccomp");
    send_fd(sv[1], lfd);
    close(lfd);
    execv(argv[4], argv + 4);
    die("execv");
  }
  close(sv[1]);
  int lfd = recv_fd(sv[0]);
  if (lfd < 0) die("recv listener");
  close(sv[0]);
  if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)) die("SET_FLAGS");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) die("epoll_ctl");
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  for (;;) {
    struct epoll_event got;
    int k = epoll_wait(ep, &got, 1, -1);
    if (k < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
    if (!(got.events & EPOLLIN)) break;   /* hang-up: the last target is gone */
    memset(&req, 0, sizeof req);
    if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &req)) {
      if (errno == ENOENT || errno == EINTR) continue;
      die("NOTIF_RECV");
    }
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    switch (req.data.nr) {
    case SYS_execve: case SYS_execveat:
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      break;
    case SYS_socket: {
      int type = req.data.args[1];
      int s = socket(req.data.args[0], type, req.data.args[2]);
      if (s < 0) { resp.error = -errno; break; }
      struct seccomp_notif_addfd add = {
        .id = req.id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = s, .newfd = 0,
        .newfd_flags = (type & SOCK_CLOEXEC) ? O_CLOEXEC : 0,
      };
      ioctl(lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);  /* answers the call */
      close(s);
      continue;
    }
    case SYS_bind: {
      int pidfd = syscall(SYS_pidfd_open, req.pid, 0);
      int s = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, (int)req.data.args[0], 0);
      char addr[128];
      socklen_t alen = req.data.args[2];
      struct iovec local = { addr, alen }, remote = { (void *)req.data.args[1], alen };
      if (s < 0 || alen > sizeof addr) resp.error = -EPERM;
      else if (process_vm_readv(req.pid, &local, 1, &remote, 1, 0) != (ssize_t)alen) resp.error = -EFAULT;
      else if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id)) { if (s >= 0) close(s); if (pidfd >= 0) close(pidfd); continue; }
      else if (bind(s, (struct sockaddr *)addr, alen)) resp.error = -errno;
      if (s >= 0) close(s);
      if (pidfd >= 0) close(pidfd);
      break;
    }
    default:
      resp.error = -EPERM;
    }
    ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
  int st;
  if (waitpid(child, &st, 0) < 0) die("waitpid");
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
