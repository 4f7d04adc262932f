/*
 * The rule file learn writes: a rule's text with the learned calls added.
 * A new rule starts from [program] alone; --merge starts from the admin's
 * file, which is kept as written (its comments, order and hand-written
 * sections): a call a section already grants only raises that section's
 * count, a new value of an option joins its section's list, and other new
 * calls get sections of their own at the end.
 *
 * MUST: produce a file the rule parser accepts (checked before anything is
 * written), that grants exactly the calls the admin kept and denies the
 * calls the admin denied (with the errno chosen), with the arguments seen,
 * and names exactly one program.
 */
import { matchArgs, matchBind, matchSetsockopt, matchSocket, setsockoptRulesFor } from '../../broker/rules/match.js';
import type { ProgramRule, SetsockoptRule } from '../../broker/rules/model.js';
import { parseRuleFile } from '../../broker/rules/parse.js';
import { privilegedOption } from '../../broker/rules/names.js';
import { errnoName } from '../../shared/native/libc.js';
import { type BindCall, type OptionValue, type SetsockoptCall, type SocketCall, callKey, describeCall, socketKey } from './calls.js';
import type { Entry } from './record.js';
import { bindLines, sectionBase, setsockoptLines, socketLines, uniqueName, valueText } from './rule-text.js';

export class RuleFileError extends Error {}

/** The count comment learn keeps on the line after a section's header. */
const COUNT = /^; learn: seen (\d+) times?(?:: (.*))?$/;

const times = (n: number): string => `${n} time${n === 1 ? '' : 's'}`;

function countLine(total: number, calls: string[]): string {
  return `; learn: seen ${times(total)}: ${calls.join('; ')}`;
}

export interface ProgramText {
  path: string;
  user: string;
  sha256: string;
  /** args = ... for programs that run the code they are given (an interpreter); undefined: none. */
  args?: string;
  /** The first line: how the rule was learned. */
  origin: string;
}

