/*
 * The program's path for stx-run, found as src/client/resolve.ts finds it
 * (PATH's empty entries are skipped, as there), or through a shim's link.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run-program.h"
#include "stx-protocol.h"

static int executable(const char *file) {
  struct stat st;
  return access(file, X_OK) == 0 && stat(file, &st) == 0 && S_ISREG(st.st_mode);
}

int resolve_program(const char *program, const char *search_path, char path[PATH_MAX], char *err, size_t errlen) {
  char candidate[PATH_MAX];
  const char *found = NULL;
  if (strchr(program, '/')) {
    if (executable(program)) found = program;
  } else {
    const char *dir = search_path ? search_path : "";
    while (!found && *dir) {
      size_t n = strcspn(dir, ":");
      int w = snprintf(candidate, sizeof candidate, "%.*s/%s", (int)n, dir, program);
      if (n > 0 && w > 0 && (size_t)w < sizeof candidate && executable(candidate)) found = candidate;
      dir += n + (dir[n] == ':');
    }
  }
  if (!found) {
    snprintf(err, errlen, "%s: command not found", program);
    return -1;
  }
  if (!realpath(found, path)) {
    snprintf(err, errlen, "%s: %s: %s", program, found, strerror(errno));
    return -1;
  }
  return 0;
}

int shim_program(const char *name, const char *state_dir, char path[PATH_MAX], char *err, size_t errlen) {
  char link[PATH_MAX], target[PATH_MAX];
  struct stat st;
  int w = snprintf(link, sizeof link, "%s/%s/%s", state_dir, STX_SHIMS_DIR, name);
  if (w < 0 || (size_t)w >= sizeof link) {
    snprintf(err, errlen, "%s: the shim's link under %s/%s is too long a path", name, state_dir, STX_SHIMS_DIR);
    return -1;
  }
  if (lstat(link, &st) < 0) {
    snprintf(err, errlen, "%s: cannot find the program this shim stands for: %s: %s ('stx-elevate strip' creates that link)",
             name, link, strerror(errno));
    return -1;
  }
  if (!realpath(link, path)) {
    int e = errno;
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = '\0';
    snprintf(err, errlen, "%s: %s links to %s, which cannot be resolved: %s", name, link, n < 0 ? "?" : target, strerror(e));
    return -1;
  }
  return 0;
}
