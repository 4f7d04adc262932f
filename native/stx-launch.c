/*
 * stx-launch: turns itself, step by step, from root into the user's program.
 *
 * Run by stx-elevated as root, with an empty environment, fds 0-2 the
 * client's stdio, and the fds below given by number.
 *
 *   stx-launch --uid N --gid N --exec-gid N --groups G1,G2,... --umask OCTAL
 *              [--rlimit NAME=SOFT:HARD]... [--env NAME=VALUE]...
 *              --loginuid N --nice N --affinity CPULIST --oom-score-adj N
 *              --ioprio N
 *              --control-fd N --cwd-fd N --exec-fd N --filter-fd N --netns-fd N
 *              [--cgroup-fd N|control]
 *              -- ARGV0 [ARG...]
 *
 * Every option takes one value and comes once, except --rlimit (once per
 * NAME) and --env (once per NAME: the program's whole environment). Every
 * option is required except --rlimit, --env and --cgroup-fd (left out when
 * the broker started us inside the session's cgroup already, with clone3
 * CLONE_INTO_CGROUP, or runs with --no-cgroups). Numbers are decimal digits only
 * (umask: octal digits; --nice and --oom-score-adj may start with "-");
 * ids 0..4294967294; --uid 0 needs --gid 0; --exec-gid is not 0 and differs
 * from --gid; --groups may be empty, at most 65536. The client's context:
 * --loginuid 0..4294967295 (4294967295: unset), --nice -20..19,
 * --affinity a CPU list as in /proc/PID/status Cpus_allowed_list ("0-3,6":
 * CPUs 0..8191, ranges ascending and disjoint, not empty), --oom-score-adj
 * -1000..1000, --ioprio 0..65535 as ioprio_get(2) returns it (class, the top
 * 3 bits, at most 3). fds are >= 3, distinct and open; --control-fd is an
 * AF_UNIX SOCK_SEQPACKET socket; --cgroup-fd an O_DIRECTORY fd of the
 * session's cgroup (v2), or "control": the broker sends that fd on the
 * control socket ("cgroup" + SCM_RIGHTS, 1 fd) once the cgroup exists
 * (a systemd scope, which can only be made with a pid in it: ours), and
 * the launcher waits for it at step 2, before it changes anything. The filter fd yields 1..4096 struct sock_filter
 * then EOF (the broker writes it and closes its end). At most 65536 argv and
 * 65536 env entries, 1 MiB of strings in all, argv[0] present.
 *
 * Control datagram, broker -> launcher (only with --cgroup-fd control):
 *   "cgroup" + SCM_RIGHTS (1 fd)    the session's cgroup; end of file or
 *                                    anything else instead: error 2.
 * Control datagrams, launcher -> broker:
 *   "listener" + SCM_RIGHTS (1 fd)  the seccomp listener, before the exec;
 *   "error STEP: WHAT: WHY"          then exit status 127 (e.g. "error 11:
 *                                    setresuid(1000,1000,1000): Operation
 *                                    not permitted"; the steps are below);
 *   end of file without an error     the exec succeeded (the control fd is
 *                                    close-on-exec; the broker must close its
 *                                    own copy of our end after the spawn).
 * Steps, as numbered in error reports and in main(): 1 command line
 * (launch-args.c, apart so that native/fuzz can run it in a loop); as
 * root: 2 join the cgroup, 3 signals, 4 setsid, a session keyring and the
 * network namespace, 5 rlimits, 6 umask, 7 personality, 8 loginuid, nice,
 * I/O priority, affinity, oom_score_adj, 9 groups, 10 gids, 11 uids; as the
 * user: 12 no_new_privs, 13 cwd, 14 read the filter, 15 install it, 16 send
 * the listener, 17 close_range, 18 execveat.
 * The one execveat is trapped by the filter: the broker must answer it from
 * the listener. Between the filter and the exec the launcher calls only
 * sendmsg, close, close_range and execveat (and write, exit_group on error).
 * A #! script cannot run: its fd is close-on-exec, so execveat gives ENOENT.
 *
 * MUST guarantee:
 *  - the whole command line is validated before any state changes;
 *  - any failure ends in one error report and _exit(127): never a program
 *    with half-dropped credentials;
 *  - the launcher is in the session's cgroup before it changes anything
 *    else (the first step after the parse, which only reads): whatever it
 *    or the program becomes, killing that cgroup kills it;
 *  - the program runs with exactly the given uid, gid, groups, umask and
 *    rlimits, the client's loginuid, nice value, I/O priority, CPU affinity
 *    and oom_score_adj (nothing of the broker's own), default signal
 *    dispositions, no blocked signal, its own session, the setuid-cleared
 *    personality flags cleared, no_new_privs;
 *  - the privilege is really gone (setuid(0) fails) unless --uid 0;
 *  - the exec crosses a gid change (real gid = the exec group), so it is a
 *    secure exec: AT_SECURE, not dumpable, not ptrace-able by the user;
 *  - the listener reaches the broker before the exec is attempted;
 *  - no fd above 2 and nothing of the launcher's environment reach the
 *    program; the binary is the broker's open file, never a path.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch-args.h"

#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PER_CLEAR_ON_SETID /* linux/personality.h has it; glibc's header not */
#define PER_CLEAR_ON_SETID \
  (READ_IMPLIES_EXEC | ADDR_NO_RANDOMIZE | ADDR_COMPAT_LAYOUT | MMAP_PAGE_ZERO)
