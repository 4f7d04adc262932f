/*
 * The dpkg hook that keeps a stripped binary stripped.
 *
 * dpkg-statoverride makes dpkg unpack the binary with the stripped mode,
 * but a maintainer script may give the privilege back after that:
 * iputils-ping's postinst runs `setcap cap_net_raw+ep` on every configure
 * (falling back to `chmod u+s`), whatever the override says. So a
 * `post-invoke` line in /etc/dpkg/dpkg.cfg.d/ (dpkg(1): run with sh -c
 * after every unpack, configure, install, remove... run, also when apt
 * drives dpkg) runs `stx-elevate strip --reapply`, which strips again what
 * came back.
 *
 * Why post-invoke: it runs after the whole dpkg run, when every
 * maintainer script of that run has finished. A dpkg file trigger on the
 * binary would need a package of ours to declare the interest and run the
 * triggered script (stx-elevate is installed by scripts/install.sh, not
 * as a package); a hook in apt.conf.d (DPkg::Post-Invoke) would miss a
 * bare `dpkg -i`.
 *
 * MUST: never fail or hang dpkg (a failing hook aborts the dpkg run):
 * skipped when stx-elevate is gone, bounded by timeout(1), status ignored.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_STATE_DIR } from '../../shared/defaults.js';
import { removeDurably, writeAtomic } from './atomic-file.js';
import { Refusal } from './refusal.js';

export const DPKG_CONFIG_DIR = '/etc/dpkg/dpkg.cfg.d';
/** How long a reapply may hold dpkg. */
const TIMEOUT_S = 120;
/** What the hook may name inside its sh -c line without quoting. */
const SHELL_SAFE = /^[A-Za-z0-9_./+-]+$/;

const canonical = (dir: string): string => {
  try {
    return realpathSync(dir);
  } catch {
    return resolve(dir);
  }
};

/**
 * One hook file per state directory (dpkg reads only names of
 * [A-Za-z0-9_-]): stx-elevate for the default one, stx-elevate-HASH for
 * another (a test's, or a second install's).
 */
export function hookFileFor(stateDir: string): string {
  const dir = canonical(stateDir);
  if (dir === DEFAULT_STATE_DIR) return join(DPKG_CONFIG_DIR, 'stx-elevate');
  return join(DPKG_CONFIG_DIR, `stx-elevate-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`);
}

/** The hook file's text: node runs this install's client on the state directory's records. */
export function hookText(node: string, client: string, stateDir: string): string {
  const dir = canonical(stateDir);
  for (const p of [node, client, dir]) {
    if (!SHELL_SAFE.test(p)) throw new Refusal(`cannot write a dpkg hook naming ${p}: it has characters other than A-Z a-z 0-9 _ . / + -`);
  }
  const command = `if [ -x ${node} ] && [ -f ${client} ]; then timeout ${TIMEOUT_S} ${node} ${client} strip --reapply --state-dir ${dir} </dev/null || true; fi`;
  return [
    '# Written by `stx-elevate strip`; removed by the last `stx-elevate restore`.',
    '# After each dpkg run, strip again what a maintainer script gave back',
    "# (iputils-ping's postinst runs setcap on every configure). Never fails dpkg.",
    `post-invoke="${command}"`,
    '',
  ].join('\n');
}

/** Whether the hook file is there with exactly this text. */
export function hookInPlace(file: string, text: string): boolean {
  try {
    return readFileSync(file, 'utf8') === text;
  } catch {
    return false;
  }
}

export function installHook(file: string, text: string): void {
  if (!existsSync(DPKG_CONFIG_DIR)) throw new Refusal(`${DPKG_CONFIG_DIR} does not exist; is dpkg installed?`);
  writeAtomic(file, text, 0o644);
}

export function removeHook(file: string): void {
  removeDurably(file);
}