/** A rule with [program] only: the start of a new learned rule. */
export function newRuleText(p: ProgramText): string {
  const lines = [`; ${p.origin.replace(/[\r\n\x00-\x1f\x7f]/g, ' ')}`, '[program]', `path = ${p.path}`, `users = ${p.user}`, `sha256 = ${p.sha256}`];
  if (p.args !== undefined) {
    lines.push('; the arguments learned with: an interpreter runs whatever code its arguments name, so the rule pins them');
    lines.push(`args = ${p.args}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The parsed rule, or every reason it is not one. */
export function parseRule(file: string, text: string): ProgramRule {
  const { program, errors } = parseRuleFile(file, text);
  if (!program) throw new RuleFileError(errors.map(String).join('\n') || `${file}: not a rule`);
  return program;
}

/** Edits to the lines of a file, by 0-based index, applied at once. */
class Edits {
  private readonly replace = new Map<number, string>();
  private readonly after = new Map<number, string[]>();
  private readonly tail: string[] = [];

  constructor(private readonly lines: string[]) {}

  line(i: number): string | undefined {
    return this.lines[i];
  }

  set(i: number, text: string): void {
    this.replace.set(i, text);
  }

  insertAfter(i: number, text: string): void {
    this.after.set(i, [...(this.after.get(i) ?? []), text]);
  }

  append(block: string[]): void {
    this.tail.push('', ...block);
  }

  text(): string {
    const out: string[] = [];
    this.lines.forEach((l, i) => {
      out.push(this.replace.get(i) ?? l);
      out.push(...(this.after.get(i) ?? []));
    });
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    return `${[...out, ...this.tail].join('\n')}\n`;
  }
}

/** A section's count comment: the one after its header (0-based header index `h`), or a new one. */
function addCount(edits: Edits, h: number, n: number, calls: string[]): void {
  const m = COUNT.exec(edits.line(h + 1) ?? '');
  if (!m) return edits.insertAfter(h, countLine(n, calls));
  const seen = m[2] ? m[2].split('; ') : [];
  edits.set(h + 1, countLine(Number(m[1]) + n, [...seen, ...calls.filter((c) => !seen.includes(c))]));
}

/**
 * A key line split where ini ends its value: at the first ; or # not
 * escaped with a backslash. `comment` is the rest (from that character),
 * kept when learn rewrites the value.
 */
export function splitComment(line: string): { value: string; comment: string } {
  const eq = line.indexOf('=');
  for (let i = eq + 1; i < line.length; i++) {
    if (line[i] === '\\') i++;
    else if (line[i] === ';' || line[i] === '#') return { value: line.slice(eq + 1, i).trim(), comment: line.slice(i) };
  }
  return { value: line.slice(eq + 1).trim(), comment: '' };
}

/** `key = value`, with the comment the line had. */
function keyValueLine(key: string, value: string, comment: string): string {
  return `${key} = ${value}${comment === '' ? '' : ` ${comment}`}`;
}

/** The 0-based line of `key` in the section whose header is at 0-based `h`. */
function keyLine(lines: string[], h: number, key: string): number | undefined {
  for (let i = h + 1; i < lines.length && !lines[i].trim().startsWith('['); i++) {
    if (new RegExp(`^\\s*${key}\\s*=`).test(lines[i])) return i;
  }
  return undefined;
}

/** Values as a [setsockopt.*] section writes them: on/off options as 1. */
function ruleValue(c: SetsockoptCall): OptionValue {
  if ('int' in c.value && privilegedOption(c.level, c.option)?.value === 'bool') return { int: c.value.int === 0 ? 0 : 1 };
  return c.value;
}

export interface Merged {
  text: string;
  /** The rule has no call section: the program needs no privilege (as far as it was seen). */
  nothingAsRoot: boolean;
  /** Calls granted while learning that the base's own deny sections keep denied, for the admin. */
  notes: string[];
}

/**
 * `base` (a rule's text, `file` naming it in errors) with `entries` added.
 * Entries kept as root become sections, denied ones `as = deny` sections
 * (denySections); the others (permitted once, denials no section can
 * hold) become comments.
 */
export function mergeRule(file: string, base: string, entries: Entry[], p: { path: string; user: string; sha256: string; args: string[] }): Merged {
  const rule = parseRule(file, base);
  if (rule.path !== p.path) throw new RuleFileError(`${file} is the rule for ${rule.path}, not for ${p.path}`);
  if (rule.sha256 && rule.sha256 !== p.sha256) {
    throw new RuleFileError(`${file} pins sha256 = ${rule.sha256}, but ${p.path} now hashes to ${p.sha256}: the binary changed; learn anew, or update the pin first`);
  }
  if (rule.args && !matchArgs(rule, p.args)) {
    throw new RuleFileError(`${file} pins args = ${rule.args.text}, and this run's arguments (${p.args.join(' ') || 'none'}) do not match: `
      + 'the broker would refuse this run under it; learn with arguments it allows, or change args first');
  }
  const lines = base.replace(/\n$/, '').split('\n');
  const edits = new Edits(lines);
  const taken = new Set(rule.calls.map((c) => c.name));
  const header = (at: { line: number }): number => at.line - 1;

  addUser(rule, p.user, edits);

  // A grant the admin's file denies stays denied: the admin wrote the deny, learn only saw the call.
  const granted = entries.filter((e) => e.answer.act === 'root' && e.answer.keep && e.count > 0);
  const conflicts = new Map<Entry, string>();
  for (const e of granted) {
    const why = deniedBy(rule, e.call);
    if (why !== undefined) conflicts.set(e, why);
  }
  const kept = granted.filter((e) => !conflicts.has(e));
  // Header options seen on a socket kind: its section gets header-included = allow, with their counts.
  const headers = new Map<string, string[]>();
  for (const e of kept) {
    if (e.call.kind !== 'header') continue;
    const key = socketKey(e.call.socket);
    headers.set(key, [...(headers.get(key) ?? []), `; learn: seen ${times(e.count)}: ${describeCall(e.call)}`]);
  }

  for (const e of kept) {
    const c = e.call;
    if (c.kind === 'socket') {
      const existing = matchSocket(rule, c.domain, c.type, c.protocol);
      const headerLines = headers.get(callKey(c)) ?? [];
      if (existing) {
        addCount(edits, header(existing.at), e.count, [describeCall(c)]);
        if (headerLines.length > 0 && !existing.headerIncluded) {
          for (const l of [...headerLines, 'header-included = allow']) edits.insertAfter(header(existing.at), l);
        }
      } else {
        const name = uniqueName(sectionBase(c), taken);
        const keys = socketLines(c, false).filter((l) => l !== 'header-included = allow');
        const included = headerLines.length > 0 || keys.length < socketLines(c, false).length;
        edits.append([`[socket.${name}]`, countLine(e.count, [describeCall(c)]), ...keys, ...headerLines, ...(included ? ['header-included = allow'] : [])]);
      }
    } else if (c.kind === 'bind') {
      const existing = matchBind(rule, c.family, c.type, c.address, c.port);
      if (existing) {
        addCount(edits, header(existing.at), e.count, [describeCall(c)]);
        if (c.reusePort && !existing.reusePort) edits.insertAfter(header(existing.at), 'reuseport = allow');
      } else {
        const name = uniqueName(sectionBase(c), taken);
        edits.append([`[bind.${name}]`, countLine(e.count, [describeCall(c)]), ...bindLines(c as BindCall)]);
      }
    }
  }
  mergeOptions(rule, kept.filter((e) => e.call.kind === 'setsockopt'), lines, edits, taken);

  const denied = entries.filter((e) => e.count > 0 && (e.answer.act === 'deny' || e.answer.act === 'errno'));
  const asSections = denySections(rule, denied, kept, edits, taken);

  const others = entries.filter((e) => e.count > 0 && !kept.includes(e) && !asSections.has(e));
  if (others.length > 0) {
    edits.append(['; answered while learning, and not written as a section of this rule:', ...others.map((e) => answerComment(e, conflicts.get(e)))]);
  }

  const text = edits.text();
  const merged = parseRule(file, text); // never write what the broker would refuse
  for (const e of kept) {
    if (deniedBy(merged, e.call) !== undefined || !grants(merged, e.call)) {
      throw new RuleFileError(`${file}: learn could not write a section granting ${describeCall(e.call)} (a bug; the rule was not written)`);
    }
  }
  const notes = [...conflicts].map(([e, why]) => `${describeCall(e.call)} was permitted as root while learning, but ${why} in ${file}: the rule keeps it denied`);
  return { text, nothingAsRoot: merged.calls.length === 0, notes };
}

