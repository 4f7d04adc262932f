/**
 * The man pages of the checkout, and the rule examples of elevation.d(5)
 * as a reader sees them (so tests check the page itself, never a copy).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './paths.js'

/** man/*.{1,5,8}, absolute paths. */
export const MAN_PAGES = ['stx-elevate.1', 'elevation.d.5', 'stx-elevated.8'].map(p => join(repoRoot, 'man', p))

/**
 * The .EX blocks of man/elevation.d.5 that hold a [program] section, with
 * the few roff escapes the page uses in them undone (\- \e \&); a test
 * asserts that no other backslash is left.
 */
export function manExamples(): string[] {
  const man = readFileSync(join(repoRoot, 'man', 'elevation.d.5'), 'utf8')
  return [...man.matchAll(/^\.EX\n([\s\S]*?)^\.EE$/gm)]
    .map(m => m[1])
    .filter(text => /^\[program\]$/m.test(text))
    .map(text => text.replace(/\\-/g, '-').replace(/\\&/g, '').replace(/\\e/g, '\\'))
}
