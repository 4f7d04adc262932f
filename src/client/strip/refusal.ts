/**
 * What strip and restore refuse to do, or could not finish: printed as one
 * message naming the path, what was wrong and what would be right; exit 1.
 */
export class Refusal extends Error {}