/** The deny section of `rule` that answers `call`, as the broker would pick it, in words; undefined when none does. */
function deniedBy(rule: ProgramRule, call: Entry['call']): string | undefined {
  switch (call.kind) {
    case 'socket':
    case 'header': {
      const c = call.kind === 'socket' ? call : call.socket;
      const s = matchSocket(rule, c.domain, c.type, c.protocol);
      return s?.deny ? `[${s.at.section}] denies ${call.kind === 'socket' ? 'it' : 'its socket'}` : undefined;
    }
    case 'bind': {
      const b = matchBind(rule, call.family, call.type, call.address, call.port);
      return b?.deny ? `[${b.at.section}] denies it` : undefined;
    }
    case 'setsockopt': {
      // One section per option: the option's section answers every value of it.
      const s = setsockoptRulesFor(rule).find((o) => o.level === call.level && o.option === call.option);
      return s?.deny ? `[${s.at.section}] denies ${call.optionName}` : undefined;
    }
  }
}

/** Whether `rule` grants `call` as learn performed it (checked on the text about to be written). */
function grants(rule: ProgramRule, call: Entry['call']): boolean {
  switch (call.kind) {
    case 'socket': return matchSocket(rule, call.domain, call.type, call.protocol) !== undefined;
    case 'header': return matchSocket(rule, call.socket.domain, call.socket.type, call.socket.protocol)?.headerIncluded === true;
    case 'bind': {
      const b = matchBind(rule, call.family, call.type, call.address, call.port);
      return b !== undefined && (!call.reusePort || b.reusePort);
    }
    case 'setsockopt': return matchSetsockopt(rule, call.level, call.option, call.value) !== undefined;
  }
}

/** The keys a deny section adds to a grant section's lines: the refusal, and the errno the admin chose. */
function denyKeys(grantLines: string[], e: Entry): string[] {
  const lines = grantLines.filter((l) => !/^(as|header-included|reuseport) = /.test(l));
  return ['as = deny', ...lines, ...(e.answer.act === 'errno' ? [`errno = ${errnoName(e.answer.errno)}`] : [])];
}

/**
 * Denied calls as `as = deny` sections, so that the broker answers them
 * as the admin did (a plain deny: the errno the kernel gave, the section's
 * default). Left as comments where a section would conflict with one the
 * rule has or gets (the same socket, bind or option) and for header
 * options, which header-included decides. The entries written as sections.
 */
function denySections(rule: ProgramRule, denied: Entry[], kept: Entry[], edits: Edits, taken: Set<string>): Set<Entry> {
  const done = new Set<Entry>();
  const keptBinds = kept.map((e) => e.call).filter((c): c is BindCall => c.kind === 'bind');
  const options = new Map<string, Entry[]>();
  for (const e of denied) {
    const c = e.call;
    const seen = countLine(e.count, [describeCall(c)]);
    if (c.kind === 'socket' && !matchSocket(rule, c.domain, c.type, c.protocol)) {
      edits.append([`[socket.${uniqueName(sectionBase(c), taken)}]`, seen, ...denyKeys(socketLines(c, false), e)]);
      done.add(e);
    } else if (c.kind === 'bind' && !matchBind(rule, c.family, c.type, c.address, c.port)
      && !keptBinds.some((k) => k.family === c.family && k.type === c.type && k.address === c.address && k.port === c.port)) {
      edits.append([`[bind.${uniqueName(sectionBase(c), taken)}]`, seen, ...denyKeys(bindLines(c), e)]);
      done.add(e);
    } else if (c.kind === 'setsockopt') {
      options.set(c.optionName, [...(options.get(c.optionName) ?? []), e]);
    }
  }
  // One section per option: only where the rule has none, nothing kept sets it, and every value got the same answer.
  for (const [name, es] of options) {
    const first = es[0].call as SetsockoptCall;
    const answer = (e: Entry): string => (e.answer.act === 'errno' ? errnoName(e.answer.errno) : e.answer.act);
    if (setsockoptRulesFor(rule).some((s) => s.level === first.level && s.option === first.option)
      || kept.some((k) => k.call.kind === 'setsockopt' && k.call.optionName === name)
      || es.some((e) => answer(e) !== answer(es[0]))) continue;
    const values: OptionValue[] = [];
    for (const e of es) {
      const v = ruleValue(e.call as SetsockoptCall);
      if (!values.some((x) => valueText(x) === valueText(v))) values.push(v);
    }
    const seen = countLine(es.reduce((n, e) => n + e.count, 0), es.map((e) => describeCall(e.call)));
    edits.append([`[setsockopt.${uniqueName(sectionBase(first), taken)}]`, seen, ...denyKeys(setsockoptLines(name, values), es[0])]);
    for (const e of es) done.add(e);
  }
  return done;
}

