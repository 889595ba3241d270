/*
 * sql_oom.c - out of memory at any allocation of any SQL function is an
 * error, never a crash, a leak, a damaged table or a silently different
 * answer.
 *
 * The database holds 64 training and 16 validation images and a small model
 * 'm' trained for one epoch. Each step of a model's life is one SQL statement
 * on a fresh connection (schema already read): cnn_create, cnn_train (one
 * epoch, with validation and layer_stats), cnn_layer_stats,
 * cnn_layer_stats_svg, cnn_precision, cnn_predict of a raw blob, cnn_predict_proba of a
 * PNG, cnn_evaluate (in memory and streamed), cnn_predictions, cnn_confusion, cnn_history,
 * cnn_summary, cnn_history_svg (both forms), cnn_export, cnn_export_onnx,
 * cnn_import, cnn_drop; and opening a connection, which registers the
 * extension. For each step and N = 1, 2, 3, ... the N-th SQLite allocation
 * of the step fails (the counting allocator of harness.c), then,
 * separately, the N-th engine allocation (cnn_alloc_fail_at), until a run
 * no longer reaches allocation N. Every run starts from the same database
 * file. A run that met the failure must
 *  - fail with SQLITE_NOMEM or a message saying "out of memory",
 *  - leave the connection in autocommit mode (no transaction left open), with
 *    one exception SQLite imposes: once SQLite itself fails an allocation
 *    inside a function, every statement of that connection fails with
 *    SQLITE_NOMEM until the calling statement ends, so a transaction the
 *    function opened cannot be rolled back from inside it. SQLite's rule for
 *    SQLITE_NOMEM then applies ("respond ... by explicitly issuing a
 *    ROLLBACK"): the run issues ROLLBACK, which must succeed, and the tables
 *    are judged after it. Those runs are counted apart ("left for ROLLBACK").
 *  - give back every byte: SQLite's outstanding bytes and blocks and the
 *    engine's live blocks are what they were before the connection opened
 *    (and LeakSanitizer watches the engine's too in the sanitized build),
 *  - leave every row of the model tables and the schema exactly as before,
 *    no journal behind, and PRAGMA integrity_check "ok". cnn_train commits
 *    each epoch as it completes (so an interrupt loses at most the epoch in
 *    progress); a failure after its one epoch was committed, while it makes
 *    its result, may leave that epoch, but then exactly as a clean run
 *    stores it. Those runs are counted apart.
 * A run may succeed when the failed allocation was only tried (SQLite's
 * benign allocations, the engine's thread pool falling back to one thread),
 * but then with exactly the result and the tables of a run without failures.
 *
 * CNN_FAULTS_STRIDE=k tries every k-th N only (for slow sanitized builds);
 * the default 1 tries every one. CNN_FAULTS_STEP=cnn_train runs that step only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "faults.h"

#define TRAIN_OPTIONS                                                                \
  "{\"epochs\":1,\"seed\":7,\"threads\":1,\"batch_size\":16,\"validation\":\"val\"," \
  "\"layer_stats\":true,\"progress\":false}"

typedef enum { BIND_NONE, BIND_SPEC, BIND_RAW, BIND_PNG, BIND_EXPORT } bind_kind;

typedef struct step {
  const char *label;
  const char *sql;   /* NULL: the step is sqlite3_open_v2 itself */
  bind_kind bind;    /* what ?1 is */
  int writes;        /* changes the tables when it succeeds */
  int commits_early; /* commits before its result is made (cnn_train: each epoch) */
} step;

