#!/bin/bash
# boot.sh DIR: boot DIR/root (made by debootstrap if missing) under systemd-nspawn; print its PID 1.
set -euo pipefail
dir=$1; cd "$dir"
if [ ! -x root/usr/lib/systemd/systemd ] || [ ! -e root/.stx-complete ]; then
  command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap systemd-container >/dev/null
  rm -rf root
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm root http://deb.debian.org/debian >debootstrap.log 2>&1
  touch root/.stx-complete
fi
cg=stx-nspawn.$$
mkdir /sys/fs/cgroup/systemd/$cg /sys/fs/cgroup/unified/$cg
echo $cg >cg.name
setsid sh -c "echo \$\$ >/sys/fs/cgroup/systemd/$cg/cgroup.procs; echo \$\$ >/sys/fs/cgroup/unified/$cg/cgroup.procs;
  exec systemd-nspawn -q -D root -b --register=no --keep-unit --console=read-only -M stx-systemd-test \
    --bind-ro=$(readlink -f "$(command -v node)"):/usr/local/bin/node" >nspawn.log 2>&1 </dev/null &
echo $! >nspawn.pid
for _ in $(seq 100); do
  leader=$(head -1 /sys/fs/cgroup/unified/$cg/payload/init.scope/cgroup.procs 2>/dev/null || true)
  if [ -n "$leader" ] && nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'; then
    echo "$leader"; exit 0
  fi
  sleep 0.1
done
echo "systemd did not come up within 10 s; see $dir/nspawn.log" >&2; exit 1