#endif

#define MAX_INSNS 4096

static struct sock_filter insns[MAX_INSNS + 1];  /* one spare: detects "too many" */

/* --- reporting: one datagram, or stderr when there is no usable control socket */

/* "error STEP: WHAT" and, when err is not 0, ": strerror(err)". */
__attribute__((noreturn, format(printf, 3, 4)))
void report(int step, int err, const char *fmt, ...)
{
  char msg[1024], line[sizeof msg + 16];
  int n = snprintf(msg, sizeof msg, "error %d: ", step);
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(msg + n, sizeof msg - n, fmt, ap);
  va_end(ap);
  if (err && n < (int)sizeof msg)
    snprintf(msg + n, sizeof msg - n, ": %s", strerror(err));
  size_t len = strlen(msg);
  if (control_fd < 0 || send(control_fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
    n = snprintf(line, sizeof line, "stx-launch: %s\n", msg);
    if (write(STDERR_FILENO, line, n) < 0) { /* nowhere left to say it */ }
  }
  _exit(127);
}

/* --- the steps that need more than one call */

static void reset_signals(void)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  sigset_t none;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP)
      continue;
    /* EINVAL: a signal glibc reserves for itself (32, 33); not ours to touch. */
    if (sigaction(sig, &dfl, NULL) < 0 && errno != EINVAL)
      die(3, "sigaction(%d, SIG_DFL)", sig);
  }
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
    die(3, "sigprocmask(SIG_SETMASK, {})");
}

/* Step 2: into the session's cgroup, so that killing it kills us and all we become. */
static void join_cgroup(int dirfd)
{
  int fd = openat(dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    die(2, "openat(cgroup fd %d, \"cgroup.procs\", O_WRONLY)", dirfd);
  if (write(fd, "0", 1) != 1)
    die(2, "write(cgroup fd %d cgroup.procs, \"0\")", dirfd);
  if (close(fd) < 0 || close(dirfd) < 0)
    die(2, "close(cgroup fd %d)", dirfd);
}

/* Step 2, --cgroup-fd control: wait (blocking) for the broker's "cgroup" + 1 fd. */
static int receive_cgroup_fd(int sock)
{
  char data[16];
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } control;
  struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control.buf, .msg_controllen = sizeof control.buf };
  memset(&control, 0, sizeof control);
  ssize_t n;
  do
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    die(2, "recvmsg(control fd %d)", sock);
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  int fd = -1;
  if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS
      && cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
    memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  if (n != 6 || memcmp(data, "cgroup", 6) || fd < 0 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    if (fd >= 0)
      close(fd);
    fail(2, "the broker sent no cgroup (%s)", n == 0 ? "end of file" : "unexpected message");
  }
  return fd;
}

