/*
 * Compiled filters, one per loaded rule: libseccomp takes ~0.25 ms to
 * build one, on the launch path of every program.
 *
 * MUST: never hand out bytes compiled from another rule than the one
 * asked for. The cache is keyed by the ProgramRule object itself: rules
 * are never changed once loaded, and a reload (SIGHUP) builds a new
 * RuleSet of new objects, so a reloaded rule misses the cache and is
 * compiled again, and the old bytes go with the old objects. The filter
 * depends on nothing but the rule (the architecture is checked at every
 * build and cannot change under a running broker).
 */
import type { ProgramRule } from '../rules/model.js';
import { buildFilter } from './filter.js';

const compiled = new WeakMap<ProgramRule, Buffer>();

/** buildFilter(rule), compiled once per rule object; the caller must not change the bytes. */
export function filterFor(rule: ProgramRule): Buffer {
  let bytes = compiled.get(rule);
  if (bytes === undefined) {
    bytes = buildFilter(rule);
    compiled.set(rule, bytes);
  }
  return bytes;
}
