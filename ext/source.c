/*
 * source.c - the `source` argument of cnn_train, cnn_evaluate and friends: a
 * table or view name, or one read-only query whose first two columns are
 * (image, label). Rows are read into memory as uint8, the form the engine
 * trains on (60000 MNIST images are 47 MB).
 *
 * Security: the query is the caller's own SQL, run on the caller's
 * connection; it must be read-only (sqlite3_stmt_readonly) and a single
 * statement, so a source can never write. Functions taking a source are
 * SQLITE_DIRECTONLY, so a database's views or triggers cannot smuggle one in.
 */
#include <ctype.h>
#include <string.h>

#include "ext.h"
#include "image.h"

#define MAX_ROWS 100000000u
#define MAX_BYTES ((size_t)8 << 30)

int cnn_source_is_name(const char *s) {
  if (!isalpha((unsigned char)*s) && *s != '_') return 0;
  int dots = 0;
  for (; *s; s++) {
    if (*s == '.' && dots++ == 0 && (isalpha((unsigned char)s[1]) || s[1] == '_')) continue;
    if (!isalnum((unsigned char)*s) && *s != '_') return 0;
  }
  return 1;
}

int cnn_source_prepare_table(sqlite3 *db, const char *schema, const char *table, const char *where,
                             sqlite3_stmt **stmt) {
  /* Its image and label columns if it has them (mnist_train has id first),
   * else its first columns. Unquoted: SQLite reads a double-quoted name that
   * is no column as a string, which would hide a missing label column. */
  static const char *const cols[] = {"image, label", "image", "*"};
  int rc = SQLITE_ERROR;
  *stmt = NULL;
  for (int i = 0; i < 3 && rc != SQLITE_OK; i++) {
    char *sql =
        schema ? sqlite3_mprintf("SELECT %s FROM \"%w\".\"%w\"%s", cols[i], schema, table, where)
               : sqlite3_mprintf("SELECT %s FROM \"%w\"%s", cols[i], table, where);
    if (!sql) return -1;
    rc = sqlite3_prepare_v2(db, sql, -1, stmt, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK && !strstr(sqlite3_errmsg(db), "no such column")) break;
  }
  return rc;
}

int cnn_source_prepare(sqlite3 *db, const char *source, sqlite3_stmt **stmt, char *err) {
  const char *tail = NULL;
  *stmt = NULL;
  if (!source || !source[0])
    return cnn_error(err, CNN_ERROR, "source must be a table name or a query; got an empty text");
  int rc = SQLITE_ERROR;
  int named = cnn_source_is_name(source);
  if (named) {
    const char *dot = strchr(source, '.');
    char *schema = dot ? sqlite3_mprintf("%.*s", (int)(dot - source), source) : NULL;
    if (dot && !schema) return cnn_nomem(err);
    rc = cnn_source_prepare_table(db, schema, dot ? dot + 1 : source, "", stmt);
    sqlite3_free(schema);
  } else {
    rc = sqlite3_prepare_v2(db, source, -1, stmt, &tail);
  }
  if (rc < 0) return cnn_nomem(err);
  if (rc != SQLITE_OK) {
    int status = rc == SQLITE_NOMEM ? CNN_NOMEM : CNN_ERROR;
    cnn_error(err, status, "source %s: %s", named ? "table" : "query", sqlite3_errmsg(db));
    sqlite3_finalize(*stmt);
    *stmt = NULL;
    return status;
  }
  while (!named && tail && (isspace((unsigned char)*tail) || *tail == ';')) tail++;
  if (named) tail = NULL;
  if (!*stmt || (tail && *tail)) {
    sqlite3_finalize(*stmt);
    *stmt = NULL;
    return cnn_error(err, CNN_ERROR, "source must be a table name or one SELECT statement");
  }
  if (!sqlite3_stmt_readonly(*stmt)) {
    sqlite3_finalize(*stmt);
    *stmt = NULL;
    return cnn_error(err, CNN_ERROR, "source must be read-only (a table name or a SELECT query)");
  }
  return CNN_OK;
}

