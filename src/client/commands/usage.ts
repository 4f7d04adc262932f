/** One-line usages, apart from the commands so that --help loads none of them. */
export const CHECK_USAGE = 'stx-elevate check [--rules DIR] [FILE...]';
export const LIST_USAGE = 'stx-elevate [--socket PATH] list [--json]';
export const SCAN_USAGE = 'stx-elevate scan [--rules DIR] [--json] [ROOT...]';
export const STRIP_USAGE = 'stx-elevate strip [--dry-run] [--no-shim] [--rules DIR] [--state-dir DIR] [--shim-dir DIR] PATH...\n'
  + '       stx-elevate strip --reapply [--state-dir DIR]';
export const RESTORE_USAGE = 'stx-elevate restore [--dry-run] [--state-dir DIR] PATH...';
export const LEARN_USAGE = 'stx-elevate learn [-u USER] [-o FILE] [--merge FILE] [--force] [--ask] [--timeout SECONDS] -- PROGRAM [ARGS...]';
export const WATCH_USAGE = 'stx-elevate [--socket PATH] watch [--json] [--user USER] [--program PROGRAM]';
export const COMPLETION_USAGE = 'stx-elevate completion';
