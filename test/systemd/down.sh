#!/bin/bash
# down.sh DIR: power off what boot.sh DIR started and remove what it left.
dir=$1; cd "$dir" || exit 1
p=$(cat nspawn.pid); cg=$(cat cg.name)
kill -TERM "$p" 2>/dev/null   # systemd-nspawn: SIGTERM = poweroff the container
for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$p" 2>/dev/null; then echo 1 >/sys/fs/cgroup/unified/$cg/cgroup.kill; sleep 0.5; fi
for h in unified systemd; do [ -d /sys/fs/cgroup/$h/$cg ] && find /sys/fs/cgroup/$h/$cg -depth -type d -exec rmdir {} \; ; done
[ -d /run/systemd/nspawn ] && find /run/systemd/nspawn -depth -type d -empty -delete  # only what is left empty
