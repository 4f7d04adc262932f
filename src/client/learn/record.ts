/*
 * What a learning run saw: each distinct privileged call once, with how
 * often it came and the answer it got (the same answer every time), and
 * notes for the admin on what the broker will not do.
 */
import { type LearnedCall, callKey } from './calls.js';

/**
 * root: performed as root; `keep` puts it into the rule (plain learn keeps
 * every one; --ask's "permit once" does not). deny: what the broker does
 * with a call no rule grants. errno: failed with that errno.
 */
export type Answer = { act: 'root'; keep: boolean } | { act: 'deny' } | { act: 'errno'; errno: number };

export interface Entry {
  call: LearnedCall;
  answer: Answer;
  /** How often the program made this call. */
  count: number;
}

/** Decides each new distinct call: plain learn grants it, --ask asks the admin. */
export interface Policy {
  decide(call: LearnedCall): Answer | Promise<Answer>;
}

export class Learned {
  readonly entries = new Map<string, Entry>();
  readonly notes: string[] = [];
  private readonly pending = new Map<string, { call: LearnedCall; answer: Promise<Answer> }>();

  constructor(private readonly policy: Policy) {}

  /** The answer for `call`: the one it got before, else the policy's (asked once, however many threads wait for it). */
  answer(call: LearnedCall): Answer | Promise<Answer> {
    const key = callKey(call);
    const known = this.entries.get(key);
    if (known) return known.answer;
    let p = this.pending.get(key)?.answer;
    if (!p) {
      p = Promise.resolve(this.policy.decide(call)).then((answer) => {
        this.pending.delete(key);
        if (!this.entries.has(key)) this.entries.set(key, { call, answer, count: 0 });
        return answer;
      });
      this.pending.set(key, { call, answer: p });
    }
    return p;
  }

  /** Calls still waiting for the policy's answer (--ask: a question the program did not live to see answered). */
  unanswered(): LearnedCall[] {
    return [...this.pending.values()].map((p) => p.call);
  }

  /** Whether the program made any call that needed privilege (answered or not). */
  sawPrivilegedCall(): boolean {
    return this.pending.size > 0 || [...this.entries.values()].some((e) => e.count > 0);
  }

  /** The call was answered as `answer` says (counted only once it was). */
  count(call: LearnedCall): void {
    const entry = this.entries.get(callKey(call));
    if (entry) entry.count++;
  }

  /** A root grant that failed even as root: the program got the kernel's errno, and the rule needs no section for it. */
  forget(call: LearnedCall): void {
    const entry = this.entries.get(callKey(call));
    if (entry && entry.count === 0) this.entries.delete(callKey(call));
  }

  note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
  }

  /** Whether a socket of this kind was created as root for the rule. */
  grantedSocket(key: string): boolean {
    const e = this.entries.get(key);
    return e !== undefined && e.answer.act === 'root' && e.answer.keep;
  }
}
