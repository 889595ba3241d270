/*
 * harness.c - what both fault tests share: checks, the three memory counters
 * (see faults.h), connections that must open and close cleanly, snapshots of
 * the model tables, and the test data.
 *
 * Conventions: every function reports its own failures as failed checks
 * (stderr) and returns nonzero, and the tests carry on, so one run shows
 * every failure (only the harness itself running out of memory stops the
 * program). The harness's own buffers come from the __real_ allocator, so
 * they never appear in the SQLite or engine counts that the tests compare.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "faults.h"
#include "idx.h"

int sqlite3_cnn_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

const char faults_spec[] =
    "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,"
    "\"activation\":\"relu\"},{\"type\":\"maxpool\",\"size\":2},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":10}]}";

char faults_dir[512];

/* ---- checks ------------------------------------------------------------------- */

static int checks_run, checks_failed, checks_unprinted;
static int print_budget = 40;

void faults_print_budget(int n) { print_budget = n; }

int faults_check(int ok, const char *file, int line, const char *fmt, ...) {
  checks_run++;
  if (ok) return 1;
  checks_failed++;
  if (print_budget-- <= 0) {
    checks_unprinted++;
    return 0;
  }
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 0;
}

int faults_summary(void) {
  fflush(stdout);
  int bad = checks_failed != 0 || checks_run == 0;
  fprintf(bad ? stderr : stdout, "%d checks, %d failed", checks_run, checks_failed);
  if (checks_unprinted) fprintf(stderr, " (%d of them not shown)", checks_unprinted);
  fputc('\n', bad ? stderr : stdout);
  return bad;
}

/* ---- SQLite's allocator ---------------------------------------------------------
 * Each block carries its size in a 16-byte header (SQLite wants 8-byte
 * alignment; malloc gives 16). Reallocations count as allocations: SQLite's
 * own fault tests fail them too. */

static _Atomic uint64_t sql_made, sql_fail;
static _Atomic int64_t sql_bytes, sql_blocks;

static int sql_should_fail(void) {
  uint64_t k = atomic_fetch_add(&sql_made, 1) + 1;
  uint64_t f = atomic_load(&sql_fail);
  return f != 0 && k == f;
}

static void *mem_malloc(int n) {
  if (sql_should_fail()) return NULL;
  int64_t *p = __real_malloc((size_t)n + 16);
  if (!p) return NULL;
  p[0] = n;
  atomic_fetch_add(&sql_bytes, n);
  atomic_fetch_add(&sql_blocks, 1);
  return p + 2;
}

static void mem_free(void *q) {
  if (!q) return;
  int64_t *p = (int64_t *)q - 2;
  atomic_fetch_sub(&sql_bytes, p[0]);
  atomic_fetch_sub(&sql_blocks, 1);
  __real_free(p);
}

static void *mem_realloc(void *q, int n) {
  if (sql_should_fail()) return NULL;
  int64_t *p = (int64_t *)q - 2, old = p[0];
  int64_t *np = __real_realloc(p, (size_t)n + 16);
  if (!np) return NULL;
  np[0] = n;
  atomic_fetch_add(&sql_bytes, n - old);
  return np + 2;
}

static int mem_size(void *q) { return q ? (int)((int64_t *)q)[-2] : 0; }
static int mem_roundup(int n) { return (n + 7) & ~7; }
static int mem_init(void *unused) {
  (void)unused;
  return SQLITE_OK;
}
static void mem_shutdown(void *unused) { (void)unused; }

static const sqlite3_mem_methods counting_mem = {mem_malloc,  mem_free, mem_realloc,  mem_size,
                                                 mem_roundup, mem_init, mem_shutdown, NULL};

uint64_t faults_sqlite_fail_at(uint64_t n) {
  uint64_t made = atomic_exchange(&sql_made, 0);
  atomic_store(&sql_fail, n);
  return made;
}

int64_t faults_sqlite_bytes(void) { return atomic_load(&sql_bytes); }
int64_t faults_sqlite_blocks(void) { return atomic_load(&sql_blocks); }

/* ---- the engine's malloc, counted (-Wl,--wrap) ------------------------------ */

static _Atomic int64_t engine_blocks;

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__real_calloc(size_t count, size_t size);

void *__wrap_malloc(size_t n) {
  void *p = __real_malloc(n);
  if (p) atomic_fetch_add(&engine_blocks, 1);
  return p;
}

void *__wrap_calloc(size_t count, size_t size) {
  void *p = __real_calloc(count, size);
  if (p) atomic_fetch_add(&engine_blocks, 1);
  return p;
}