/* A decimal value to /proc/self/NAME; ENOENT (no such file) is returned, not fatal. */
static int write_proc_self(const char *name, long long value)
{
  char path[64], text[32];
  snprintf(path, sizeof path, "/proc/self/%s", name);
  int n = snprintf(text, sizeof text, "%lld", value);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return -1;
  if (fd < 0)
    die(8, "open(%s, O_WRONLY)", path);
  if (write(fd, text, n) != n)
    die(8, "write(%s, \"%s\")", path, text);
  if (close(fd) < 0)
    die(8, "close(%s)", path);
  return 0;
}

/* The audit login uid, or -1 if the kernel keeps none (no CONFIG_AUDIT). */
static long long read_loginuid(void)
{
  char text[32];
  int fd = open("/proc/self/loginuid", O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return -1;
  if (fd < 0)
    die(8, "open(/proc/self/loginuid, O_RDONLY)");
  ssize_t n = read(fd, text, sizeof text - 1);
  if (n < 0)
    die(8, "read(/proc/self/loginuid)");
  close(fd);
  text[n] = 0;
  unsigned long long v;
  if (parse_num(text, strcspn(text, "\n"), 10, LOGINUID_UNSET, &v) < 0)
    fail(8, "read(/proc/self/loginuid): not a uid: \"%.20s\"", text);
  return v;
}

/* Step 8: the client's audit identity and scheduling, none of the broker's. */
static void client_context(void)
{
  /* The kernel's audit records then name the user who logged in, not root.
   * Only written when it differs: a write is a change even to the same
   * value (a new audit session), which an immutable loginuid refuses. */
  long long current = read_loginuid();
  if (current >= 0 && (unsigned long long)current != plan.loginuid &&
      write_proc_self("loginuid", plan.loginuid) < 0)
    die(8, "open(/proc/self/loginuid, O_WRONLY)");
  /* Root may lower the value (CAP_SYS_NICE); the client had it already. */
  if (setpriority(PRIO_PROCESS, 0, plan.nice) < 0)
    die(8, "setpriority(PRIO_PROCESS, 0, %d)", plan.nice);
  if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, plan.ioprio) < 0)
    die(8, "ioprio_set(IOPRIO_WHO_PROCESS, 0, %d)", plan.ioprio);
  /* Fails (EINVAL) when none of the CPUs is allowed here (the broker's
   * cpuset): the program gets no CPU the client did not have. */
  if (sched_setaffinity(0, CPU_ALLOC_SIZE(MAX_CPUS), plan.cpus) < 0)
    die(8, "sched_setaffinity(0, \"%.64s\")", plan.affinity_text);
  /* The broker never asks for less than its own value: lowering needs
   * CAP_SYS_RESOURCE, and a broker may run without it. */
  if (write_proc_self("oom_score_adj", plan.oom_score_adj) < 0)
    die(8, "open(/proc/self/oom_score_adj, O_WRONLY)");
}

static unsigned short read_filter(int fd)
{
  size_t total = 0;
  char *buf = (char *)insns;
  for (;;) {
    ssize_t n = read(fd, buf + total, sizeof insns - total);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die(14, "read(filter fd %d)", fd);
    if (n == 0)
      break;
    total += n;
    if (total == sizeof insns)
      fail(14, "read(filter fd %d): more than %d instructions", fd, MAX_INSNS);
  }
  if (total == 0 || total % sizeof insns[0])
    fail(14, "read(filter fd %d): %zu bytes, not 1..%d instructions of 8 bytes",
         fd, total, MAX_INSNS);
  if (close(fd) < 0)
    die(14, "close(filter fd %d)", fd);
  return total / sizeof insns[0];
}

