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
import type { CallRule, Location, ProgramRule, RuleSet } from './rules/model.js';
import { describeCall as describeRuleCall } from './rules/describe.js';
import { matchArgs, programRules, ruleFor } from './rules/match.js';

/**
 * The rule that serves this client for the binary at path, as `run`
 * decides it (match.ts ruleFor): the client's user has a passwd entry and
 * a rule names it (by user or `*`, else by group). undefined: run would
 * refuse. Whether argv matches the rule's args is run's next question.
 */
export function ruleServing(rules: RuleSet, path: string, client: ClientIdentity): ProgramRule | undefined {
  const user = client.passwd?.name;
  if (user === undefined) return undefined;
  return ruleFor(rules, path, { uid: client.uid, user, gids: client.gids }, getgrnamGid);
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

/** The rule's argument pattern as written (`""`: none); null: any arguments. */
function argsText(rule: ProgramRule): string | null {
  return rule.args ? shorten(rule.args.text) : null;
}

const shorten = (text: string): string => (text.length <= MAX_CALL_TEXT ? text : `${text.slice(0, MAX_CALL_TEXT - 1)}…`);

/** One line per call, as `stx-elevate check` words them (rules/describe.ts), within the protocol's bound. */
export function describeCall(c: CallRule): string {
  return shorten(describeRuleCall(c));
}

// ---- reload --------------------------------------------------------------------------

/** A running program's rule as the loaded rules have it now, or why there is none. */
export type CurrentRule = { rule: ProgramRule; reason?: undefined; at?: undefined }
  | { rule?: undefined; reason: string; at?: Location };

/**
 * Whether the rules loaded now still let this client run the program it
 * runs (launched under `launched` with `argv`): a rule for the same path
 * that serves the client as `run` would decide, whose args match argv,
 * whose sha256 pin (if any) is the one it was started under, and that
 * serves a sandboxed client if it is one. The rule may have moved to another file; it decides from now on.
 * A refusal names the rule when there is exactly one for the path.
 */
export function currentRule(rules: RuleSet, launched: ProgramRule, argv: readonly string[], client: ClientIdentity, sandboxed: boolean): CurrentRule {
  const path = launched.path;
  const candidates = programRules(rules, path);
  if (candidates.length === 0) return { reason: `no rule names ${path} since the rules were reloaded` };
  const rule = ruleServing(rules, path, client);
  if (!rule) {
    const name = client.passwd?.name ?? `uid ${client.uid}`;
    return { reason: `no rule lets ${name} run ${path} since the rules were reloaded`, at: candidates.length === 1 ? candidates[0].at : undefined };
  }
  if (!matchArgs(rule, argv.slice(1))) {
    return { reason: `the arguments do not match the rule ${rule.file} (args = ${rule.args!.text}) since the rules were reloaded`, at: rule.at };
  }
  if (rule.sha256 !== undefined && rule.sha256 !== launched.sha256) {
    return { reason: `the rule ${rule.file} pins another sha256 than the one the program was started under, since the rules were reloaded`, at: rule.at };
  }
  if (sandboxed && !rule.sandboxedClients) {
    return { reason: `the rule ${rule.file} no longer serves sandboxed clients since the rules were reloaded`, at: rule.at };
  }
  return { rule };
}
