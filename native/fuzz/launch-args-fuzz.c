/*
 * libFuzzer harness for stx-launch's step 1 (launch-args.c): an input is a
 * command line, its arguments separated by NUL bytes. parse() either
 * fails through report() (here a longjmp back, instead of exit 127) or
 * leaves a plan that must hold what the grammar promises; a plan that does
 * not, a crash, a leak or undefined behaviour is a finding.
 *
 * Built by `make -C native fuzz` with clang -fsanitize=fuzzer,address,
 * undefined; run by test/fuzz-launcher.test.ts (bounded) and `npm run fuzz`.
 *
 * The fds a command line names: FD_CONTROL is an AF_UNIX SOCK_SEQPACKET
 * socket, FD_FIRST+1..FD_LAST are open (/dev/null), everything else in
 * 3..FD_FIRST-1 is whatever libFuzzer has open. The seeds and the
 * dictionary use these numbers. With -DFUZZ_CONTROL a parse that succeeds
 * aborts: the test's proof that the seeds reach the end of a parse and
 * that an abort is reported.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../launch-args.h"

#define FD_FIRST 100
#define FD_CONTROL FD_FIRST
#define FD_LAST 108
#define MAX_ARGS 4096

static jmp_buf failed;
static int quiet = 1;

void report(int step, int err, const char *fmt, ...)
{
  if (!quiet) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error %d: ", step);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, err ? ": %s\n" : "\n", strerror(err));
    va_end(ap);
  }
  longjmp(failed, 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  int sv[2];
  quiet = getenv("FUZZ_VERBOSE") == NULL;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || dup2(sv[0], FD_CONTROL) < 0)
    abort();
  for (int fd = FD_CONTROL + 1; fd <= FD_LAST; fd++) {
    int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (n < 0 || dup2(n, fd) < 0)
      abort();
    close(n);
  }
  return 0;
}

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "plan breaks its promise: %s\n", #cond); abort(); } } while (0)

/* What the launcher's later steps rely on, as launch-args.h and stx-launch.c promise it. */
static void check_plan(char **argv, int argc)
{
  CHECK(plan.uid <= MAX_ID && plan.gid <= MAX_ID && plan.exec_gid <= MAX_ID);
  CHECK(plan.uid != 0 || plan.gid == 0);
  CHECK(plan.exec_gid != 0 && plan.exec_gid != plan.gid);
  CHECK(plan.n_groups <= MAX_GROUPS);
  for (size_t i = 0; i < plan.n_groups; i++)
    CHECK(plan.groups[i] <= MAX_ID);
  CHECK(plan.umask <= 0777);
  CHECK(plan.n_rlimits <= N_RLIMITS);
  for (size_t i = 0; i < plan.n_rlimits; i++) {
    CHECK(plan.rlimits[i].index >= 0 && plan.rlimits[i].index < N_RLIMITS);
    CHECK(plan.rlimits[i].value.rlim_cur <= plan.rlimits[i].value.rlim_max);
    for (size_t j = 0; j < i; j++)
      CHECK(plan.rlimits[i].index != plan.rlimits[j].index);
  }
  CHECK(plan.loginuid <= LOGINUID_UNSET);
  CHECK(plan.nice >= -20 && plan.nice <= 19);
  CHECK(plan.oom_score_adj >= -1000 && plan.oom_score_adj <= 1000);
  CHECK(plan.ioprio >= 0 && plan.ioprio <= 0xffff && plan.ioprio >> IOPRIO_CLASS_SHIFT <= IOPRIO_MAX_CLASS);
  CHECK(plan.cpus != NULL && CPU_COUNT_S(CPU_ALLOC_SIZE(MAX_CPUS), plan.cpus) > 0);
  int fds[] = { plan.control_fd, plan.cwd_fd, plan.exec_fd, plan.filter_fd, plan.netns_fd };
  for (size_t a = 0; a < sizeof fds / sizeof fds[0]; a++) {
    CHECK(fds[a] >= 3 && fcntl(fds[a], F_GETFD) >= 0);
    CHECK(plan.cgroup_fd != fds[a]);
    for (size_t b = 0; b < a; b++)
      CHECK(fds[a] != fds[b]);
  }
  CHECK(plan.control_fd == control_fd);
  CHECK(plan.cgroup_fd == -1 || plan.cgroup_fd == CGROUP_FROM_CONTROL || plan.cgroup_fd >= 3);
  /* argv: what follows the "--" that ends the options, all of it, argv[0] present */
  CHECK(plan.argv > argv && plan.argv < argv + argc && !strcmp(plan.argv[-1], "--") && plan.argv[0] != NULL);
  size_t n_env = 0;
  for (char **e = plan.envp; *e; e++, n_env++)
    CHECK((*e)[0] != '=' && strchr(*e, '=') != NULL);
  CHECK(n_env <= MAX_ENTRIES);
#ifdef FUZZ_CONTROL
  fprintf(stderr, "FUZZ_CONTROL: a command line parsed\n");
  abort();
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* The command line: "stx-launch", then the input cut at each NUL. */
  char *copy = malloc(size + 1);
  char **argv = calloc(MAX_ARGS + 2, sizeof *argv);
  if (!copy || !argv)
    abort();
  memcpy(copy, data, size);
  copy[size] = 0;
  int argc = 0;
  argv[argc++] = "stx-launch";
  for (char *s = copy; s <= copy + size && argc <= MAX_ARGS; s += strlen(s) + 1)
    argv[argc++] = s;
  argv[argc] = NULL;

  memset(&plan, 0, sizeof plan);
  control_fd = -1;
  if (!setjmp(failed)) {
    find_control_fd(argc, argv);
    parse(argc, argv);
    check_plan(argv, argc);
  }
  free(plan.envp);
  if (plan.cpus)
    CPU_FREE(plan.cpus);
  free(argv);
  free(copy);
  return 0;
}
