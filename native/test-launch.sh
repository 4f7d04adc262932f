#!/bin/bash
# Smoke test for native/stx-launch. Run as root: bash native/test-launch.sh
# A small C helper plays the broker: it hands the launcher its fds (control
# socket, cwd, exec, filter, netns, and a cgroup directory when
# $STX_CGROUP names one) at fixed numbers, an empty environment, an
# allow-all filter (so the exec is not trapped), receives the datagrams and
# waits. Prints PASS/FAIL per check; exits 1 on any failure.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LAUNCH=$HERE/build/stx-launch
[ "$(id -u)" = 0 ] || { echo "test-launch.sh: run as root" >&2; exit 2; }
timeout 60 make -s -C "$HERE" build/stx-launch || { echo "FAIL build"; exit 1; }

T=$(mktemp -d /tmp/stx-launch-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
NOBODY=65534
NOGROUP=65534
EXEC_GID=$(getent group stx-elevate | cut -d: -f3)
if [ -z "$EXEC_GID" ]; then  # any gid with no group entry: it owns nothing
  for EXEC_GID in $(seq 64000 64999); do getent group "$EXEC_GID" >/dev/null || break; done
fi

cat > "$T/helper.c" <<'EOF'
#define _GNU_SOURCE
/* helper FILTER EXEC CWD LAUNCHER ARGS...: FILTER is allow, notify, empty
 * or none. notify traps execveat as the broker's filter does, and answers
 * the one trapped exec with CONTINUE, as the broker does.
 * The launcher gets control=10 cwd=11 exec=12 filter=13 netns=14, the
 * directory (or file) $STX_CGROUP names at 15 when set, a stray fd 20
 * without close-on-exec, SIGPIPE ignored and SIGUSR1 blocked, as from Node. */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static int answer_exec(int listener, char *out, size_t size) {
  struct pollfd p = { listener, POLLIN, 0 };
  struct seccomp_notif req;
  memset(&req, 0, sizeof req);
  if (poll(&p, 1, 5000) != 1 || ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
    return snprintf(out, size, "helper: no notification\n");
  struct seccomp_notif_resp resp = { .id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
    return snprintf(out, size, "helper: NOTIF_SEND failed\n");
  return snprintf(out, size, "helper: trapped: %s fd=%d flags=%#x\n", req.data.nr == __NR_execveat ? "execveat" : "other",
                  (int)req.data.args[0], (unsigned)req.data.args[4]);
}

int main(int argc, char **argv) {
  int sv[2], pfd[2];
  if (argc < 5) return 2;
  struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), trap_exec[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execveat, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  int notify = !strcmp(argv[1], "notify");
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) || pipe2(pfd, O_CLOEXEC)) { perror("setup"); return 2; }
  if (!strcmp(argv[1], "allow") && write(pfd[1], &allow, sizeof allow) != sizeof allow) return 2;
  if (notify && write(pfd[1], trap_exec, sizeof trap_exec) != sizeof trap_exec) return 2;
  close(pfd[1]);
  int exec_fd = open(argv[2], O_RDONLY | O_CLOEXEC), cwd_fd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int stray = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
  int netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  char *cgroup = getenv("STX_CGROUP");
  int cgroup_fd = cgroup ? open(cgroup, O_RDONLY | O_CLOEXEC) : -1;
  /* Out of the way of the dup2()s below, which would overwrite a low number. */
  if (cgroup_fd >= 0) cgroup_fd = fcntl(cgroup_fd, F_DUPFD_CLOEXEC, 30);
  if (exec_fd < 0 || cwd_fd < 0 || stray < 0 || (cgroup && cgroup_fd < 0)) { perror("open"); return 2; }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    dup2(sv[1], 10); dup2(cwd_fd, 11); dup2(exec_fd, 12); dup2(netns, 14); dup2(stray, 20);
    if (cgroup_fd >= 0) dup2(cgroup_fd, 15);
    if (strcmp(argv[1], "none")) dup2(pfd[0], 13);
    char *envp[] = { NULL };
    execve(argv[4], argv + 4, envp);
    _exit(126);
  }
  close(sv[1]);
  char *pidfile = getenv("STX_PIDFILE");
  if (pidfile) { FILE *f = fopen(pidfile, "w"); fprintf(f, "%d\n", pid); fclose(f); }
  char out[8192];
  int nout = 0, answered = -1;
  for (;;) {
    char buf[4096];
    union { struct cmsghdr h; char b[CMSG_SPACE(8 * sizeof(int))]; } c;
    struct iovec iov = { buf, sizeof buf - 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b, .msg_controllen = sizeof c.b };
    ssize_t n = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) break;
    buf[n] = 0;
    int nfds = 0;
    char links[1024] = "";
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
      if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
      for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
        int fd; char path[64], link[256] = "";
        memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t l = readlink(path, link, sizeof link - 1);
        if (l > 0) link[l] = 0;
        snprintf(links + strlen(links), sizeof links - strlen(links), "helper: fd: %s\n", link);
        nfds++;
        if (notify && !strcmp(buf, "listener")) answered = fd;
      }
    }
    nout += snprintf(out + nout, sizeof out - nout, "helper: datagram: %s fds=%d%s\n%s",
                     buf, nfds, (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? " TRUNCATED" : "", links);
    if (answered >= 0) nout += answer_exec(answered, out + nout, sizeof out - nout), answered = -2;
  }
  int status;
  waitpid(pid, &status, 0);
  printf("%s", out);
  if (WIFEXITED(status)) printf("helper: exit: %d\n", WEXITSTATUS(status));
  else printf("helper: signal: %d\n", WTERMSIG(status));
  return 0;
}
EOF
cc -O2 -Wall -o "$T/helper" "$T/helper.c" || { echo "FAIL helper build"; exit 1; }