int cnn_source_row(sqlite3_stmt *stmt, size_t row, cnn_shape in, int classes, int need_labels,
                   uint8_t *image, int *label, char *err) {
  char sub[CNN_ERRMAX], what[48];
  size_t bytes = (size_t)in.h * in.w * in.c;
  sqlite3_value *v = sqlite3_column_value(stmt, 0);
  if (in.h == 28 && in.w == 28 && in.c == 1) {
    int rc = cnn_arg_image(v, image, sub);
    if (rc) return cnn_error(err, rc, "source row %zu: %s", row, sub);
  } else {
    if (sqlite3_value_type(v) != SQLITE_BLOB || (size_t)sqlite3_value_bytes(v) != bytes)
      return cnn_error(err, CNN_ERROR,
                       "source row %zu: image must be a %zu-byte blob (%dx%dx%d); got %s", row,
                       bytes, in.h, in.w, in.c, cnn_value_describe(v, what, sizeof what));
    memcpy(image, sqlite3_value_blob(v), bytes);
  }
  *label = -1;
  if (sqlite3_column_count(stmt) < 2) {
    if (need_labels)
      return cnn_error(err, CNN_ERROR, "source must give (image, label) columns; it gives one");
    return CNN_OK;
  }
  sqlite3_value *l = sqlite3_column_value(stmt, 1);
  int type = sqlite3_value_type(l);
  if (type == SQLITE_NULL && !need_labels) return CNN_OK;
  sqlite3_int64 x = sqlite3_value_int64(l);
  if ((type != SQLITE_INTEGER && !(type == SQLITE_FLOAT && sqlite3_value_double(l) == (double)x)) ||
      x < 0 || x >= classes) {
    if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
      return cnn_error(err, CNN_ERROR, "source row %zu: label must be an integer 0..%d; got %s",
                       row, classes - 1,
                       sqlite3_value_text(l) ? (const char *)sqlite3_value_text(l) : "?");
    return cnn_error(err, CNN_ERROR, "source row %zu: label must be an integer 0..%d; got %s", row,
                     classes - 1, cnn_value_describe(l, what, sizeof what));
  }
  *label = (int)x;
  return CNN_OK;
}

void cnn_rows_clear(cnn_rows *r) {
  cnn_free(r->images);
  cnn_free(r->labels);
  memset(r, 0, sizeof *r);
}

int cnn_source_read(sqlite3 *db, const char *source, cnn_shape in, int classes, int need_labels,
                    cnn_rows *out, char *err) {
  sqlite3_stmt *st = NULL;
  memset(out, 0, sizeof *out);
  out->image_bytes = (size_t)in.h * in.w * in.c;
  int rc = cnn_source_prepare(db, source, &st, err);
  if (rc) return rc;
  if (need_labels && sqlite3_column_count(st) < 2) {
    sqlite3_finalize(st);
    return cnn_error(err, CNN_ERROR, "source must give (image, label) columns; it gives %d",
                     sqlite3_column_count(st));
  }
  int src;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (out->count == out->cap) {
      size_t cap = out->cap ? out->cap * 2 : 1024;
      if (cap > MAX_ROWS || cap * out->image_bytes > MAX_BYTES) {
        rc = cnn_error(err, CNN_ERROR, "source has more rows than this build accepts (%u, %zu GB)",
                       MAX_ROWS, MAX_BYTES >> 30);
        break;
      }
      uint8_t *im = cnn_realloc(out->images, cap * out->image_bytes);
      if (im) out->images = im;
      uint8_t *lb = im ? cnn_realloc(out->labels, cap) : NULL;
      if (lb) out->labels = lb;
      if (!im || !lb) {
        rc = cnn_nomem(err);
        break;
      }
      out->cap = cap;
    }
    int label;
    rc = cnn_source_row(st, out->count + 1, in, classes, need_labels,
                        out->images + out->count * out->image_bytes, &label, err);
    if (rc) break;
    out->labels[out->count++] = label < 0 ? 255 : (uint8_t)label;
  }
  if (rc == CNN_OK && src != SQLITE_DONE) {
    rc = src == SQLITE_INTERRUPT ? cnn_error(err, CNN_INTERRUPTED, "interrupted")
         : src == SQLITE_NOMEM   ? cnn_nomem(err)
                                 : cnn_error(err, CNN_ERROR, "source: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  if (rc == CNN_OK && out->count == 0) rc = cnn_error(err, CNN_ERROR, "source has no rows");
  if (rc) cnn_rows_clear(out);
  return rc;
}
