/*
 * mnist.c - MNIST data in SQL: the table-valued function cnn_mnist() that
 * streams an IDX image file (and its label file), and cnn_import_mnist(dir)
 * that loads the four standard files into mnist_train and mnist_test.
 *
 *   SELECT idx, label, length(image) FROM cnn_mnist('t10k-images-idx3-ubyte.gz',
 *                                                   't10k-labels-idx1-ubyte.gz');
 *   SELECT cnn_import_mnist('data');   -- 70000
 *
 * Files are read through src/io/idx.c (gzip or raw, every header checked before
 * anything is allocated) one record at a time, never as a whole. Both read
 * files named by SQL text, so both are SQLITE_DIRECTONLY: an untrusted
 * database's views and triggers cannot make them read the host's files.
 *
 * Conventions: ext/ext.h. Memory of SQLite-facing objects (vtab, cursor, their
 * buffers, paths) comes from sqlite3_malloc; engine objects (cnn_idx) are made
 * and freed by the engine's own functions.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "ext.h"
#include "idx.h"

/* ---------------------------------------------------------------------------
 * cnn_mnist(images_path [, labels_path]): eponymous-only virtual table.
 * The arguments are the hidden columns images_path and labels_path (SQLite's
 * ext/misc/series.c pattern); idx is the 0-based record number and the rowid.
 */

enum { MNIST_IDX, MNIST_IMAGE, MNIST_LABEL, MNIST_IMAGES_PATH, MNIST_LABELS_PATH };

/* idxNum bits of a plan: which arguments xFilter receives, in this order.
 * Bounds on idx let a query stop early (the records before a lower bound
 * still have to be inflated, but are not turned into rows). */
#define MNIST_HAVE_IMAGES 1
#define MNIST_HAVE_LABELS 2
#define MNIST_IDX_EQ 4  /* idx = ? */
#define MNIST_IDX_LO 8  /* idx >= ?, or idx > ? with MNIST_LO_GT */
#define MNIST_IDX_HI 16 /* idx <= ?, or idx < ? with MNIST_HI_LT */
#define MNIST_LO_GT 32
#define MNIST_HI_LT 64

typedef struct mnist_cursor {
  cnn_cursor base;     /* rowid: the 0-based index of the current record */
  cnn_idx *images;     /* owned; NULL before xFilter */
  cnn_idx *labels;     /* owned; NULL without a labels file */
  uint8_t *image;      /* owned: the current record, record_size bytes */
  size_t record_size;  /* rows * cols */
  int label;           /* the current label */
  sqlite3_int64 count; /* end of the rows: the record count, or a bound on idx */
} mnist_cursor;

/* Back to the state of a fresh cursor: xFilter may run many times (joins). */
static void mnist_reset(cnn_cursor *base) {
  mnist_cursor *cur = (mnist_cursor *)base;
  cnn_idx_close(cur->images);
  cnn_idx_close(cur->labels);
  sqlite3_free(cur->image);
  cur->images = cur->labels = NULL;
  cur->image = NULL;
  cur->record_size = 0;
  cur->count = 0;
  cur->label = 0;
}

static const cnn_table mnist_table = {
    .schema =
        "CREATE TABLE x(idx INTEGER, image BLOB, label INTEGER, "
        "images_path HIDDEN, labels_path HIDDEN)",
    .direct_only = 1,
    .first_arg = MNIST_IMAGES_PATH,
    .nargs = 2,
    .required = 1,
    .usage = "images_path argument is required: cnn_mnist(images_path [, labels_path])",
    /* cnn_mnist is often queried with ORs on idx: see cnn_vtab_plan_args. */
    .late_usage = 1,
    .cursor_size = sizeof(mnist_cursor),
    .reset = mnist_reset,
};

static int mnist_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                         sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return cnn_vtab_connect(db, aux, &mnist_table, out);
}

/* The path arguments are planned by cnn_vtab_plan_args (ext/vtab.c); bounds
 * on idx are added after them. */
