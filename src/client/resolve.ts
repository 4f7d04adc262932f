/*
 * PROGRAM as the user typed it -> the absolute, canonical path the broker
 * matches against its rules. Only a lookup: the broker opens and verifies
 * the rule's own path, never this one.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import path from 'node:path';

export class ResolveError extends Error {}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export function resolveProgram(program: string, searchPath = process.env.PATH ?? ''): string {
  let found: string | undefined;
  if (program.includes('/')) {
    found = executable(program) ? path.resolve(program) : undefined;
  } else {
    found = searchPath.split(':').filter(Boolean).map((dir) => path.join(dir, program)).find(executable);
  }
  if (!found) throw new ResolveError(`${program}: command not found`);
  return realpathSync(found);
}
