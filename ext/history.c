/*
 * history.c - the training history in SQL: the table-valued function
 * cnn_history over the cnn_epochs table (one row per completed epoch), and
 * cnn_history_svg(name), the notebook's accuracy plot.
 *
 *   SELECT epoch, accuracy, val_accuracy FROM cnn_history WHERE model = 'nb';
 *   SELECT epoch, accuracy, val_accuracy FROM cnn_history('nb');
 *   SELECT writefile('nb.svg', cnn_history_svg('nb'));
 *
 * cnn_history runs a query on cnn_epochs at every scan, so it shows each
 * epoch as soon as cnn_train commits it, to this and other connections. A
 * database whose model tables do not exist yet has an empty history, not an
 * error. Both only read tables, so they are not DIRECTONLY; neither is
 * deterministic.
 *
 * Conventions: ext/ext.h. SQLite-facing objects come from sqlite3_malloc.
 */
#include <math.h>
#include <string.h>

#include "ext.h"
#include "image.h"

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
  sqlite3_vtab_cursor base;
  sqlite3_stmt *stmt; /* owned: the query on cnn_epochs; NULL = no rows */
  int eof;
  sqlite3_int64 rowid;
} hist_cursor;

typedef struct hist_vtab {
  sqlite3_vtab base;
  sqlite3 *db; /* borrowed */
} hist_vtab;

static int hist_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **pzErr) {
  (void)aux, (void)argc, (void)argv, (void)pzErr;
  int rc = sqlite3_declare_vtab(db,
                                "CREATE TABLE x(model TEXT, epoch INTEGER, loss REAL, "
                                "accuracy REAL, val_loss REAL, val_accuracy REAL, "
                                "learning_rate REAL, seconds REAL, samples INTEGER, "
                                "name HIDDEN)");
  if (rc != SQLITE_OK) return rc;
  hist_vtab *v = sqlite3_malloc(sizeof *v);
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof *v);
  v->db = db;
  *out = &v->base;
  return SQLITE_OK;
}

static int hist_disconnect(sqlite3_vtab *vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
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

static int hist_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
  (void)vtab;
  hist_cursor *cur = sqlite3_malloc(sizeof *cur);
  if (!cur) return SQLITE_NOMEM;
  memset(cur, 0, sizeof *cur);
  *out = &cur->base;
  return SQLITE_OK;
}

static int hist_close(sqlite3_vtab_cursor *base) {
  sqlite3_finalize(((hist_cursor *)base)->stmt);
  sqlite3_free(base);
  return SQLITE_OK;
}

static int hist_step(hist_cursor *cur) {
  int rc = sqlite3_step(cur->stmt);
  if (rc == SQLITE_ROW) return SQLITE_OK;
  cur->eof = 1;
  if (rc == SQLITE_DONE) return SQLITE_OK;
  hist_vtab *vtab = (hist_vtab *)cur->base.pVtab;
  if (rc != SQLITE_INTERRUPT && rc != SQLITE_NOMEM)
    cnn_vtab_errorf(&vtab->base, "cnn_history: %s", sqlite3_errmsg(vtab->db));
  return rc;
}

static int hist_filter(sqlite3_vtab_cursor *base, int idxNum, const char *idxStr, int argc,
                       sqlite3_value **argv) {
  (void)idxStr;
  hist_cursor *cur = (hist_cursor *)base;
  hist_vtab *vtab = (hist_vtab *)base->pVtab;
  char what[48];
  sqlite3_finalize(cur->stmt);
  cur->stmt = NULL;
  cur->eof = 1;
  cur->rowid = 0;
  if (argc != !!(idxNum & HIST_BY_MODEL) + !!(idxNum & HIST_BY_NAME)) return SQLITE_ERROR;
  /* The argument of cnn_history(name) follows cnn_arg_name's rule; a
   * comparison with the model column is plain SQL (NULL matches nothing). */
  if (idxNum & HIST_BY_NAME) {
    sqlite3_value *v = argv[argc - 1];
    if (sqlite3_value_type(v) != SQLITE_TEXT || sqlite3_value_bytes(v) == 0 ||
        sqlite3_value_bytes(v) > 200) {
      cnn_vtab_errorf(&vtab->base,
                      "cnn_history: name must be a non-empty text of at most 200 bytes; got %s",
                      sqlite3_value_type(v) == SQLITE_TEXT && sqlite3_value_bytes(v) == 0
                          ? "an empty text"
                          : cnn_value_describe(v, what, sizeof what));
      return SQLITE_ERROR;
    }
  }
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
    if (rc != SQLITE_NOMEM)
      cnn_vtab_errorf(&vtab->base, "cnn_history: %s", sqlite3_errmsg(vtab->db));
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
  cur->rowid++;
  return hist_step(cur);
}