static int mnist_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  int argc, rc = cnn_vtab_plan_args(vtab, info, &argc);
  if (rc != SQLITE_OK || !(info->idxNum & MNIST_HAVE_IMAGES)) return rc;
  int eq = -1, lo = -1, hi = -1;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->iColumn != MNIST_IDX || !c->usable) continue;
    /* Not omitted: SQLite checks these again, so the bounds only have to be
     * conservative. */
    switch (c->op) {
    case SQLITE_INDEX_CONSTRAINT_EQ:
      eq = i;
      break;
    case SQLITE_INDEX_CONSTRAINT_GE:
    case SQLITE_INDEX_CONSTRAINT_GT:
      lo = i;
      break;
    case SQLITE_INDEX_CONSTRAINT_LE:
    case SQLITE_INDEX_CONSTRAINT_LT:
      hi = i;
      break;
    default:
      break;
    }
  }
  double rows = 60000.0;    /* MNIST's training set, for want of the file's count */
  double scanned = 60000.0; /* records inflated: all up to the last row */
  if (eq >= 0) {
    info->idxNum |= MNIST_IDX_EQ;
    info->aConstraintUsage[eq].argvIndex = ++argc;
    info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    rows = 1.0;
    scanned /= 2;
  } else {
    if (lo >= 0) {
      info->idxNum |= MNIST_IDX_LO;
      if (info->aConstraint[lo].op == SQLITE_INDEX_CONSTRAINT_GT) info->idxNum |= MNIST_LO_GT;
      info->aConstraintUsage[lo].argvIndex = ++argc;
      rows /= 2;
    }
    if (hi >= 0) {
      info->idxNum |= MNIST_IDX_HI;
      if (info->aConstraint[hi].op == SQLITE_INDEX_CONSTRAINT_LT) info->idxNum |= MNIST_HI_LT;
      info->aConstraintUsage[hi].argvIndex = ++argc;
      rows /= 2;
      scanned /= 2;
    }
  }
  /* Records come in file order, so ORDER BY idx costs nothing. */
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == MNIST_IDX && !info->aOrderBy[0].desc)
    info->orderByConsumed = 1;
  /* A scan costs the records it inflates, from the first one: a lookup by
   * idx is no cheap probe, so joins keep this table in the outer loop. */
  info->estimatedCost = 1000.0 + scanned;
  info->estimatedRows = (sqlite3_int64)rows;
  return SQLITE_OK;
}

/* Narrows [*first, *end) by one bound on idx. Values that are not numbers
 * leave the range as is: SQLite compares them itself. */
static void mnist_bound(sqlite3_value *v, int op, sqlite3_int64 *first, sqlite3_int64 *end) {
  int type = sqlite3_value_numeric_type(v);
  if (type != SQLITE_INTEGER && type != SQLITE_FLOAT) return;
  double d = sqlite3_value_double(v);
  double lo = 0.0, hi = (double)*end; /* the new candidate range, before clamping */
  switch (op) {
  case MNIST_IDX_EQ:
    lo = ceil(d), hi = floor(d) + 1.0;
    break;
  case MNIST_IDX_LO:
    lo = ceil(d);
    break;
  case MNIST_IDX_LO | MNIST_LO_GT:
    lo = floor(d) + 1.0;
    break;
  case MNIST_IDX_HI:
    hi = floor(d) + 1.0;
    break;
  case MNIST_IDX_HI | MNIST_HI_LT:
    hi = ceil(d);
    break;
  default:
    return;
  }
  /* Compare as doubles before converting: d may be far outside int64. */
  if (lo > (double)*first) *first = lo >= (double)*end ? *end : (sqlite3_int64)lo;
  if (hi < (double)*end) *end = hi <= (double)*first ? *first : (sqlite3_int64)hi;
}

/* Reads record cur->base.rowid of both files. */
static int mnist_read_record(mnist_cursor *cur) {
  char err[CNN_ERRMAX];
  int rc = cnn_idx_read(cur->images, cur->image, 1, err);
  if (rc == CNN_OK && cur->labels) {
    uint8_t label;
    rc = cnn_idx_read(cur->labels, &label, 1, err);
    cur->label = label;
  }
  return rc == CNN_OK ? SQLITE_OK : cnn_vtab_status(cur->base.base.pVtab, rc, err);
}

