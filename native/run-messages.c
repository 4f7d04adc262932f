/*
 * The messages of src/shared/protocol.ts for stx-run, through Jansson:
 * escaping, UTF-8 validation and number syntax are the library's, not
 * hand-written here.
 *
 * MUST (as the TypeScript client, test/protocol-clients.test.ts holds
 * both to the same cases):
 *  - send only valid UTF-8: the broker rejects anything else, so an
 *    argument that is not UTF-8 is an error here, never altered;
 *  - accept only the exact answers decodeBrokerMessage accepts, with its
 *    words for what was wrong: unknown types and keys, missing keys and
 *    wrong value types are errors, never half-accepted;
 *  - read numbers as JavaScript does (every JSON number a double), so
 *    1.0 is an integer and 1e3 too.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run-messages.h"
#include "stx-protocol.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- requests ---- */

static int env_name(const char *name, size_t len) {
  if (len == 0 || !stx_env_name_first[(unsigned char)name[0]]) return 0;
  for (size_t i = 1; i < len; i++)
    if (!stx_env_name_rest[(unsigned char)name[i]]) return 0;
  return 1;
}

/* run.ts clientEnvironment: valid names, values of at most STX_MAX_ENV_VALUE
 * bytes; the first of two same names wins, as in Node's process.env. */
static json_t *environment(char *const *envp) {
  json_t *env = json_object();
  for (; env && envp && *envp; envp++) {
    const char *eq = strchr(*envp, '=');
    if (!eq || !env_name(*envp, (size_t)(eq - *envp)) || strlen(eq + 1) > STX_MAX_ENV_VALUE) continue;
    char *name = strndup(*envp, (size_t)(eq - *envp));
    json_t *value = json_string(eq + 1); /* NULL: not UTF-8 */
    if (name && value && !json_object_get(env, name)) json_object_set(env, name, value);
    json_decref(value);
    free(name);
  }
  return env;
}

char *run_request(const char *path, char *const *argv, int argc, char *const *envp, size_t *len,
                  char *err, size_t errlen) {
  char *out = NULL;
  json_t *req = json_object(), *args = json_array(), *jpath = json_string(path);
  if (!req || !args) {
    fail(err, errlen, "out of memory");
    goto done;
  }
  if (!jpath) {
    fail(err, errlen, "%s: its path %s is not valid UTF-8, which the broker requires", argv[0], path);
    goto done;
  }
  for (int i = 0; i < argc; i++) {
    json_t *a = json_string(argv[i]);
    if (!a) {
      fail(err, errlen, "%s: argument %d is not valid UTF-8, which the broker requires", argv[0], i);
      goto done;
    }
    json_array_append_new(args, a);
  }
  json_object_set_new(req, "v", json_integer(STX_PROTOCOL_VERSION));
  json_object_set_new(req, "type", json_string("run"));
  json_object_set(req, "path", jpath);
  json_object_set(req, "argv", args);
  json_object_set_new(req, "env", environment(envp));
  out = json_dumps(req, JSON_COMPACT);
  if (!out) {
    fail(err, errlen, "out of memory");
  } else if ((*len = strlen(out)) > STX_MAX_MESSAGE) {
    fail(err, errlen, "%s: arguments and environment exceed %d bytes", argv[0], STX_MAX_MESSAGE);
    free(out);
    out = NULL;
  }
done:
  json_decref(jpath);
  json_decref(args);
  json_decref(req);
  return out;
}

char *signal_request(const char *name, size_t *len) {
  json_t *m = json_pack("{s:i,s:s,s:s}", "v", STX_PROTOCOL_VERSION, "type", "signal", "signal", name);
  char *out = m ? json_dumps(m, JSON_COMPACT) : NULL;
  json_decref(m);
  if (out) *len = strlen(out);
  return out;
}

/* ---- answers ---- */

/* JSON.stringify(value) into out, as the TypeScript client shows a value in
 * its errors (a missing one is "undefined"); long values are cut. */
struct text { char *p; size_t left; };

static void put(struct text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(t->p, t->left, fmt, ap);
  va_end(ap);
  size_t used = n < 0 ? 0 : (size_t)n < t->left ? (size_t)n : t->left ? t->left - 1 : 0;
  t->p += used;
  t->left -= used;
}

static void put_number(struct text *t, double d) {
  if (d == 0) {
    put(t, "0"); /* also -0, as JavaScript prints it */
  } else if (d == trunc(d) && fabs(d) < 1e21) {
    put(t, "%.0f", d);
  } else {
    char buf[32];
    for (int precision = 1; precision <= 17; precision++) { /* the shortest that reads back */
      snprintf(buf, sizeof buf, "%.*g", precision, d);
      if (strtod(buf, NULL) == d) break;
    }
    put(t, "%s", buf);
  }
}

static void put_string(struct text *t, const char *s, size_t len) {
  json_t *j = json_stringn(s, len);
  char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
  put(t, "%s", q ? q : "\"\"");
  free(q);
  json_decref(j);
}

