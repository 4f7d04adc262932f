/*
 * stx-launch, step 1: the command line into `plan` (see launch-args.h).
 * Runs as root with the broker's fds; it only reads: argv, and the fds it
 * names (are they open, is the control fd a SEQPACKET socket).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "launch-args.h"

const struct rlimit_name rlimits[N_RLIMITS] = {
  {"as", RLIMIT_AS}, {"core", RLIMIT_CORE}, {"cpu", RLIMIT_CPU},
  {"data", RLIMIT_DATA}, {"fsize", RLIMIT_FSIZE}, {"locks", RLIMIT_LOCKS},
  {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE},
  {"nice", RLIMIT_NICE}, {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},
  {"rss", RLIMIT_RSS}, {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME},
  {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK},
};
_Static_assert(sizeof rlimits / sizeof rlimits[0] == N_RLIMITS, "N_RLIMITS");

enum { O_UID, O_GID, O_EXEC_GID, O_GROUPS, O_UMASK, O_RLIMIT, O_ENV,
       O_LOGINUID, O_NICE, O_AFFINITY, O_OOM_SCORE_ADJ, O_IOPRIO,
       O_CONTROL_FD, O_CWD_FD, O_EXEC_FD, O_FILTER_FD, O_NETNS_FD, O_CGROUP_FD,
       N_OPTIONS };
static const char *const option_names[N_OPTIONS] = {
  "--uid", "--gid", "--exec-gid", "--groups", "--umask", "--rlimit", "--env",
  "--loginuid", "--nice", "--affinity", "--oom-score-adj", "--ioprio",
  "--control-fd", "--cwd-fd", "--exec-fd", "--filter-fd", "--netns-fd", "--cgroup-fd",
};
/* Options that may be left out. */
#define OPTIONAL_OPTIONS ((1u << O_RLIMIT) | (1u << O_ENV) | (1u << O_CGROUP_FD))

struct plan plan;
int control_fd = -1;

/* --- step 1: the command line, parsed whole before anything is done */

int parse_num(const char *s, size_t len, unsigned base,
                     unsigned long long max, unsigned long long *out)
{
  unsigned long long v = 0;
  if (len == 0)
    return -1;
  for (size_t i = 0; i < len; i++) {
    unsigned d = (unsigned)(s[i] - '0');
    if (d >= base || v > (max - d) / base)
      return -1;
    v = v * base + d;
  }
  *out = v;
  return 0;
}

static unsigned long long number(const char *opt, const char *val,
                                 unsigned base, unsigned long long max)
{
  unsigned long long v;
  if (parse_num(val, strlen(val), base, ~0ULL, &v) < 0)
    fail(1, "%s: not a number: \"%.64s\"", opt, val);
  if (v > max)
    fail(1, "%s: out of range: \"%.64s\"", opt, val);
  return v;
}

/* number() with an optional leading "-" (no "+", no "-" alone). */
static long long signed_number(const char *opt, const char *val, long long min, long long max)
{
  int neg = val[0] == '-';
  unsigned long long v;
  if (parse_num(val + neg, strlen(val + neg), 10, ~0ULL, &v) < 0)
    fail(1, "%s: not a number: \"%.64s\"", opt, val);
  if (v > (unsigned long long)(neg ? -min : max))
    fail(1, "%s: out of range: \"%.64s\"", opt, val);
  return neg ? -(long long)v : (long long)v;
}

/* "0-3,6": CPU numbers and ranges, ascending and disjoint, at least one CPU. */
static void parse_affinity(const char *val)
{
  size_t size = CPU_ALLOC_SIZE(MAX_CPUS);
  long long next = 0;  /* the lowest CPU the next item may name */
  plan.cpus = CPU_ALLOC(MAX_CPUS);
  if (!plan.cpus)
    die(1, "CPU_ALLOC");
  CPU_ZERO_S(size, plan.cpus);
  plan.affinity_text = val;
  for (const char *s = val;; s++) {
    const char *end = strchrnul(s, ','), *dash = memchr(s, '-', end - s);
    unsigned long long lo, hi;
    if (parse_num(s, (dash ? dash : end) - s, 10, MAX_CPUS - 1, &lo) < 0 ||
        (dash && parse_num(dash + 1, end - dash - 1, 10, MAX_CPUS - 1, &hi) < 0))
      fail(1, "--affinity: not a list of CPUs 0..%d (\"0-3,6\"): \"%.64s\"", MAX_CPUS - 1, val);
    if (!dash)
      hi = lo;
    if ((long long)lo < next || hi < lo)
      fail(1, "--affinity: ranges must be ascending and disjoint: \"%.64s\"", val);
    for (unsigned long long c = lo; c <= hi; c++)
      CPU_SET_S(c, size, plan.cpus);
    next = hi + 1;
    if (!*end)
      return;
    s = end;
  }
}

