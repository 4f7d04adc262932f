/** Paths both sides agree on (the interface contract). */
export const DEFAULT_SOCKET = '/run/stx-elevate/broker.sock';
export const DEFAULT_RULES = '/etc/elevation.d';
export const DEFAULT_EXEC_GROUP = 'stx-elevate';

/** --socket, else $STX_ELEVATE_SOCKET, else the default. */
export function socketPath(option: string | undefined): string {
  return option || process.env.STX_ELEVATE_SOCKET || DEFAULT_SOCKET;
}