/** The learned user joins users (unless every user, or that user, is there already). */
function addUser(rule: ProgramRule, user: string, edits: Edits): void {
  if (rule.users === '*' || rule.users.includes(user)) return;
  const at = rule.keyLines?.users;
  if (at !== undefined) {
    edits.set(at - 1, keyValueLine('users', [...rule.users, user].join(', '), splitComment(edits.line(at - 1) ?? '').comment));
  } else {
    edits.insertAfter((rule.keyLines?.path ?? rule.at.line) - 1, `users = ${user}`);
  }
}

/** setsockopt values: counted where a section allows them, added to the section of their option, or a new section per option. */
function mergeOptions(rule: ProgramRule, entries: Entry[], lines: string[], edits: Edits, taken: Set<string>): void {
  const fresh = new Map<string, { call: SetsockoptCall; values: OptionValue[]; count: number; calls: string[] }>();
  const grown = new Map<SetsockoptRule, { values: OptionValue[]; count: number; calls: string[] }>();
  for (const e of entries) {
    const c = e.call as SetsockoptCall;
    const value = ruleValue(c);
    const allowing = matchSetsockopt(rule, c.level, c.option, c.value);
    if (allowing) {
      addCount(edits, allowing.at.line - 1, e.count, [describeCall(c)]);
      continue;
    }
    const section = setsockoptRulesFor(rule).find((s) => s.level === c.level && s.option === c.option);
    const into = section ? (grown.get(section) ?? { values: [], count: 0, calls: [] }) : undefined;
    if (section && into) {
      grown.set(section, into);
      if (!into.values.some((v) => valueText(v) === valueText(value))) into.values.push(value);
      into.count += e.count;
      into.calls.push(describeCall(c));
      continue;
    }
    const key = c.optionName;
    const f = fresh.get(key) ?? { call: c, values: [], count: 0, calls: [] };
    fresh.set(key, f);
    if (!f.values.some((v) => valueText(v) === valueText(value))) f.values.push(value);
    f.count += e.count;
    f.calls.push(describeCall(c));
  }
  for (const [section, g] of grown) {
    const h = section.at.line - 1;
    const key = section.interfaces ? 'interface' : 'value';
    const at = keyLine(lines, h, key);
    if (at === undefined) throw new RuleFileError(`${section.at.file}:${section.at.line}: [${section.at.section}] has no ${key} line to add to`);
    const was = splitComment(lines[at]);
    edits.set(at, keyValueLine(key, [was.value, ...g.values.map(valueText)].join(', '), was.comment));
    addCount(edits, h, g.count, g.calls);
  }
  for (const f of fresh.values()) {
    const name = uniqueName(sectionBase(f.call), taken);
    edits.append([`[setsockopt.${name}]`, countLine(f.count, f.calls), ...setsockoptLines(f.call.optionName, f.values)]);
  }
}

/** Why a denial is a comment and not an as = deny section, and who answers the call instead. */
function unwritten(e: Entry): string {
  if (e.call.kind === 'header') return 'header-included decides it: without allow, the broker refuses it with the socket section\'s errno';
  return 'no deny section: one would conflict with a section for the same call or option, or with other answers for that option; the rule\'s sections and the kernel answer it';
}

function answerComment(e: Entry, deniedBy?: string): string {
  const what = `; ${describeCall(e.call)}, seen ${times(e.count)}: `;
  switch (e.answer.act) {
    case 'root': return deniedBy === undefined ? `${what}permitted as root for that run only` : `${what}permitted as root while learning, but ${deniedBy}: not granted`;
    case 'deny': return `${what}denied (${unwritten(e)})`;
    case 'errno': return `${what}denied with ${errnoName(e.answer.errno)} (${unwritten(e)}, not necessarily with ${errnoName(e.answer.errno)})`;
  }
}
