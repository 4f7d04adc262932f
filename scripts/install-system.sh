#!/usr/bin/env bash
# The system-wide part of an installation, from a tree that scripts/install.sh
# installed (it calls this script unless given --no-system): what a
# package's postinst would do. Safe to run again.
#
#   install-system.sh --prefix DIR [--mandir DIR] [--unitdir DIR] [--node PATH]
#     --prefix   the installed tree (required)
#     --mandir   man pages go to DIR/manN/            (default /usr/local/share/man)
#     --unitdir  stx-elevated.service goes there      (default /usr/local/lib/systemd/system)
#     --node     the node the unit runs the broker with (default: node on PATH)
#
# The unit goes where systemd looks for locally installed units, below
# /etc/systemd/system (the admin's: `systemctl edit` drop-ins there override
# it, and no install ever overwrites them) and above /usr/lib/systemd/system
# (the distribution's), as /usr/local/bin sits between the two for programs.
#
# Also, each only when missing: the system group stx-elevate (the programs'
# powerless real gid), /etc/elevation.d (root 0755: the rules) and
# /var/lib/stx-elevate (root 0755: what `stx-elevate strip` records). Then
# `systemctl daemon-reload` where systemd runs. It enables and starts
# nothing, and installs no rule: write rules first (elevation.d(5); examples
# in PREFIX/elevation.d), then `systemctl enable --now stx-elevated`.
set -euo pipefail

prefix=
mandir=/usr/local/share/man
unitdir=/usr/local/lib/systemd/system
node=
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --mandir) mandir=$2; shift 2 ;;
    --unitdir) unitdir=$2; shift 2 ;;
    --node) node=$2; shift 2 ;;
    *) echo "install-system.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "install-system.sh: must run as root" >&2; exit 1; }
[ -n "$prefix" ] && [ -x "$prefix/bin/stx-elevated" ] && [ -f "$prefix/systemd/stx-elevated.service.in" ] ||
  { echo "install-system.sh: --prefix must name a tree that scripts/install.sh installed (no ${prefix:-PREFIX}/bin/stx-elevated or systemd/stx-elevated.service.in)" >&2; exit 2; }
case "$prefix" in /*) ;; *) echo "install-system.sh: --prefix must be an absolute path: $prefix" >&2; exit 2 ;; esac
# The unit names node by its path: systemd's PATH would not find one that
# only root's login shell knows (nvm and the like).
if [ -z "$node" ]; then
  node=$(command -v node || true)
  [ -n "$node" ] || { echo "install-system.sh: no node on PATH; give --node /path/to/node (Node 20.19 or later)" >&2; exit 1; }
fi
case "$node" in /*) ;; *) echo "install-system.sh: --node must be an absolute path: $node" >&2; exit 2 ;; esac
[ -x "$node" ] || { echo "install-system.sh: $node is not an executable" >&2; exit 1; }
# Both go into ExecStart= as they are (and through sed).
case "$prefix$node" in *[[:space:]\|\&\\\"\'%\$]*)
  echo "install-system.sh: the paths of the tree and of node must not hold blanks, quotes or any of | & \\ % \$: $prefix, $node" >&2; exit 2 ;;
esac

for page in "$prefix"/man/*.[1-8]; do
  [ -e "$page" ] || continue
  install -D -m 0644 -o root -g root "$page" "$mandir/man${page##*.}/$(basename "$page")"
done

install -d -m 0755 "$unitdir"
unit=$(mktemp "$unitdir/.stx-elevated.service.XXXXXX")
trap 'rm -f "$unit"' EXIT
sed -e "s|@NODE@|$node|g" -e "s|@PREFIX@|$prefix|g" "$prefix/systemd/stx-elevated.service.in" >"$unit"
chown root:root "$unit"
chmod 0644 "$unit"
mv "$unit" "$unitdir/stx-elevated.service"
trap - EXIT

getent group stx-elevate >/dev/null || groupadd --system stx-elevate

for dir in /etc/elevation.d /var/lib/stx-elevate; do
  if [ -d "$dir" ]; then
    # The broker refuses rules from a directory others can change: say so now.
    [ "$(stat -c %u "$dir")" = 0 ] && [ $((0$(stat -c %a "$dir") & 022)) = 0 ] ||
      echo "install-system.sh: warning: $dir should be owned by root and not writable by group or other ($(stat -c '%U %a' "$dir"))" >&2
  else
    install -d -m 0755 -o root -g root "$dir"
  fi
done

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload
fi
echo "installed the man pages in $mandir, stx-elevated.service in $unitdir; start it with: systemctl enable --now stx-elevated"
