/*
 * stx-spawn.so: start the launcher as a child of the broker, born in the
 * session's cgroup (clone3 CLONE_INTO_CGROUP), with a pidfd from the
 * kernel (CLONE_PIDFD). Called by the broker's main thread through koffi.
 *
 * Why not move the launcher into its cgroup (a write to cgroup.procs):
 * a move takes the kernel's cgroup_threadgroup_rwsem for writing, which
 * waits for an RCU grace period. Measured here: 0.06-0.5 ms with the CPUs
 * idle, 13.6 ms while the client (a node process starting up) kept a CPU
 * busy. A process created in the cgroup takes only the read side.
 *
 * How, as glibc's posix_spawn does it (whose glibc 2.36 cannot name a
 * cgroup): a CLONE_VM|CLONE_VFORK child on a stack of its own, so nothing
 * of the broker's address space is copied; every signal blocked in the
 * parent around the clone, and in the child every handled signal reset to
 * SIG_DFL before the mask is restored, so no broker handler runs in the
 * child; the parent resumes once the child has exec'd or died.
 *
 * MUST:
 *  - in the child (which shares the broker's memory until its exec):
 *    write nothing but the job's error field, call only system calls, set
 *    no handler, never return into the broker's code;
 *  - give the child exactly the fds it is given, at 0..n-1 (close-on-exec
 *    cleared on those copies only), and no other fd;
 *  - be called by one thread at a time (one child stack).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

#define STACK_SIZE (64 * 1024)
#define MAX_FDS 64

struct job {
  const char *path;
  char *const *argv;
  const int *fds;
  int nfds;
  sigset_t mask;         /* the parent's mask, restored in the child */
  volatile int err;      /* the child's errno when it failed */
};

static char child_stack[STACK_SIZE] __attribute__((aligned(16)));
static char *const empty_env[] = { NULL };

__attribute__((noreturn)) static void child_fail(struct job *job, int err)
{
  job->err = err;
  syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

/* The child, on child_stack, sharing the broker's memory until the exec. */
static int child(void *arg)
{
  struct job *job = arg;
  /* A handler is the broker's code: never run it here. Ignored signals
   * stay ignored (the launcher resets every disposition itself). */
  for (int sig = 1; sig < _NSIG; sig++) {
    struct sigaction sa;
    if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
      continue;  /* EINVAL: a signal glibc keeps for itself */
    if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN) {
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = SIG_DFL;
      if (sigaction(sig, &sa, NULL) < 0)
        child_fail(job, errno);
    }
  }
  if (sigprocmask(SIG_SETMASK, &job->mask, NULL) < 0)
    child_fail(job, errno);
  /* Two passes, so that no copy overwrites a source still to be copied:
   * first every source above all of them, then down to 0..n-1. */
  int high = job->nfds;
  for (int i = 0; i < job->nfds; i++)
    if (job->fds[i] >= high)
      high = job->fds[i] + 1;
  for (int i = 0; i < job->nfds; i++)
    if (dup2(job->fds[i], high + i) < 0)
      child_fail(job, errno);
  for (int i = 0; i < job->nfds; i++)
    if (dup2(high + i, i) < 0)  /* a dup2 copy is not close-on-exec */
      child_fail(job, errno);
  if (syscall(SYS_close_range, (unsigned)job->nfds, ~0U, 0) < 0)
    child_fail(job, errno);
  execve(job->path, job->argv, empty_env);
  child_fail(job, errno);
}

/*
 * clone3 with the child on its own stack: in the child the call returns 0
 * on that stack, with every other register as the parent had it, so fn and
 * arg travel in r9 and r8 (glibc's clone3.S does the same).
 */
static long clone3_run(struct clone_args *ca, int (*fn)(void *), void *arg)
{
  long ret;
  register void *r8 __asm__("r8") = arg;
  register int (*r9)(void *) __asm__("r9") = fn;
  __asm__ volatile(
    "syscall\n\t"
    "test %%rax, %%rax\n\t"
    "jnz 1f\n\t"
    "xor %%ebp, %%ebp\n\t"     /* the child: outermost frame */
    "and $-16, %%rsp\n\t"
    "mov %%r8, %%rdi\n\t"
    "call *%%r9\n\t"
    "mov %%eax, %%edi\n\t"
    "mov %[exit_group], %%eax\n\t"
    "syscall\n\t"
    "hlt\n"
    "1:\n\t"
    : "=a"(ret)
    : "0"((long)SYS_clone3), "D"(ca), "S"(sizeof *ca), "r"(r8), "r"(r9), [exit_group] "i"(SYS_exit_group)
    : "rcx", "r11", "memory");
  return ret;
}

/*
 * Start `path` with `argv` (NULL-terminated), an empty environment, and
 * fds[i] as its fd i (nfds of them); in the cgroup of the directory fd
 * cgroup_fd unless it is -1. Returns the pid and sets *pidfd (close-on-exec)
 * once the exec succeeded; on failure -errno (the child is reaped).
 */
int stx_spawn(const char *path, char *const *argv, const int *fds, int nfds, int cgroup_fd, int *pidfd)
{
  if (nfds < 0 || nfds > MAX_FDS)
    return -EINVAL;
  struct job job = { .path = path, .argv = argv, .fds = fds, .nfds = nfds, .err = 0 };
  int child_pidfd = -1;
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
  ca.pidfd = (uint64_t)(uintptr_t)&child_pidfd;
  ca.exit_signal = SIGCHLD;
  ca.stack = (uint64_t)(uintptr_t)child_stack;
  ca.stack_size = sizeof child_stack;
  ca.cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0;

  sigset_t all;
  sigfillset(&all);
  int rc = pthread_sigmask(SIG_BLOCK, &all, &job.mask);
  if (rc != 0)
    return -rc;
  long pid = clone3_run(&ca, child, &job);
  pthread_sigmask(SIG_SETMASK, &job.mask, NULL);
  if (pid < 0)
    return (int)pid;  /* -errno from the kernel: no child */
  if (job.err) {
    int err = job.err;
    while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
      ;
    close(child_pidfd);
    return -err;
  }
  *pidfd = child_pidfd;
  return (int)pid;
}