static const step steps[] = {
    {"sqlite3_open", NULL, BIND_NONE, 0, 0},
    {"cnn_create", "SELECT cnn_create('fresh', ?1, 5)", BIND_SPEC, 1, 0},
    {"cnn_train", "SELECT cnn_train('m', 'train', '" TRAIN_OPTIONS "')", BIND_NONE, 1, 1},
    {"cnn_layer_stats",
     "SELECT group_concat(epoch || ':' || name || ':' || zero_fraction, ' ') "
     "FROM cnn_layer_stats('m')",
     BIND_NONE, 0, 0},
    {"cnn_layer_stats_svg", "SELECT cnn_layer_stats_svg('m', 'grad_mean_abs')", BIND_NONE, 0, 0},
    {"cnn_precision", "SELECT cnn_precision('m')", BIND_NONE, 0, 0},
    {"cnn_predict", "SELECT cnn_predict('m', ?1)", BIND_RAW, 0, 0},
    {"cnn_predict_proba", "SELECT cnn_predict_proba('m', ?1)", BIND_PNG, 0, 0},
    {"cnn_evaluate", "SELECT cnn_evaluate('m', 'val')", BIND_NONE, 0, 0},
    /* Streamed: a second, read-only connection of its own, a reader thread. */
    {"cnn_evaluate streamed", "SELECT cnn_evaluate('m', 'val', '{\"data\":\"stream\"}')", BIND_NONE,
     0, 0},
    {"cnn_predictions",
     "SELECT group_concat(idx || ':' || label || ':' || predicted || ':' || probability, ' ') "
     "FROM cnn_predictions('m', 'SELECT image, label FROM val')",
     BIND_NONE, 0, 0},
    {"cnn_confusion",
     "SELECT group_concat(label || '/' || predicted || '=' || count, ' ') "
     "FROM cnn_confusion('m', 'val')",
     BIND_NONE, 0, 0},
    {"cnn_history",
     "SELECT group_concat(epoch || ':' || loss || ':' || val_accuracy, ' ') FROM cnn_history('m')",
     BIND_NONE, 0, 0},
    {"cnn_summary",
     "SELECT group_concat(layer || ' ' || output_shape || ' ' || params, '; ') "
     "FROM cnn_summary('m')",
     BIND_NONE, 0, 0},
    {"cnn_history_svg", "SELECT cnn_history_svg('m') || cnn_history_svg('[\"m\"]', 'val_loss')",
     BIND_NONE, 0, 0},
    {"cnn_export", "SELECT cnn_export('m')", BIND_NONE, 0, 0},
    {"cnn_export_onnx", "SELECT cnn_export_onnx('m')", BIND_NONE, 0, 0},
    {"cnn_import", "SELECT cnn_import('copy', ?1)", BIND_EXPORT, 1, 0},
    {"cnn_drop", "SELECT cnn_drop('m')", BIND_NONE, 1, 0},
};

enum { FAIL_NONE, FAIL_SQLITE, FAIL_ENGINE };

typedef struct outcome {
  int rc;            /* SQLITE_OK: the step gave its row; else the error code */
  char msg[300];     /* the error message */
  faults_str value;  /* the result's bytes (cnn_train: without "seconds") */
  uint64_t sql_made; /* SQLite allocations during the step */
  uint64_t eng_made; /* engine allocations during the step */
  int left_open;     /* SQLite NOMEM left a transaction for the caller's ROLLBACK */
} outcome;

/* Set up once. */
static char path[1100];
static faults_str pristine;      /* the database file before every run */
static faults_str png, exported; /* arguments of cnn_predict_proba and cnn_import */
static faults_str before;        /* exact snapshot of the tables before every run */
static faults_str clean_after[sizeof steps / sizeof steps[0]]; /* normalized, after a clean run */
static outcome clean[sizeof steps / sizeof steps[0]];

static int write_file(const char *p, const faults_str *data) {
  FILE *f = fopen(p, "wb");
  int ok = f && fwrite(data->s, 1, data->len, f) == data->len;
  if (f && fclose(f)) ok = 0;
  return CHECKF(ok, "cannot write %s", p) ? 0 : 1;
}

static int read_file(const char *p, faults_str *out) {
  char buf[65536];
  size_t n;
  FILE *f = fopen(p, "rb");
  out->len = 0;
  if (!CHECKF(f != NULL, "cannot read %s", p)) return 1;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) faults_str_add(out, buf, n);
  fclose(f);
  return 0;
}

