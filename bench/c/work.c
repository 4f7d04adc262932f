/*
 * bench workload: work MODE N
 *   getppid N  : N getppid() calls
 *   read N     : N read(/dev/zero, 1 byte)
 *   socket N   : N socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) + close (trapped);
 *                only a raw ICMP socket counts as ok (an fd of another kind
 *                is reported on stderr: the supervisor answered wrongly)
 *   bind N     : N x (TCP socket, SO_REUSEADDR, bind 127.0.0.1:PORT (trapped), close)
 * work MODE N [OPTS]: OPTS 'b': read one byte from stdin before starting
 * (a start line for many programs at once); 'l': print per-call latencies.
 * Env BENCH_PORT (default 80).
 * Prints one line: mode n ok ns_total ns_per_call t0 t1 [lat...] where lat are
 * per-call latencies in ns of the timed call (only with OPTS l).
 * Exit 0 when every call succeeded, 3 otherwise.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* What the kernel says the fd is: a supervisor's wrong answer (a return
 * value that is not the socket asked for) must not count as a socket. */
static int is_raw_icmp(int fd) {
  int type = 0, proto = 0;
  socklen_t l1 = sizeof type, l2 = sizeof proto;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l1) == 0 && type == SOCK_RAW &&
         getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l2) == 0 && proto == IPPROTO_ICMP;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: work getppid|read|socket|bind N\n"); return 2; }
  const char *mode = argv[1];
  long n = atol(argv[2]);
  const char *p = getenv("BENCH_PORT");
  int port = p ? atoi(p) : 80;
  /* argv[3]: options, 'l' per-call latencies, 'b' barrier (the broker
   * passes only an allow-listed environment, so options travel in argv) */
  const char *opt = argc > 3 ? argv[3] : "";
  int lat = strchr(opt, 'l') != NULL;
  uint32_t *lats = lat ? calloc(n, sizeof *lats) : NULL;
  if (strchr(opt, 'b')) { char c; if (read(0, &c, 1) != 1) return 4; }
  long ok = 0;
  uint64_t t0 = now(), busy = 0;
  if (!strcmp(mode, "getppid")) {
    for (long i = 0; i < n; i++) ok += getppid() > 0;
    busy = now() - t0;
  } else if (!strcmp(mode, "read")) {
    int fd = open("/dev/zero", O_RDONLY);
    char c;
    for (long i = 0; i < n; i++) ok += read(fd, &c, 1) == 1;
    busy = now() - t0;
  } else if (!strcmp(mode, "socket")) {
    long wrong = 0;
    for (long i = 0; i < n; i++) {
      uint64_t a = now();
      int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
      uint64_t d = now() - a;
      busy += d;
      if (lats) lats[i] = d;
      if (s >= 0 && is_raw_icmp(s)) { ok++; close(s); }
      else if (s >= 0) { if (wrong++ == 0) fprintf(stderr, "socket: call %ld returned fd %d, not a raw ICMP socket\n", i, s); }
      else if (i == 0) perror("socket");
    }
    if (wrong) fprintf(stderr, "socket: %ld of %ld calls returned an fd that is not a raw ICMP socket\n", wrong, n);
  } else if (!strcmp(mode, "bind")) {
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long i = 0; i < n; i++) {
      int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      uint64_t a = now();
      int r = bind(s, (struct sockaddr *)&sa, sizeof sa);
      uint64_t d = now() - a;
      busy += d;
      if (lats) lats[i] = d;
      if (r == 0) ok++;
      else if (i == 0) perror("bind");
      close(s);
    }
  } else { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
  uint64_t t1 = now();
  char line[4096];
  int len = snprintf(line, sizeof line, "%s %ld %ld %llu %.1f %llu %llu", mode, n, ok,
    (unsigned long long)busy, n ? (double)busy / n : 0.0, (unsigned long long)t0, (unsigned long long)t1);
  for (long i = 0; lats && i < n && len < (int)sizeof line - 16; i++)
    len += snprintf(line + len, sizeof line - len, " %u", lats[i]);
  line[len++] = '\n';
  if (write(1, line, len) != len) return 5;
  return ok == n ? 0 : 3;
}
