/*
 * The wire protocol between stx-elevate (unprivileged) and stx-elevated
 * (root): one message per SOCK_SEQPACKET datagram, one JSON object each.
 *
 * MUST (for the broker's side of every decode):
 *  - accept only the exact shapes below: unknown types, unknown keys, wrong
 *    types, out-of-range sizes are all ProtocolErrors, never half-accepted;
 *  - carry no identity: who the client is comes from the kernel
 *    (SO_PEERCRED, SO_PEERPIDFD, SO_PEERGROUPS), so a "uid" key is an error.
 */

export const PROTOCOL_VERSION = 1;
/** Largest datagram either side accepts (argv + environment of a run). */
export const MAX_MESSAGE = 131072;
/** fds that travel with a run: stdin, stdout, stderr, cwd. */
export const RUN_FDS = 4;
export const MAX_ARGS = 4096;
export const MAX_ENV = 1024;
/** An environment variable's name, as both sides accept it. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * Clients leave out longer values (in UTF-8 bytes): the broker keeps only
 * short ones anyway (src/broker/environment.ts), and they would crowd argv
 * out of MAX_MESSAGE.
 */
export const MAX_ENV_VALUE = 4096;
/** A `programs` answer lists at most this many programs, each with at most MAX_LISTED_CALLS calls. */
export const MAX_LISTED_PROGRAMS = 4096;
export const MAX_LISTED_CALLS = 1024;
/** Longest description of one call, or of an argument pattern, in a `programs` answer. */
export const MAX_CALL_TEXT = 1024;
export const MAX_PATH = 4095;
/** Longest `user` filter of a watch request: a user name, or a uid in decimal. */
export const MAX_WATCH_USER = 256;
export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

export interface RunRequest { v: 1; type: 'run'; path: string; argv: string[]; env: Record<string, string> }
export interface SignalRequest { v: 1; type: 'signal'; signal: ForwardedSignal }
export interface ListRequest { v: 1; type: 'list' }
/**
 * Ask for the broker's live audit stream. The filters narrow it (null:
 * any): `user` a user name, or a uid in decimal; `program` an absolute
 * path as the rules name it. A filter, not an identity: who asks still
 * comes from the kernel.
 */
export interface WatchRequest { v: 1; type: 'watch'; user: string | null; program: string | null }
export type ClientMessage = RunRequest | SignalRequest | ListRequest | WatchRequest;

export interface Started { v: 1; type: 'started'; pid: number }
export interface Refused { v: 1; type: 'refused'; reason: string }
export interface Exited { v: 1; type: 'exit'; code: number | null; signal: string | null }
export interface ProtocolFailure { v: 1; type: 'error'; reason: string }
/**
 * One program the client's user may run, the arguments its rule requires
 * (the rule's argument pattern as written; null: any), and the calls the
 * rule performs as root.
 */
export interface ListedProgram { path: string; args: string | null; calls: string[] }
/**
 * The answer to `list`: who the broker takes the client to be (from the
 * kernel; `user` null without a passwd entry), the programs it may run, and
 * how many more there were than one message holds.
 */
export interface Programs { v: 1; type: 'programs'; uid: number; user: string | null; programs: ListedProgram[]; omitted: number }
/** The answer to `watch`: from now on, `event` and `dropped` messages until either side closes. */
export interface Watching { v: 1; type: 'watching' }
/**
 * One audit record, with the fields of its line in the audit log (at least
 * `time` and `event`; the others as doc/CONTRACTS.md lists them per event).
 */
export interface WatchedRecord { time: string; event: string; [field: string]: unknown }
export interface WatchedEvent { v: 1; type: 'event'; record: WatchedRecord }
/** `count` records were not sent to this watcher: it did not read them fast enough. */
export interface Dropped { v: 1; type: 'dropped'; count: number }
export type BrokerMessage = Started | Refused | Exited | ProtocolFailure | Programs | Watching | WatchedEvent | Dropped;

export class ProtocolError extends Error {}

export function encode(message: ClientMessage | BrokerMessage): Buffer {
  const data = Buffer.from(JSON.stringify(message));
  if (data.length > MAX_MESSAGE) {
    throw new ProtocolError(`message of ${data.length} bytes exceeds the limit of ${MAX_MESSAGE}`);
  }
  return data;
}

type Json = Record<string, unknown>;

/** How much of a client's string a refusal quotes. */
const QUOTED_CHARS = 64;

/**
 * A client's value named in a refusal: a JSON literal for a primitive (a
 * string's first QUOTED_CHARS characters, then "…"), the kind for an array
 * or object. The refusal goes back in one datagram and into the audit: a
 * whole 128 KiB value made the answer too big to send. JSON.stringify of a
 * value nested tens of thousands deep overflows the stack.
 */