static void parse_groups(const char *val)
{
  if (!*val)
    return;  /* no supplementary groups */
  for (const char *s = val;; s++) {
    const char *end = strchrnul(s, ',');
    unsigned long long g;
    if (plan.n_groups == MAX_GROUPS)
      fail(1, "--groups: more than %d groups", MAX_GROUPS);
    if (parse_num(s, end - s, 10, MAX_ID, &g) < 0)
      fail(1, "--groups: not a list of numbers: \"%.64s\"", val);
    plan.groups[plan.n_groups++] = g;
    if (!*end)
      return;
    s = end;
  }
}

static rlim_t rlimit_value(const char *s, size_t len, const char *val)
{
  unsigned long long v;
  if (len == 9 && !strncmp(s, "unlimited", 9))
    return RLIM_INFINITY;
  if (parse_num(s, len, 10, RLIM_INFINITY - 1, &v) < 0)
    fail(1, "--rlimit: not a number or \"unlimited\": \"%.64s\"", val);
  return v;
}

static void parse_rlimit(const char *val)
{
  const char *eq = strchr(val, '='), *colon = eq ? strchr(eq, ':') : NULL;
  size_t i;
  if (!colon)
    fail(1, "--rlimit: expected NAME=SOFT:HARD: \"%.64s\"", val);
  for (i = 0; i < N_RLIMITS; i++)
    if (strlen(rlimits[i].name) == (size_t)(eq - val) && !strncmp(val, rlimits[i].name, eq - val))
      break;
  if (i == N_RLIMITS)
    fail(1, "--rlimit: unknown resource: \"%.64s\"", val);
  for (size_t j = 0; j < plan.n_rlimits; j++)
    if (plan.rlimits[j].index == (int)i)
      fail(1, "--rlimit: %s given twice", rlimits[i].name);
  struct rlimit rl = { rlimit_value(eq + 1, colon - eq - 1, val),
                       rlimit_value(colon + 1, strlen(colon + 1), val) };
  if (rl.rlim_cur > rl.rlim_max)
    fail(1, "--rlimit: soft limit above hard: \"%.64s\"", val);
  plan.rlimits[plan.n_rlimits].index = i;
  plan.rlimits[plan.n_rlimits].text = val;
  plan.rlimits[plan.n_rlimits++].value = rl;
}

static int env_name_cmp(const void *a, const void *b)
{
  const char *x = *(char *const *)a, *y = *(char *const *)b;
  for (; *x == *y && *x != '='; x++, y++)
    ;
  return (*x == '=' ? 0 : (unsigned char)*x) - (*y == '=' ? 0 : (unsigned char)*y);
}

/* Two values for one name would be read differently by different programs. */
static void check_env_unique(size_t n)
{
  char **sorted = malloc(n * sizeof *sorted + 1);
  if (!sorted)
    die(1, "malloc");
  memcpy(sorted, plan.envp, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, env_name_cmp);
  for (size_t i = 1; i < n; i++)
    if (!env_name_cmp(&sorted[i - 1], &sorted[i])) {
      const char *twice = sorted[i];  /* in argv, not in sorted */
      free(sorted);  /* a harness returns from fail() (native/fuzz) */
      fail(1, "--env: %.*s given twice", (int)strcspn(twice, "="), twice);
    }
  free(sorted);
}

static int fd_option(int opt, const char *val)
{
  int fd = number(option_names[opt], val, 10, 0x7fffffff);
  if (fd < 3)
    fail(1, "%s: must be 3 or more (0-2 are the program's stdio): %d", option_names[opt], fd);
  if (fcntl(fd, F_GETFD) < 0)
    die(1, "%s %d: not open", option_names[opt], fd);
  return fd;
}

static int is_control_socket(int fd)
{
  int type = 0, domain = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
    return 0;
  len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
    return 0;
  return type == SOCK_SEQPACKET && domain == AF_UNIX;
}

/* Before the real parse, so that its errors can go to the broker. Every
 * option takes exactly one value, so walking in pairs cannot misread one. */
void find_control_fd(int argc, char **argv)
{
  int fd = -1, seen = 0;
  unsigned long long v;
  for (int i = 1; i + 1 < argc && strcmp(argv[i], "--"); i += 2)
    if (!strcmp(argv[i], "--control-fd") && seen++ == 0 &&
        parse_num(argv[i + 1], strlen(argv[i + 1]), 10, 0x7fffffff, &v) == 0 && v >= 3)
      fd = v;
  if (seen == 1 && fd >= 0 && is_control_socket(fd))
    control_fd = fd;
}

