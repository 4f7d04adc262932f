/* The messages of src/shared/protocol.ts, for stx-run: the requests it
 * sends, and the broker's answers decoded as strictly as decodeBrokerMessage
 * decodes them. */
#ifndef RUN_MESSAGES_H
#define RUN_MESSAGES_H

#include <stddef.h>
#include <jansson.h>

/* Room for a one-line reason (a file name, a JSON key) in error messages. */
#define RUN_ERR_MAX 8192

/* The run request as one datagram (malloc'd, *len bytes, no NUL counted);
 * NULL with a reason in err when an argument is not UTF-8 or the whole
 * exceeds STX_MAX_MESSAGE. The environment is filtered as run.ts filters
 * it; a variable that is not UTF-8 is left out. */
char *run_request(const char *path, char *const *argv, int argc, char *const *envp, size_t *len,
                  char *err, size_t errlen);

/* {"v":1,"type":"signal","signal":NAME} (malloc'd), or NULL if out of memory. */
char *signal_request(const char *name, size_t *len);

enum answer_type { ANSWER_STARTED, ANSWER_REFUSED, ANSWER_ERROR, ANSWER_EXIT, ANSWER_PROGRAMS };

/* A decoded answer; its strings live in `root` until answer_free. */
struct answer {
  enum answer_type type;
  const char *reason;   /* refused, error */
  size_t reason_len;    /* it may hold NUL bytes, as JSON allows */
  int code;             /* exit: -1 for null */
  const char *signal;   /* exit: NULL for null */
  json_t *root;
};

/* 0 and *a filled (answer_free it), or -1 with the reason (decodeBrokerMessage's
 * words) in err and nothing to free. */
int decode_answer(const char *data, size_t len, int truncated, struct answer *a, char *err, size_t errlen);
void answer_free(struct answer *a);

#endif
