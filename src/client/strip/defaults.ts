/** strip's defaults beside the shared ones (src/shared/defaults.ts). */
import { join } from 'node:path';
import { DEFAULT_STATE_DIR, SHIMS_DIR } from '../../shared/defaults.js';

/** Where a shim goes: before /usr/bin on Debian's default PATHs (/etc/login.defs ENV_PATH, /etc/profile). */
export const DEFAULT_SHIM_DIR = '/usr/local/bin';

/** --state-dir, else $STX_ELEVATE_STATE_DIR, else the default: where the shim runner looks too. */
export function stateDirPath(option: string | undefined): string {
  return option || process.env.STX_ELEVATE_STATE_DIR || DEFAULT_STATE_DIR;
}

/** STATE/shims: NAME -> the stripped binary, read by stx-run called as NAME. */
export const shimLinksDir = (stateDir: string): string => join(stateDir, SHIMS_DIR);
