/*
 * summary.c - cnn_summary(name): Keras' model.summary() as rows:
 *
 *   SELECT * FROM cnn_summary('nb');
 *   -- conv2d_1 | Conv2D | (None, 26, 26, 32) | 320 ...
 *
 * layer ("conv2d_1"), type ("Conv2D"), output_shape ("(None, 26, 26, 32)",
 * "(None, 576)" once the data is a vector: after Flatten, Dense or
 * GlobalAveragePooling2D), params (all of a layer's weights, non-trainable
 * ones too, as Keras counts: BatchNormalization has 4 per channel).
 * The model comes from the connection's cache (ext/store.c). Only reads the
 * model tables, so views may use it; not deterministic, since training may
 * replace the model.
 */
#include <string.h>

#include "ext.h"

enum { SUM_LAYER, SUM_TYPE, SUM_SHAPE, SUM_PARAMS, SUM_NAME };

typedef struct sum_cursor {
  cnn_cursor base;         /* rowid: the current layer */
  cnn_stored_model *model; /* owned reference; NULL before xFilter */
  int vector;              /* the current layer's output is a vector */
} sum_cursor;

static void sum_reset(cnn_cursor *base) {
  sum_cursor *cur = (sum_cursor *)base;
  cnn_stored_model_release(cur->model);
  cur->model = NULL;
  cur->vector = 0;
}

static const cnn_table sum_table = {
    .schema =
        "CREATE TABLE x(layer TEXT, type TEXT, output_shape TEXT, "
        "params INTEGER, name HIDDEN)",
    .direct_only = 0,
    .first_arg = SUM_NAME,
    .nargs = 1,
    .required = 1,
    .usage = "name argument is required: cnn_summary(name)",
    .cursor_size = sizeof(sum_cursor),
    .reset = sum_reset,
};

static int sum_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                       sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return cnn_vtab_connect(db, aux, &sum_table, out);
}

static int sum_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  int argc, rc = cnn_vtab_plan_args(vtab, info, &argc);
  if (rc != SQLITE_OK || argc < 1) return rc;
  info->estimatedCost = 1000;
  info->estimatedRows = 10;
  return SQLITE_OK;
}

static int is_vector_layer(const char *type) {
  return !strcmp(type, "Flatten") || !strcmp(type, "Dense") ||
         !strcmp(type, "GlobalAveragePooling2D");
}

static int sum_filter(sqlite3_vtab_cursor *base, int idxNum, const char *idxStr, int argc,
                      sqlite3_value **argv) {
  (void)idxStr;
  sum_cursor *cur = (sum_cursor *)base;
  cnn_vtab *vtab = (cnn_vtab *)base->pVtab;
  char err[CNN_ERRMAX] = "";
  const char *name;
  int used, rc = cnn_vtab_filter_args(&cur->base, idxNum, argc, argv, &used);
  if (rc != SQLITE_OK) return rc;
  int st = cnn_arg_name(argv[0], &name, err);
  if (st == CNN_OK) st = cnn_cache_get(vtab->binding->conn, vtab->db, name, &cur->model, err);
  if (st != CNN_OK) {
    sum_reset(&cur->base);
    return cnn_vtab_status(&vtab->base, st, err);
  }
  if (cnn_net_layers(cur->model->net) > 0)
    cur->vector = is_vector_layer(cnn_net_layer(cur->model->net, 0).type);
  return SQLITE_OK;
}

static int sum_next(sqlite3_vtab_cursor *base) {
  sum_cursor *cur = (sum_cursor *)base;
  if (++cur->base.rowid < cnn_net_layers(cur->model->net))
    cur->vector |= is_vector_layer(cnn_net_layer(cur->model->net, (int)cur->base.rowid).type);
  return SQLITE_OK;
}

static int sum_eof(sqlite3_vtab_cursor *base) {
  const sum_cursor *cur = (const sum_cursor *)base;
  return !cur->model || cur->base.rowid >= cnn_net_layers(cur->model->net);
}

static int sum_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col) {
  const sum_cursor *cur = (const sum_cursor *)base;
  if (col == SUM_NAME) return cnn_vtab_arg_column(&cur->base, ctx, col);
  cnn_layer_info l = cnn_net_layer(cur->model->net, (int)cur->base.rowid);
  switch (col) {
  case SUM_LAYER:
    sqlite3_result_text(ctx, l.name, -1, SQLITE_TRANSIENT);
    break;
  case SUM_TYPE:
    sqlite3_result_text(ctx, l.type, -1, SQLITE_TRANSIENT);
    break;
  case SUM_SHAPE: {
    char *s = cur->vector ? sqlite3_mprintf("(None, %d)", l.out.h * l.out.w * l.out.c)
                          : sqlite3_mprintf("(None, %d, %d, %d)", l.out.h, l.out.w, l.out.c);
    if (!s) return SQLITE_NOMEM;
    sqlite3_result_text(ctx, s, -1, sqlite3_free);
    break;
  }
  case SUM_PARAMS:
    sqlite3_result_int64(ctx, (sqlite3_int64)l.params);
    break;
  default:
    break;
  }
  return SQLITE_OK;
}

/* xCreate NULL: eponymous-only. */
const sqlite3_module cnn_summary_module = {
    .iVersion = 0,
    .xConnect = sum_connect,
    .xBestIndex = sum_best_index,
    .xDisconnect = cnn_vtab_disconnect,
    .xOpen = cnn_vtab_open,
    .xClose = cnn_vtab_close,
    .xFilter = sum_filter,
    .xNext = sum_next,
    .xEof = sum_eof,
    .xColumn = sum_column,
    .xRowid = cnn_vtab_rowid,
};
