#!/usr/bin/env bash
# The README's first quick-start command, on a fresh Debian 12 machine, as root:
# install what is missing, build, install, start the broker on the shipped
# rules, and run `stx-elevate ping -c3 127.0.0.1` as an unprivileged user,
# then show the audit records it left.
set -euo pipefail
cd "$(dirname "$0")/.."

demo_user=${STX_DEMO_USER:-stxdemo}
audit=/var/log/stx-elevate/audit.log

step() { printf '\n==> %s\n' "$*"; }

step "Debian packages"
apt-get update -qq
# What the product and the test suite need (scripts/packages.sh), so that
# `npm test` works next.
. scripts/packages.sh
# shellcheck disable=SC2086 # word splitting of the lists is meant
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $BUILD_PACKAGES $TEST_PACKAGES >/dev/null

step "npm ci && npm run build"
npm ci --no-fund --no-audit
npm run build

step "install into /usr/local/lib/stx-elevate (man pages, unit, group stx-elevate), rules into /etc/elevation.d"
scripts/install.sh
# ping's rule only: the other shipped rules name programs this script does
# not install, and `stx-elevate check` reports a rule whose binary is missing
install -m 0644 -o root -g root elevation.d/ping.conf /etc/elevation.d/
id "$demo_user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$demo_user"

if [ -d /run/systemd/system ]; then
  step "start the broker: systemctl enable --now stx-elevated (audit records in the journal)"
  systemctl enable stx-elevated
  systemctl restart stx-elevated   # Type=notify: returns once the broker listens
  audit_tail() { journalctl -t stx-elevated MESSAGE_ID=7aeda9d17b884ded8547f8940b1a1cec -o cat -n 5 --no-pager; }
else
  step "start the broker (stx-elevated), audit log in $audit"
  install -d -m 0750 /var/log/stx-elevate
  install -d -m 0755 /run/stx-elevate
  pidfile=/run/stx-elevate/stx-elevated.pid
  if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f /run/stx-elevate/broker.sock
  nohup stx-elevated --audit "$audit" >/var/log/stx-elevate/broker.log 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 100); do [ -S /run/stx-elevate/broker.sock ] && break; sleep 0.1; done
  [ -S /run/stx-elevate/broker.sock ] || { cat /var/log/stx-elevate/broker.log; exit 1; }
  echo "broker pid $(cat "$pidfile"); stop it with: kill \$(cat $pidfile)"
  audit_tail() { tail -n 5 "$audit"; }
fi

# Where systemd opens ICMP datagram sockets to everyone, ping needs no
# privilege and the broker would have nothing to grant: close them for the
# demonstration, and put the old value back afterwards.
old_range=$(cat /proc/sys/net/ipv4/ping_group_range)
trap 'echo "$old_range" > /proc/sys/net/ipv4/ping_group_range' EXIT
echo "1 0" > /proc/sys/net/ipv4/ping_group_range

step "as $demo_user: stx-elevate ping -c3 127.0.0.1"
setpriv --reuid="$demo_user" --regid="$demo_user" --init-groups -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp stx-elevate ping -c3 127.0.0.1
step "for comparison, as $demo_user: a copy of ping without its file capability, run directly"
nocap=$(mktemp -d)
cp /usr/bin/ping "$nocap/ping" && chmod 755 "$nocap"
setpriv --reuid="$demo_user" --regid="$demo_user" --init-groups -- "$nocap/ping" -c1 127.0.0.1 || true
rm -rf "$nocap"

step "audit records"
audit_tail
