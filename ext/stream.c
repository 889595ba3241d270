/*
 * stream.c - a table source read batch by batch instead of into memory (the
 * training option "data"): only the table's rowids stay in memory, as runs of
 * consecutive rowids (12 bytes a run: a table without gaps takes 12 bytes in
 * all, one whose every other row was deleted 12 bytes a row); the engine asks
 * for each batch's rows by their place in rowid order (cnn_dataset.read) and
 * they are looked up by rowid.
 *
 * Row i of the streamed dataset is the table's i-th row in rowid order, which
 * is the order in which the in-memory path scans the same table, so streamed
 * and in-memory training see the same rows under the same numbers: the same
 * batches, the same augmentation draws, the same messages ("source row 7:
 * ..."), bit-identical weights.
 *
 * Consistency: a table of a database file is read through a second, read-only
 * connection to the same file, in one read transaction per pass over the rows
 * (an epoch, a validation, an evaluation), so that each epoch sees one
 * snapshot while other connections write (in WAL mode; in rollback-journal
 * mode their writes wait for the epoch's end). The rowids are listed once when
 * the call starts: a row deleted since is an error naming it; rows added are
 * not seen until the next call. An in-memory or temporary database, and a
 * caller inside its own transaction, are read through the caller's connection
 * (it alone can see them), between batches on the calling thread: the
 * statement calling cnn_train holds that connection's mutex throughout, so no
 * reader thread could use it.
 *
 * A query source (only with "stream") cannot be addressed by row: it is run
 * once to count its rows and once per epoch, on the caller's connection, its
 * rows taken in order (validation, or training without shuffle: the same
 * batches as in memory) or through a shuffle buffer (tf.data's shuffle).
 */
#include <stdio.h>
#include <string.h>

#include "ext.h"
#include "json.h"
#include "rng.h"

/* The automatic choice: a table whose images would take more than this is
 * streamed. */
#define STREAM_THRESHOLD ((uint64_t)1 << 30)

struct cnn_stream {
  sqlite3 *db;       /* borrowed (the caller's) or owned (own == 1) */
  int own;           /* db is our read-only connection */
  int open;          /* a read transaction is open on our connection */
  sqlite3_stmt *get; /* owned: the row of rowid ?1 */
  /* The rowids in ascending order, as runs: run k holds rows
   * run_row[k] .. run_row[k + 1] - 1, with rowids from run_rowid[k] on. */
  uint32_t *run_row;        /* owned, nruns */
  sqlite3_int64 *run_rowid; /* owned, nruns */
  size_t nruns;
  size_t count;
  cnn_shape in;
  int classes, need_labels;
  char *table;        /* owned: its name for messages */
  const char *prefix; /* static: put before read errors ("validation "), or NULL */
  /* A query source instead (scan set): read in order, or through a shuffle
   * buffer of cap rows, tf.data's shuffle(buffer_size). */
  sqlite3_stmt *scan;  /* owned, on the caller's connection */
  size_t cap;          /* rows the buffer holds; 0: read in order */
  uint8_t *buf;        /* owned, cap x image bytes */
  uint8_t *buf_labels; /* owned, cap */
  size_t filled;       /* rows in the buffer */
  size_t pos;          /* rows taken from the query this pass */
  int scanned;         /* the query has no more rows this pass */
  uint64_t seed;
  int epoch; /* of the next pass */
  cnn_rng rng;
};

const char *cnn_data_mode_name(cnn_data_mode m) {
  return m == CNN_DATA_STREAM ? "stream" : m == CNN_DATA_MEMORY ? "memory" : "auto";
}

int cnn_data_mode_parse(const cnn_json *x, cnn_data_mode *mode, char *err) {
  static const cnn_data_mode modes[] = {CNN_DATA_AUTO, CNN_DATA_MEMORY, CNN_DATA_STREAM};
  char got[64];
  for (int m = 0; m < 3 && x->type == CNN_JSON_STRING; m++)
    if (!strcmp(x->string, cnn_data_mode_name(modes[m]))) {
      *mode = modes[m];
      return CNN_OK;
    }
  return cnn_error(err, CNN_ERROR, "option data must be \"auto\", \"memory\" or \"stream\"; got %s",
                   cnn_json_describe(x, got, sizeof got));
}

