/** One-line usages, apart from the commands so that --help loads none of them. */
export const CHECK_USAGE = 'stx-elevate check [--rules DIR] [FILE...]';
export const LIST_USAGE = 'stx-elevate [--socket PATH] list [--json]';
export const COMPLETION_USAGE = 'stx-elevate completion';
