# The Debian packages stx-elevate needs, sourced by scripts/quickstart.sh and
# .ci/run (one list, so that the README's test command works after its
# quick start on a fresh machine).
#
# BUILD_PACKAGES, to build and run the product: libseccomp2, the broker's
# filter compiler (through koffi); python3 + build-essential, node-gyp and
# the native programs; libjansson-dev, the JSON library native/stx-run links
# statically (no run-time package); iputils-ping, the program of the quick
# start.
BUILD_PACKAGES="iputils-ping libseccomp2 python3 build-essential libjansson-dev ca-certificates"
#
# TEST_PACKAGES, for npm test: libcap2-bin, getcap/setcap; util-linux
# (setpriv, setarch, nsenter, prlimit) and passwd (useradd) are
# essential/required; iproute2 (ip, ss), the network namespaces and veth
# interfaces of the e2e tests; iputils-arping, iputils-clockdiff,
# traceroute, mtr-tiny, fping: the programs of the shipped rules in
# elevation.d/, run for real by test/e2e-shipped-rules.test.ts (arping also
# by test/e2e-namespaces.test.ts); debootstrap + systemd-container
# (systemd-nspawn), test/systemd/boot.sh, the booted systemd of
# test/e2e-systemd.test.ts and e2e-service (its first run debootstraps a
# Debian 12 minbase from the Debian archive apt uses into
# /var/tmp/stx-systemd: ~35 s); groff-base, test/man.test.ts renders the man
# pages with groff -ww; strace, test/protocol-clients.test.ts delays a
# client's send (fault injection) to meet a broker that answered and closed
# first; tmux, the terminal test/e2e-learn.test.ts answers learn --ask's
# questions in; keyutils (keyctl), test/e2e-keyring.test.ts runs a broker in
# a session keyring; clang + libclang-rt-dev (its sanitizer and libFuzzer
# runtimes), test/fuzz-launcher.test.ts builds native/fuzz with
# -fsanitize=fuzzer.
TEST_PACKAGES="libcap2-bin util-linux passwd iproute2 iputils-arping iputils-clockdiff traceroute mtr-tiny fping
  debootstrap systemd-container groff-base strace tmux clang libclang-rt-dev keyutils"
#
# The commands the tests run, checked once installed.
TEST_TOOLS="setpriv setarch nsenter prlimit useradd groupadd getcap setcap cc make python3 node npm ip ss arping clockdiff
  traceroute.db mtr-packet fping debootstrap systemd-nspawn groff strace tmux clang keyctl"