/* A path argument: NULL, non-text and empty values are errors. */
static int mnist_path_arg(sqlite3_value *v, const char *what, const char *hint, const char **out,
                          char *err) {
  char buf[64];
  *out = NULL;
  if (sqlite3_value_type(v) != SQLITE_TEXT || sqlite3_value_bytes(v) == 0)
    return cnn_error(err, CNN_ERROR, "%s must be a text path; got %s%s", what,
                     sqlite3_value_type(v) == SQLITE_TEXT ? "an empty text"
                                                          : cnn_value_describe(v, buf, sizeof buf),
                     hint);
  if (!(*out = (const char *)sqlite3_value_text(v))) return cnn_nomem(err);
  return CNN_OK;
}

static int mnist_filter(sqlite3_vtab_cursor *base, int idxNum, const char *idxStr, int argc,
                        sqlite3_value **argv) {
  (void)idxStr;
  mnist_cursor *cur = (mnist_cursor *)base;
  char err[CNN_ERRMAX];
  const char *images_path, *labels_path = NULL;
  int arg, rc = cnn_vtab_filter_args(&cur->base, idxNum, argc, argv, &arg);
  if (rc != SQLITE_OK) return rc;
  int expect =
      arg + !!(idxNum & MNIST_IDX_EQ) + !!(idxNum & MNIST_IDX_LO) + !!(idxNum & MNIST_IDX_HI);
  if (argc != expect) return SQLITE_ERROR; /* not a plan of mnist_best_index */
  int st = mnist_path_arg(argv[0], "images_path", "", &images_path, err);
  if (st == CNN_OK && (idxNum & MNIST_HAVE_LABELS))
    st = mnist_path_arg(argv[1], "labels_path", " (omit it for images without labels)",
                        &labels_path, err);
  if (st == CNN_OK) st = cnn_idx_open(&cur->images, images_path, 3, err);
  if (st == CNN_OK && labels_path) st = cnn_idx_open(&cur->labels, labels_path, 1, err);
  if (st == CNN_OK && cur->labels && cnn_idx_count(cur->labels) != cnn_idx_count(cur->images))
    st = cnn_error(err, CNN_ERROR, "%s has %u images but %s has %u labels",
                   cnn_idx_name(cur->images), cnn_idx_count(cur->images), cnn_idx_name(cur->labels),
                   cnn_idx_count(cur->labels));
  if (st != CNN_OK) {
    rc = cnn_vtab_status(base->pVtab, st, err);
    goto done;
  }
  cur->record_size = cnn_idx_record_size(cur->images); /* <= CNN_IDX_MAX_RECORD */
  cur->image = sqlite3_malloc64(cur->record_size);
  if (!cur->image) {
    rc = SQLITE_NOMEM;
    goto done;
  }
  /* Rows first..end-1; cur->count becomes the end. */
  sqlite3_int64 first = 0, end = cnn_idx_count(cur->images);
  if (idxNum & MNIST_IDX_EQ) mnist_bound(argv[arg++], MNIST_IDX_EQ, &first, &end);
  if (idxNum & MNIST_IDX_LO)
    mnist_bound(argv[arg++], MNIST_IDX_LO | (idxNum & MNIST_LO_GT), &first, &end);
  if (idxNum & MNIST_IDX_HI)
    mnist_bound(argv[arg++], MNIST_IDX_HI | (idxNum & MNIST_HI_LT), &first, &end);
  cur->base.rowid = first;
  cur->count = end;
  if (first >= end) goto done; /* no rows: nothing to read */
  st = cnn_idx_skip(cur->images, (uint64_t)first, err);
  if (st == CNN_OK && cur->labels) st = cnn_idx_skip(cur->labels, (uint64_t)first, err);
  if (st != CNN_OK) {
    rc = cnn_vtab_status(base->pVtab, st, err);
    goto done;
  }
  rc = mnist_read_record(cur);

done:
  if (rc != SQLITE_OK) mnist_reset(&cur->base); /* eof, and nothing held open */
  return rc;
}

static int mnist_next(sqlite3_vtab_cursor *base) {
  mnist_cursor *cur = (mnist_cursor *)base;
  if (++cur->base.rowid >= cur->count) return SQLITE_OK;
  return mnist_read_record(cur);
}

static int mnist_eof(sqlite3_vtab_cursor *base) {
  const mnist_cursor *cur = (const mnist_cursor *)base;
  return cur->images == NULL || cur->base.rowid >= cur->count;
}

