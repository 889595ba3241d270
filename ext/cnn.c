/*
 * cnn.c - the extension's entry point: registers every SQL function and
 * module from one table, owns the per-connection state, and holds the small
 * shared helpers for results and messages.
 *
 * Flags: functions that read files, write tables or run for long are
 * SQLITE_DIRECTONLY, so the views and triggers of an untrusted database cannot
 * call them. Functions that read stored models are not SQLITE_DETERMINISTIC:
 * training changes their answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ext.h"

SQLITE_EXTENSION_INIT1

static void conn_release(cnn_conn *c) {
  if (!c || --c->refs > 0) return;
  for (int i = 0; i < CNN_CACHE_MODELS; i++) cnn_stored_model_release(c->cache[i]);
  cnn_threads_free(c->pool);
  cnn_free(c);
}

/* The destructor of every registration's user data. */
static void binding_release(void *p) { conn_release(((cnn_binding *)p)->conn); }

int cnn_probe_open(sqlite3 *db, sqlite3_stmt **probe, char *err) {
  int rc = sqlite3_prepare_v2(db, "SELECT 1", -1, probe, NULL);
  if (rc == SQLITE_OK) return CNN_OK;
  return cnn_error(err, rc == SQLITE_NOMEM ? CNN_NOMEM : CNN_ERROR, "%s", sqlite3_errmsg(db));
}

int cnn_probe_stop(void *probe) {
  sqlite3_reset(probe);
  return sqlite3_step(probe) == SQLITE_INTERRUPT;
}

cnn_conn *cnn_ctx_conn(sqlite3_context *ctx) {
  return ((const cnn_binding *)sqlite3_user_data(ctx))->conn;
}

const char *cnn_ctx_name(sqlite3_context *ctx) {
  return ((const cnn_binding *)sqlite3_user_data(ctx))->name;
}

void cnn_result_status(sqlite3_context *ctx, int status, const char *err) {
  if (status == CNN_NOMEM) {
    sqlite3_result_error_nomem(ctx);
  } else if (status == CNN_INTERRUPTED) {
    sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
  } else {
    char *msg = sqlite3_mprintf("%s: %s", cnn_ctx_name(ctx), err && err[0] ? err : "failed");
    if (!msg) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
    sqlite3_result_error(ctx, msg, -1);
    sqlite3_free(msg);
  }
}

const char *cnn_value_describe(sqlite3_value *v, char *buf, size_t size) {
  switch (sqlite3_value_type(v)) {
  case SQLITE_NULL:
    return "NULL";
  case SQLITE_INTEGER:
    return "an integer";
  case SQLITE_FLOAT:
    return "a real";
  case SQLITE_TEXT:
    return "a text";
  default:
    snprintf(buf, size, "a %d-byte blob", sqlite3_value_bytes(v));
    return buf;
  }
}

int cnn_value_is_int(sqlite3_value *v, sqlite3_int64 *out) {
  if (sqlite3_value_type(v) == SQLITE_INTEGER) {
    *out = sqlite3_value_int64(v);
    return 1;
  }
  double d = sqlite3_value_double(v);
  if (sqlite3_value_type(v) != SQLITE_FLOAT ||
      !(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != (double)(sqlite3_int64)d)
    return 0;
  *out = (sqlite3_int64)d;
  return 1;
}

int cnn_arg_name(sqlite3_value *v, const char **name, char *err) {
  char what[48];
  *name = NULL;
  if (sqlite3_value_type(v) != SQLITE_TEXT || sqlite3_value_bytes(v) == 0 ||
      sqlite3_value_bytes(v) > 200)
    return cnn_error(err, CNN_ERROR, "name must be a non-empty text of at most 200 bytes; got %s",
                     sqlite3_value_type(v) == SQLITE_TEXT && sqlite3_value_bytes(v) == 0
                         ? "an empty text"
                         : cnn_value_describe(v, what, sizeof what));
  if (!(*name = (const char *)sqlite3_value_text(v))) return cnn_nomem(err);
  return CNN_OK;
}

int cnn_arg_source(sqlite3_value *v, const char **source, char *err) {
  char what[48];
  *source = NULL;
  if (sqlite3_value_type(v) != SQLITE_TEXT)
    return cnn_error(err, CNN_ERROR, "source must be a table name or a query; got %s",
                     cnn_value_describe(v, what, sizeof what));
  if (!(*source = (const char *)sqlite3_value_text(v))) return cnn_nomem(err);
  return CNN_OK;
}

int cnn_arg_options(sqlite3_value *v, const char **options, char *err) {
  char what[48];
  *options = NULL;
  if (sqlite3_value_type(v) == SQLITE_NULL) return CNN_OK;
  if (sqlite3_value_type(v) != SQLITE_TEXT)
    return cnn_error(err, CNN_ERROR, "options must be JSON text or NULL; got %s",
                     cnn_value_describe(v, what, sizeof what));
  if (!(*options = (const char *)sqlite3_value_text(v))) return cnn_nomem(err);
  return CNN_OK;
}

void cnn_fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc, (void)argv;
  sqlite3_result_text(ctx, CNN_VERSION, -1, SQLITE_STATIC);
}

