/** Paths both sides agree on (the interface contract). */
export const DEFAULT_SOCKET = '/run/stx-elevate/broker.sock';
export const DEFAULT_RULES = '/etc/elevation.d';
export const DEFAULT_EXEC_GROUP = 'stx-elevate';

/** --socket, else $STX_ELEVATE_SOCKET, else the default. */
export function socketPath(option: string | undefined): string {
  return option || process.env.STX_ELEVATE_SOCKET || DEFAULT_SOCKET;
}

/** stx-elevate's own state (the shims' links): $STX_ELEVATE_STATE_DIR, else this. */
export const DEFAULT_STATE_DIR = '/var/lib/stx-elevate';
/**
 * A shim is a link NAME -> native/build/stx-run early on PATH; it runs the
 * program that <state dir>/SHIMS_DIR/NAME links to (`stx-elevate strip`
 * makes both).
 */
export const SHIMS_DIR = 'shims';
