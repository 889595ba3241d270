/*
 * history.c - the training history in SQL: the table-valued function
 * cnn_history over the cnn_epochs table (one row per completed epoch).
 *
 *   SELECT epoch, accuracy, val_accuracy FROM cnn_history WHERE model = 'nb';
 *   SELECT epoch, accuracy, val_accuracy FROM cnn_history('nb');
 *
 * cnn_history runs a query on cnn_epochs at every scan, so it shows each
 * epoch as soon as cnn_train commits it, to this and other connections. A
 * database whose model tables do not exist yet has an empty history, not an
 * error. It only reads tables, so it is not DIRECTONLY; nor deterministic.
 * The plot of the same rows is cnn_history_svg (ext/pictures.c).
 *
 * Conventions: ext/ext.h. SQLite-facing objects come from sqlite3_malloc.
 */
#include <string.h>

#include "ext.h"

/* ---------------------------------------------------------------------------
 * cnn_history [(name)]: columns as cnn_epochs, ordered by model, epoch.
 * `name` is a hidden column holding the model's name, so that cnn_history('x')
 * and WHERE model = 'x' both become "WHERE model = ?" on cnn_epochs.
 */

enum {
  HIST_MODEL,
  HIST_EPOCH,
  HIST_LOSS,
  HIST_ACCURACY,
  HIST_VAL_LOSS,
  HIST_VAL_ACCURACY,
  HIST_LEARNING_RATE,
  HIST_SECONDS,
  HIST_SAMPLES,
  HIST_NAME
};

/* idxNum bits: which equality constraints xFilter receives, in this order. */
#define HIST_BY_MODEL 1
#define HIST_BY_NAME 2

typedef struct hist_cursor {
  cnn_cursor base;
  sqlite3_stmt *stmt; /* owned: the query on cnn_epochs; NULL = no rows */
  int eof;
} hist_cursor;

static void hist_reset(cnn_cursor *base) {
  hist_cursor *cur = (hist_cursor *)base;
  sqlite3_finalize(cur->stmt);
  cur->stmt = NULL;
  cur->eof = 1;
}

/* The hidden name is not a required argument but another spelling of the
 * model column, so the planning is this file's own (hist_best_index). */
static const cnn_table hist_table = {
    .schema =
        "CREATE TABLE x(model TEXT, epoch INTEGER, loss REAL, "
        "accuracy REAL, val_loss REAL, val_accuracy REAL, "
        "learning_rate REAL, seconds REAL, samples INTEGER, "
        "name HIDDEN)",
    .direct_only = 0,
    .first_arg = HIST_NAME,
    .nargs = 1,
    .required = 0,
    .usage = "",
    .cursor_size = sizeof(hist_cursor),
    .reset = hist_reset,
};

static int hist_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return cnn_vtab_connect(db, aux, &hist_table, out);
}

/* An equality on model or on the hidden name becomes "model = ?". The
 * constraint on model is not omitted (SQLite checks it again with the
 * column's own comparison rules); the one on name is ours alone. Without a
 * usable one the whole table is scanned, which is still correct: the name
 * column holds the model's name, so SQLite's own check filters. */
static int hist_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  (void)vtab;
  int by[2] = {-1, -1};
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (!c->usable || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c->iColumn == HIST_MODEL)
      by[0] = i;
    else if (c->iColumn == HIST_NAME)
      by[1] = i;
  }
  int argc = 0;
  info->idxNum = 0;
  for (int k = 0; k < 2; k++) {
    if (by[k] < 0) continue;
    info->idxNum |= k ? HIST_BY_NAME : HIST_BY_MODEL;
    info->aConstraintUsage[by[k]].argvIndex = ++argc;
    info->aConstraintUsage[by[k]].omit = k == 1;
  }
  info->estimatedCost = argc ? 20.0 : 1000.0;
  info->estimatedRows = argc ? 10 : 1000;
  /* Rows come ordered by model, epoch: either or both ascending. */
  int ok = info->nOrderBy >= 1 && info->nOrderBy <= 2;
  for (int i = 0; ok && i < info->nOrderBy; i++)
    ok = info->aOrderBy[i].iColumn == (i == 0 ? HIST_MODEL : HIST_EPOCH) && !info->aOrderBy[i].desc;
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == HIST_EPOCH && !info->aOrderBy[0].desc &&
      (info->idxNum & (HIST_BY_MODEL | HIST_BY_NAME)))
    ok = 1; /* one model: its epochs in order */
  info->orderByConsumed = ok;
  return SQLITE_OK;
}

