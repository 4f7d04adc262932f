/*
 * sd_notify(3) for the unit's Type=notify: READY=1 once the socket
 * listens, STATUS= after each rule load, STOPPING=1 at the end. Nothing at
 * all when systemd did not start the broker (no NOTIFY_SOCKET).
 */
import { UnixDatagram } from './datagram.js';

// Read once and removed, as sd_notify(3) does with unset_environment: the
// launcher and the programs must not inherit the service manager's socket.
const address = process.env.NOTIFY_SOCKET;
delete process.env.NOTIFY_SOCKET;
let socket: UnixDatagram | undefined;

/** Send "KEY=value" lines to systemd; a failure is logged, never fatal (the unit then times out or shows no status). */
export function sdNotify(state: string, log: (message: string) => void): void {
  if (!address) return;
  try {
    socket ??= new UnixDatagram(address);
    socket.send(Buffer.from(state));
  } catch (e) {
    log(`cannot notify systemd at ${address} (${state.split('\n')[0]}): ${(e as Error).message}`);
  }
}