static void send_listener(int sock, int listener)
{
  char payload[] = "listener";
  struct iovec iov = { payload, 8 };
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } control;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control.buf, .msg_controllen = sizeof control.buf };
  memset(&control, 0, sizeof control);
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &listener, sizeof listener);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != 8)
    die(16, "sendmsg(control fd %d, \"listener\", SCM_RIGHTS)", sock);
}

int main(int argc, char **argv)
{
  /* 1. Root, with the broker's fds. Decide everything before changing anything. */
  find_control_fd(argc, argv);
  parse(argc, argv);

  /* 2. Root. Into the session's cgroup before anything else changes, so
   * that nothing the launcher or the program does afterwards (fork, setsid,
   * a failure) can leave a process outside it: the broker kills the cgroup
   * when the session ends. Root: the move needs write access to the common
   * ancestor's cgroup.procs, here the broker's own cgroup. */
  if (plan.cgroup_fd == CGROUP_FROM_CONTROL)
    plan.cgroup_fd = receive_cgroup_fd(plan.control_fd);
  if (plan.cgroup_fd >= 0)
    join_cgroup(plan.cgroup_fd);

  /* 3. Root. Node ignores SIGPIPE and may block signals; ignored and blocked
   * survive exec, and the program must start as from a clean login. */
  reset_signals();

  /* 4. Root. A new session: no controlling terminal of the broker's or the
   * client's; the broker forwards the client's signals itself. EPERM with
   * a session of our own already (spawn's detached: true) is what we want. */
  if (setsid() < 0 && !(errno == EPERM && getsid(0) == getpid()))
    die(4, "setsid");
  /* Root. A session keyring of its own, as pam_keyinit gives a login: the
   * broker's (the private one systemd gives a service, or root's login
   * session's) would otherwise be one keyring (@s) shared by every program
   * it starts, whatever their users. Made as root, so it is charged to
   * root's key quota, not to the user's 200 keys, which a user's concurrent
   * programs would use up; the program possesses it, so it may use it.
   * Without keys in the kernel (ENOSYS), or under a seccomp filter that
   * denies keyctl (EPERM: systemd-nspawn's, which the program inherits
   * along with the denial), there is no keyring to share. */
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS && errno != EPERM)
    die(4, "keyctl(KEYCTL_JOIN_SESSION_KEYRING, anonymous)");
  /* Root (setns needs CAP_SYS_ADMIN). The client's network namespace, not
   * the broker's: whatever confines the client's network confines the
   * program. Only the network namespace: a mount or user namespace the user
   * made would hand the user our libraries and our ids. */
  if (setns(plan.netns_fd, CLONE_NEWNET) < 0)
    die(4, "setns(%d, CLONE_NEWNET)", plan.netns_fd);

  /* 5. Root, so the client's limits apply exactly, even a hard limit above
   * the broker's own, given CAP_SYS_RESOURCE (without it, in a container or
   * under a systemd CapabilityBoundingSet, raising a hard limit is EPERM).
   * The broker never asks for more than the client had. */
  for (size_t i = 0; i < plan.n_rlimits; i++)
    if (setrlimit(rlimits[plan.rlimits[i].index].resource, &plan.rlimits[i].value) < 0)
      die(5, "setrlimit(%s)", plan.rlimits[i].text);

  /* 6. Root. The client's umask, not the broker's. */
  umask(plan.umask);

  /* 7. Root. What a setuid exec clears (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC,
   * ...): the client must not pass a weakened address space through us. */
  int persona = personality(0xffffffff);
  if (persona < 0)
    die(7, "personality(0xffffffff)");
  if (personality(persona & ~PER_CLEAR_ON_SETID) < 0)
    die(7, "personality(%#x)", persona & ~PER_CLEAR_ON_SETID);

  /* 8. Root (loginuid needs CAP_AUDIT_CONTROL once set, a lower nice and a
   * real-time I/O class CAP_SYS_NICE). The client's loginuid, nice value,
   * I/O priority, CPU affinity and oom_score_adj, not the broker's. */
  client_context();

  /* 9. Root. Groups before the uid: once the uid is not 0, CAP_SETGID is gone. */
  if (setgroups(plan.n_groups, plan.groups) < 0)
    die(9, "setgroups(%zu groups)", plan.n_groups);

  /* 10. Root. Real gid = the exec group, effective and saved = the user's:
   * the exec then crosses a gid change and the kernel makes it secure
   * (AT_SECURE, not dumpable). ptrace checks compare the real gid too, so
   * the user's other processes cannot attach, before the exec or after. */
  if (setresgid(plan.exec_gid, plan.gid, plan.gid) < 0)
    die(10, "setresgid(%u,%u,%u)", plan.exec_gid, plan.gid, plan.gid);
  gid_t rg, eg, sg;
  if (getresgid(&rg, &eg, &sg) < 0)
    die(10, "getresgid");
  if (rg != plan.exec_gid || eg != plan.gid || sg != plan.gid)
    fail(10, "getresgid: %u,%u,%u after setresgid(%u,%u,%u)",
         rg, eg, sg, plan.exec_gid, plan.gid, plan.gid);

  /* 11. Root -> the user, for good: all three uids, so nothing is saved to
   * return to; with no uid 0 left the kernel clears every capability. */
  if (setresuid(plan.uid, plan.uid, plan.uid) < 0)
    die(11, "setresuid(%u,%u,%u)", plan.uid, plan.uid, plan.uid);
  uid_t ru, eu, su;
  if (getresuid(&ru, &eu, &su) < 0)
    die(11, "getresuid");
  if (ru != plan.uid || eu != plan.uid || su != plan.uid)
    fail(11, "getresuid: %u,%u,%u after setresuid(%u,%u,%u)",
         ru, eu, su, plan.uid, plan.uid, plan.uid);
  if (plan.uid != 0 && setuid(0) != -1)
    fail(11, "setuid(0) succeeded after the drop");

  /* 12. The user. Required for a filter without CAP_SYS_ADMIN, and no exec
   * from here on can gain privilege (setuid bits, file capabilities). */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    die(12, "prctl(PR_SET_NO_NEW_PRIVS)");

  /* 13. The user. After the drop, so the user's own search permission on
   * the directory decides, not root's. */
  if (fchdir(plan.cwd_fd) < 0)
    die(13, "fchdir(%d)", plan.cwd_fd);

  /* 14. The user. The broker compiled the filter; we only carry it. */
  struct sock_fprog prog = { .len = read_filter(plan.filter_fd), .filter = insns };

  /* 15. The user, no_new_privs. From here on every call we make passes the
   * filter; the listener's fd is close-on-exec from the kernel. */
  int listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                         SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener < 0)
    die(15, "seccomp(SET_MODE_FILTER, NEW_LISTENER, %u instructions)", prog.len);

  /* 16. The user. The broker must hold the listener before the exec, which
   * the filter traps and only the broker can let through. */
  send_listener(plan.control_fd, listener);
  if (close(listener) < 0)
    die(16, "close(listener %d)", listener);

  /* 17. The user. Close-on-exec rather than closed: the exec still needs the
   * exec fd, and a failed exec still needs the control fd to report. */
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    die(17, "close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)");

  /* 18. The user. The very file the broker verified, never a path. */
  syscall(SYS_execveat, plan.exec_fd, "", plan.argv, plan.envp, AT_EMPTY_PATH);
  die(18, "execveat(%d, \"\", [\"%.64s\", ...], AT_EMPTY_PATH)", plan.exec_fd, plan.argv[0]);
}