static int hist_step(hist_cursor *cur) {
  int rc = sqlite3_step(cur->stmt);
  if (rc == SQLITE_ROW) return SQLITE_OK;
  cur->eof = 1;
  if (rc == SQLITE_DONE) return SQLITE_OK;
  cnn_vtab *vtab = (cnn_vtab *)cur->base.base.pVtab;
  if (rc != SQLITE_INTERRUPT && rc != SQLITE_NOMEM) {
    char err[CNN_ERRMAX];
    cnn_error(err, CNN_ERROR, "%s", sqlite3_errmsg(vtab->db));
    cnn_vtab_status(&vtab->base, CNN_ERROR, err);
  }
  return rc;
}

static int hist_filter(sqlite3_vtab_cursor *base, int idxNum, const char *idxStr, int argc,
                       sqlite3_value **argv) {
  (void)idxStr;
  hist_cursor *cur = (hist_cursor *)base;
  cnn_vtab *vtab = (cnn_vtab *)base->pVtab;
  char err[CNN_ERRMAX];
  const char *name;
  hist_reset(&cur->base);
  cur->base.rowid = 0;
  if (argc != !!(idxNum & HIST_BY_MODEL) + !!(idxNum & HIST_BY_NAME)) return SQLITE_ERROR;
  /* The argument of cnn_history(name) follows cnn_arg_name's rule; a
   * comparison with the model column is plain SQL (NULL matches nothing). */
  int st = idxNum & HIST_BY_NAME ? cnn_arg_name(argv[argc - 1], &name, err) : CNN_OK;
  if (st != CNN_OK) return cnn_vtab_status(&vtab->base, st, err);
  static const char *const sql[] = {
      "SELECT model, epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds, "
      "samples FROM cnn_epochs ORDER BY model, epoch",
      "SELECT model, epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds, "
      "samples FROM cnn_epochs WHERE model = ?1 ORDER BY model, epoch",
      "SELECT model, epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds, "
      "samples FROM cnn_epochs WHERE model = ?1 AND model = ?2 ORDER BY model, epoch",
  };
  int rc = sqlite3_prepare_v2(vtab->db, sql[argc], -1, &cur->stmt, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(cur->stmt);
    cur->stmt = NULL;
    /* No model trained yet in this database: an empty history. */
    if (rc == SQLITE_ERROR && strstr(sqlite3_errmsg(vtab->db), "no such table")) return SQLITE_OK;
    if (rc == SQLITE_NOMEM) return rc;
    cnn_error(err, CNN_ERROR, "%s", sqlite3_errmsg(vtab->db));
    cnn_vtab_status(&vtab->base, CNN_ERROR, err);
    return rc;
  }
  for (int i = 0; i < argc && rc == SQLITE_OK; i++)
    rc = sqlite3_bind_value(cur->stmt, i + 1, argv[i]);
  if (rc != SQLITE_OK) return rc;
  cur->eof = 0;
  return hist_step(cur);
}

static int hist_next(sqlite3_vtab_cursor *base) {
  hist_cursor *cur = (hist_cursor *)base;
  cur->base.rowid++;
  return hist_step(cur);
}

static int hist_eof(sqlite3_vtab_cursor *base) { return ((const hist_cursor *)base)->eof; }

static int hist_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col) {
  const hist_cursor *cur = (const hist_cursor *)base;
  /* The hidden name is the model: what cnn_history(name) matched. */
  sqlite3_result_value(ctx, sqlite3_column_value(cur->stmt, col == HIST_NAME ? HIST_MODEL : col));
  return SQLITE_OK;
}

/* xCreate NULL: eponymous-only. */
const sqlite3_module cnn_history_module = {
    .iVersion = 0,
    .xConnect = hist_connect,
    .xBestIndex = hist_best_index,
    .xDisconnect = cnn_vtab_disconnect,
    .xOpen = cnn_vtab_open,
    .xClose = cnn_vtab_close,
    .xFilter = hist_filter,
    .xNext = hist_next,
    .xEof = hist_eof,
    .xColumn = hist_column,
    .xRowid = cnn_vtab_rowid,
};
