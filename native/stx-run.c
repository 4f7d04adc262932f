/*
 * stx-run: the broker's client in C, for shims. Scripts run ping every
 * second; a shim must not pay Node's start-up for it.
 *
 *   stx-run [--socket PATH] [--] PROGRAM [ARGS...]
 *       as `stx-elevate PROGRAM ARGS...`: PROGRAM looked up on PATH.
 *   NAME [ARGS...]
 *       a shim, a link NAME -> stx-run early on PATH (`stx-elevate strip`
 *       makes it): runs the program that STATE/shims/NAME links to, STATE
 *       being $STX_ELEVATE_STATE_DIR or /var/lib/stx-elevate; every
 *       argument is the program's, none is an option of ours.
 * The socket: --socket (stx-run only), else $STX_ELEVATE_SOCKET, else
 * /run/stx-elevate/broker.sock.
 *
 * MUST (as src/client/commands/run.ts; test/protocol-clients.test.ts holds
 * both clients to one table of cases):
 *  - exit with the program's status, 128+N when signal N killed it; our
 *    own failures print one line "stx-elevate: ..." and exit 1, usage
 *    errors exit 2;
 *  - lose no forwarded signal once connected: they are blocked from then
 *    on and read from a signalfd, so one that comes before the request has
 *    gone waits for it and is passed on after it (run.ts: its handlers are
 *    in place before it sends);
 *  - claim nothing about who we are: the broker asks the kernel.
 * The protocol's constants come from src/shared through the generated
 * build/stx-protocol.h (native/gen-protocol-h.mjs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "run-messages.h"
#include "run-program.h"
#include "run-wire.h"
#include "stx-protocol.h"

#define USAGE "usage: stx-run [--socket PATH] [--] PROGRAM [ARGS...]\n"

extern char **environ;

/* ---- one-line failures ---- */

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("stx-elevate: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("stx-run: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n" USAGE, stderr);
  va_end(ap);
  exit(2);
}

/* ---- STX_ELEVATE_TIMING=1: the phases, in ms since main, as src/client/timing.ts prints them ---- */

static struct { int on; struct timespec t0; char line[256]; size_t used; } timing;

static void mark(const char *phase) {
  if (!timing.on) return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double ms = (double)(now.tv_sec - timing.t0.tv_sec) * 1e3 + (double)(now.tv_nsec - timing.t0.tv_nsec) / 1e6;
  int n = snprintf(timing.line + timing.used, sizeof timing.line - timing.used, " %s=%.2f", phase, ms);
  if (n > 0 && (size_t)n < sizeof timing.line - timing.used) timing.used += (size_t)n;
}

static void report(void) {
  mark("exit");
  if (timing.on) fprintf(stderr, "stx-elevate timing:%s\n", timing.line);
}

/* ---- what to run ---- */

struct invocation {
  const char *socket;  /* NULL: $STX_ELEVATE_SOCKET, else the default */
  int shim;            /* run as a shim named argv[0] */
  char **argv;         /* the program's argv as sent: [PROGRAM or NAME, ARGS...] */
  int argc;
};

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

/* A shim's name is argv[0]'s last component: anything but "stx-run". */
static struct invocation parse(int argc, char **argv) {
  struct invocation inv = { 0 };
  const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
  const char *name = argc > 0 ? (slash ? slash + 1 : argv[0]) : "stx-run";
  if (strcmp(name, "stx-run") != 0) {
    argv[0] = (char *)name;
    return (struct invocation){ .shim = 1, .argv = argv, .argc = argc };
  }
  int i = 1;
  while (i < argc && argv[i][0] == '-' && argv[i][1]) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strcmp(a, "--socket") == 0) {
      if (i + 1 >= argc) usage("--socket needs a path");
      inv.socket = argv[i + 1];
      i += 2;
    } else if (strncmp(a, "--socket=", 9) == 0) {
      inv.socket = a + 9;
      i++;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(USAGE "Run PROGRAM as yourself; the stx-elevated broker performs, as root, only the calls its rule allows.\n"
            "As a link of another name (a shim), run the program STATE/shims/NAME links to, with every argument.\n", stdout);
      exit(0);
    } else {
      usage("unknown option %s", a);
    }
  }
  if (i >= argc) usage("no program given");
  if (inv.socket && !*inv.socket) inv.socket = NULL; /* as `--socket ''` in run.ts: the next choice */
  inv.argv = argv + i;
  inv.argc = argc - i;
  return inv;
}

/* ---- the conversation ---- */

static void __attribute__((noreturn)) say_answer(const struct answer *a) {
  fputs("stx-elevate: ", stderr);
  if (a->type == ANSWER_ERROR) fputs("the broker rejected the request: ", stderr);
  fwrite(a->reason, 1, a->reason_len, stderr);
  fputc('\n', stderr);
  exit(1);
}

/* The send failed: the broker may have said why before it closed (a user
 * at the session cap is answered at accept time, before the request). */
static void __attribute__((noreturn)) send_failed(int sock, const char *socket_path, int send_errno) {
  static char buf[STX_MAX_MESSAGE];
  char err[RUN_ERR_MAX];
  int truncated = 0;
  struct answer a;
  ssize_t n = wire_recv(sock, buf, sizeof buf, &truncated);
  if (n > 0 && decode_answer(buf, (size_t)n, truncated, &a, err, sizeof err) == 0) {
    if (a.type == ANSWER_REFUSED || a.type == ANSWER_ERROR) say_answer(&a);
    answer_free(&a);
  }
  fail("cannot talk to the broker at %s: sendmsg: %s", socket_path, strerror(send_errno));
}

