/*
 * history.c - the training history in SQL: the table-valued functions
 * cnn_history over the cnn_epochs table (one row per completed epoch) and
 * cnn_layer_stats over cnn_layer_epochs (one row per layer and epoch, with
 * the training option layer_stats).
 *
 *   SELECT epoch, accuracy, val_accuracy FROM cnn_history WHERE model = 'nb';
 *   SELECT epoch, accuracy, val_accuracy FROM cnn_history('nb');
 *   SELECT epoch, name, grad_mean_abs FROM cnn_layer_stats('nb');
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
 * cnn_history [(name)]: columns as cnn_epochs, ordered by model, epoch;
 * cnn_layer_stats [(name)] likewise over cnn_layer_epochs, ordered by model,
 * epoch, layer. A hidden column after the others holds the model's name, so
 * that cnn_history('x') and WHERE model = 'x' both become "WHERE model = ?"
 * on the table. Both are one scan of a query: hist_source says which.
 */

/* The first two columns of both: the model and the epoch. */
enum { HIST_MODEL, HIST_EPOCH };

typedef struct hist_source {
  cnn_table table;    /* first: the vtab's table points here */
  const char *select; /* "SELECT <every visible column> FROM <table>" */
  const char *order;  /* its whole order: "model, epoch[, layer]" */
  int name_col;       /* the hidden column: the model's name */
} hist_source;

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
static const hist_source epochs_source = {
    .table =
        {
            .schema = "CREATE TABLE x(model TEXT, epoch INTEGER, loss REAL, "
                      "accuracy REAL, val_loss REAL, val_accuracy REAL, "
                      "learning_rate REAL, seconds REAL, samples INTEGER, "
                      "name HIDDEN)",
            .first_arg = 9,
            .nargs = 1,
            .usage = "",
            .cursor_size = sizeof(hist_cursor),
            .reset = hist_reset,
        },
    .select =
        "SELECT model, epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, "
        "seconds, samples FROM cnn_epochs",
    .order = "model, epoch",
    .name_col = 9,
};

static const hist_source layers_source = {
    .table =
        {
            .schema = "CREATE TABLE x(model TEXT, epoch INTEGER, layer INTEGER, name TEXT, "
                      "type TEXT, grad_mean_abs REAL, weight_norm REAL, update_ratio REAL, "
                      "zero_fraction REAL, model_name HIDDEN)",
            .first_arg = 9,
            .nargs = 1,
            .usage = "",
            .cursor_size = sizeof(hist_cursor),
            .reset = hist_reset,
        },
    .select =
        "SELECT model, epoch, layer, name, type, grad_mean_abs, weight_norm, update_ratio, "
        "zero_fraction FROM cnn_layer_epochs",
    .order = "model, epoch, layer",
    .name_col = 9,
};

static const hist_source *source_of(sqlite3_vtab *vtab) {
  return (const hist_source *)((cnn_vtab *)vtab)->table;
}

static int hist_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return cnn_vtab_connect(db, aux, &epochs_source.table, out);
}

static int layers_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                          sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return cnn_vtab_connect(db, aux, &layers_source.table, out);
}

/* An equality on model or on the hidden name becomes "model = ?". The
 * constraint on model is not omitted (SQLite checks it again with the
 * column's own comparison rules); the one on name is ours alone. Without a
 * usable one the whole table is scanned, which is still correct: the name
 * column holds the model's name, so SQLite's own check filters. */
static int hist_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  const int name_col = source_of(vtab)->name_col;
  int by[2] = {-1, -1};
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (!c->usable || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c->iColumn == HIST_MODEL)
      by[0] = i;
    else if (c->iColumn == name_col)
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
  /* Rows come ordered by model, epoch (then layer): a prefix of that,
   * ascending, is consumed. */
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
  static const char *const where[] = {"", " WHERE model = ?1", " WHERE model = ?1 AND model = ?2"};
  const hist_source *src = source_of(&vtab->base);
  char *sql = sqlite3_mprintf("%s%s ORDER BY %s", src->select, where[argc], src->order);
  if (!sql) return SQLITE_NOMEM;
  int rc = sqlite3_prepare_v2(vtab->db, sql, -1, &cur->stmt, NULL);
  sqlite3_free(sql);
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
  int from = col == source_of(base->pVtab)->name_col ? HIST_MODEL : col;
  sqlite3_result_value(ctx, sqlite3_column_value(cur->stmt, from));
  return SQLITE_OK;
}

/* xCreate NULL: eponymous-only. */
const sqlite3_module cnn_layer_stats_module = {
    .iVersion = 0,
    .xConnect = layers_connect,
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
