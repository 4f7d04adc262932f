#!/bin/bash
# down.sh DIR: power off what boot.sh DIR started and remove what it left.
dir=$1; cd "$dir" || exit 1
[ -e cg.name ] || exit 0   # boot.sh did not get as far as its cgroups: nothing to undo
cg=$(cat cg.name); p=$(cat nspawn.pid 2>/dev/null || true)
if [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = systemd-nspawn ]; then
  kill -TERM "$p" 2>/dev/null   # systemd-nspawn: SIGTERM = poweroff the container
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
fi
# whatever is still in the cgroup (nspawn that did not stop in 10 s, or a container without it)
if [ -n "$(cat /sys/fs/cgroup/unified/$cg/cgroup.procs /sys/fs/cgroup/unified/$cg/*/cgroup.procs /sys/fs/cgroup/unified/$cg/*/*/cgroup.procs 2>/dev/null)" ]; then
  echo 1 >/sys/fs/cgroup/unified/$cg/cgroup.kill
  for _ in $(seq 50); do [ -z "$(find /sys/fs/cgroup/unified/$cg -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && break; sleep 0.1; done
fi
for h in unified systemd; do [ -d /sys/fs/cgroup/$h/$cg ] && find /sys/fs/cgroup/$h/$cg -depth -type d -exec rmdir {} \; ; done
[ -d /run/systemd/nspawn ] && find /run/systemd/nspawn -depth -type d -empty -delete  # only what is left empty
rm -f cg.name nspawn.pid
[ ! -d /sys/fs/cgroup/unified/$cg ] && [ ! -d /sys/fs/cgroup/systemd/$cg ]
