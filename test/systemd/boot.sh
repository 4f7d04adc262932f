#!/bin/bash
# boot.sh DIR [NSPAWN-OPTION...]: boot DIR/root (made by debootstrap if
# missing) under systemd-nspawn, with the given options added (e.g.
# --bind=PATH); print its PID 1. The root is never changed by the container
# (--volatile=overlay: its writes go to a tmpfs, gone at poweroff), so the
# debootstrap'd root is reused as it was made.
set -euo pipefail
dir=$1; shift; cd "$dir"
rm -f nspawn.pid cg.name   # what down.sh acts on: never a previous run's
if [ ! -x root/usr/lib/systemd/systemd ] || [ ! -e root/.stx-complete ]; then
  command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap systemd-container >/dev/null
  rm -rf root
  # The same Debian archive apt uses on this machine (the first main
  # archive in its sources), so nothing else has to be reachable.
  mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' 2>/dev/null | grep -v security | head -n1)
  [ -n "$mirror" ] || { echo "boot.sh: apt knows no Debian archive (run apt-get update)" >&2; exit 1; }
  if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm root "$mirror" >debootstrap.log 2>&1; then
    echo "debootstrap failed; the end of $dir/debootstrap.log:" >&2; tail -5 debootstrap.log >&2; exit 1
  fi
  rm -rf root/var/cache/apt/archives/*.deb
  touch root/.stx-complete
fi
for h in systemd unified; do
  [ -d /sys/fs/cgroup/$h ] || { echo "no /sys/fs/cgroup/$h: boot.sh knows only the hybrid layout (v1 name=systemd beside v2 at unified)" >&2; exit 1; }
done
cg=stx-nspawn.$$
mkdir /sys/fs/cgroup/systemd/$cg /sys/fs/cgroup/unified/$cg
echo $cg >cg.name
node=$(readlink -f "${NODE:-$(command -v node)}")   # NODE: the node to bind in (default: the one on PATH)
setsid sh -c 'cg=$1; shift; echo $$ >/sys/fs/cgroup/systemd/$cg/cgroup.procs; echo $$ >/sys/fs/cgroup/unified/$cg/cgroup.procs;
  exec systemd-nspawn -q -D root -b --volatile=overlay --register=no --keep-unit --console=read-only -M stx-systemd-test "$@"' \
  sh "$cg" --bind-ro="$node":/usr/local/bin/node "$@" >nspawn.log 2>&1 </dev/null &
echo $! >nspawn.pid
for _ in $(seq 200); do
  leader=$(head -1 /sys/fs/cgroup/unified/$cg/payload/init.scope/cgroup.procs 2>/dev/null || true)
  if [ -n "$leader" ] && nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'; then
    echo "$leader"; exit 0
  fi
  kill -0 "$(cat nspawn.pid)" 2>/dev/null || { echo "systemd-nspawn exited; the end of $dir/nspawn.log:" >&2; tail -5 nspawn.log >&2; exit 1; }
  sleep 0.1
done
echo "systemd did not come up within 20 s; see $dir/nspawn.log" >&2; exit 1