function quote(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  if (typeof value === 'string' && value.length > QUOTED_CHARS) return `${JSON.stringify(value.slice(0, QUOTED_CHARS))}…`;
  return JSON.stringify(value) ?? String(value);
}

function parseObject(data: Buffer): Json {
  if (data.length === 0) throw new ProtocolError('empty message');
  if (data.length > MAX_MESSAGE) throw new ProtocolError(`message exceeds ${MAX_MESSAGE} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    throw new ProtocolError('message is not valid UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('message is not a JSON object');
  }
  const obj = value as Json;
  if (obj.v !== PROTOCOL_VERSION) throw new ProtocolError(`unsupported protocol version ${quote(obj.v)}; expected ${PROTOCOL_VERSION}`);
  if (typeof obj.type !== 'string') throw new ProtocolError('message has no type');
  return obj;
}

function exactKeys(obj: Json, keys: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw new ProtocolError(`unexpected key ${quote(k)} in ${String(obj.type)} message`);
  }
  for (const k of keys) {
    if (!(k in obj)) throw new ProtocolError(`${String(obj.type)} message lacks ${JSON.stringify(k)}`);
  }
}

const noNul = (s: string): boolean => !s.includes('\0');
const isPath = (s: unknown): s is string => typeof s === 'string' && s.startsWith('/') && noNul(s) && s.length <= MAX_PATH;
const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/**
 * A watch request's `user` filter: a uid in decimal (up to 4294967294), or
 * a name as useradd accepts one (no control character, colon, comma,
 * slash or white space, not starting with "-"), at most MAX_WATCH_USER
 * characters.
 */
export function isWatchUser(s: unknown): s is string {
  if (typeof s !== 'string' || s.length === 0 || s.length > MAX_WATCH_USER) return false;
  if (/^[0-9]+$/.test(s)) return s.length <= 10 && Number(s) < 0xffffffff;
  return !s.startsWith('-') && !/[\x00-\x1f\x7f:,/\s]/.test(s);
}

function stringArray(value: unknown, what: string, max: number): string[] {
  if (!Array.isArray(value) || !value.every((s) => typeof s === 'string' && noNul(s))) {
    throw new ProtocolError(`${what} must be an array of strings without NUL`);
  }
  if (value.length > max) throw new ProtocolError(`${what} has ${value.length} entries; the limit is ${max}`);
  return value as string[];
}

function environment(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('env must be an object of strings');
  }
  const entries = Object.entries(value as Json);
  if (entries.length > MAX_ENV) throw new ProtocolError(`env has ${entries.length} entries; the limit is ${MAX_ENV}`);
  const env: Record<string, string> = Object.create(null);
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || !ENV_NAME.test(k) || !noNul(v)) {
      throw new ProtocolError(`env entry ${quote(k)} is not NAME=string`);
    }
    env[k] = v;
  }
  return env;
}

/** Decode and validate a client's message: the broker's only entry for client bytes. */
export function decodeClientMessage(data: Buffer): ClientMessage {
  const obj = parseObject(data);
  switch (obj.type) {
    case 'run': {
      exactKeys(obj, ['v', 'type', 'path', 'argv', 'env']);
      if (!isPath(obj.path)) {
        throw new ProtocolError('run path must be an absolute path');
      }
      const argv = stringArray(obj.argv, 'argv', MAX_ARGS);
      if (argv.length === 0) throw new ProtocolError('argv must not be empty');
      return { v: 1, type: 'run', path: obj.path, argv, env: environment(obj.env) };
    }
    case 'signal': {
      exactKeys(obj, ['v', 'type', 'signal']);
      if (!FORWARDED_SIGNALS.includes(obj.signal as ForwardedSignal)) {
        throw new ProtocolError(`signal must be one of ${FORWARDED_SIGNALS.join(', ')}`);
      }
      return { v: 1, type: 'signal', signal: obj.signal as ForwardedSignal };
    }
    case 'list':
      exactKeys(obj, ['v', 'type']);
      return { v: 1, type: 'list' };
    case 'watch': {
      exactKeys(obj, ['v', 'type', 'user', 'program']);
      if (!(obj.user === null || isWatchUser(obj.user))) {
        throw new ProtocolError(`watch user must be null, a user name or a uid (at most ${MAX_WATCH_USER} characters)`);
      }
      if (!(obj.program === null || isPath(obj.program))) throw new ProtocolError('watch program must be null or an absolute path');
      return { v: 1, type: 'watch', user: obj.user, program: obj.program };
    }
    default:
      throw new ProtocolError(`unknown message type ${quote(obj.type)}`);
  }
}

/** Decode the broker's answer on the client side. */
export function decodeBrokerMessage(data: Buffer): BrokerMessage {
  const obj = parseObject(data);
  const str = (k: string): string => {
    if (typeof obj[k] !== 'string') throw new ProtocolError(`${String(obj.type)}.${k} must be a string`);
    return obj[k] as string;
  };
  switch (obj.type) {
    case 'started':
      exactKeys(obj, ['v', 'type', 'pid']);
      if (!Number.isInteger(obj.pid)) throw new ProtocolError('started.pid must be an integer');
      return { v: 1, type: 'started', pid: obj.pid as number };
    case 'refused':
      exactKeys(obj, ['v', 'type', 'reason']);
      return { v: 1, type: 'refused', reason: str('reason') };
    case 'error':
      exactKeys(obj, ['v', 'type', 'reason']);
      return { v: 1, type: 'error', reason: str('reason') };
    case 'exit': {
      exactKeys(obj, ['v', 'type', 'code', 'signal']);
      const code = obj.code, signal = obj.signal;
      if (!(code === null || (Number.isInteger(code) && (code as number) >= 0 && (code as number) <= 255))) {
        throw new ProtocolError('exit.code must be 0-255 or null');
      }
      if (!(signal === null || typeof signal === 'string')) throw new ProtocolError('exit.signal must be a string or null');
      return { v: 1, type: 'exit', code: code as number | null, signal: signal as string | null };
    }
    case 'programs': {
      exactKeys(obj, ['v', 'type', 'uid', 'user', 'programs', 'omitted']);
      if (!isCount(obj.uid) || obj.uid > 0xffffffff) throw new ProtocolError('programs.uid must be a uid');
      if (!(obj.user === null || (typeof obj.user === 'string' && obj.user !== '' && noNul(obj.user)))) {
        throw new ProtocolError('programs.user must be a user name or null');
      }
      if (!isCount(obj.omitted)) throw new ProtocolError('programs.omitted must be a count');
      return { v: 1, type: 'programs', uid: obj.uid, user: obj.user as string | null, programs: listedPrograms(obj.programs), omitted: obj.omitted };
    }
    case 'watching':
      exactKeys(obj, ['v', 'type']);
      return { v: 1, type: 'watching' };
    case 'event': {
      exactKeys(obj, ['v', 'type', 'record']);
      const record = obj.record;
      if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new ProtocolError('event.record must be an object');
      const { time, event } = record as Json;
      if (typeof time !== 'string' || time === '') throw new ProtocolError('event.record.time must be a string');
      if (typeof event !== 'string' || event === '') throw new ProtocolError('event.record.event must be a string');
      if (!isRecordValue(record, 0)) {
        throw new ProtocolError(`event.record must be JSON as the audit log writes it: finite numbers, nested at most ${MAX_RECORD_DEPTH} deep`);
      }
      return { v: 1, type: 'event', record: record as WatchedRecord };
    }
    case 'dropped':
      exactKeys(obj, ['v', 'type', 'count']);
      if (!isCount(obj.count) || obj.count === 0) throw new ProtocolError('dropped.count must be a positive count');
      return { v: 1, type: 'dropped', count: obj.count };
    default:
      throw new ProtocolError(`unknown message type ${quote(obj.type)}`);
  }
}

/** How deep a watched record's values nest at most (the broker's nest 3: call.args.*). */
const MAX_RECORD_DEPTH = 8;

/**
 * A record's value as the audit log could hold it. JSON.parse gives
 * Infinity for 1e309, which JSON cannot write back, and a record nested
 * tens of thousands deep overflows JSON.stringify (the client prints
 * records with it).
 */
function isRecordValue(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth >= MAX_RECORD_DEPTH) return false;
  return Object.values(value).every((v) => isRecordValue(v, depth + 1));
}

function listedPrograms(value: unknown): ListedProgram[] {
  if (!Array.isArray(value)) throw new ProtocolError('programs.programs must be an array');
  if (value.length > MAX_LISTED_PROGRAMS) throw new ProtocolError(`programs lists ${value.length} programs; the limit is ${MAX_LISTED_PROGRAMS}`);
  return value.map((p: unknown) => {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new ProtocolError('a listed program must be an object');
    const entry = p as Json;
    for (const k of Object.keys(entry)) {
      if (k !== 'path' && k !== 'args' && k !== 'calls') throw new ProtocolError(`unexpected key ${quote(k)} in a listed program`);
    }
    if (!isPath(entry.path)) throw new ProtocolError('a listed program\'s path must be an absolute path');
    const args = entry.args;
    if (!(args === null || (typeof args === 'string' && noNul(args) && args.length <= MAX_CALL_TEXT))) {
      throw new ProtocolError(`a listed program's args must be null or a text of at most ${MAX_CALL_TEXT} characters`);
    }
    const calls = stringArray(entry.calls, 'a listed program\'s calls', MAX_LISTED_CALLS);
    if (calls.some((c) => c === '' || c.length > MAX_CALL_TEXT)) {
      throw new ProtocolError(`a listed call must be 1-${MAX_CALL_TEXT} characters`);
    }
    return { path: entry.path, args, calls };
  });
}