/* cnn_realloc never passes a size of 0, so realloc never frees here. */
void *__wrap_realloc(void *p, size_t n) {
  void *q = __real_realloc(p, n);
  if (q && !p) atomic_fetch_add(&engine_blocks, 1);
  return q;
}

void __wrap_free(void *p) {
  if (p) atomic_fetch_sub(&engine_blocks, 1);
  __real_free(p);
}

int64_t faults_engine_blocks(void) { return atomic_load(&engine_blocks); }

int faults_init(void) {
  /* Before anything else touches SQLite: the allocator cannot change later. */
  int rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &counting_mem);
  if (rc == SQLITE_OK) rc = sqlite3_initialize();
  if (rc == SQLITE_OK) rc = sqlite3_auto_extension((void (*)(void))sqlite3_cnn_init);
  if (rc == SQLITE_OK) rc = faults_vfs_register();
  return CHECKF(rc == SQLITE_OK, "SQLite setup failed: %s", sqlite3_errstr(rc)) ? 0 : 1;
}

/* ---- strings ---------------------------------------------------------------------- */

void faults_str_add(faults_str *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *s = __real_realloc(b->s, cap);
    if (!s) {
      /* The harness cannot go on without memory of its own. */
      fprintf(stderr, "faults: out of memory in the harness\n");
      exit(2);
    }
    b->s = s, b->cap = cap;
  }
  memcpy(b->s + b->len, p, n);
  b->len += n;
  b->s[b->len] = 0;
}

void faults_str_printf(faults_str *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  faults_str_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

const char *faults_str_get(const faults_str *b) { return b->len ? b->s : ""; }

void faults_str_clear(faults_str *b) {
  __real_free(b->s);
  b->s = NULL, b->len = b->cap = 0;
}

/* ---- databases ---------------------------------------------------------------------- */

sqlite3 *faults_open(const char *path, int flags, const char *vfs) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, flags, vfs);
  if (!CHECKF(rc == SQLITE_OK, "cannot open %s: %s", path,
              db ? sqlite3_errmsg(db) : sqlite3_errstr(rc))) {
    sqlite3_close(db);
    return NULL;
  }
  return db;
}

int faults_close(sqlite3 *db) {
  sqlite3_stmt *st;
  int ok = 1;
  while ((st = sqlite3_next_stmt(db, NULL)) != NULL) {
    ok = CHECKF(0, "statement left unfinalized: %s", sqlite3_sql(st));
    sqlite3_finalize(st);
  }
  int rc = sqlite3_close(db);
  return CHECKF(rc == SQLITE_OK, "sqlite3_close: %s", sqlite3_errstr(rc)) && ok;
}

int faults_exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  CHECKF(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
  sqlite3_free(msg);
  return rc != SQLITE_OK;
}

int faults_query(sqlite3 *db, const char *sql, faults_str *out) {
  sqlite3_stmt *st = NULL;
  out->len = 0;
  faults_str_add(out, "", 0);
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    if (t) faults_str_add(out, (const char *)t, strlen((const char *)t));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) faults_str_printf(out, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

static void add_value(faults_str *out, sqlite3_stmt *st, int i) {
  static const char hex[] = "0123456789abcdef";
  switch (sqlite3_column_type(st, i)) {
  case SQLITE_NULL:
    faults_str_add(out, "NULL", 4);
    break;
  case SQLITE_INTEGER:
    faults_str_printf(out, "%lld", (long long)sqlite3_column_int64(st, i));
    break;
  case SQLITE_FLOAT:
    faults_str_printf(out, "%.17g", sqlite3_column_double(st, i));
    break;
  case SQLITE_TEXT: {
    const char *t = (const char *)sqlite3_column_text(st, i);
    faults_str_add(out, t ? t : "?", t ? (size_t)sqlite3_column_bytes(st, i) : 1);
    break;
  }
  default: {
    const unsigned char *b = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    faults_str_add(out, "x", 1);
    for (int k = 0; k < n; k++) {
      char two[2] = {hex[b[k] >> 4], hex[b[k] & 15]};
      faults_str_add(out, two, 2);
    }
  }
  }
}

int faults_rows(sqlite3 *db, const char *sql, const char *skip, faults_str *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(st); i++) {
      char word[80];
      snprintf(word, sizeof word, " %s ", sqlite3_column_name(st, i));
      if (skip && strstr(skip, word)) continue;
      add_value(out, st, i);
      faults_str_add(out, "|", 1);
    }
    faults_str_add(out, "\n", 1);
    rc = SQLITE_OK;
  }
  int ok = CHECKF(rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return !ok;
}