static int mnist_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col) {
  const mnist_cursor *cur = (const mnist_cursor *)base;
  switch (col) {
  case MNIST_IDX:
    sqlite3_result_int64(ctx, cur->base.rowid);
    break;
  case MNIST_IMAGE:
    sqlite3_result_blob64(ctx, cur->image, cur->record_size, SQLITE_TRANSIENT);
    break;
  case MNIST_LABEL:
    if (cur->labels)
      sqlite3_result_int(ctx, cur->label);
    else
      sqlite3_result_null(ctx);
    break;
  default:
    return cnn_vtab_arg_column(&cur->base, ctx, col);
  }
  return SQLITE_OK;
}

/* xCreate NULL: eponymous-only, `CREATE VIRTUAL TABLE ... USING cnn_mnist`
 * is refused. */
const sqlite3_module cnn_mnist_module = {
    .iVersion = 0,
    .xCreate = NULL,
    .xConnect = mnist_connect,
    .xBestIndex = mnist_best_index,
    .xDisconnect = cnn_vtab_disconnect,
    .xDestroy = NULL,
    .xOpen = cnn_vtab_open,
    .xClose = cnn_vtab_close,
    .xFilter = mnist_filter,
    .xNext = mnist_next,
    .xEof = mnist_eof,
    .xColumn = mnist_column,
    .xRowid = cnn_vtab_rowid,
};

/* ---------------------------------------------------------------------------
 * cnn_import_mnist(dir): all four files are found and their headers checked
 * before the database is touched; then one SAVEPOINT drops and recreates both
 * tables and fills them with one prepared INSERT each. Any failure rolls the
 * savepoint back, so a previous mnist_train / mnist_test survives intact.
 *
 * In autocommit mode the savepoint is the transaction and RELEASE commits it
 * (allowed while only read statements, like the calling SELECT, are active);
 * inside the caller's transaction it nests and commits with the caller.
 */

enum { SET_TRAIN, SET_TEST, NSETS };

