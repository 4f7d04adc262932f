/* Which binary stx-run asks for: PROGRAM looked up as resolve.ts does, or
 * the program a shim stands for. Only lookups: the broker opens and
 * verifies the rule's own path, never this one. */
#ifndef RUN_PROGRAM_H
#define RUN_PROGRAM_H

#include <limits.h>
#include <stddef.h>

/* PROGRAM with a '/' as a path, else the first executable regular file of
 * that name in search_path's directories, made canonical by realpath(3).
 * 0, or -1 with one line in err ("PROGRAM: command not found"). */
int resolve_program(const char *program, const char *search_path, char path[PATH_MAX], char *err, size_t errlen);

/* The program a shim named NAME runs: where STATE/shims/NAME leads
 * (canonical). 0, or -1 with one line in err naming the link. */
int shim_program(const char *name, const char *state_dir, char path[PATH_MAX], char *err, size_t errlen);

#endif