/* What this build is and which kernels it runs here: the CPU and the
 * features it reports, the instruction set level new thread pools take
 * ($CNN_ISA caps it) and the kernel each operation runs at that level. */
void cnn_fn_debug(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc, (void)argv;
  cnn_isa isa;
  char err[CNN_ERRMAX];
  const char *env = getenv("CNN_ISA");
  int bad = cnn_isa_default(&isa, err);
  if (bad) isa = cnn_isa_cpu();
  const char *loops = cnn_isa_loops(isa);
  char *s = sqlite3_mprintf(
      "version=%s\nsqlite=%s\ncompiler=%s\nbuild=%s\ncpu=%s\ncpu_features=%s\n"
      "isa_cpu=%s\nisa_env=%s%s%s\nisa=%s\n"
      "gemm=%s\ngemm_bf16=%s\nim2col=%s\npooling=%s\noptimizer=%s\nactivations=%s\n"
      "cpus=%ld\nsanitize=%d\n",
      CNN_VERSION, sqlite3_libversion(), __VERSION__,
#ifdef CNN_NATIVE_BUILD
      "native (-march=native: for CPUs like the build machine's)",
#else
      "portable (kernels chosen at run time)",
#endif
      cnn_isa_cpu_name(), cnn_isa_features(), cnn_isa_name(cnn_isa_cpu()),
      env && *env ? env : "(unset)", bad ? " (refused: " : "", bad ? err : "", cnn_isa_name(isa),
      cnn_isa_gemm_kernel(isa), cnn_isa_gemm_bf16_kernel(isa), loops, loops, loops, loops,
      sysconf(_SC_NPROCESSORS_ONLN),
#if defined(__SANITIZE_ADDRESS__)
      1
#else
      0
#endif
  );
  if (!s) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, s, -1, sqlite3_free);
}

#define PURE (SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS)
/* Reads files, writes tables or runs long: never from views or triggers. */
#define DIRECT (SQLITE_UTF8 | SQLITE_DIRECTONLY)

static const struct {
  const char *name;
  int nargs;
  int flags;
  void (*fn)(sqlite3_context *, int, sqlite3_value **);
} functions[] = {
    {"cnn_version", 0, PURE, cnn_fn_version},
    {"cnn_debug", 0, PURE, cnn_fn_debug},
    {"cnn_preprocess", 1, PURE, cnn_fn_preprocess},
    {"cnn_image_png", 1, PURE, cnn_fn_image_png},
    {"cnn_image_png", 2, PURE, cnn_fn_image_png},
    /* Seeded: pure. Without a seed each call draws one: not deterministic. */
    {"cnn_augment", 3, PURE, cnn_fn_augment},
    {"cnn_augment", 2, SQLITE_UTF8 | SQLITE_INNOCUOUS, cnn_fn_augment},
    {"cnn_import_mnist", 1, DIRECT, cnn_fn_import_mnist},
    {"cnn_create", 1, DIRECT, cnn_fn_create},
    {"cnn_create", 2, DIRECT, cnn_fn_create},
    {"cnn_create", 3, DIRECT, cnn_fn_create},
    {"cnn_drop", 1, DIRECT, cnn_fn_drop},
    {"cnn_default", 0, SQLITE_UTF8, cnn_fn_default},
    {"cnn_default", 1, DIRECT, cnn_fn_default},
    {"cnn_precision", 1, SQLITE_UTF8, cnn_fn_precision},
    {"cnn_precision", 2, DIRECT, cnn_fn_precision},
    {"cnn_export", 1, SQLITE_UTF8, cnn_fn_export},
    {"cnn_export_onnx", 1, SQLITE_UTF8, cnn_fn_export_onnx},
    {"cnn_import", 2, DIRECT, cnn_fn_import},
    {"cnn_train", 2, DIRECT, cnn_fn_train},
    {"cnn_train", 3, DIRECT, cnn_fn_train},
    /* Read stored models: not deterministic (training changes them). */
    {"cnn_predict", 1, SQLITE_UTF8, cnn_fn_predict},
    {"cnn_predict", 2, SQLITE_UTF8, cnn_fn_predict},
    {"cnn_predict_proba", 1, SQLITE_UTF8, cnn_fn_predict_proba},
    {"cnn_predict_proba", 2, SQLITE_UTF8, cnn_fn_predict_proba},
    {"cnn_history_svg", 1, SQLITE_UTF8, cnn_fn_history_svg},
    {"cnn_layer_stats_svg", 2, SQLITE_UTF8, cnn_fn_layer_stats_svg},
    {"cnn_history_svg", 2, SQLITE_UTF8, cnn_fn_history_svg},
    /* Run the caller's SQL source: never from views or triggers. */
    {"cnn_evaluate", 2, DIRECT, cnn_fn_evaluate},
    {"cnn_evaluate", 3, DIRECT, cnn_fn_evaluate},
    {"cnn_grid_png", 1, DIRECT, cnn_fn_grid_png},
    {"cnn_grid_png", 2, DIRECT, cnn_fn_grid_png},
};

