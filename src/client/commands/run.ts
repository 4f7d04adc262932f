/*
 * stx-elevate PROGRAM ARGS...: ask the broker to run PROGRAM for us, pass
 * signals on, and exit with its status (128+N when killed by signal N).
 * native/stx-run.c does the same in C for shims; test/protocol-clients.test.ts
 * holds both to one table of cases.
 */
import { constants as osConstants } from 'node:os';
import { SysError } from '../../shared/native/libc.js';
import {
  ENV_NAME, FORWARDED_SIGNALS, MAX_ENV_VALUE, MAX_MESSAGE, ProtocolError, type BrokerMessage,
} from '../../shared/protocol.js';
import { BrokerConnection, unreachable } from '../broker-client.js';
import { ResolveError, resolveProgram } from '../resolve.js';
import { mark } from '../timing.js';

export class ClientFailure extends Error {}

/** The environment as the broker will filter it; oversized values never help. */
function clientEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && ENV_NAME.test(k) && Buffer.byteLength(v) <= MAX_ENV_VALUE && !v.includes('\0')) env[k] = v;
  }
  return env;
}

function exitStatus(m: Extract<BrokerMessage, { type: 'exit' }>): number {
  if (m.code !== null) return m.code;
  const n = m.signal ? (osConstants.signals as Record<string, number>)[m.signal] : undefined;
  return 128 + (n ?? 0);
}

/** Resolves with the status to exit with; rejects with ClientFailure for our own failures. */
export function runProgram(socketPath: string, program: string, args: string[]): Promise<number> {
  let path: string;
  try {
    path = resolveProgram(program);
  } catch (e) {
    if (e instanceof ResolveError) throw new ClientFailure(e.message);
    throw e;
  }
  let broker: BrokerConnection;
  try {
    broker = BrokerConnection.connect(socketPath);
    mark('connected');
  } catch (e) {
    throw new ClientFailure(unreachable(socketPath, e));
  }
  // Listening before the request leaves the request, not us, to a signal
  // that comes right after it; handlers run on the loop, so none can
  // send before the run message has gone.
  const forwarders = FORWARDED_SIGNALS.map((s) => {
    const forward = () => {
      try {
        broker.signal(s);
      } catch {
        // the broker is gone; its end of file will tell us
      }
    };
    process.on(s, forward);
    return () => process.off(s, forward);
  });
  try {
    broker.run(path, [program, ...args], clientEnvironment());
  } catch (e) {
    forwarders.forEach((off) => off());
    if (e instanceof ProtocolError) throw new ClientFailure(`${program}: arguments and environment exceed ${MAX_MESSAGE} bytes`);
    if (e instanceof SysError) {
      const why = broker.queuedMessage();
      if (why?.type === 'refused') throw new ClientFailure(why.reason);
      if (why?.type === 'error') throw new ClientFailure(`the broker rejected the request: ${why.reason}`);
      throw new ClientFailure(`cannot talk to the broker at ${socketPath}: ${e.message}`);
    }
    throw e;
  }
  return new Promise((resolve, reject) => {
    const undecodable = (why: string) => new ClientFailure(`the broker sent a message this client cannot decode: ${why}`);
    broker.listen((m) => {
      if (m === null) return reject(new ClientFailure(`the broker closed the connection before ${program} finished`));
      switch (m.type) {
        case 'started': return mark('started');
        case 'exit': mark('exited'); return resolve(exitStatus(m));
        case 'refused': return reject(new ClientFailure(m.reason));
        case 'error': return reject(new ClientFailure(`the broker rejected the request: ${m.reason}`));
        case 'programs': return reject(undecodable('unexpected programs message in answer to run'));
      }
    }, (e) => {
      if (e instanceof ProtocolError) return reject(undecodable(e.message));
      if (e instanceof SysError) return reject(new ClientFailure(`cannot talk to the broker at ${socketPath}: ${e.message}`));
      reject(e);
    });
  });
}