static const struct {
  const char *table;
  const char *images;
  const char *labels;
} mnist_sets[NSETS] = {
    {"mnist_train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
    {"mnist_test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
};

/* dir/base.gz if it exists, else dir/base if it exists. *path is
 * sqlite3_malloc'd. */
static int import_find(const char *dir, const char *base, char **path, char *err) {
  struct stat st;
  *path = sqlite3_mprintf("%s/%s.gz", dir, base);
  if (*path && stat(*path, &st) == 0) return CNN_OK;
  sqlite3_free(*path);
  *path = sqlite3_mprintf("%s/%s", dir, base);
  if (*path && stat(*path, &st) == 0) return CNN_OK;
  if (!*path) return cnn_nomem(err);
  sqlite3_free(*path);
  *path = NULL;
  return cnn_error(err, CNN_ERROR, "no %s.gz or %s in %s", base, base, dir);
}

/* An SQLite result code as a status, with SQLite's message after `what`. */
static int sql_failure(sqlite3 *db, int rc, const char *what, char *err) {
  if (rc == SQLITE_NOMEM) return cnn_nomem(err);
  return cnn_error(err, CNN_ERROR, "%s%s", what, sqlite3_errmsg(db));
}

/* Streams one image/label file pair into table through `insert`. */
static int import_set(sqlite3 *db, sqlite3_stmt *insert, cnn_idx *images, cnn_idx *labels,
                      uint8_t *image, int *sqlrc, char *err) {
  uint32_t count = cnn_idx_count(images);
  size_t record_size = cnn_idx_record_size(images);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t label;
    int st = cnn_idx_read(images, image, 1, err);
    if (st == CNN_OK) st = cnn_idx_read(labels, &label, 1, err);
    if (st != CNN_OK) return st;
    if (label > 9)
      return cnn_error(err, CNN_ERROR, "%s: label %u in record %u is not a digit 0..9",
                       cnn_idx_name(labels), (unsigned)label, i);
    sqlite3_bind_int64(insert, 1, i);
    sqlite3_bind_blob64(insert, 2, image, record_size, SQLITE_STATIC);
    sqlite3_bind_int(insert, 3, label);
    int rc = sqlite3_step(insert);
    if (rc != SQLITE_DONE) {
      *sqlrc = rc == SQLITE_ROW ? SQLITE_ERROR : rc;
      st = sql_failure(db, *sqlrc, "", err);
      sqlite3_reset(insert);
      return st;
    }
    sqlite3_reset(insert);
  }
  return CNN_OK;
}

void cnn_fn_import_mnist(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "", buf[64];
  int rc = CNN_OK;
  int sqlrc = SQLITE_OK; /* SQLite's code when SQLite failed, to pass on */
  char *paths[NSETS][2] = {{NULL}};
  cnn_idx *files[NSETS][2] = {{NULL}}; /* [set][0 images, 1 labels] */
  uint8_t *image = NULL;
  sqlite3_stmt *insert = NULL, *abort = NULL;
  int in_savepoint = 0, owns_transaction = 0;
  const char *step = ""; /* what failed, for SQLite's messages */
  sqlite3_int64 total = 0;
  const char *dir = NULL;
  struct stat st;

  if (sqlite3_value_type(argv[0]) != SQLITE_TEXT || sqlite3_value_bytes(argv[0]) == 0) {
    rc = cnn_error(err, CNN_ERROR, "dir must be a text path; got %s",
                   sqlite3_value_type(argv[0]) == SQLITE_TEXT
                       ? "an empty text"
                       : cnn_value_describe(argv[0], buf, sizeof buf));
    goto done;
  }
  if (!(dir = (const char *)sqlite3_value_text(argv[0]))) {
    rc = cnn_nomem(err);
    goto done;
  }
  if (stat(dir, &st) != 0) {
    rc = cnn_error(err, CNN_ERROR, "cannot open directory %s: %s", dir, strerror(errno));
    goto done;
  }
  if (!S_ISDIR(st.st_mode)) {
    rc = cnn_error(err, CNN_ERROR, "%s is not a directory", dir);
    goto done;
  }

  /* 1. Find, open and check all four files; the database is not touched yet. */
  for (int s = 0; s < NSETS; s++)
    for (int k = 0; k < 2; k++)
      if ((rc = import_find(dir, k ? mnist_sets[s].labels : mnist_sets[s].images, &paths[s][k],
                            err)))
        goto done;
  for (int s = 0; s < NSETS; s++) {
    for (int k = 0; k < 2; k++)
      if ((rc = cnn_idx_open(&files[s][k], paths[s][k], k ? 1 : 3, err))) goto done;
    if (cnn_idx_count(files[s][0]) != cnn_idx_count(files[s][1])) {
      rc = cnn_error(err, CNN_ERROR, "%s has %u images but %s has %u labels",
                     cnn_idx_name(files[s][0]), cnn_idx_count(files[s][0]),
                     cnn_idx_name(files[s][1]), cnn_idx_count(files[s][1]));
      goto done;
    }
    total += cnn_idx_count(files[s][0]);
  }
  /* One table layout for both sets: the tests and the training read the same
   * image size. */
  if (cnn_idx_rows(files[SET_TRAIN][0]) != cnn_idx_rows(files[SET_TEST][0]) ||
      cnn_idx_cols(files[SET_TRAIN][0]) != cnn_idx_cols(files[SET_TEST][0])) {
    rc = cnn_error(err, CNN_ERROR, "%s holds %ux%u images but %s holds %ux%u",
                   cnn_idx_name(files[SET_TRAIN][0]), cnn_idx_rows(files[SET_TRAIN][0]),
                   cnn_idx_cols(files[SET_TRAIN][0]), cnn_idx_name(files[SET_TEST][0]),
                   cnn_idx_rows(files[SET_TEST][0]), cnn_idx_cols(files[SET_TEST][0]));
    goto done;
  }
  image = sqlite3_malloc64(cnn_idx_record_size(files[SET_TRAIN][0])); /* <= CNN_IDX_MAX_RECORD */
  if (!image) {
    rc = cnn_nomem(err);
    goto done;
  }

  /* 2. One savepoint around every change. SQLite refuses one while a
   * statement of this connection is writing, e.g. INSERT INTO t SELECT
   * cnn_import_mnist(...): say what to do instead. Its first statement
   * writes, so even a deferred transaction takes the write lock before it
   * reads and waits for another writer through the busy timeout
   * (tests/python/test_import.py). */
  for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s)) {
    if (sqlite3_stmt_busy(s) && !sqlite3_stmt_readonly(s)) {
      rc = cnn_error(err, CNN_ERROR,
                     "cannot run inside a statement that writes (call it from a SELECT of its "
                     "own)");
      goto done;
    }
  }
  owns_transaction = sqlite3_get_autocommit(db);
  sqlrc = sqlite3_exec(db, "SAVEPOINT cnn_import_mnist", NULL, NULL, NULL);
  if (sqlrc != SQLITE_OK) goto sql_error;
  in_savepoint = 1;
  step = "cannot replace mnist_train and mnist_test: ";
  sqlrc = sqlite3_exec(db,
                       "DROP TABLE IF EXISTS main.mnist_train;"
                       "DROP TABLE IF EXISTS main.mnist_test;"
                       "CREATE TABLE main.mnist_train(id INTEGER PRIMARY KEY, image BLOB NOT "
                       "NULL, label INTEGER NOT NULL);"
                       "CREATE TABLE main.mnist_test(id INTEGER PRIMARY KEY, image BLOB NOT NULL, "
                       "label INTEGER NOT NULL);",
                       NULL, NULL, NULL);
  if (sqlrc != SQLITE_OK) goto sql_error;
  /* The way out if an interrupt stops the commit (see below); prepared after
   * the schema changes so that it never needs preparing again. */
  sqlrc = sqlite3_prepare_v2(db, "DELETE FROM main.mnist_test WHERE 0", -1, &abort, NULL);
  if (sqlrc != SQLITE_OK) goto sql_error;
  step = "";
  for (int s = 0; s < NSETS; s++) {
    char *sql = sqlite3_mprintf("INSERT INTO main.%s(id, image, label) VALUES (?1, ?2, ?3)",
                                mnist_sets[s].table);
    if (!sql) {
      rc = cnn_nomem(err);
      goto done;
    }
    sqlrc = sqlite3_prepare_v2(db, sql, -1, &insert, NULL);
    sqlite3_free(sql);
    if (sqlrc != SQLITE_OK) goto sql_error;
    rc = import_set(db, insert, files[s][0], files[s][1], image, &sqlrc, err);
    sqlite3_finalize(insert);
    insert = NULL;
    if (rc != CNN_OK) goto done;
  }
  sqlrc = sqlite3_exec(db, "RELEASE cnn_import_mnist", NULL, NULL, NULL);
  if (sqlrc != SQLITE_OK) goto sql_error;
  in_savepoint = 0;
  goto done;