static int restore(void) {
  faults_remove_db(path);
  return write_file(path, &pristine);
}

/* cnn_train's summary without its duration, the one field that differs
 * between two equal runs. */
static void strip_seconds(faults_str *v) {
  char *p = v->len ? strstr(v->s, ",\"seconds\":") : NULL;
  if (!p) return;
  char *end = p + 1;
  while (*end && *end != ',' && *end != '}') end++;
  memmove(p, end, strlen(end) + 1);
  v->len = strlen(v->s);
}

static int bind(sqlite3_stmt *st, bind_kind kind) {
  switch (kind) {
  case BIND_SPEC:
    return sqlite3_bind_text(st, 1, faults_spec, -1, SQLITE_STATIC);
  case BIND_RAW:
    return sqlite3_bind_blob(st, 1, faults_val_image(0), 784, SQLITE_STATIC);
  case BIND_PNG:
    return sqlite3_bind_blob(st, 1, png.s, (int)png.len, SQLITE_STATIC);
  case BIND_EXPORT:
    return sqlite3_bind_blob(st, 1, exported.s, (int)exported.len, SQLITE_STATIC);
  default:
    return SQLITE_OK;
  }
}

/* The step's statement: prepare, bind, step to the end, finalize. */
static void run_sql(sqlite3 *db, const step *s, outcome *o) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, s->sql, -1, &st, NULL);
  if (rc == SQLITE_OK) rc = bind(st, s->bind);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    int type = sqlite3_column_type(st, 0);
    const void *p = NULL;
    if (type == SQLITE_TEXT)
      p = sqlite3_column_text(st, 0);
    else if (type == SQLITE_BLOB)
      p = sqlite3_column_blob(st, 0);
    if (type == SQLITE_INTEGER) {
      faults_str_printf(&o->value, "%lld", (long long)sqlite3_column_int64(st, 0));
    } else if (type == SQLITE_NULL) {
      faults_str_add(&o->value, "NULL", 4);
    } else if (p) {
      faults_str_add(&o->value, p, (size_t)sqlite3_column_bytes(st, 0));
    } else {
      faults_str_add(&o->value, "(value lost)", 12);
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) rc = SQLITE_MISMATCH; /* one row expected */
  }
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  o->rc = rc;
  if (rc != SQLITE_OK) snprintf(o->msg, sizeof o->msg, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  if (!strcmp(s->label, "cnn_train")) strip_seconds(&o->value);
}

/* One run of a step from the pristine database with allocation n of one kind
 * failing; returns whether everything was given back. */