int faults_snapshot(sqlite3 *db, int normalized, faults_str *out) {
  static const struct {
    const char *sql, *skip;
  } tables[] = {
      {"SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name", NULL},
      {"SELECT * FROM cnn_models ORDER BY name", " version created updated "},
      {"SELECT * FROM cnn_weights ORDER BY model, idx", NULL},
      {"SELECT * FROM cnn_optimizer_state ORDER BY model, slot, idx", NULL},
      {"SELECT * FROM cnn_epochs ORDER BY model, epoch", " seconds finished "},
      {"SELECT * FROM cnn_settings ORDER BY key", NULL},
  };
  int bad = 0;
  out->len = 0;
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    faults_str_printf(out, "-- %s\n", tables[i].sql);
    bad |= faults_rows(db, tables[i].sql, normalized ? tables[i].skip : NULL, out);
  }
  return bad;
}

int faults_model_state(sqlite3 *db, const char *name, faults_str *out) {
  char sql[4][200];
  snprintf(sql[0], sizeof sql[0],
           "SELECT epochs, step, optimizer, params, spec FROM cnn_models WHERE name = '%s'", name);
  snprintf(sql[1], sizeof sql[1],
           "SELECT epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, samples "
           "FROM cnn_epochs WHERE model = '%s' ORDER BY epoch",
           name);
  snprintf(sql[2], sizeof sql[2],
           "SELECT idx, name, shape, data FROM cnn_weights WHERE model = '%s' ORDER BY idx", name);
  snprintf(sql[3], sizeof sql[3],
           "SELECT slot, idx, name, data FROM cnn_optimizer_state WHERE model = '%s' "
           "ORDER BY slot, idx",
           name);
  int bad = 0;
  out->len = 0;
  for (int i = 0; i < 4; i++) {
    faults_str_printf(out, "-- %d\n", i);
    bad |= faults_rows(db, sql[i], NULL, out);
  }
  return bad;
}

int faults_integrity_ok(sqlite3 *db) {
  faults_str r = {0};
  faults_query(db, "PRAGMA integrity_check", &r);
  int ok = CHECKF(!strcmp(faults_str_get(&r), "ok"), "integrity_check: %s", faults_str_get(&r));
  faults_str_clear(&r);
  return ok;
}

void faults_remove_db(const char *path) {
  static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
  for (int i = 0; i < 4; i++) {
    char p[1100];
    snprintf(p, sizeof p, "%s%s", path, suffix[i]);
    unlink(p);
  }
}

/* ---- data ------------------------------------------------------------------------------ */

static uint8_t images[(FAULTS_NTRAIN + FAULTS_NVAL) * 784], labels[FAULTS_NTRAIN + FAULTS_NVAL];

static int read_idx(const char *file, int rank, uint8_t *buf, size_t n) {
  char path[1024], err[CNN_ERRMAX] = "";
  const char *dir = getenv("CNN_DATA");
  cnn_idx *f = NULL;
  snprintf(path, sizeof path, "%s/%s", dir ? dir : "data", file);
  int rc = cnn_idx_open(&f, path, rank, err);
  if (rc == CNN_OK) rc = cnn_idx_read(f, buf, n, err);
  cnn_idx_close(f);
  return CHECKF(rc == CNN_OK, "%s: %s", path, err) ? 0 : 1;
}

int faults_load_data(void) {
  size_t n = FAULTS_NTRAIN + FAULTS_NVAL;
  return read_idx("train-images-idx3-ubyte.gz", 3, images, n) |
         read_idx("train-labels-idx1-ubyte.gz", 1, labels, n);
}

const uint8_t *faults_val_image(int i) { return images + (size_t)(FAULTS_NTRAIN + i) * 784; }

int faults_fill_tables(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  int bad = faults_exec(db,
                        "BEGIN; CREATE TABLE train(image BLOB, label INTEGER); "
                        "CREATE TABLE val(image BLOB, label INTEGER)");
  for (int t = 0; t < 2 && !bad; t++) {
    const char *sql = t ? "INSERT INTO val VALUES (?1, ?2)" : "INSERT INTO train VALUES (?1, ?2)";
    int first = t ? FAULTS_NTRAIN : 0, count = t ? FAULTS_NVAL : FAULTS_NTRAIN;
    bad |= !CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
    for (int i = first; i < first + count && !bad; i++) {
      sqlite3_bind_blob(st, 1, images + (size_t)i * 784, 784, SQLITE_STATIC);
      sqlite3_bind_int(st, 2, labels[i]);
      bad |= !CHECK(sqlite3_step(st) == SQLITE_DONE);
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
  }
  return bad | faults_exec(db, "COMMIT");
}
