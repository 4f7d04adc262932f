/*
 * stx_uvpoll: readiness for arbitrary fds from Node's own event loop.
 *
 * Node cannot wait on a seccomp listener or a SOCK_SEQPACKET socket it did
 * not create. A uv_poll_t per fd gives readiness on the loop thread itself:
 * no watcher thread, no thread hop per event (a koffi async call costs about
 * 66 us per wake-up, ten times a whole C supervisor round trip).
 *
 * MUST:
 *  - call back on the loop thread, inside a handle scope and callback scope,
 *    so promise jobs run and exceptions reach process 'uncaughtException'
 *    (napi_fatal_exception) instead of vanishing;
 *  - stop and close the uv handle before the fd is closed by the caller:
 *    libuv registers by fd number, so a reused number would fire this handle.
 */
#include <node_api.h>
#include <uv.h>
#include <stdlib.h>

typedef struct watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_ref self;          /* the JS handle object, kept alive while watching */
  int closed;
} watch_t;

#define CHECK(call)                                                        \
  do {                                                                     \
    napi_status status_ = (call);                                          \
    if (status_ != napi_ok) {                                              \
      napi_throw_error(env, NULL, "stx_uvpoll: " #call " failed");        \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static void on_closed(uv_handle_t *handle) {
  watch_t *w = handle->data;
  free(w);
}

static void release(watch_t *w) {
  if (w->closed) return;
  w->closed = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(w->env, w->callback);
  napi_delete_reference(w->env, w->self);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  watch_t *w = handle->data;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value cb, self, argv[2], result, resource_name;
  napi_async_context ctx;
  napi_callback_scope cscope;

  if (w->closed) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_reference_value(env, w->self, &self);
  napi_create_int32(env, status, &argv[0]);
  napi_create_int32(env, events, &argv[1]);
  napi_create_string_utf8(env, "stx_uvpoll", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &ctx);
  napi_open_callback_scope(env, self, ctx, &cscope);
  if (napi_make_callback(env, ctx, self, cb, 2, argv, &result) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_callback_scope(env, cscope);
  napi_async_destroy(env, ctx);
  napi_close_handle_scope(env, scope);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint; (void)data;
}

/* watch(fd, events, callback) -> handle; events: 1 readable, 2 writable, 4 disconnect */
static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], handle;
  int32_t fd, events;
  napi_valuetype type;
  uv_loop_t *loop;
  watch_t *w;
  int rc;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) { napi_throw_type_error(env, NULL, "watch(fd, events, callback)"); return NULL; }
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &events));
  CHECK(napi_typeof(env, argv[2], &type));
  if (fd < 0 || type != napi_function) { napi_throw_type_error(env, NULL, "watch: fd must be >= 0 and callback a function"); return NULL; }
  CHECK(napi_get_uv_event_loop(env, &loop));

  w = calloc(1, sizeof(*w));
  if (!w) { napi_throw_error(env, "ENOMEM", "stx_uvpoll: out of memory"); return NULL; }
  w->env = env;
  rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    free(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  w->poll.data = w;
  CHECK(napi_create_object(env, &handle));
  CHECK(napi_wrap(env, handle, w, finalize, NULL, NULL));
  CHECK(napi_create_reference(env, argv[2], 1, &w->callback));
  CHECK(napi_create_reference(env, handle, 1, &w->self));
  rc = uv_poll_start(&w->poll, events & (UV_READABLE | UV_WRITABLE | UV_DISCONNECT), on_poll);
  if (rc != 0) {
    release(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  return handle;
}

/* unwatch(handle): idempotent; the fd stays open, the caller closes it after */
static napi_value unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  watch_t *w = NULL;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || napi_unwrap(env, argv[0], (void **)&w) != napi_ok || !w) {
    napi_throw_type_error(env, NULL, "unwatch(handle): not a handle from watch()");
    return NULL;
  }
  release(w);
  return NULL;
}

/* ref(handle, bool): whether this watch alone keeps the process alive */
static napi_value ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  watch_t *w = NULL;
  bool on;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2 || napi_unwrap(env, argv[0], (void **)&w) != napi_ok || !w) {
    napi_throw_type_error(env, NULL, "ref(handle, on)");
    return NULL;
  }
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (!w->closed) {
    if (on) uv_ref((uv_handle_t *)&w->poll); else uv_unref((uv_handle_t *)&w->poll);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"watch", NULL, watch, NULL, NULL, NULL, napi_default, NULL},
    {"unwatch", NULL, unwatch, NULL, NULL, NULL, napi_default, NULL},
    {"ref", NULL, ref, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