# A target that is a #! script (cannot run from a close-on-exec fd).
printf '#!/bin/sh\necho script ran\n' > "$T/script.sh"; chmod 755 "$T/script.sh"
mkdir -m 700 "$T/private"

FAILS=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; FAILS=$((FAILS + 1)); sed 's/^/    | /' "$T/out" "$T/err"; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
has() { grep -qF -- "$1" "$T/out"; }

FDS=(--control-fd 10 --cwd-fd 11 --exec-fd 12 --filter-fd 13 --netns-fd 14)
# The client's context, here our own (nothing to change, nothing refused).
CPUS=$(sed -n 's/^Cpus_allowed_list:\t//p' /proc/self/status)
CTX=(--loginuid "$(cat /proc/self/loginuid)" --nice "$(nice)" --affinity "$CPUS" --oom-score-adj "$(cat /proc/self/oom_score_adj)" --ioprio 0)
CREDS=(--uid $NOBODY --gid $NOGROUP --exec-gid "$EXEC_GID" --groups "$NOGROUP,100" --umask 027 "${CTX[@]}")
# run FILTER EXEC CWD LAUNCHER-ARGS...: output in $T/out, stderr in $T/err
run() { timeout 20 "$T/helper" "$1" "$2" "$3" "$LAUNCH" "${@:4}" > "$T/out" 2> "$T/err"; }
ok_launch() { has "helper: datagram: listener fds=1" && has "helper: fd: anon_inode:seccomp notify" && has "helper: exit: 0"; }

# --- a good launch
run allow /usr/bin/id /tmp "${CREDS[@]}" "${FDS[@]}" -- id
check "id: uid nobody, real gid the exec group, egid and groups as given" \
  'has "uid=$NOBODY(nobody) gid=$EXEC_GID" && has "egid=$NOGROUP(nogroup) groups=$NOGROUP(nogroup),100(users)"'
check "one datagram 'listener' with one fd, a seccomp listener" \
  'ok_launch && [ "$(grep -c datagram "$T/out")" = 1 ]'
check "nothing on stderr" '[ ! -s "$T/err" ]'

run notify /usr/bin/id /tmp "${CREDS[@]}" "${FDS[@]}" -- id
check "with a filter that traps execveat, the one exec waits for the listener's answer (CONTINUE)" \
  'ok_launch && has "helper: trapped: execveat fd=12 flags=0x1000" && has "uid=$NOBODY(nobody) gid=$EXEC_GID"'

