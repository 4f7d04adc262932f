/*
 * stx-launch, step 1: the command line (its grammar is in stx-launch.c),
 * parsed whole into `plan` before anything is done. Apart from the other
 * steps so that a fuzz harness (native/fuzz/) can run it in a loop without
 * exec'ing anything.
 *
 * MUST guarantee: what parse() leaves in plan is the grammar's, every
 * number within its range; anything else ends in report(1, ...), which
 * never returns.
 */
#ifndef STX_LAUNCH_ARGS_H
#define STX_LAUNCH_ARGS_H

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#define MAX_GROUPS 65536
#define MAX_ENTRIES 65536          /* argv, and env, each */
#define MAX_STRINGS (1024 * 1024)  /* bytes of argv + env strings */
#define MAX_ID 4294967294ULL       /* (uid_t)-1 means "unchanged" */
#define LOGINUID_UNSET 4294967295ULL
#define MAX_CPUS 8192              /* the kernel's largest NR_CPUS */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_MAX_CLASS 3         /* RT 1, BE 2, IDLE 3; 0 is "none" */
#define N_RLIMITS 16               /* the names in launch-args.c */

/* setrlimit's resource for each --rlimit NAME. */
extern const struct rlimit_name { const char *name; int resource; } rlimits[N_RLIMITS];

struct plan {
  uid_t uid;
  gid_t gid, exec_gid;
  size_t n_groups;
  gid_t groups[MAX_GROUPS];
  mode_t umask;
  size_t n_rlimits;
  struct { int index; const char *text; struct rlimit value; } rlimits[N_RLIMITS];
  unsigned long long loginuid;
  int nice, oom_score_adj, ioprio;
  cpu_set_t *cpus;     /* CPU_ALLOC(MAX_CPUS) */
  const char *affinity_text;
  int control_fd, cwd_fd, exec_fd, filter_fd, netns_fd;
  int cgroup_fd;       /* -1: no --cgroup-fd; CGROUP_FROM_CONTROL: "control" */
  char **argv;  /* points into our own argv, NULL-terminated */
  char **envp;  /* NULL-terminated */
};

#define CGROUP_FROM_CONTROL (-2)

extern struct plan plan;
/* Where errors go once it is known to be usable (find_control_fd). */
extern int control_fd;

/* "error STEP: WHAT" and, when err is not 0, ": strerror(err)", to the
 * broker (or stderr), then exit 127: stx-launch.c. A fuzz harness has its own. */
__attribute__((noreturn, format(printf, 3, 4)))
void report(int step, int err, const char *fmt, ...);
#define fail(step, ...) report(step, 0, __VA_ARGS__)
#define die(step, ...) report(step, errno, __VA_ARGS__)  /* after a failed call */

/* Digits only (no sign, no space, no prefix), no overflow, at most max. */
int parse_num(const char *s, size_t len, unsigned base, unsigned long long max, unsigned long long *out);
/* The control socket, found before the real parse so that its errors reach the broker. */
void find_control_fd(int argc, char **argv);
/* Step 1: argv (NULL-terminated at argc) into plan, or report(1, ...). */
void parse(int argc, char **argv);

#endif
