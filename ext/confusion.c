/*
 * confusion.c - cnn_confusion(name, source): the confusion matrix as rows
 * (label, predicted, count) for every pair that occurs, ordered by label,
 * predicted:
 *
 *   SELECT * FROM cnn_confusion('nb', 'mnist_test') WHERE label <> predicted;
 *
 * The source is read and predicted completely in xFilter (ext/batch.c); the
 * pairs are sorted rather than counted in a classes x classes matrix, so a
 * model with 65536 classes costs 8 bytes per source row, not 32 GB.
 *
 * Security: runs the caller's SQL text as a source, so it is
 * SQLITE_VTAB_DIRECTONLY (see ext/predictions.c).
 */
#include <stdlib.h>
#include <string.h>

#include "ext.h"

enum { CONF_LABEL, CONF_PREDICTED, CONF_COUNT, CONF_NAME, CONF_SOURCE };

typedef struct conf_cursor {
  cnn_cursor base;
  uint64_t *pairs; /* owned: label << 32 | predicted, sorted */
  size_t npairs, cap;
  size_t pos, run; /* current pair and the length of its run */
} conf_cursor;

static void conf_reset(cnn_cursor *base) {
  conf_cursor *cur = (conf_cursor *)base;
  sqlite3_free(cur->pairs);
  cur->pairs = NULL;
  cur->npairs = cur->cap = cur->pos = cur->run = 0;
}

static const cnn_table conf_table = {
    .schema =
        "CREATE TABLE x(label INTEGER, predicted INTEGER, count INTEGER, "
        "name HIDDEN, source HIDDEN)",
    .direct_only = 1,
    .first_arg = CONF_NAME,
    .nargs = 2,
    .required = 2,
    .usage = "name and source arguments are required: cnn_confusion(name, source)",
    .cursor_size = sizeof(conf_cursor),
    .reset = conf_reset,
};

static int conf_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return cnn_vtab_connect(db, aux, &conf_table, out);
}

static int conf_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  int argc, rc = cnn_vtab_plan_args(vtab, info, &argc);
  if (rc != SQLITE_OK || argc < 2) return rc;
  /* Running a model is expensive: keep it in the outer loop of joins. */
  info->estimatedCost = 1e6;
  info->estimatedRows = 10000;
  if (info->nOrderBy >= 1 && info->nOrderBy <= 2) {
    int ok = 1;
    for (int i = 0; i < info->nOrderBy; i++)
      ok &= info->aOrderBy[i].iColumn == i && !info->aOrderBy[i].desc;
    info->orderByConsumed = ok;
  }
  return SQLITE_OK;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* Length of the run of equal pairs starting at pos. */
static size_t conf_run(const conf_cursor *cur) {
  size_t end = cur->pos;
  while (end < cur->npairs && cur->pairs[end] == cur->pairs[cur->pos]) end++;
  return end - cur->pos;
}

static int conf_filter(sqlite3_vtab_cursor *base, int idxNum, const char *idxStr, int argc,
                       sqlite3_value **argv) {
  (void)idxStr;
  conf_cursor *cur = (conf_cursor *)base;
  cnn_vtab *vtab = (cnn_vtab *)base->pVtab;
  char err[CNN_ERRMAX] = "";
  cnn_batch b = {0};
  int used, rc = cnn_vtab_filter_args(&cur->base, idxNum, argc, argv, &used);
  if (rc != SQLITE_OK) return rc;
  int st = cnn_batch_open(&b, vtab->db, vtab->binding->conn, argv[0], argv[1], 1, err);
  while (st == CNN_OK && (st = cnn_batch_next(&b, vtab->db, err)) == CNN_OK && b.n > 0) {
    if (cur->npairs + (size_t)b.n > cur->cap) {
      size_t cap = cur->cap ? cur->cap * 2 : 4096;
      uint64_t *p = sqlite3_realloc64(cur->pairs, (sqlite3_uint64)cap * sizeof *p);
      if (!p) {
        st = cnn_nomem(err);
        break;
      }
      cur->pairs = p, cur->cap = cap;
    }
    for (int i = 0; i < b.n; i++)
      cur->pairs[cur->npairs++] = (uint64_t)b.labels[i] << 32 |
                                  (uint32_t)cnn_argmax(b.probs + (size_t)i * b.classes, b.classes);
  }
  cnn_batch_clear(&b);
  if (st != CNN_OK) {
    conf_reset(&cur->base);
    return cnn_vtab_status(&vtab->base, st, err);
  }
  if (cur->npairs) qsort(cur->pairs, cur->npairs, sizeof *cur->pairs, cmp_u64);
  cur->run = conf_run(cur);
  return SQLITE_OK;
}

static int conf_next(sqlite3_vtab_cursor *base) {
  conf_cursor *cur = (conf_cursor *)base;
  cur->pos += cur->run;
  cur->run = conf_run(cur);
  cur->base.rowid++;
  return SQLITE_OK;
}

static int conf_eof(sqlite3_vtab_cursor *base) {
  const conf_cursor *cur = (const conf_cursor *)base;
  return cur->pos >= cur->npairs;
}

static int conf_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col) {
  const conf_cursor *cur = (const conf_cursor *)base;
  uint64_t pair = cur->pairs[cur->pos];
  switch (col) {
  case CONF_LABEL:
    sqlite3_result_int64(ctx, (sqlite3_int64)(pair >> 32));
    break;
  case CONF_PREDICTED:
    sqlite3_result_int64(ctx, (sqlite3_int64)(pair & 0xffffffffu));
    break;
  case CONF_COUNT:
    sqlite3_result_int64(ctx, (sqlite3_int64)cur->run);
    break;
  default:
    return cnn_vtab_arg_column(&cur->base, ctx, col);
  }
  return SQLITE_OK;
}

/* xCreate NULL: eponymous-only. */
const sqlite3_module cnn_confusion_module = {
    .iVersion = 0,
    .xConnect = conf_connect,
    .xBestIndex = conf_best_index,
    .xDisconnect = cnn_vtab_disconnect,
    .xOpen = cnn_vtab_open,
    .xClose = cnn_vtab_close,
    .xFilter = conf_filter,
    .xNext = conf_next,
    .xEof = conf_eof,
    .xColumn = conf_column,
    .xRowid = cnn_vtab_rowid,
};