static void send_request(int sock, const char *socket_path, const char *path, const struct invocation *inv) {
  char err[RUN_ERR_MAX];
  size_t len;
  char *request = run_request(path, inv->argv, inv->argc, environ, &len, err, sizeof err);
  if (!request) fail("%s", err);
  int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cwd < 0) fail("cannot open the working directory: %s", strerror(errno));
  int fds[STX_RUN_FDS] = { 0, 1, 2, cwd };
  if (wire_send(sock, request, len, fds, STX_RUN_FDS) < 0) send_failed(sock, socket_path, errno);
  close(cwd);
  free(request);
}

static void forward_signals(int sigfd, int sock) {
  struct signalfd_siginfo si;
  while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
    for (int i = 0; i < STX_FORWARDED_SIGNALS; i++) {
      if ((int)si.ssi_signo != stx_forwarded_signals[i].number) continue;
      size_t len;
      char *m = signal_request(stx_forwarded_signals[i].name, &len);
      if (m) wire_send(sock, m, len, NULL, 0); /* the broker is gone: its end of file will tell */
      free(m);
    }
  }
}

static int exit_status(const struct answer *a) {
  if (a->code >= 0) return a->code;
  for (int i = 0; a->signal && i < STX_SIGNALS; i++)
    if (strcmp(a->signal, stx_signals[i].name) == 0) return 128 + stx_signals[i].number;
  return 128;
}

/* Every answer waiting: the program's status once it has exited, else -1. */
static int read_answers(int sock, const char *socket_path, const char *program) {
  static char buf[STX_MAX_MESSAGE];
  char err[RUN_ERR_MAX];
  for (;;) {
    int truncated = 0;
    struct answer a;
    ssize_t n = wire_recv(sock, buf, sizeof buf, &truncated);
    if (n < 0 && errno == EAGAIN) return -1;
    /* The broker closed with a message of ours unread (a signal forwarded as
     * the program ended): the kernel says so once, before the broker's last
     * message (the exit), which is still to be read. */
    if (n < 0 && errno == ECONNRESET) continue;
    if (n < 0) fail("cannot talk to the broker at %s: recvmsg: %s", socket_path, strerror(errno));
    if (n == 0) fail("the broker closed the connection before %s finished", program);
    if (decode_answer(buf, (size_t)n, truncated, &a, err, sizeof err) < 0)
      fail("the broker sent a message this client cannot decode: %s", err);
    switch (a.type) {
      case ANSWER_STARTED:
        mark("started");
        break;
      case ANSWER_EXIT: {
        int status = exit_status(&a);
        mark("exited");
        answer_free(&a);
        return status;
      }
      case ANSWER_REFUSED:
      case ANSWER_ERROR:
        say_answer(&a);
      case ANSWER_PROGRAMS:
        fail("the broker sent a message this client cannot decode: unexpected programs message in answer to run");
    }
    answer_free(&a);
  }
}

static int serve(int sock, int sigfd, const char *socket_path, const char *program) {
  struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
  for (;;) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll: %s", strerror(errno));
    }
    if (p[1].revents & POLLIN) forward_signals(sigfd, sock);
    if (p[0].revents) {
      int status = read_answers(sock, socket_path, program);
      if (status >= 0) return status;
    }
  }
}

int main(int argc, char **argv) {
  timing.on = strcmp(env_or("STX_ELEVATE_TIMING", ""), "1") == 0;
  clock_gettime(CLOCK_MONOTONIC, &timing.t0);
  mark("loaded");

  /* 1. Which program: on PATH, or the one this shim stands for. */
  struct invocation inv = parse(argc, argv);
  char path[PATH_MAX], err[RUN_ERR_MAX];
  int found = inv.shim ? shim_program(inv.argv[0], env_or("STX_ELEVATE_STATE_DIR", STX_DEFAULT_STATE_DIR), path, err, sizeof err)
                       : resolve_program(inv.argv[0], getenv("PATH"), path, err, sizeof err);
  if (found < 0) fail("%s", err);

  /* 2. The broker. */
  const char *socket_path = inv.socket ? inv.socket : env_or("STX_ELEVATE_SOCKET", STX_DEFAULT_SOCKET);
  int sock = wire_connect(socket_path);
  if (sock < 0 && errno == ENAMETOOLONG) fail("cannot reach the broker at %s: the socket path is longer than %zu bytes", socket_path, WIRE_MAX_SOCKET_PATH);
  if (sock < 0 && (errno == ENOENT || errno == ECONNREFUSED))
    fail("cannot reach the broker at %s: %s: the stx-elevated broker is not running (start it with: systemctl start stx-elevated)",
         socket_path, strerror(errno));
  if (sock < 0) fail("cannot reach the broker at %s: %s", socket_path, strerror(errno));
  mark("connected");

  /* 3. From here on, hold the forwarded signals for the program (until now
   * they end us: a connect that blocks on a wedged broker stays
   * interruptible); a gone broker is EPIPE, not a death. */
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int i = 0; i < STX_FORWARDED_SIGNALS; i++) sigaddset(&forwarded, stx_forwarded_signals[i].number);
  sigprocmask(SIG_BLOCK, &forwarded, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sigfd = signalfd(-1, &forwarded, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) fail("signalfd: %s", strerror(errno));

  /* 4. The request, with stdin, stdout, stderr and the working directory. */
  send_request(sock, socket_path, path, &inv);

  /* 5. Pass signals on until the program's exit status comes. */
  int status = serve(sock, sigfd, socket_path, inv.argv[0]);
  report();
  return status;
}