run allow /usr/bin/cat /tmp "${CREDS[@]}" "${FDS[@]}" -- cat /proc/self/status
check "status: NoNewPrivs 1, Umask 0027, seccomp filter mode" \
  'ok_launch && grep -qP "^NoNewPrivs:\t1$" "$T/out" && grep -qP "^Umask:\t0027$" "$T/out" && grep -qP "^Seccomp:\t2$" "$T/out"'
check "status: Uid all nobody, Gid = exec-gid then the user's gid" \
  'grep -qP "^Uid:\t$NOBODY\t$NOBODY\t$NOBODY\t$NOBODY$" "$T/out" && grep -qP "^Gid:\t$EXEC_GID\t$NOGROUP\t$NOGROUP\t$NOGROUP$" "$T/out"'
check "status: no capability" 'grep -qP "^CapPrm:\t0+$" "$T/out" && grep -qP "^CapEff:\t0+$" "$T/out"'
check "status: no signal ignored or blocked (the helper ignored SIGPIPE, blocked SIGUSR1)" \
  'grep -qP "^SigIgn:\t0+$" "$T/out" && grep -qP "^SigBlk:\t0+$" "$T/out"'

run allow /usr/bin/cat /tmp "${CREDS[@]}" "${FDS[@]}" -- cat /proc/self/stat
check "own session: session id = pid" 'ok_launch && awk "NR==1 {exit !(\$1 == \$6)}" "$T/out"'

run allow /usr/bin/ls /tmp "${CREDS[@]}" "${FDS[@]}" -- ls /proc/self/fd
check "only fds 0-2 reach the program (3 is ls's own)" 'ok_launch && [ "$(grep -v helper: "$T/out" | tr "\n" " ")" = "0 1 2 3 " ]'

run allow /usr/bin/pwd /tmp "${CREDS[@]}" "${FDS[@]}" -- pwd
check "cwd from --cwd-fd" 'ok_launch && has /tmp'

# Soft limits need no privilege below the hard one; a hard limit above the
# caller's needs CAP_SYS_RESOURCE, which a broker may lack (a container, a
# systemd CapabilityBoundingSet): then the launch fails at step 4, cleanly.
HARD=$(ulimit -Hn)
timeout 20 bash -c 'ulimit -Sn 256; exec "$@"' _ "$T/helper" allow /usr/bin/cat /tmp "$LAUNCH" \
  "${CREDS[@]}" --rlimit nofile=300:$HARD --rlimit core=0:unlimited --rlimit stack=1048576:unlimited \
  "${FDS[@]}" -- cat /proc/self/limits > "$T/out" 2> "$T/err"
check "rlimits applied exactly (soft above the caller's soft)" \
  'ok_launch && grep -qE "^Max open files +300 +$HARD " "$T/out" && grep -qE "^Max core file size +0 +unlimited " "$T/out" &&
   grep -qE "^Max stack size +1048576 +unlimited " "$T/out"'
timeout 20 bash -c 'ulimit -Sn 256; ulimit -Hn 512; exec "$@"' _ "$T/helper" allow /usr/bin/cat /tmp "$LAUNCH" \
  "${CREDS[@]}" --rlimit nofile=300:4096 "${FDS[@]}" -- cat /proc/self/limits > "$T/out" 2> "$T/err"
if (( 0x$(grep CapEff /proc/self/status | cut -f2) >> 24 & 1 )); then
  check "rlimits: hard limit above the caller's own (CAP_SYS_RESOURCE)" 'ok_launch && grep -qE "^Max open files +300 +4096 " "$T/out"'
else
  check "rlimits: no CAP_SYS_RESOURCE here, raising the hard limit fails cleanly at step 5" \
    'has "helper: datagram: error 5: setrlimit(nofile=300:4096): Operation not permitted fds=0" && has "helper: exit: 127"'
fi

