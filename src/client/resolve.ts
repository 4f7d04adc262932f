/*
 * PROGRAM as the user typed it -> the absolute, canonical path the broker
 * matches against its rules. Only a lookup: the broker opens and verifies
 * the rule's own path, never this one. native/run-program.c does the same
 * for stx-run.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';

export class ResolveError extends Error {}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The kernel's resolution (realpath(3)), as a shell's exec would find the
 * file: ".." after a symbolic link leads out of the link's target, not
 * back to where the path was written.
 */
export function resolveProgram(program: string, searchPath = process.env.PATH ?? ''): string {
  let found: string | undefined;
  if (program.includes('/')) {
    found = executable(program) ? program : undefined;
  } else {
    found = searchPath.split(':').filter(Boolean).map((dir) => `${dir}/${program}`).find(executable);
  }
  if (!found) throw new ResolveError(`${program}: command not found`);
  return realpathSync.native(found);
}