static int run_once(const step *s, int kind, uint64_t n, outcome *o) {
  sqlite3 *db = NULL;
  int closed = 1;
  o->rc = SQLITE_OK, o->msg[0] = 0, o->value.len = 0, o->left_open = 0;
  restore();
  int64_t bytes0 = faults_sqlite_bytes(), blocks0 = faults_sqlite_blocks();
  int64_t engine0 = faults_engine_blocks();
  if (!s->sql) {
    faults_sqlite_fail_at(kind == FAIL_SQLITE ? n : 0);
    cnn_alloc_fail_at(kind == FAIL_ENGINE ? n : 0);
    o->rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    o->sql_made = faults_sqlite_fail_at(0);
    o->eng_made = cnn_alloc_fail_at(0);
    if (o->rc != SQLITE_OK) {
      snprintf(o->msg, sizeof o->msg, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(o->rc));
    } else {
      /* Opened: then the extension must be there. */
      faults_str v = {0};
      int rc = faults_query(db, "SELECT cnn_version()", &v);
      faults_str_printf(&o->value, "%s %s",
                        rc == SQLITE_ROW ? "opened" : "no extension:", faults_str_get(&v));
      faults_str_clear(&v);
    }
    if (db) closed = faults_close(db);
  } else {
    if (!(db = faults_open(path, SQLITE_OPEN_READWRITE, NULL))) return 0;
    faults_exec(db, "SELECT count(*) FROM sqlite_schema"); /* reads the schema */
    faults_sqlite_fail_at(kind == FAIL_SQLITE ? n : 0);
    cnn_alloc_fail_at(kind == FAIL_ENGINE ? n : 0);
    run_sql(db, s, o);
    o->sql_made = faults_sqlite_fail_at(0);
    o->eng_made = cnn_alloc_fail_at(0);
    /* A transaction left open would hold the caller's later writes hostage;
     * only SQLite's own out-of-memory state may leave one, for the caller's
     * ROLLBACK (see the top of the file). */
    if (!sqlite3_get_autocommit(db) && kind == FAIL_SQLITE && (o->rc & 0xff) == SQLITE_NOMEM) {
      o->left_open = 1;
      closed = CHECKF(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK,
                      "%s, SQLite allocation %llu: ROLLBACK failed: %s", s->label,
                      (unsigned long long)n, sqlite3_errmsg(db));
    }
    closed =
        CHECKF(
            sqlite3_get_autocommit(db),
            "%s, %s allocation %llu: the connection was left inside a transaction (error %d: %s)",
            s->label, kind == FAIL_ENGINE ? "engine" : "SQLite", (unsigned long long)n, o->rc,
            o->rc ? o->msg : "none") &&
        closed;
    closed &= faults_close(db);
  }
  int ok = closed;
  ok &= CHECKF(
      faults_sqlite_bytes() == bytes0 && faults_sqlite_blocks() == blocks0,
      "%s, %s allocation %llu: SQLite holds %lld more bytes in %lld more blocks after close",
      s->label, kind == FAIL_ENGINE ? "engine" : "SQLite", (unsigned long long)n,
      (long long)(faults_sqlite_bytes() - bytes0), (long long)(faults_sqlite_blocks() - blocks0));
  ok &= CHECKF(faults_engine_blocks() == engine0,
               "%s, %s allocation %llu: the engine holds %lld more blocks after close", s->label,
               kind == FAIL_ENGINE ? "engine" : "SQLite", (unsigned long long)n,
               (long long)(faults_engine_blocks() - engine0));
  return ok;
}

/* Where the tables are after a run: 0 exactly as before, 1 as after the
 * clean run (normalized), -1 neither or damaged (why says how). */
static int tables_state(size_t si, char *why, size_t size) {
  char journal[1200];
  snprintf(journal, sizeof journal, "%s-journal", path);
  if (access(journal, F_OK) == 0) {
    snprintf(why, size, "a journal was left behind");
    return -1;
  }
  sqlite3 *db = faults_open(path, SQLITE_OPEN_READWRITE, NULL);
  if (!db) return -1;
  faults_str now = {0}, integrity = {0};
  int state = -1;
  faults_snapshot(db, 0, &now);
  if (now.len == before.len && !memcmp(now.s, before.s, now.len)) {
    state = 0;
  } else if (steps[si].writes) {
    faults_snapshot(db, 1, &now);
    const faults_str *after = &clean_after[si];
    if (now.len == after->len && !memcmp(now.s, after->s, now.len)) state = 1;
  }
  if (state < 0) snprintf(why, size, "the tables are neither as before nor as after a clean run");
  faults_query(db, "PRAGMA integrity_check", &integrity);
  if (state >= 0 && strcmp(faults_str_get(&integrity), "ok")) {
    snprintf(why, size, "integrity_check: %.200s", faults_str_get(&integrity));
    state = -1;
  }
  faults_str_clear(&integrity);
  faults_str_clear(&now);
  faults_close(db);
  return state;
}

static int same_value(const outcome *a, const outcome *b) {
  return a->value.len == b->value.len && !memcmp(a->value.s, b->value.s, a->value.len);
}

enum { RUN_FAILED, RUN_ABSORBED, RUN_FAILED_AFTER_COMMIT, RUN_WRONG };

