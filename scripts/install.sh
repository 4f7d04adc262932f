#!/usr/bin/env bash
# Install the built stx-elevate (after `npm ci && npm run build`) into PREFIX:
# the files the broker and the client run, root-owned and not writable by
# group or other (the broker refuses an unsafe launcher, and users must be
# able to read the client even when the checkout sits in root's home).
#
#   scripts/install.sh [--prefix DIR] [--bindir DIR] [--no-links] [--no-system]
#                      [--mandir DIR] [--unitdir DIR] [--node PATH]
#     --prefix  where the tree goes            (default /usr/local/lib/stx-elevate)
#     --bindir  where stx-elevate/stx-elevated links go (default /usr/local/bin)
#     --no-links  do not create the links
#     --no-system  install the tree only: no man pages, unit, group or
#               directories outside it (the tests' installs under /opt)
#     --mandir, --unitdir, --node: passed to scripts/install-system.sh, which
#               installs the man pages, the systemd unit stx-elevated.service,
#               the group stx-elevate, /etc/elevation.d and /var/lib/stx-elevate
#               (see there) from the installed tree
set -euo pipefail

prefix=/usr/local/lib/stx-elevate
bindir=/usr/local/bin
links=1
system=1
system_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --bindir) bindir=$2; shift 2 ;;
    --no-links) links=0; shift ;;
    --no-system) system=0; shift ;;
    --mandir|--unitdir|--node) system_args+=("$1" "$2"); shift 2 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path: $prefix" >&2; exit 2 ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
for f in dist/broker/main.js dist/client/main.js native/build/stx-launch native/build/stx-memread.so native/build/stx-spawn.so native/build/stx-run build/Release/stx_uvpoll.node; do
  [ -e "$f" ] || { echo "install.sh: $f is missing; run 'npm ci && npm run build' first" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "install.sh: must run as root" >&2; exit 1; }

mkdir -p "$(dirname "$prefix")"
stage=$(mktemp -d "${prefix%/}.new.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp -r bin dist package.json elevation.d "$stage/"
mkdir -p "$stage/native/build" "$stage/build/Release"
# stx-run: the client in C that shims link to (0755 root, like the rest)
cp native/build/stx-launch native/build/stx-memread.so native/build/stx-spawn.so native/build/stx-run "$stage/native/build/"
cp build/Release/stx_uvpoll.node "$stage/build/Release/"
[ -d man ] && cp -r man "$stage/"
# What install-system.sh needs, so that the tree alone can be installed system-wide.
cp -r systemd "$stage/"
mkdir -p "$stage/scripts"
cp scripts/install-system.sh "$stage/scripts/"
# Only the runtime dependencies, as npm resolved them.
npm ls --omit=dev --all --parseable 2>/dev/null | while read -r dir; do
  rel=${dir#"$repo"/}
  case "$rel" in node_modules/*) mkdir -p "$stage/$(dirname "$rel")"; cp -r "$dir" "$stage/$rel" ;; esac
done
chown -R root:root "$stage"
chmod -R u=rwX,go=rX "$stage"
rm -rf "$prefix"
mv "$stage" "$prefix"
trap - EXIT

if [ "$links" = 1 ]; then
  mkdir -p "$bindir"
  ln -sf "$prefix/bin/stx-elevate" "$bindir/stx-elevate"
  ln -sf "$prefix/bin/stx-elevated" "$bindir/stx-elevated"
fi
echo "installed stx-elevate in $prefix"
if [ "$system" = 1 ]; then
  "$prefix/scripts/install-system.sh" --prefix "$prefix" "${system_args[@]}"
fi