run allow /usr/bin/env /tmp "${CREDS[@]}" --env FOO=bar --env LD_PRELOAD=/nonexistent.so "${FDS[@]}" -- env
check "environment is the --env list; LD_PRELOAD dropped silently (AT_SECURE)" \
  'ok_launch && [ "$(grep -v helper: "$T/out")" = "FOO=bar" ] && ! grep -q "cannot be preloaded" "$T/err"'
timeout 20 setpriv --reuid $NOBODY --regid $NOGROUP --clear-groups -- env -i LD_PRELOAD=/nonexistent.so /usr/bin/true > "$T/out" 2> "$T/err"
check "control: without the gid change the same LD_PRELOAD is honoured (warning)" 'grep -q "cannot be preloaded" "$T/err"'

rm -f "$T/pid"
STX_PIDFILE=$T/pid timeout 20 "$T/helper" allow /usr/bin/sleep /tmp "$LAUNCH" "${CREDS[@]}" --env SECRET=1 "${FDS[@]}" -- sleep 2 > "$T/out" 2> "$T/err" &
for _ in $(seq 50); do [ -s "$T/pid" ] && grep -q "^State:.*S" "/proc/$(cat "$T/pid")/status" 2>/dev/null && [ "$(readlink "/proc/$(cat "$T/pid")/exe")" = /usr/bin/sleep ] && break; sleep 0.1; done
PID=$(cat "$T/pid")
as_nobody() { timeout 5 setpriv --reuid $NOBODY --regid $NOGROUP --init-groups -- "$@" 2>&1; }
check "the user's other processes cannot read /proc/PID/environ or mem" \
  'as_nobody cat /proc/$PID/environ | grep -q "Permission denied" && as_nobody dd if=/proc/$PID/mem count=1 | grep -q "Permission denied"'
check "control: they can read a plain nobody process's environ" \
  '[ "$(as_nobody sh -c "sleep 1 & sleep 0.2; tr \"\\0\" \" \" < /proc/\$!/environ" | wc -c)" -gt 0 ]'
wait
check "  (that program ran and exited 0)" 'ok_launch'

run allow /usr/bin/id /tmp --uid 0 --gid 0 --exec-gid "$EXEC_GID" --groups "" --umask 022 "${CTX[@]}" "${FDS[@]}" -- id
check "uid 0 with gid 0 and empty --groups runs (real gid still the exec group)" \
  'ok_launch && has "uid=0(root) gid=$EXEC_GID" && has "egid=0(root) groups=0(root)"'

# --- the client's context: loginuid, nice, I/O priority, affinity, oom_score_adj
SHOW='printf "loginuid=%s nice=%s oom=%s " "$(cat /proc/self/loginuid)" "$(cut -d" " -f19 /proc/self/stat)" "$(cat /proc/self/oom_score_adj)"; ionice; grep Cpus_allowed_list /proc/self/status'
OWN_OOM=$(cat /proc/self/oom_score_adj)
run allow /bin/sh /tmp "${CREDS[@]:0:10}" --loginuid 1234 --nice 5 --affinity 0 --oom-score-adj $((OWN_OOM + 300)) --ioprio $(((2 << 13) | 3)) \
  "${FDS[@]}" -- sh -c "$SHOW"
check "context: loginuid 1234, nice 5, oom_score_adj raised by 300, I/O best-effort 3, CPU 0 only" \
  'ok_launch && has "loginuid=1234 nice=5 oom=$((OWN_OOM + 300)) best-effort: prio 3" && grep -qP "^Cpus_allowed_list:\t0$" "$T/out"'
run allow /bin/sh /tmp "${CREDS[@]:0:10}" --loginuid 4294967295 --nice -3 --affinity "$CPUS" --oom-score-adj "$OWN_OOM" --ioprio $((3 << 13)) \
  "${FDS[@]}" -- sh -c "$SHOW"
check "context: loginuid unset, nice -3 (below ours), I/O idle, every CPU" \
  'ok_launch && has "loginuid=4294967295 nice=-3 oom=$OWN_OOM idle" && grep -qP "^Cpus_allowed_list:\t$CPUS$" "$T/out"'