sql_error:
  rc = sql_failure(db, sqlrc, step, err);

done:
  sqlite3_finalize(insert);
  if (in_savepoint) {
    /* Undo everything; the message was taken before these statements
     * overwrite the connection's error. If the release of our own
     * transaction fails, end it outright so nothing half-done remains. */
    sqlite3_exec(db, "ROLLBACK TO cnn_import_mnist", NULL, NULL, NULL);
    if (sqlite3_exec(db, "RELEASE cnn_import_mnist", NULL, NULL, NULL) != SQLITE_OK &&
        owns_transaction && !sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    /* Interrupted, no statement can even be prepared; a writing one
     * prepared before fails at once and SQLite rolls back the transaction. */
    if (owns_transaction && !sqlite3_get_autocommit(db) && abort) sqlite3_step(abort);
  }
  sqlite3_finalize(abort);
  sqlite3_free(image);
  for (int s = 0; s < NSETS; s++) {
    for (int k = 0; k < 2; k++) {
      cnn_idx_close(files[s][k]);
      sqlite3_free(paths[s][k]);
    }
  }
  if (rc == CNN_OK) {
    sqlite3_result_int64(ctx, total);
  } else {
    cnn_result_status(ctx, rc, err);
    /* SQLite's own failures keep their code (SQLITE_FULL, SQLITE_INTERRUPT,
     * SQLITE_BUSY, ...) under our message. */
    if (rc == CNN_ERROR && sqlrc != SQLITE_OK && sqlrc != SQLITE_ERROR)
      sqlite3_result_error_code(ctx, sqlrc);
  }
}