static void put_json(struct text *t, const json_t *v) {
  const char *key;
  json_t *item;
  size_t i;
  switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
      put(t, "{");
      i = 0;
      json_object_foreach((json_t *)v, key, item) {
        put(t, i++ ? "," : "");
        put_string(t, key, strlen(key));
        put(t, ":");
        put_json(t, item);
      }
      put(t, "}");
      break;
    case JSON_ARRAY:
      put(t, "[");
      json_array_foreach(v, i, item) {
        put(t, i ? "," : "");
        put_json(t, item);
      }
      put(t, "]");
      break;
    case JSON_STRING: put_string(t, json_string_value(v), json_string_length(v)); break;
    case JSON_REAL: put_number(t, json_real_value(v)); break;
    case JSON_INTEGER: put(t, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_TRUE: put(t, "true"); break;
    case JSON_FALSE: put(t, "false"); break;
    case JSON_NULL: put(t, v ? "null" : "undefined"); break;
  }
}

static const char *js(const json_t *v, char *buf, size_t len) {
  struct text t = { buf, len };
  put_json(&t, v);
  return buf;
}

static int is(const json_t *s, const char *word) {
  return json_string_length(s) == strlen(word) && memcmp(json_string_value(s), word, strlen(word)) == 0;
}

static int integral(const json_t *v) {
  return json_is_real(v) && isfinite(json_real_value(v)) && json_real_value(v) == trunc(json_real_value(v));
}

/* protocol.ts exactKeys: no key but these, and all of them. */
static int exact_keys(const json_t *obj, const char *type, const char *const *keys, char *err, size_t errlen) {
  const char *key;
  json_t *value;
  char q[512];
  json_object_foreach((json_t *)obj, key, value) {
    int known = 0;
    for (const char *const *k = keys; *k; k++) known |= strcmp(key, *k) == 0;
    if (!known) {
      struct text t = { q, sizeof q };
      put_string(&t, key, strlen(key));
      return fail(err, errlen, "unexpected key %s in %s message", q, type);
    }
  }
  for (const char *const *k = keys; *k; k++)
    if (!json_object_get(obj, *k)) return fail(err, errlen, "%s message lacks \"%s\"", type, *k);
  return 0;
}

static int decode_object(json_t *obj, struct answer *a, char *err, size_t errlen) {
  static const char *const started[] = { "v", "type", "pid", NULL };
  static const char *const reasoned[] = { "v", "type", "reason", NULL };
  static const char *const exited[] = { "v", "type", "code", "signal", NULL };
  char q[1024];
  json_t *v = json_object_get(obj, "v"), *type = json_object_get(obj, "type");
  if (!(json_is_real(v) && json_real_value(v) == STX_PROTOCOL_VERSION))
    return fail(err, errlen, "unsupported protocol version %s; expected %d", js(v, q, sizeof q), STX_PROTOCOL_VERSION);
  if (!json_is_string(type)) return fail(err, errlen, "message has no type");
  const char *t = json_string_value(type);

  if (is(type, "started")) {
    if (exact_keys(obj, t, started, err, errlen)) return -1;
    if (!integral(json_object_get(obj, "pid"))) return fail(err, errlen, "started.pid must be an integer");
    a->type = ANSWER_STARTED;
  } else if (is(type, "refused") || is(type, "error")) {
    if (exact_keys(obj, t, reasoned, err, errlen)) return -1;
    json_t *reason = json_object_get(obj, "reason");
    if (!json_is_string(reason)) return fail(err, errlen, "%s.reason must be a string", t);
    a->type = is(type, "refused") ? ANSWER_REFUSED : ANSWER_ERROR;
    a->reason = json_string_value(reason);
    a->reason_len = json_string_length(reason);
  } else if (is(type, "exit")) {
    if (exact_keys(obj, t, exited, err, errlen)) return -1;
    json_t *code = json_object_get(obj, "code"), *signal = json_object_get(obj, "signal");
    if (!(json_is_null(code) || (integral(code) && json_real_value(code) >= 0 && json_real_value(code) <= 255)))
      return fail(err, errlen, "exit.code must be 0-255 or null");
    if (!(json_is_null(signal) || json_is_string(signal))) return fail(err, errlen, "exit.signal must be a string or null");
    a->type = ANSWER_EXIT;
    a->code = json_is_null(code) ? -1 : (int)json_real_value(code);
    a->signal = json_is_null(signal) ? NULL : json_string_value(signal);
  } else if (is(type, "programs")) {
    a->type = ANSWER_PROGRAMS; /* decodes, but never answers a run: the caller says so */
  } else {
    return fail(err, errlen, "unknown message type %s", js(type, q, sizeof q));
  }
  return 0;
}

int decode_answer(const char *data, size_t len, int truncated, struct answer *a, char *err, size_t errlen) {
  json_error_t jerr;
  memset(a, 0, sizeof *a);
  a->code = -1;
  if (truncated || len > STX_MAX_MESSAGE) return fail(err, errlen, "message exceeds %d bytes", STX_MAX_MESSAGE);
  if (len == 0) return fail(err, errlen, "empty message");
  a->root = json_loadb(data, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
  if (!a->root) return fail(err, errlen, "message is not valid UTF-8 JSON");
  if ((json_is_object(a->root) ? decode_object(a->root, a, err, errlen) : fail(err, errlen, "message is not a JSON object")) == 0)
    return 0;
  answer_free(a);
  return -1;
}

void answer_free(struct answer *a) {
  json_decref(a->root);
  a->root = NULL;
}