run allow /usr/bin/id /tmp "${CREDS[@]:0:10}" --loginuid 0 --nice 0 --affinity 8000 --oom-score-adj 0 --ioprio 0 "${FDS[@]}" -- id
fails_early() {  # fails_early NAME EXPECTED-DATAGRAM-START: an error before the drop, nothing runs
  local want=$2
  check "$1" 'grep -F -- "helper: datagram: $want" "$T/out" | grep -q " fds=0$" && has "helper: exit: 127" && ! has "uid=" && [ ! -s "$T/err" ]'
}
fails_early "context: an affinity with no CPU of this machine fails at step 8" 'error 8: sched_setaffinity(0, "8000"): Invalid argument'
run allow /usr/bin/cat /tmp "${CREDS[@]:0:10}" --loginuid 0 --nice 0 --affinity "$CPUS" --oom-score-adj -1000 --ioprio 0 "${FDS[@]}" -- cat /proc/self/oom_score_adj
if (( 0x$(grep CapEff /proc/self/status | cut -f2) >> 24 & 1 )); then
  check "context: lowering oom_score_adj works with CAP_SYS_RESOURCE" 'ok_launch && grep -qx -- "-1000" "$T/out"'
elif [ "$OWN_OOM" != -1000 ]; then
  fails_early "context: no CAP_SYS_RESOURCE here, lowering oom_score_adj fails cleanly at step 8 (the broker never asks)" \
    'error 8: write(/proc/self/oom_score_adj, "-1000"): Permission denied'
fi

# --- the session's cgroup (v2): joined at step 2, before anything else
CGMNT=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
OWN_CG=$(sed -n 's/^0:://p' /proc/self/cgroup)
if [ -n "$CGMNT" ] && [ -n "$OWN_CG" ]; then
  CG_REL=${OWN_CG%/}/stx-launch-test.$$
  CG=$CGMNT$CG_REL
  mkdir "$CG"
  STX_CGROUP=$CG run allow /usr/bin/cat /tmp "${CREDS[@]}" "${FDS[@]}" --cgroup-fd 15 -- cat /proc/self/cgroup
  check "cgroup: the program runs in the --cgroup-fd cgroup" 'ok_launch && grep -qx -- "0::$CG_REL" "$T/out"'
  check "cgroup: empty again once it exited (removable)" 'rmdir "$CG"'
  STX_CGROUP=/etc/hostname run allow /usr/bin/id /tmp "${CREDS[@]}" "${FDS[@]}" --cgroup-fd 15 -- id
  fails_early "cgroup: a --cgroup-fd that is not a directory fails at step 2" \
    'error 2: openat(cgroup fd 15, "cgroup.procs", O_WRONLY): Not a directory'
  rmdir "$CG" 2>/dev/null
else
  echo "SKIP cgroup checks: no cgroup v2 hierarchy mounted"
fi

