/*
 * vtab.c - the skeleton every table-valued function shares (ext/ext.h,
 * cnn_table): an eponymous virtual table whose arguments are hidden columns
 * after the visible ones, as in SQLite's ext/misc/series.c.
 *
 *   SELECT * FROM cnn_summary('nb');          -- the same query as
 *   SELECT * FROM cnn_summary WHERE name = 'nb';
 *
 * xBestIndex passes the equality constraints on the argument columns to
 * xFilter (cnn_vtab_plan_args), xFilter keeps copies of them so that the
 * hidden columns read back what was given (cnn_vtab_filter_args,
 * cnn_vtab_arg_column), and errors are prefixed with the name the module was
 * registered under (cnn_vtab_status). A table's own file adds what is its
 * own: the rows.
 *
 * Memory: the vtab and cursors come from sqlite3_malloc.
 */
#include <string.h>

#include "ext.h"

int cnn_vtab_connect(sqlite3 *db, void *aux, const cnn_table *table, sqlite3_vtab **out) {
  int rc = sqlite3_declare_vtab(db, table->schema);
  /* Reading files or running SQL named in arguments is only for the
   * top-level statements the application runs, never for the views or
   * triggers stored in a database. */
  if (rc == SQLITE_OK && table->direct_only) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if (rc != SQLITE_OK) return rc;
  cnn_vtab *v = sqlite3_malloc(sizeof *v);
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof *v);
  v->db = db;
  v->binding = aux;
  v->table = table;
  *out = &v->base;
  return SQLITE_OK;
}

int cnn_vtab_disconnect(sqlite3_vtab *vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

int cnn_vtab_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
  const cnn_table *t = ((const cnn_vtab *)vtab)->table;
  cnn_cursor *cur = sqlite3_malloc64(t->cursor_size);
  if (!cur) return SQLITE_NOMEM;
  memset(cur, 0, t->cursor_size);
  *out = &cur->base;
  return SQLITE_OK;
}

/* Back to the state of a fresh cursor: xFilter may run many times (joins). */
static void cursor_reset(cnn_cursor *cur) {
  const cnn_table *t = ((const cnn_vtab *)cur->base.pVtab)->table;
  if (t->reset) t->reset(cur);
  for (int k = 0; k < CNN_VTAB_MAX_ARGS; k++) {
    sqlite3_value_free(cur->args[k]);
    cur->args[k] = NULL;
  }
  cur->rowid = 0;
}

int cnn_vtab_close(sqlite3_vtab_cursor *base) {
  cursor_reset((cnn_cursor *)base);
  sqlite3_free(base);
  return SQLITE_OK;
}

int cnn_vtab_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
  *rowid = ((const cnn_cursor *)base)->rowid;
  return SQLITE_OK;
}

int cnn_vtab_plan_args(sqlite3_vtab *vtab, sqlite3_index_info *info, int *argc) {
  const cnn_table *t = ((const cnn_vtab *)vtab)->table;
  int arg[CNN_VTAB_MAX_ARGS], unusable[CNN_VTAB_MAX_ARGS];
  for (int k = 0; k < t->nargs; k++) arg[k] = -1, unusable[k] = 0;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    int k = c->iColumn - t->first_arg;
    if (k < 0 || k >= t->nargs || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c->usable)
      arg[k] = i;
    else
      unusable[k] = 1;
  }
  *argc = 0;
  info->idxNum = 0;
  for (int k = 0; k < t->required; k++) {
    if (arg[k] < 0 && !unusable[k]) {
      if (!t->late_usage) return cnn_vtab_status(vtab, CNN_ERROR, t->usage);
      info->estimatedCost = 1e99; /* xFilter reports the usage */
      return SQLITE_OK;
    }
  }
  for (int k = 0; k < t->nargs; k++)
    if (arg[k] < 0 && unusable[k]) return SQLITE_CONSTRAINT;
  for (int k = 0; k < t->nargs; k++) {
    if (arg[k] < 0) continue;
    info->idxNum |= 1 << k;
    info->aConstraintUsage[arg[k]].argvIndex = ++*argc;
    info->aConstraintUsage[arg[k]].omit = 1;
  }
  return SQLITE_OK;
}

int cnn_vtab_filter_args(cnn_cursor *cur, int idxNum, int argc, sqlite3_value **argv, int *used) {
  sqlite3_vtab *vtab = cur->base.pVtab;
  const cnn_table *t = ((const cnn_vtab *)vtab)->table;
  cursor_reset(cur);
  *used = 0;
  int need = (1 << t->required) - 1;
  if ((idxNum & need) != need) return cnn_vtab_status(vtab, CNN_ERROR, t->usage);
  for (int k = 0; k < t->nargs; k++) {
    if (!(idxNum & (1 << k))) continue;
    if (*used >= argc) return SQLITE_ERROR; /* not a plan of cnn_vtab_plan_args */
    if (!(cur->args[k] = sqlite3_value_dup(argv[(*used)++]))) return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

int cnn_vtab_arg_column(const cnn_cursor *cur, sqlite3_context *ctx, int col) {
  const cnn_table *t = ((const cnn_vtab *)cur->base.pVtab)->table;
  int k = col - t->first_arg;
  if (k >= 0 && k < t->nargs && cur->args[k])
    sqlite3_result_value(ctx, cur->args[k]);
  else
    sqlite3_result_null(ctx);
  return SQLITE_OK;
}

int cnn_vtab_status(sqlite3_vtab *vtab, int status, const char *err) {
  if (status == CNN_NOMEM) return SQLITE_NOMEM;
  if (status == CNN_INTERRUPTED) return SQLITE_INTERRUPT;
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = sqlite3_mprintf("%s: %s", ((const cnn_vtab *)vtab)->binding->name,
                                  err && err[0] ? err : "failed");
  return vtab->zErrMsg ? SQLITE_ERROR : SQLITE_NOMEM;
}