static const struct {
  const char *name;
  const sqlite3_module *module;
} modules[] = {
    {"cnn_mnist", &cnn_mnist_module},
    {"cnn_predictions", &cnn_predictions_module}, /* SQLITE_VTAB_DIRECTONLY: runs a source */
    {"cnn_confusion", &cnn_confusion_module},     /* SQLITE_VTAB_DIRECTONLY: runs a source */
    {"cnn_summary", &cnn_summary_module},
    {"cnn_history", &cnn_history_module},
    {"cnn_layer_stats", &cnn_layer_stats_module},
};

#define NFUNCTIONS (sizeof functions / sizeof functions[0])
#define NMODULES (sizeof modules / sizeof modules[0])

#ifdef _WIN32
__declspec(dllexport)
#else
__attribute__((visibility("default")))
#endif
    int sqlite3_cnn_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  SQLITE_EXTENSION_INIT2(pApi);
  /* A $CNN_ISA this CPU cannot run refuses the load, before any work. */
  cnn_isa isa;
  char err[CNN_ERRMAX];
  if (cnn_isa_default(&isa, err)) {
    if (pzErrMsg) *pzErrMsg = sqlite3_mprintf("cnn: %s", err);
    return SQLITE_ERROR;
  }
  cnn_conn *conn = cnn_calloc(1, sizeof *conn + (NFUNCTIONS + NMODULES) * sizeof(cnn_binding));
  if (!conn) return SQLITE_NOMEM;
  conn->refs = 1; /* held by this function until registration ends */
  conn->nbindings = NFUNCTIONS + NMODULES;
  int rc = SQLITE_OK, nargs = 0;
  const char *failed = NULL;
  for (size_t i = 0; rc == SQLITE_OK && i < NFUNCTIONS; i++) {
    cnn_binding *b = &conn->bindings[i];
    b->conn = conn, b->name = functions[i].name;
    conn->refs++;
    rc = sqlite3_create_function_v2(db, functions[i].name, functions[i].nargs, functions[i].flags,
                                    b, functions[i].fn, NULL, NULL, binding_release);
    if (rc != SQLITE_OK) failed = functions[i].name, nargs = functions[i].nargs;
  }
  for (size_t i = 0; rc == SQLITE_OK && i < NMODULES; i++) {
    cnn_binding *b = &conn->bindings[NFUNCTIONS + i];
    b->conn = conn, b->name = modules[i].name;
    conn->refs++;
    rc = sqlite3_create_module_v2(db, modules[i].name, modules[i].module, b, binding_release);
    if (rc != SQLITE_OK) failed = modules[i].name, nargs = -1;
  }
  if (rc != SQLITE_OK && pzErrMsg) {
    /* Name the registration that failed: a clash with another extension's
     * function, or a statement still using one of ours, are the usual causes. */
    if (nargs >= 0)
      *pzErrMsg = sqlite3_mprintf("cnn: cannot register the function %s with %d argument%s: %s",
                                  failed, nargs, nargs == 1 ? "" : "s", sqlite3_errmsg(db));
    else
      *pzErrMsg = sqlite3_mprintf("cnn: cannot register the table-valued function %s: %s", failed,
                                  sqlite3_errmsg(db));
  }
  conn_release(conn);
  return rc;
}