# --- bad command lines: "error 1: ..." on the control socket, exit 127, stderr silent
bad() {  # bad NAME EXPECTED-MESSAGE LAUNCHER-ARGS...
  local name=$1 want=$2; shift 2
  run allow /usr/bin/id /tmp "$@"
  check "bad command line: $name" \
    'grep -F -- "helper: datagram: error 1: $want" "$T/out" | grep -q " fds=0$" && has "helper: exit: 127" && [ "$(grep -c datagram "$T/out")" = 1 ] && [ ! -s "$T/err" ]'
}
NOUID=(--gid $NOGROUP --exec-gid "$EXEC_GID" --groups "" --umask 022 "${CTX[@]}")
bad "missing --uid" "--uid: missing" "${NOUID[@]}" "${FDS[@]}" -- id
bad "argv empty after --" "--: argv is empty" "${CREDS[@]}" "${FDS[@]}" --
bad "no --" "--: missing" "${CREDS[@]}" "${FDS[@]}"
bad "--exec-gid equal to --gid" "--exec-gid: must differ from --gid" "${NOUID[@]/$EXEC_GID/$NOGROUP}" --uid $NOBODY "${FDS[@]}" -- id
bad "non-numeric uid" '--uid: not a number: "x"' --uid x "${NOUID[@]}" "${FDS[@]}" -- id
bad "negative uid" '--uid: not a number: "-1"' --uid -1 "${NOUID[@]}" "${FDS[@]}" -- id
bad "uid with sign" '--uid: not a number: "+5"' --uid +5 "${NOUID[@]}" "${FDS[@]}" -- id
bad "uid (uid_t)-1" '--uid: out of range: "4294967295"' --uid 4294967295 "${NOUID[@]}" "${FDS[@]}" -- id
bad "uid overflow" '--uid: not a number: "99999999999999999999"' --uid 99999999999999999999 "${NOUID[@]}" "${FDS[@]}" -- id
bad "uid 0 with gid not 0" "--uid: 0 needs --gid 0" --uid 0 "${NOUID[@]}" "${FDS[@]}" -- id
bad "rlimit SOFT > HARD" '--rlimit: soft limit above hard: "nofile=10:5"' "${CREDS[@]}" --rlimit nofile=10:5 "${FDS[@]}" -- id
bad "rlimit unknown name" '--rlimit: unknown resource: "files=1:2"' "${CREDS[@]}" --rlimit files=1:2 "${FDS[@]}" -- id
bad "rlimit twice" "--rlimit: core given twice" "${CREDS[@]}" --rlimit core=0:0 --rlimit core=1:1 "${FDS[@]}" -- id
bad "uid twice" "--uid: given twice" "${CREDS[@]}" --uid 1 "${FDS[@]}" -- id
bad "unknown option" "--user: unknown option" "${CREDS[@]}" --user x "${FDS[@]}" -- id
bad "umask not octal" '--umask: not a number: "0800"' --umask 0800 "${NOUID[@]/--umask/--uid}" "${FDS[@]}" -- id
bad "groups with an empty item" '--groups: not a list of numbers: "1,,2"' --groups 1,,2 "${CREDS[@]:0:6}" --umask 022 "${FDS[@]}" -- id
bad "env twice" "--env: A given twice" "${CREDS[@]}" --env A=1 --env B=2 --env A=3 "${FDS[@]}" -- id
bad "env without name" '--env: expected NAME=VALUE: "=x"' "${CREDS[@]}" --env =x "${FDS[@]}" -- id
bad "fd is stdio" "--exec-fd: must be 3 or more" "${CREDS[@]}" --control-fd 10 --cwd-fd 11 --exec-fd 1 --filter-fd 13 --netns-fd 14 -- id
bad "fd not open" "--exec-fd 15: not open: Bad file descriptor" "${CREDS[@]}" --control-fd 10 --cwd-fd 11 --exec-fd 15 --filter-fd 13 --netns-fd 14 -- id
bad "same fd twice" "--filter-fd: same fd as --cwd-fd: 11" "${CREDS[@]}" --control-fd 10 --cwd-fd 11 --exec-fd 12 --filter-fd 11 --netns-fd 14 -- id
bad "cgroup fd same as another" "--cgroup-fd: same fd as --netns-fd: 14" "${CREDS[@]}" "${FDS[@]}" --cgroup-fd 14 -- id
bad "cgroup fd twice" "--cgroup-fd: given twice" "${CREDS[@]}" "${FDS[@]}" --cgroup-fd 14 --cgroup-fd 14 -- id
NOCTX=("${CREDS[@]:0:10}")
bad "missing --loginuid" "--loginuid: missing" "${NOCTX[@]}" --nice 0 --affinity 0 --oom-score-adj 0 --ioprio 0 "${FDS[@]}" -- id
bad "missing --affinity" "--affinity: missing" "${NOCTX[@]}" --loginuid 0 --nice 0 --oom-score-adj 0 --ioprio 0 "${FDS[@]}" -- id
CTX5=(--loginuid 0 --oom-score-adj 0 --ioprio 0 --affinity 0)  # all but --nice
bad "loginuid above 4294967295" '--loginuid: out of range: "4294967296"' "${NOCTX[@]}" --loginuid 4294967296 --nice 0 --affinity 0 --oom-score-adj 0 --ioprio 0 "${FDS[@]}" -- id
bad "nice below -20" '--nice: out of range: "-21"' "${NOCTX[@]}" "${CTX5[@]}" --nice -21 "${FDS[@]}" -- id
bad "nice above 19" '--nice: out of range: "20"' "${NOCTX[@]}" "${CTX5[@]}" --nice 20 "${FDS[@]}" -- id
bad "nice with +" '--nice: not a number: "+1"' "${NOCTX[@]}" "${CTX5[@]}" --nice +1 "${FDS[@]}" -- id
bad "nice a lone -" '--nice: not a number: "-"' "${NOCTX[@]}" "${CTX5[@]}" --nice - "${FDS[@]}" -- id
bad "nice --5" '--nice: not a number: "--5"' "${NOCTX[@]}" "${CTX5[@]}" --nice --5 "${FDS[@]}" -- id
bad "oom_score_adj out of range" '--oom-score-adj: out of range: "-1001"' "${NOCTX[@]}" --loginuid 0 --nice 0 --affinity 0 --ioprio 0 --oom-score-adj -1001 "${FDS[@]}" -- id
bad "ioprio class 4" '--ioprio: class 4 is not 0..3: "32768"' "${NOCTX[@]}" --loginuid 0 --nice 0 --affinity 0 --oom-score-adj 0 --ioprio 32768 "${FDS[@]}" -- id
bad "ioprio above 65535" '--ioprio: out of range: "65536"' "${NOCTX[@]}" --loginuid 0 --nice 0 --affinity 0 --oom-score-adj 0 --ioprio 65536 "${FDS[@]}" -- id
for a in "" "1-0" "0,0" "2,1" "0-1,1" "0," ",0" "0-" "-1" "a" "8192" "0 1"; do
  bad "affinity \"$a\"" '--affinity: ' "${NOCTX[@]}" --loginuid 0 --nice 0 --oom-score-adj 0 --ioprio 0 --affinity "$a" "${FDS[@]}" -- id
