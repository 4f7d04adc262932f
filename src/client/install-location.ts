/*
 * Where this client is installed: the tree scripts/install.sh lays out
 * (bin/, dist/, native/build/, elevation.d/), found from this file's own
 * place in it (dist/client/), so that a test install under /opt finds its
 * own shipped rules and shim runner, not those of /usr/local/lib.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The installed tree, e.g. /usr/local/lib/stx-elevate. */
export const INSTALL_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');

/** The rules the project ships, which `strip` installs when none is installed yet. */
export const SHIPPED_RULES = join(INSTALL_ROOT, 'elevation.d');

/** The native runner a shim links to (native/stx-run.c). */
export const STX_RUN = join(INSTALL_ROOT, 'native', 'build', 'stx-run');

/** The client's launcher script, which the dpkg hook runs with node. */
export const CLIENT_SCRIPT = join(INSTALL_ROOT, 'bin', 'stx-elevate');
