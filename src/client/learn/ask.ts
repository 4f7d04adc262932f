/*
 * learn --ask: the admin answers, on their terminal (/dev/tty, not
 * standard input, which the program has), for each new distinct call.
 * One question at a time, in the order the calls came.
 */
import { openSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { ReadStream, WriteStream } from 'node:tty';
import { REFUSAL_ERRNOS, errnoNumber } from '../../broker/rules/names.js';
import { type LearnedCall, describeCall } from './calls.js';
import type { Answer, Policy } from './record.js';

export class NoTerminal extends Error {}

const CHOICES = '  p: permit once, as root   a: permit always (into the rule)   d: deny   e: deny with an errno';

export class TerminalAsker implements Policy {
  private readonly rl: Interface;
  private readonly input: ReadStream;
  private readonly output: WriteStream;
  private queue: Promise<unknown> = Promise.resolve();

  /** Opens the controlling terminal; NoTerminal when there is none. */
  constructor(private readonly program: string) {
    let inFd: number, outFd: number;
    try {
      inFd = openSync('/dev/tty', 'r');
      outFd = openSync('/dev/tty', 'w');
    } catch (e) {
      throw new NoTerminal(`--ask needs the admin's terminal to ask on, and there is none (/dev/tty: ${(e as NodeJS.ErrnoException).code}); `
        + 'run it from a terminal, or learn without --ask');
    }
    this.input = new ReadStream(inFd);
    this.output = new WriteStream(outFd);
    // Not `terminal`: that would put the terminal in raw mode for the whole
    // run, and the program shares it (its output would lose its carriage
    // returns, Ctrl-C its signal). The terminal's own line editing serves,
    // and Ctrl-C reaches learn as SIGINT, which passes it to the program.
    this.rl = createInterface({ input: this.input, output: this.output, terminal: false });
    // Read the terminal only while a question waits: the program may read it too.
    this.rl.pause();
  }

  decide(call: LearnedCall): Promise<Answer> {
    const next = this.queue.then(() => this.ask(call));
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.rl.close();
    this.input.destroy();
    this.output.destroy();
  }

  private question(text: string): Promise<string> {
    return new Promise((resolve) => this.rl.question(text, (a) => {
      this.rl.pause();
      resolve(a.trim());
    }));
  }

  private async ask(call: LearnedCall): Promise<Answer> {
    const what = call.kind === 'header'
      ? `${describeCall(call)}, which lets it forge packet headers (header-included)`
      : `${describeCall(call)}, which needs privilege`;
    for (;;) {
      const a = (await this.question(`\nstx-elevate learn: ${this.program} asks for ${what}.\n${CHOICES}\nanswer [p/a/d/e]: `)).toLowerCase();
      if (a === 'p') return { act: 'root', keep: false };
      if (a === 'a') return { act: 'root', keep: true };
      if (a === 'd') return { act: 'deny' };
      if (a === 'e') {
        for (;;) {
          const name = (await this.question(`errno (${REFUSAL_ERRNOS.join(', ')}): `)).toUpperCase();
          const errno = REFUSAL_ERRNOS.includes(name) ? errnoNumber(name) : undefined;
          if (errno !== undefined) return { act: 'errno', errno };
          this.output.write(`not one of the errno names above: ${JSON.stringify(name)}\n`);
        }
      }
      this.output.write(`answer p, a, d or e (not ${JSON.stringify(a)})\n`);
    }
  }
}

/** Plain learn: every privileged call is performed as root and goes into the rule. */
export const GRANT_ALL: Policy = { decide: () => ({ act: 'root', keep: true }) };