void parse(int argc, char **argv)
{
  unsigned seen = 0;
  size_t n_env = 0, bytes = 0;
  int i;
  plan.cgroup_fd = -1;
  plan.envp = calloc(MAX_ENTRIES + 1, sizeof *plan.envp);
  if (!plan.envp)
    die(1, "calloc");
  for (i = 1; i < argc && strcmp(argv[i], "--"); i += 2) {
    const char *opt = argv[i], *val = argv[i + 1];
    int o = 0;
    while (o < N_OPTIONS && strcmp(opt, option_names[o]))
      o++;
    if (o == N_OPTIONS)
      fail(1, "%.64s: unknown option", opt);
    if (!val)
      fail(1, "%s: missing value", opt);
    if ((seen & (1u << o)) && o != O_RLIMIT && o != O_ENV)
      fail(1, "%s: given twice", opt);
    seen |= 1u << o;
    switch (o) {
    case O_UID: plan.uid = number(opt, val, 10, MAX_ID); break;
    case O_GID: plan.gid = number(opt, val, 10, MAX_ID); break;
    case O_EXEC_GID: plan.exec_gid = number(opt, val, 10, MAX_ID); break;
    case O_GROUPS: parse_groups(val); break;
    case O_UMASK: plan.umask = number(opt, val, 8, 0777); break;
    case O_RLIMIT: parse_rlimit(val); break;
    case O_ENV:
      if (val[0] == '=' || !strchr(val, '='))
        fail(1, "--env: expected NAME=VALUE: \"%.64s\"", val);
      if (n_env == MAX_ENTRIES)
        fail(1, "--env: more than %d entries", MAX_ENTRIES);
      plan.envp[n_env++] = (char *)val;
      bytes += strlen(val) + 1;
      break;
    case O_LOGINUID: plan.loginuid = number(opt, val, 10, LOGINUID_UNSET); break;
    case O_NICE: plan.nice = signed_number(opt, val, -20, 19); break;
    case O_AFFINITY: parse_affinity(val); break;
    case O_OOM_SCORE_ADJ: plan.oom_score_adj = signed_number(opt, val, -1000, 1000); break;
    case O_IOPRIO:
      plan.ioprio = number(opt, val, 10, 0xffff);
      if (plan.ioprio >> IOPRIO_CLASS_SHIFT > IOPRIO_MAX_CLASS)
        fail(1, "--ioprio: class %d is not 0..%d: \"%.64s\"", plan.ioprio >> IOPRIO_CLASS_SHIFT, IOPRIO_MAX_CLASS, val);
      break;
    case O_CONTROL_FD:
      plan.control_fd = fd_option(o, val);
      if (!is_control_socket(plan.control_fd))
        fail(1, "--control-fd: %d is not an AF_UNIX SOCK_SEQPACKET socket", plan.control_fd);
      break;
    case O_CWD_FD: plan.cwd_fd = fd_option(o, val); break;
    case O_EXEC_FD: plan.exec_fd = fd_option(o, val); break;
    case O_FILTER_FD: plan.filter_fd = fd_option(o, val); break;
    case O_NETNS_FD: plan.netns_fd = fd_option(o, val); break;
    case O_CGROUP_FD:
      plan.cgroup_fd = strcmp(val, "control") ? fd_option(o, val) : CGROUP_FROM_CONTROL;
      break;
    }
  }
  for (int o = 0; o < N_OPTIONS; o++)
    if (!(seen & (1u << o)) && !(OPTIONAL_OPTIONS & (1u << o)))
      fail(1, "%s: missing", option_names[o]);
  if (i >= argc)
    fail(1, "--: missing (the program's argv follows it)");
  if (i + 1 >= argc)
    fail(1, "--: argv is empty (argv[0] is required)");
  if (argc - i - 1 > MAX_ENTRIES)
    fail(1, "--: argv has more than %d entries", MAX_ENTRIES);
  plan.argv = argv + i + 1;
  for (char **a = plan.argv; *a; a++)
    bytes += strlen(*a) + 1;
  if (bytes > MAX_STRINGS)
    fail(1, "--: argv and --env hold more than %d bytes", MAX_STRINGS);
  check_env_unique(n_env);

  if (plan.uid == 0 && plan.gid != 0)
    fail(1, "--uid: 0 needs --gid 0");
  if (plan.exec_gid == 0)
    fail(1, "--exec-gid: must not be 0 (the exec group must own nothing)");
  if (plan.exec_gid == plan.gid)
    fail(1, "--exec-gid: must differ from --gid (the exec must cross a gid change)");
  int fds[] = { plan.control_fd, plan.cwd_fd, plan.exec_fd, plan.filter_fd, plan.netns_fd, plan.cgroup_fd };
  int n_fds = sizeof fds / sizeof fds[0] - (plan.cgroup_fd < 0);  /* it is last */
  for (int a = 0; a < n_fds; a++)
    for (int b = a + 1; b < n_fds; b++)
      if (fds[a] == fds[b])
        fail(1, "%s: same fd as %s: %d", option_names[O_CONTROL_FD + b],
             option_names[O_CONTROL_FD + a], fds[a]);
}