/* Judges one run that reached allocation n (see the top of the file). */
static int judge(size_t si, int kind, uint64_t n, const outcome *o) {
  const step *s = &steps[si];
  char why[300] = "";
  int verdict = RUN_WRONG;
  if (o->rc == SQLITE_OK) {
    if (!same_value(o, &clean[si]))
      snprintf(why, sizeof why, "succeeded with a different result: %.150s",
               faults_str_get(&o->value));
    else
      verdict = RUN_ABSORBED;
  } else if ((o->rc & 0xff) == SQLITE_NOMEM || strstr(o->msg, "out of memory")) {
    verdict = RUN_FAILED;
  } else {
    snprintf(why, sizeof why, "wrong error %d: %.200s", o->rc, o->msg);
  }
  if (verdict != RUN_WRONG) {
    int state = tables_state(si, why, sizeof why);
    int want = verdict == RUN_ABSORBED && s->writes;
    if (state == want) {
      /* as expected */
    } else if (state == 1 && verdict == RUN_FAILED && s->commits_early) {
      verdict = RUN_FAILED_AFTER_COMMIT;
    } else {
      if (state >= 0)
        snprintf(why, sizeof why, "%s, but the tables are as %s",
                 verdict == RUN_FAILED ? "failed" : "succeeded",
                 state ? "after a clean run" : "before");
      verdict = RUN_WRONG;
    }
  }
  CHECKF(verdict != RUN_WRONG, "%s, %s allocation %llu: %s", s->label,
         kind == FAIL_ENGINE ? "engine" : "SQLite", (unsigned long long)n, why);
  return verdict;
}

typedef struct tally {
  uint64_t runs, last, absorbed, after_commit, left_open, bad;
} tally;

/* N = 1, 2, ... (by stride) until a run does not reach allocation N. */
static void loop(const step *s, size_t si, int kind, uint64_t stride, tally *t) {
  outcome o = {0};
  for (uint64_t n = 1;; n += stride) {
    int given_back = run_once(s, kind, n, &o);
    uint64_t made = kind == FAIL_SQLITE ? o.sql_made : o.eng_made;
    if (made < n) {
      /* Allocation n never happened: a run without failures. */
      char why[300] = "";
      CHECKF(o.rc == SQLITE_OK && same_value(&o, &clean[si]) &&
                 tables_state(si, why, sizeof why) == s->writes,
             "%s: the run after the last %s allocation differs from the clean run: %d %s %s",
             s->label, kind == FAIL_ENGINE ? "engine" : "SQLite", o.rc, o.msg, why);
      if (!given_back) t->bad++;
      break;
    }
    t->runs++;
    t->last = n;
    int verdict = judge(si, kind, n, &o);
    if (verdict == RUN_ABSORBED) t->absorbed++;
    if (verdict == RUN_FAILED_AFTER_COMMIT) t->after_commit++;
    if (o.left_open) t->left_open++;
    if (verdict == RUN_WRONG || !given_back) t->bad++;
    if (!CHECKF(n < 10000000, "%s: runaway loop", s->label)) break;
  }
  faults_str_clear(&o.value);
}

static void print_tally(const tally *t) {
  const char *sep = " (";
  if (t->absorbed) printf("%s%llu absorbed", sep, (unsigned long long)t->absorbed), sep = ", ";
  if (t->after_commit)
    printf("%s%llu failed after the epoch was committed", sep, (unsigned long long)t->after_commit),
        sep = ", ";
  if (t->left_open)
    printf("%s%llu left for ROLLBACK", sep, (unsigned long long)t->left_open), sep = ", ";
  if (sep[0] == ',') printf(")");
}

/* The database: data, and model 'm' trained one epoch; the PNG and the
 * exported model the steps bind. */