done

# --- no usable control socket: the same report on stderr
run allow /usr/bin/id /tmp "${CREDS[@]}" --cwd-fd 11 --exec-fd 12 --filter-fd 13 --netns-fd 14 -- id
check "missing --control-fd: message on stderr, exit 127" \
  'grep -qx "stx-launch: error 1: --control-fd: missing" "$T/err" && has "helper: exit: 127" && ! has datagram'
run allow /usr/bin/id /tmp "${CREDS[@]}" --control-fd 11 --cwd-fd 10 --exec-fd 12 --filter-fd 13 --netns-fd 14 -- id
check "--control-fd not a socket: message on stderr, exit 127" \
  'grep -q "^stx-launch: error 1: --control-fd: 11 is not an AF_UNIX SOCK_SEQPACKET socket$" "$T/err" && has "helper: exit: 127"'

# --- failures after the drop: reported with the step, nothing runs
fails_at() {  # fails_at NAME EXPECTED-DATAGRAM-START
  local want=$2
  check "$1" 'grep -F -- "helper: datagram: $want" "$T/out" | grep -q " fds=0$" && has "helper: exit: 127" && ! has "uid=" && [ ! -s "$T/err" ]'
}
run allow /usr/bin/id "$T/private" "${CREDS[@]}" "${FDS[@]}" -- id
fails_at "cwd the user may not enter (fchdir after the drop)" "error 13: fchdir(11): Permission denied"
run empty /usr/bin/id /tmp "${CREDS[@]}" "${FDS[@]}" -- id
fails_at "empty filter" "error 14: read(filter fd 13): 0 bytes"
run allow /etc/passwd /tmp "${CREDS[@]}" "${FDS[@]}" -- passwd
fails_at "exec of a non-executable file: listener first, then the error" "error 18: execveat(12"
check "  (the listener was sent before the exec)" 'has "helper: datagram: listener fds=1"'
run allow "$T/script.sh" /tmp "${CREDS[@]}" "${FDS[@]}" -- script
fails_at "a #! script cannot run from the close-on-exec fd (ENOENT)" "error 18: execveat(12, \"\", [\"script\", ...], AT_EMPTY_PATH): No such file or directory"

echo
if [ "$FAILS" = 0 ]; then echo "all checks passed"; else echo "$FAILS check(s) failed"; exit 1; fi
