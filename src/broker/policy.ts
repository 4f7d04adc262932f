/*
 * Questions about the loaded rules beyond one trapped call: which programs
 * may this client run (`list`), and does a running program's rule still
 * serve its client after a reload.
 *
 * MUST:
 *  - answer as `run` decides: the client as the kernel reported it (uid,
 *    gids) and the passwd entry of that uid; no passwd entry, no program;
 *  - decide a running program's calls by the rules loaded NOW: a rule
 *    removed, or one that no longer names the client (user, groups,
 *    sandboxed-clients), refuses every trapped call;
 *  - keep a `programs` answer within the protocol's bounds, saying how many
 *    programs it had to leave out rather than cutting silently.
 */
import { getgrnamGid } from '../shared/native/libc.js';
import {
  MAX_CALL_TEXT, MAX_LISTED_CALLS, MAX_LISTED_PROGRAMS, MAX_MESSAGE, MAX_PATH, encode,
  type ListedProgram, type Programs,
} from '../shared/protocol.js';
import type { ClientIdentity } from './identity.js';
import type { BindRule, CallRule, Location, ProgramRule, Range, RuleSet, SetsockoptRule, SocketRule } from './rules/model.js';
import { mayRun, socketProtocolArg } from './rules/match.js';
import { domainName, protocolName, typeName } from './rules/names.js';

/** Every rule for the binary at path, in the rule set's order. */
function rulesNaming(rules: RuleSet, path: string): ProgramRule[] {
  const found: ProgramRule | ProgramRule[] | undefined = rules.programs.get(path);
  return found === undefined ? [] : Array.isArray(found) ? found : [found];
}

/**
 * The rule that serves this client for the binary at path, as `run`
 * decides it: the client's user has a passwd entry and the rule names it
 * (by user, `*` or group). undefined: run would refuse.
 */
export function ruleServing(rules: RuleSet, path: string, client: ClientIdentity): ProgramRule | undefined {
  const user = client.passwd?.name;
  if (user === undefined) return undefined;
  return rulesNaming(rules, path).find((r) => mayRun(r, { uid: client.uid, user, gids: client.gids }, getgrnamGid));
}

// ---- list ----------------------------------------------------------------------------

/** Room for the answer's fixed part (v, type, uid, user name up to 256 bytes of JSON, omitted). */
const ANSWER_OVERHEAD = 512;

/**
 * The `programs` answer for this client: every program whose rule serves
 * its user, by path, each with its calls as root. Programs that do not fit
 * the message (or carry more calls than one entry may) are left out from
 * the end and counted in `omitted`.
 */
export function programsFor(rules: RuleSet, client: ClientIdentity): Programs {
  const serving = [...rules.programs.keys()].sort()
    .map((path) => ruleServing(rules, path, client)).filter((r): r is ProgramRule => r !== undefined);
  const programs: ListedProgram[] = [];
  let size = ANSWER_OVERHEAD;
  for (const rule of serving) {
    const entry: ListedProgram = { path: rule.path, args: argsText(rule), calls: rule.calls.map(describeCall) };
    const bytes = Buffer.byteLength(JSON.stringify(entry)) + 1;
    if (programs.length >= MAX_LISTED_PROGRAMS || entry.calls.length > MAX_LISTED_CALLS
      || rule.path.length > MAX_PATH || size + bytes > MAX_MESSAGE) break;
    programs.push(entry);
    size += bytes;
  }
  const answer: Programs = {
    v: 1, type: 'programs', uid: client.uid, user: client.passwd?.name ?? null, programs, omitted: serving.length - programs.length,
  };
  encode(answer); // within MAX_MESSAGE by construction; throws (an internal error) otherwise
  return answer;
}

/** The rule's argument pattern as written; null: any arguments (the grammar has no pattern yet). */
function argsText(_rule: ProgramRule): string | null {
  return null;
}

const shorten = (text: string): string => (text.length <= MAX_CALL_TEXT ? text : `${text.slice(0, MAX_CALL_TEXT - 1)}…`);

const ranges = (rs: Range[]): string => rs.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(',');

/**
 * One line per call, in the rule's words and in the form `stx-elevate
 * check` prints them: `socket inet raw icmp`, `bind inet/inet6 stream port
 * 80,443`, `setsockopt SO_MARK 1-10`.
 */
export function describeCall(c: CallRule): string {
  const text = c.kind === 'socket' ? describeSocket(c) : c.kind === 'bind' ? describeBind(c) : describeSetsockopt(c);
  return shorten(text);
}

function describeSocket(c: SocketRule): string {
  const protocol = protocolName(c.domain, socketProtocolArg(c)) ?? String(c.protocol);
  const words = ['socket', domainName(c.domain) ?? String(c.domain), typeName(c.type) ?? String(c.type), protocol];
  if (c.headerIncluded) words.push('header-included');
  return words.join(' ');
}

function describeBind(c: BindRule): string {
  const words = ['bind', c.families.map((f) => domainName(f) ?? String(f)).join('/'), c.types.map((t) => typeName(t) ?? String(t)).join('/'),
    `port ${ranges(c.ports)}`];
  if (c.addresses) words.push(`address ${c.addresses.join(',')}`);
  if (c.reusePort) words.push('reuseport');
  return words.join(' ');
}

function describeSetsockopt(c: SetsockoptRule): string {
  return `setsockopt ${c.optionName} ${c.interfaces ? c.interfaces.join(',') : ranges(c.values ?? [])}`;
}

// ---- reload --------------------------------------------------------------------------

/** A running program's rule as the loaded rules have it now, or why there is none. */
export type CurrentRule = { rule: ProgramRule; reason?: undefined; at?: undefined }
  | { rule?: undefined; reason: string; at?: Location };

/**
 * Whether the rules loaded now still let this client run the program it
 * runs (launched under `launched`): a rule for the same path that serves
 * the client as `run` would decide, and serves a sandboxed client if it is
 * one. The rule may have moved to another file; it decides from now on.
 * A refusal names the rule when there is exactly one for the path.
 */
export function currentRule(rules: RuleSet, launched: ProgramRule, client: ClientIdentity, sandboxed: boolean): CurrentRule {
  const path = launched.path;
  const candidates = rulesNaming(rules, path);
  if (candidates.length === 0) return { reason: `no rule names ${path} since the rules were reloaded` };
  const rule = ruleServing(rules, path, client);
  if (!rule) {
    const name = client.passwd?.name ?? `uid ${client.uid}`;
    return { reason: `no rule lets ${name} run ${path} since the rules were reloaded`, at: candidates.length === 1 ? candidates[0].at : undefined };
  }
  if (sandboxed && !rule.sandboxedClients) {
    return { reason: `the rule ${rule.file} no longer serves sandboxed clients since the rules were reloaded`, at: rule.at };
  }
  return { rule };
}
