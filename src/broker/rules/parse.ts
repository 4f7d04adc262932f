/*
 * One rule file's text -> one ProgramRule, or every error in it.
 *
 * MUST guarantee:
 * - a file with any error yields no program (a broken file never loosens
 *   the policy), and every bad line is reported, not only the first;
 * - every value in the model was checked here; numbers are the kernel's;
 * - values are read by the `ini` package; the line scan below only finds
 *   line numbers, the section order and duplicates, and refuses every line
 *   that ini would read differently from what it looks like (a section
 *   header with a trailing comment is a key to ini, for one).
 *
 * The grammar lives in sectionKind and the key tables (one per section
 * kind, in parse-*.ts); a new section kind is a branch, a
 * key table and a builder. What the builders share is in values.ts.
 */
import type { BindRule, CallRule, ProgramRule, RuleError, SetsockoptRule, SocketRule } from './model.js';
import { buildBind, checkBindErrnos, checkWideBinds } from './parse-bind.js';
import { type Program, buildProgram } from './parse-program.js';
import { buildSetsockopt, checkDistinctOptions } from './parse-setsockopt.js';
import { buildSocket, checkDistinctSockets } from './parse-socket.js';
import { Problem, Report, type Section, q } from './values.js';

// ---- 1. scan: sections, keys, line numbers ---------------------------------

/** ini's own pattern for a section line; anything else starting with '[' is refused. */
const HEADER = /^\[([^\]]*)\]\s*$/;
/** Lines ini skips: empty, blank, or a comment. */
const SKIPPED = /^\s*([;#]|$)/;
/**
 * Control characters (tab aside) and the Unicode line separators, which
 * ini's line pattern does not match: such a line would be skipped by ini.
 */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/;

/**
 * The file's sections in order. Values are read line by line, so a section
 * ini would misread (a bad header, a repeated section) can still have its
 * keys checked: the file is refused anyway, and the admin sees every error.
 */
function scan(text: string, r: Report): Section[] {
  const sections: Section[] = [];
  let current: Section | undefined;
  // ini splits lines on any run of \r and \n; count each break for the numbers
  text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/).forEach((raw, i) => {
    const line = i + 1;
    if (CONTROL.test(raw)) {
      r.add(line, current?.name || undefined, undefined, 'contains a control character; remove it');
      keepUnreadable(raw, line, current);
      return;
    }
    if (SKIPPED.test(raw)) return;
    const header = HEADER.exec(raw);
    if (header) {
      current = openSection(header[1].trim(), line, sections, r);
    } else if (raw.trim().startsWith('[')) {
      current = malformedSection(raw, line, sections, r);
    } else {
      addEntry(raw, line, current, r);
    }
  });
  return sections;
}

function openSection(name: string, line: number, sections: Section[], r: Report): Section {
  const first = sections.find((s) => s.name === name);
  const kind = sectionKind(name);
  if (first) r.add(line, name, undefined, `duplicate section (first at line ${first.line}); merge the two into one`);
  else if (kind instanceof Problem) r.add(line, name, undefined, kind.messages[0]);
  const live = first ? first.live : !(kind instanceof Problem);
  const section: Section = { name, line, entries: new Map(), live, repeat: first !== undefined };
  sections.push(section);
  return section;
}

/** A header ini would misread still names its section when it can. */
function malformedSection(raw: string, line: number, sections: Section[], r: Report): Section {
  r.add(line, undefined, undefined,
    `malformed section header ${q(raw.trim())}; write [name] alone on its line, comments on a line of their own`);
  const name = /^\s*\[([^\]]*)\]/.exec(raw)?.[1].trim();
  if (name === undefined) return { name: '', line, entries: new Map(), live: false, repeat: false };
  return openSection(name, line, sections, r);
}

/** The key of a refused line still counts, so it is not also reported missing. */
function keepUnreadable(raw: string, line: number, section: Section | undefined): void {
  const key = raw.slice(0, Math.max(0, raw.indexOf('='))).trim();
  if (key !== '' && section?.live && !section.entries.has(key)) {
    section.entries.set(key, { key, line, text: raw, unreadable: true });
  }
}