void cnn_stream_free(cnn_stream *s) {
  if (!s) return;
  sqlite3_finalize(s->get);
  sqlite3_finalize(s->scan);
  cnn_free(s->buf);
  cnn_free(s->buf_labels);
  if (s->own) {
    if (s->open) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(s->db);
  }
  cnn_free(s->run_row);
  cnn_free(s->run_rowid);
  sqlite3_free(s->table);
  cnn_free(s);
}

static int sql_error(sqlite3 *db, int src, const char *what, char *err) {
  if (src == SQLITE_NOMEM) return cnn_nomem(err);
  if (src == SQLITE_INTERRUPT) return cnn_error(err, CNN_INTERRUPTED, "interrupted");
  return cnn_error(err, CNN_ERROR, "%s: %s", what, sqlite3_errmsg(db));
}

/* The schema holding the table, its kind ("table", "view", ...) and whether
 * it has rowids. 0 when found, -1 when not (or SQLite cannot say), else an
 * error status. */
static int table_kind(sqlite3 *db, const char *schema, const char *table, char **found, char **kind,
                      int *rowids, char *err) {
  sqlite3_stmt *st = NULL;
  /* Unqualified names resolve as SQLite resolves them: temp, main, then
   * attached databases in order. */
  int rc = sqlite3_prepare_v2(db,
                              "SELECT t.schema, t.type, t.wr FROM pragma_table_list(?1) t "
                              "JOIN pragma_database_list d ON d.name = t.schema "
                              "WHERE ?2 IS NULL OR t.schema = ?2 COLLATE NOCASE "
                              "ORDER BY t.schema <> 'temp', d.seq LIMIT 1",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st);
    return rc == SQLITE_NOMEM ? cnn_nomem(err) : -1;
  }
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  if (schema) sqlite3_bind_text(st, 2, schema, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  int status = -1;
  if (rc == SQLITE_ROW) {
    *found = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
    *kind = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 1));
    *rowids = sqlite3_column_int(st, 2) == 0;
    status = *found && *kind ? 0 : cnn_nomem(err);
  } else if (rc != SQLITE_DONE) {
    status = sql_error(db, rc, "source table", err);
  }
  sqlite3_finalize(st);
  return status;
}

/* The rowid of row i (in rowid order). */
static sqlite3_int64 rowid_of(const cnn_stream *s, size_t i) {
  size_t lo = 0, hi = s->nruns; /* the last run starting at or before i */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->run_row[mid] <= i)
      lo = mid;
    else
      hi = mid;
  }
  return s->run_rowid[lo] + (sqlite3_int64)(i - s->run_row[lo]);
}

/* The table's rowids in ascending order, as runs. */
static int list_rowids(cnn_stream *s, sqlite3 *db, const char *schema, const char *table,
                       char *err) {
  sqlite3_stmt *st = NULL;
  size_t cap = 0;
  sqlite3_int64 last = 0;
  char *sql = sqlite3_mprintf("SELECT rowid FROM \"%w\".\"%w\" ORDER BY rowid", schema, table);
  if (!sql) return cnn_nomem(err);
  int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  sqlite3_free(sql);
  if (src != SQLITE_OK) {
    sqlite3_finalize(st);
    return sql_error(db, src, "source table", err);
  }
  int rc = CNN_OK;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    sqlite3_int64 r = sqlite3_column_int64(st, 0);
    /* The engine numbers rows with 32 bits. */
    if (s->count == UINT32_MAX) {
      rc = cnn_error(err, CNN_ERROR, "source has more rows than this build accepts (%u)",
                     UINT32_MAX);
      break;
    }
    if (s->count == 0 || r != last + 1) {
      if (s->nruns == cap) {
        size_t grow = cap ? cap * 2 : 64;
        uint32_t *a = cnn_realloc(s->run_row, grow * sizeof *a);
        if (a) s->run_row = a;
        sqlite3_int64 *b = a ? cnn_realloc(s->run_rowid, grow * sizeof *b) : NULL;
        if (b) s->run_rowid = b;
        if (!a || !b) {
          rc = cnn_nomem(err);
          break;
        }
        cap = grow;
      }
      s->run_row[s->nruns] = (uint32_t)s->count;
      s->run_rowid[s->nruns++] = r;
    }
    last = r;
    s->count++;
  }
  if (rc == CNN_OK && src != SQLITE_DONE) rc = sql_error(db, src, "source", err);
  sqlite3_finalize(st);
  if (rc == CNN_OK && s->count == 0) rc = cnn_error(err, CNN_ERROR, "source has no rows");
  return rc;
}

