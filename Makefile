# make && make install (as root): build, then install with scripts/install.sh,
# which copies the built tree to PREFIX, links the commands into BINDIR, and
# installs the man pages, the systemd unit stx-elevated.service, the group
# stx-elevate, /etc/elevation.d and /var/lib/stx-elevate (scripts/install-system.sh).
PREFIX ?= /usr/local/lib/stx-elevate
BINDIR ?= /usr/local/bin
MANDIR ?= /usr/local/share/man
UNITDIR ?= /usr/local/lib/systemd/system

all: node_modules/.package-lock.json
	npm run build

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

install:
	scripts/install.sh --prefix "$(PREFIX)" --bindir "$(BINDIR)" --mandir "$(MANDIR)" --unitdir "$(UNITDIR)"

.PHONY: all install