function addEntry(raw: string, line: number, section: Section | undefined, r: Report): void {
  const eq = raw.indexOf('=');
  const where = section && section.name !== '' ? section.name : undefined;
  if (eq < 0) {
    r.add(line, where, undefined, `expected key = value, found ${q(raw.trim())}`);
    return;
  }
  const key = raw.slice(0, eq).trim();
  if (key === '') {
    r.add(line, where, undefined, `missing key before "=" in ${q(raw.trim())}`);
  } else if (!section) {
    r.add(line, undefined, key, `key outside any section; put it under ${SECTION_CHOICES}`);
  } else if (!section.live) {
    // the section itself was reported; its keys cannot be judged
  } else if (section.entries.has(key)) {
    const first = section.entries.get(key)!;
    r.add(line, section.name, key, `duplicate key (first at line ${first.line}); keep one`);
  } else {
    section.entries.set(key, { key, line, text: raw });
  }
}

// ---- 2. [program] is parse-program.ts --------------------------------------

// ---- 3. the file -----------------------------------------------------------

const RULE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const CALL_KINDS = ['socket', 'bind', 'setsockopt'] as const;
const SECTION_CHOICES = '[program], [socket.NAME], [bind.NAME] or [setsockopt.NAME]';

type Kind = 'program' | CallRule['kind'];

function sectionKind(name: string): Kind | Problem {
  if (name === 'program') return 'program';
  const kind = CALL_KINDS.find((k) => name.startsWith(`${k}.`));
  if (!kind) return new Problem(`unknown section; use ${SECTION_CHOICES}`);
  const rest = name.slice(kind.length + 1);
  if (RULE_NAME.test(rest)) return kind;
  return new Problem(`invalid rule name ${q(rest)}; use lowercase letters, digits, "_" and "-", starting with a letter or digit`);
}

const BUILDERS: Record<CallRule['kind'], (s: Section, file: string, r: Report) => CallRule | undefined> = {
  socket: buildSocket,
  bind: buildBind,
  setsockopt: buildSetsockopt,
};

/** What sections decide together: one socket per rule, one section per option, one errno per bind. */
function checkAcross(calls: CallRule[], r: Report): void {
  checkDistinctSockets(calls.filter((c): c is SocketRule => c.kind === 'socket'), r);
  checkBindErrnos(calls.filter((c): c is BindRule => c.kind === 'bind'), r);
  checkDistinctOptions(calls.filter((c): c is SetsockoptRule => c.kind === 'setsockopt'), r);
}

/** One file's outcome: a program only when there is no error; warnings never refuse a file. */
export interface ParseResult {
  program?: ProgramRule;
  errors: RuleError[];
  warnings: RuleError[];
}

/**
 * Parses one rule file. Pure: `file` only names the file in errors and in
 * the model. Any error means no program.
 */
export function parseRuleFile(file: string, text: string): ParseResult {
  const r = new Report(file);
  const sections = scan(text, r);
  const live = sections.filter((s) => s.live);
  const programSection = live.find((s) => s.name === 'program' && !s.repeat);
  if (!programSection) {
    r.add(undefined, undefined, undefined, 'no [program] section; add one with the path of the program and who may run it (users or groups)');
  }
  let program: Program | undefined;
  const calls: CallRule[] = [];
  for (const s of live) {
    if (s.name === 'program') {
      const built = buildProgram(s, file, r);
      if (s === programSection) program = built;
    } else {
      const call = BUILDERS[sectionKind(s.name) as CallRule['kind']](s, file, r);
      if (call) calls.push(call);
    }
  }
  checkAcross(calls, r);
  if (program) checkWideBinds(program, calls.filter((c): c is BindRule => c.kind === 'bind'), live, r);
  const byLine = (a: RuleError, b: RuleError): number => (a.line ?? 0) - (b.line ?? 0);
  const errors = r.errors.sort(byLine);
  const warnings = r.warnings.sort(byLine);
  if (errors.length > 0 || !program) return { errors, warnings };
  return { program: { ...program, calls }, errors, warnings };
}