/* Our own read-only connection to the file holding the table, when there is
 * one and the caller is not inside a transaction of its own; else NULL. */
static sqlite3 *reader_connection(sqlite3 *db, const char *schema) {
  const char *file = sqlite3_db_filename(db, schema);
  if (!file || !file[0] || !sqlite3_get_autocommit(db)) return NULL;
  sqlite3 *r = NULL;
  if (sqlite3_open_v2(file, &r, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
    sqlite3_close(r);
    return NULL;
  }
  /* A writer committing (rollback journal) holds the file for a moment. */
  sqlite3_busy_timeout(r, 10000);
  return r;
}

/* A query streamed in order or through a shuffle buffer of `buffer` rows
 * (0: in order). Its rows are counted first, by running it once. */
static int open_query(sqlite3 *db, const char *source, size_t buffer, cnn_stream *s, char *err) {
  int rc = cnn_source_prepare(db, source, &s->scan, err);
  if (rc) return rc;
  if (s->need_labels && sqlite3_column_count(s->scan) < 2)
    return cnn_error(err, CNN_ERROR, "source must give (image, label) columns; it gives %d",
                     sqlite3_column_count(s->scan));
  int src;
  while ((src = sqlite3_step(s->scan)) == SQLITE_ROW)
    if (++s->count > UINT32_MAX)
      return cnn_error(err, CNN_ERROR, "source has more rows than this build accepts (%u)",
                       UINT32_MAX);
  if (src != SQLITE_DONE) return sql_error(db, src, "source", err);
  if (s->count == 0) return cnn_error(err, CNN_ERROR, "source has no rows");
  s->cap = buffer < s->count ? buffer : s->count;
  size_t bytes = (size_t)s->in.h * s->in.w * s->in.c;
  if (s->cap && (!(s->buf = cnn_malloc(s->cap * bytes)) || !(s->buf_labels = cnn_malloc(s->cap))))
    return cnn_nomem(err);
  s->db = db;
  return CNN_OK;
}

int cnn_stream_open(sqlite3 *db, const char *source, cnn_shape in, int classes, int need_labels,
                    cnn_data_mode mode, size_t shuffle_buffer, cnn_stream **out, char *err) {
  char *schema = NULL, *found = NULL, *kind = NULL;
  const char *table = source;
  int rowids = 0, rc = CNN_OK;
  cnn_stream *s = NULL;
  *out = NULL;
  if (mode == CNN_DATA_MEMORY) return CNN_OK;
  if (!cnn_source_is_name(source)) {
    if (mode != CNN_DATA_STREAM) return CNN_OK;
    if (shuffle_buffer == CNN_STREAM_NO_BUFFER)
      return cnn_error(err, CNN_ERROR,
                       "option data \"stream\" with a query source needs shuffle_buffer (the "
                       "rows held for shuffling), or shuffle false, or a table source");
    if (!(s = cnn_calloc(1, sizeof *s)) || !(s->table = sqlite3_mprintf("%s", "query"))) {
      cnn_free(s);
      return cnn_nomem(err);
    }
    s->in = in, s->classes = classes, s->need_labels = need_labels;
    if ((rc = open_query(db, source, shuffle_buffer, s, err))) {
      cnn_stream_free(s);
      return rc;
    }
    *out = s;
    return CNN_OK;
  }
  const char *dot = strchr(source, '.');
  if (dot) {
    if (!(schema = sqlite3_mprintf("%.*s", (int)(dot - source), source))) return cnn_nomem(err);
    table = dot + 1;
  }
  int k = table_kind(db, schema, table, &found, &kind, &rowids, err);
  if (k > 0) {
    rc = k;
    goto done;
  }
  /* Not a table with rowids: read into memory, where a missing table gets
   * its usual message. */
  if (k < 0 || strcmp(kind, "table") || !rowids) {
    if (mode == CNN_DATA_STREAM && k == 0)
      rc = cnn_error(err, CNN_ERROR, "option data \"stream\" needs a table with rowids; %s is %s",
                     source,
                     strcmp(kind, "table") ? (strcmp(kind, "view") ? "a virtual table" : "a view")
                                           : "a WITHOUT ROWID table");
    goto done;
  }
  if (!(s = cnn_calloc(1, sizeof *s)) || !(s->table = sqlite3_mprintf("%s", source))) {
    rc = cnn_nomem(err);
    goto done;
  }
  s->in = in, s->classes = classes, s->need_labels = need_labels;
  if ((rc = list_rowids(s, db, found, table, err))) goto done;
  uint64_t bytes = (uint64_t)s->count * in.h * in.w * in.c;
  if (mode == CNN_DATA_AUTO && bytes <= STREAM_THRESHOLD) goto done;

  sqlite3 *own = reader_connection(db, found);
  if (own) {
    int src = cnn_source_prepare_table(own, "main", table, " WHERE rowid = ?1", &s->get);
    if (src == SQLITE_OK) {
      s->db = own, s->own = 1;
    } else {
      sqlite3_finalize(s->get);
      s->get = NULL;
      sqlite3_close(own);
    }
  }
  if (!s->own) {
    int src = cnn_source_prepare_table(db, found, table, " WHERE rowid = ?1", &s->get);
    if (src < 0) {
      rc = cnn_nomem(err);
      goto done;
    }
    if (src != SQLITE_OK) {
      rc = sql_error(db, src, "source table", err);
      goto done;
    }
    s->db = db;
  }
  if (need_labels && sqlite3_column_count(s->get) < 2) {
    rc = cnn_error(err, CNN_ERROR, "source must give (image, label) columns; it gives %d",
                   sqlite3_column_count(s->get));
    goto done;
  }
  *out = s;
  s = NULL;
done:
  cnn_stream_free(s);
  sqlite3_free(schema);
  sqlite3_free(found);
  sqlite3_free(kind);
  return rc;
}

size_t cnn_stream_count(const cnn_stream *s) { return s->count; }

void cnn_stream_seed(cnn_stream *s, uint64_t seed, int first_epoch) {
  s->seed = seed, s->epoch = first_epoch;
}

/* The query's next row into image/label; 0 when it has no more. */
static int scan_row(cnn_stream *s, uint8_t *image, uint8_t *label, int *got, char *err) {
  *got = 0;
  /* Stepped again once done, a statement starts over. */
  if (s->scanned) return CNN_OK;
  int src = sqlite3_step(s->scan);
  if (src == SQLITE_DONE) s->scanned = 1;
  if (src == SQLITE_DONE) return CNN_OK;
  if (src != SQLITE_ROW) return sql_error(s->db, src, "source", err);
  int l = -1;
  int rc = cnn_source_row(s->scan, ++s->pos, s->in, s->classes, s->need_labels, image, &l, err);
  *label = l < 0 ? 255 : (uint8_t)l;
  *got = rc == CNN_OK;
  return rc;
}

/* cnn_dataset.read of a query: the next n rows in order, or each drawn
 * uniformly from the buffer and replaced by the query's next row (the
 * buffer drains once the query is done). The engine's row numbers only
 * count: which rows come is the buffer's choice. */
static int query_read(cnn_stream *s, int n, uint8_t *images, uint8_t *labels, char *err) {
  size_t bytes = (size_t)s->in.h * s->in.w * s->in.c;
  for (int i = 0; i < n; i++) {
    uint8_t *img = images + (size_t)i * bytes;
    int got, rc;
    if (!s->cap) {
      if ((rc = scan_row(s, img, &labels[i], &got, err))) return rc;
    } else {
      got = s->filled > 0;
      if (got) {
        size_t j = (size_t)cnn_rng_below(&s->rng, s->filled);
        memcpy(img, s->buf + j * bytes, bytes);
        labels[i] = s->buf_labels[j];
        int more;
        if ((rc = scan_row(s, s->buf + j * bytes, &s->buf_labels[j], &more, err))) return rc;
        if (!more && j != --s->filled) {
          memcpy(s->buf + j * bytes, s->buf + s->filled * bytes, bytes);
          s->buf_labels[j] = s->buf_labels[s->filled];
        }
      }
    }
    if (!got)
      return cnn_error(err, CNN_ERROR,
                       "source query gave %zu rows this time; it gave %zu when training began",
                       s->pos, s->count);
  }
  return CNN_OK;
}

static int query_pass(cnn_stream *s, int begin, char *err) {
  int rc, got;
  if (begin) {
    sqlite3_reset(s->scan);
    s->pos = 0, s->filled = 0, s->scanned = 0;
    size_t bytes = (size_t)s->in.h * s->in.w * s->in.c;
    /* Each epoch its own draws, as the engine's shuffle. */
    cnn_rng_seed(&s->rng, s->seed ^ ((uint64_t)s->epoch++ * 0x9e3779b97f4a7c15ull) ^
                              (3 * 0xd1b54a32d192ed03ull));
    while (s->filled < s->cap) {
      if ((rc = scan_row(s, s->buf + s->filled * bytes, &s->buf_labels[s->filled], &got, err)))
        return rc;
      if (!got) break;
      s->filled++;
    }
    return CNN_OK;
  }
  uint8_t spare_label;
  uint8_t *spare = cnn_malloc((size_t)s->in.h * s->in.w * s->in.c);
  if (!spare) return cnn_nomem(err);
  rc = scan_row(s, spare, &spare_label, &got, err);
  cnn_free(spare);
  if (rc == CNN_OK && (got || s->filled))
    rc = cnn_error(err, CNN_ERROR,
                   "source query gave more rows this time than the %zu it gave when training "
                   "began",
                   s->count);
  sqlite3_reset(s->scan);
  return rc;
}

/* Rows idx[0..n) of the rowid order. The connection is held for the whole
 * batch, so that its error message is the batch's own. */
static int table_read(cnn_stream *s, const uint32_t *idx, int n, uint8_t *images, uint8_t *labels,
                      char *err) {
  size_t bytes = (size_t)s->in.h * s->in.w * s->in.c;
  sqlite3_mutex *mu = sqlite3_db_mutex(s->db);
  int rc = CNN_OK;
  if (mu) sqlite3_mutex_enter(mu);
  for (int i = 0; i < n && rc == CNN_OK; i++) {
    size_t row = idx[i];
    sqlite3_int64 rowid = rowid_of(s, row);
    sqlite3_bind_int64(s->get, 1, rowid);
    int src = sqlite3_step(s->get);
    if (src == SQLITE_ROW) {
      int label;
      rc = cnn_source_row(s->get, row + 1, s->in, s->classes, s->need_labels,
                          images + (size_t)i * bytes, &label, err);
      labels[i] = label < 0 ? 255 : (uint8_t)label;
    } else if (src == SQLITE_DONE) {
      rc = cnn_error(err, CNN_ERROR, "source row %zu (rowid %lld) is no longer in table %s",
                     row + 1, (long long)rowid, s->table);
    } else {
      char what[CNN_ERRMAX];
      snprintf(what, sizeof what, "source table %.200s", s->table);
      rc = sql_error(s->db, src, what, err);
    }
    sqlite3_reset(s->get);
  }
  if (mu) sqlite3_mutex_leave(mu);
  return rc;
}

/* Our connection's read transaction, one per pass. */
static int table_pass(cnn_stream *s, int begin, char *err) {
  if (!s->own || begin == s->open) return CNN_OK;
  int src = sqlite3_exec(s->db, begin ? "BEGIN" : "COMMIT", NULL, NULL, NULL);
  if (src != SQLITE_OK) return sql_error(s->db, src, "source", err);
  s->open = begin;
  return CNN_OK;
}

/* An error of a validation source says so, as when it is opened. */
static int with_role(const cnn_stream *s, int rc, char *err) {
  if (rc == CNN_OK || rc == CNN_NOMEM || rc == CNN_INTERRUPTED || !s->prefix) return rc;
  char tmp[CNN_ERRMAX];
  snprintf(tmp, sizeof tmp, "%s%.200s", s->prefix, err);
  memcpy(err, tmp, sizeof tmp);
  return rc;
}

/* cnn_dataset.read: rows idx[0..n) (a query: its next n rows). */
static int stream_read(void *ctx, const uint32_t *idx, int n, uint8_t *images, uint8_t *labels,
                       char *err) {
  cnn_stream *s = ctx;
  int rc =
      s->scan ? query_read(s, n, images, labels, err) : table_read(s, idx, n, images, labels, err);
  return with_role(s, rc, err);
}

/* cnn_dataset.pass: the beginning or end of an epoch, a validation, an
 * evaluation. */
static int stream_pass(void *ctx, int begin, char *err) {
  cnn_stream *s = ctx;
  return with_role(s, s->scan ? query_pass(s, begin, err) : table_pass(s, begin, err), err);
}

void cnn_stream_role(cnn_stream *s, const char *prefix) { s->prefix = prefix; }

void cnn_stream_dataset(cnn_stream *s, cnn_dataset *d) {
  memset(d, 0, sizeof *d);
  d->count = s->count;
  d->read = stream_read;
  d->pass = stream_pass;
  d->ctx = s;
  /* The caller's connection is held by the statement calling us (SQLite
   * keeps its mutex for the whole step): no other thread may use it. */
  d->same_thread = !s->own;
}
