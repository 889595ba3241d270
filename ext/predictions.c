/*
 * predictions.c - cnn_predictions(name, source): batched prediction as a
 * table, one row per source row, in order:
 *
 *   SELECT idx, label, predicted, probability
 *     FROM cnn_predictions('nb', 'mnist_test');
 *
 * idx (0-based, also the rowid), label (NULL when the source has none),
 * predicted, probability (of the predicted class). The model runs over
 * CNN_BATCH_ROWS rows at a time (ext/batch.c): much faster than a scalar
 * cnn_predict per row.
 *
 * Security: runs the caller's SQL text as a source (read-only, one
 * statement: ext/source.c), so it is SQLITE_VTAB_DIRECTONLY: the views and
 * triggers of an untrusted database cannot call it. Not deterministic:
 * training changes answers.
 */
#include <string.h>

#include "ext.h"

enum { PRED_IDX, PRED_LABEL, PRED_PREDICTED, PRED_PROBABILITY, PRED_NAME, PRED_SOURCE };

typedef struct pred_cursor {
  cnn_cursor base;
  cnn_batch b;
  int pos; /* row within the batch */
} pred_cursor;

static void pred_reset(cnn_cursor *base) {
  pred_cursor *cur = (pred_cursor *)base;
  cnn_batch_clear(&cur->b);
  cur->pos = 0;
}

static const cnn_table pred_table = {
    .schema =
        "CREATE TABLE x(idx INTEGER, label INTEGER, predicted INTEGER, "
        "probability REAL, name HIDDEN, source HIDDEN)",
    .direct_only = 1,
    .first_arg = PRED_NAME,
    .nargs = 2,
    .required = 2,
    .usage = "name and source arguments are required: cnn_predictions(name, source)",
    .cursor_size = sizeof(pred_cursor),
    .reset = pred_reset,
};

static int pred_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return cnn_vtab_connect(db, aux, &pred_table, out);
}

static int pred_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  int argc, rc = cnn_vtab_plan_args(vtab, info, &argc);
  if (rc != SQLITE_OK || argc < 2) return rc;
  /* Running a model is expensive: keep it in the outer loop of joins. */
  info->estimatedCost = 1e6;
  info->estimatedRows = 10000;
  /* Rows come in source order. */
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == PRED_IDX && !info->aOrderBy[0].desc)
    info->orderByConsumed = 1;
  return SQLITE_OK;
}

static int pred_filter(sqlite3_vtab_cursor *base, int idxNum, const char *idxStr, int argc,
                       sqlite3_value **argv) {
  (void)idxStr;
  pred_cursor *cur = (pred_cursor *)base;
  cnn_vtab *vtab = (cnn_vtab *)base->pVtab;
  char err[CNN_ERRMAX] = "";
  int used, rc = cnn_vtab_filter_args(&cur->base, idxNum, argc, argv, &used);
  if (rc != SQLITE_OK) return rc;
  int st = cnn_batch_open(&cur->b, vtab->db, vtab->binding->conn, argv[0], argv[1], 0, err);
  if (st == CNN_OK) st = cnn_batch_next(&cur->b, vtab->db, err);
  if (st != CNN_OK) {
    cnn_batch_clear(&cur->b);
    return cnn_vtab_status(&vtab->base, st, err);
  }
  cur->base.rowid = cur->b.first;
  return SQLITE_OK;
}

static int pred_next(sqlite3_vtab_cursor *base) {
  pred_cursor *cur = (pred_cursor *)base;
  cnn_vtab *vtab = (cnn_vtab *)base->pVtab;
  char err[CNN_ERRMAX] = "";
  cur->base.rowid++;
  if (++cur->pos < cur->b.n) return SQLITE_OK;
  cur->pos = 0;
  int st = cnn_batch_next(&cur->b, vtab->db, err);
  if (st != CNN_OK) {
    cur->b.n = 0; /* eof */
    return cnn_vtab_status(&vtab->base, st, err);
  }
  return SQLITE_OK;
}

static int pred_eof(sqlite3_vtab_cursor *base) {
  const pred_cursor *cur = (const pred_cursor *)base;
  return cur->pos >= cur->b.n;
}

static int pred_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col) {
  const pred_cursor *cur = (const pred_cursor *)base;
  const cnn_batch *b = &cur->b;
  const float *p = b->probs + (size_t)cur->pos * b->classes;
  switch (col) {
  case PRED_IDX:
    sqlite3_result_int64(ctx, b->first + cur->pos);
    break;
  case PRED_LABEL:
    if (b->labels[cur->pos] >= 0)
      sqlite3_result_int(ctx, b->labels[cur->pos]);
    else
      sqlite3_result_null(ctx);
    break;
  case PRED_PREDICTED:
    sqlite3_result_int(ctx, cnn_argmax(p, b->classes));
    break;
  case PRED_PROBABILITY:
    sqlite3_result_double(ctx, p[cnn_argmax(p, b->classes)]);
    break;
  default:
    return cnn_vtab_arg_column(&cur->base, ctx, col);
  }
  return SQLITE_OK;
}

/* xCreate NULL: eponymous-only. */
const sqlite3_module cnn_predictions_module = {
    .iVersion = 0,
    .xConnect = pred_connect,
    .xBestIndex = pred_best_index,
    .xDisconnect = cnn_vtab_disconnect,
    .xOpen = cnn_vtab_open,
    .xClose = cnn_vtab_close,
    .xFilter = pred_filter,
    .xNext = pred_next,
    .xEof = pred_eof,
    .xColumn = pred_column,
    .xRowid = cnn_vtab_rowid,
};