static int setup(void) {
  faults_str v = {0};
  int bad = 0;
  snprintf(path, sizeof path, "%s/oom.db", faults_dir);
  faults_remove_db(path);
  sqlite3 *db = faults_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (!db) return 1;
  bad |= faults_fill_tables(db);
  char sql[600];
  snprintf(sql, sizeof sql, "SELECT cnn_create('m', '%s', 1)", faults_spec);
  bad |= !CHECK(faults_query(db, sql, &v) == SQLITE_ROW && !strcmp(faults_str_get(&v), "3410"));
  bad |= !CHECKF(
      faults_query(db, "SELECT cnn_train('m', 'train', '" TRAIN_OPTIONS "')", &v) == SQLITE_ROW,
      "setup training: %s", faults_str_get(&v));
  sqlite3_stmt *st = NULL;
  static const char *const blobs[] = {"SELECT cnn_image_png(image) FROM val WHERE rowid = 2",
                                      "SELECT cnn_export('m')"};
  faults_str *out[] = {&png, &exported};
  for (int i = 0; i < 2; i++) {
    out[i]->len = 0;
    if (CHECK(sqlite3_prepare_v2(db, blobs[i], -1, &st, NULL) == SQLITE_OK) &&
        CHECK(sqlite3_step(st) == SQLITE_ROW))
      faults_str_add(out[i], sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    else
      bad = 1;
    sqlite3_finalize(st);
  }
  bad |= faults_snapshot(db, 0, &before);
  faults_close(db);
  faults_str_clear(&v);
  return bad | read_file(path, &pristine);
}

int faults_sql_oom(void) {
  const char *env = getenv("CNN_FAULTS_STRIDE");
  uint64_t stride = env && atoi(env) > 0 ? (uint64_t)atoi(env) : 1;
  if (faults_load_data() || setup()) return 1;
  if (stride > 1)
    printf("sql_oom: every %llu-th allocation (CNN_FAULTS_STRIDE)\n", (unsigned long long)stride);
  const char *only = getenv("CNN_FAULTS_STEP");
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    const step *s = &steps[i];
    if (only && *only && strcmp(only, s->label)) continue;
    faults_print_budget(5);
    /* The clean run: the result and tables every other run is held to. */
    run_once(s, FAIL_NONE, 0, &clean[i]);
    if (!CHECKF(clean[i].rc == SQLITE_OK, "%s without failures: %s", s->label, clean[i].msg))
      continue;
    if (s->writes) {
      sqlite3 *db = faults_open(path, SQLITE_OPEN_READWRITE, NULL);
      if (!db) continue;
      faults_snapshot(db, 1, &clean_after[i]);
      faults_close(db);
    }
    tally sq = {0}, en = {0};
    loop(s, i, FAIL_SQLITE, stride, &sq);
    loop(s, i, FAIL_ENGINE, stride, &en);
    printf("sql_oom: %s: %llu runs, SQLite allocation 1..%llu", s->label,
           (unsigned long long)(sq.runs + en.runs), (unsigned long long)sq.last);
    print_tally(&sq);
    if (en.runs)
      printf(", engine allocation 1..%llu", (unsigned long long)en.last);
    else
      printf(", no engine allocation");
    print_tally(&en);
    /* Each step allocates the same way every time. */
    if (stride == 1)
      CHECKF(sq.last == clean[i].sql_made && en.last == clean[i].eng_made,
             "%s: %llu SQLite and %llu engine allocations without failures, but failures up to "
             "%llu and %llu",
             s->label, (unsigned long long)clean[i].sql_made, (unsigned long long)clean[i].eng_made,
             (unsigned long long)sq.last, (unsigned long long)en.last);
    if (sq.bad + en.bad)
      printf(", %llu WRONG\n", (unsigned long long)(sq.bad + en.bad));
    else
      printf(", all clean\n");
    fflush(stdout);
  }
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    faults_str_clear(&clean[i].value);
    faults_str_clear(&clean_after[i]);
  }
  faults_remove_db(path);
  faults_str_clear(&pristine);
  faults_str_clear(&png);
  faults_str_clear(&exported);
  faults_str_clear(&before);
  return 0;
}