static int hist_eof(sqlite3_vtab_cursor *base) { return ((const hist_cursor *)base)->eof; }

static int hist_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col) {
  const hist_cursor *cur = (const hist_cursor *)base;
  /* The hidden name is the model: what cnn_history(name) matched. */
  sqlite3_result_value(ctx, sqlite3_column_value(cur->stmt, col == HIST_NAME ? HIST_MODEL : col));
  return SQLITE_OK;
}

static int hist_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
  *rowid = ((const hist_cursor *)base)->rowid;
  return SQLITE_OK;
}

/* xCreate NULL: eponymous-only. */
const sqlite3_module cnn_history_module = {
    .iVersion = 0,
    .xConnect = hist_connect,
    .xBestIndex = hist_best_index,
    .xDisconnect = hist_disconnect,
    .xOpen = hist_open,
    .xClose = hist_close,
    .xFilter = hist_filter,
    .xNext = hist_next,
    .xEof = hist_eof,
    .xColumn = hist_column,
    .xRowid = hist_rowid,
};

/* ---------------------------------------------------------------------------
 * cnn_history_svg(name) -> TEXT: accuracy and val_accuracy per epoch (SVG,
 * drawn by src/io/picture.c). Epochs missing from the table (or NULL values,
 * e.g. val_accuracy without validation) are gaps in the lines.
 */

void cnn_fn_history_svg(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
  sqlite3_stmt *st = NULL;
  double *acc = NULL, *val = NULL; /* owned, cap epochs each */
  char *svg = NULL, *title = NULL;
  size_t epochs = 0, cap = 0;
  int rc = CNN_OK, src;
  const char *name = cnn_arg_name(ctx, "cnn_history_svg", argv[0]);
  if (!name) return;
  int exists = cnn_store_exists(db, name, err);
  if (exists <= 0) {
    rc = exists < 0 ? CNN_ERROR : cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    goto done;
  }
  src = sqlite3_prepare_v2(db,
                           "SELECT epoch, accuracy, val_accuracy FROM cnn_epochs WHERE model = ?1 "
                           "ORDER BY epoch",
                           -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  while (src == SQLITE_OK || src == SQLITE_ROW) {
    if ((src = sqlite3_step(st)) != SQLITE_ROW) break;
    sqlite3_int64 e = sqlite3_column_int64(st, 0);
    if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || e < 1 || e > CNN_MAX_EPOCHS) {
      rc = cnn_error(err, CNN_ERROR, "model '%s': cnn_epochs has epoch %s; expected 1..%d", name,
                     sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "NULL",
                     CNN_MAX_EPOCHS);
      goto done;
    }
    if ((size_t)e > cap) {
      size_t ncap = cap ? cap : 16;
      while (ncap < (size_t)e) ncap *= 2;
      double *a = sqlite3_realloc64(acc, ncap * sizeof *a);
      if (a) acc = a;
      double *v = a ? sqlite3_realloc64(val, ncap * sizeof *v) : NULL;
      if (v) val = v;
      if (!a || !v) {
        rc = cnn_nomem(err);
        goto done;
      }
      for (size_t i = cap; i < ncap; i++) acc[i] = val[i] = NAN;
      cap = ncap;
    }
    acc[e - 1] = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 1);
    val[e - 1] = sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2);
    if ((size_t)e > epochs) epochs = (size_t)e;
  }
  if (src != SQLITE_DONE && !(src == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table"))) {
    rc = src == SQLITE_INTERRUPT ? cnn_error(err, CNN_INTERRUPTED, "interrupted")
         : src == SQLITE_NOMEM   ? cnn_nomem(err)
                                 : cnn_error(err, CNN_ERROR, "%s", sqlite3_errmsg(db));
    goto done;
  }
  if (epochs == 0) {
    rc = cnn_error(err, CNN_ERROR, "model '%s' has no completed epochs (train it with cnn_train)",
                   name);
    goto done;
  }
  if (!(title = sqlite3_mprintf("%s: accuracy", name))) {
    rc = cnn_nomem(err);
    goto done;
  }
  if ((rc = cnn_svg_history(&svg, acc, val, epochs, title, err))) goto done;
  sqlite3_result_text(ctx, svg, -1, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, "cnn_history_svg", rc, err);
  sqlite3_finalize(st);
  sqlite3_free(acc);
  sqlite3_free(val);
  sqlite3_free(title);
  cnn_free(svg);
}
