/*
 * storage.c - a disk that fills up, fails or turns read-only while cnn_train
 * checkpoints: the call fails with an error that names the problem, every
 * epoch committed before the fault survives bit for bit, nothing of the
 * failed epoch does, and training resumes where it stopped.
 *
 * A reference database trains the same model (same spec, seed, data and
 * options) one epoch per call, keeping its state after 0, 1, 2 and 3
 * epochs; that two epochs in one call give exactly the state of two one-epoch
 * calls is checked first, since the comparisons below rely on it.
 *
 * Each case runs in rollback-journal (DELETE) mode and, where it applies,
 * in WAL mode (one runs in TRUNCATE mode instead of DELETE: the only mode
 * that truncates a file while saving), always with synchronous=FULL so that every commit syncs:
 * cnn_train(3 epochs) on a new model through the fault VFS (faultvfs.c), armed by the first
 * statement after the k-th commit (sqlite3_commit_hook counts commits; sqlite3_trace_v2 sees the
 * next statement start), so the fault hits the save of epoch k+1. Faults stay until the call
 * returns (a disk that stays full), except the transient ones; a full database (max_page_count) and
 * a read-only connection need no plan. Then, with faults off, the connection must be back in
 * autocommit mode and close cleanly, every SQLite byte and engine block must be given back, and a
 * new connection finds: integrity_check "ok", epochs = k with history rows
 * 1..k, step = 4 per epoch, the reference's state after k epochs; then one
 * more epoch gives the reference's state after k+1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"

#define OPTIONS(n) \
  "{\"epochs\":" #n ",\"seed\":7,\"threads\":1,\"batch_size\":16,\"progress\":false}"
#define BATCHES_PER_EPOCH (FAULTS_NTRAIN / 16)
#define REF_EPOCHS 3

typedef struct scase {
  const char *label;
  int k;              /* epochs committed before the fault */
  faults_plan plan;   /* armed after the k-th commit */
  int max_pages;      /* instead: VACUUM, then max_page_count = page_count */
  int read_only;      /* instead: the connection is opened with mode=ro */
  const char *expect; /* in the error message */
  int truncate;       /* journal_mode=TRUNCATE instead of DELETE */
  const char *no_wal; /* why the case does not apply in WAL mode, or NULL */
} scase;

static const scase cases[] = {
    {.label = "SQLITE_FULL on every write",
     .k = 1,
     .plan = {.write_rc = SQLITE_FULL},
     .expect = "database or disk is full"},
    /* A new model's first save adds its optimizer state: new pages. */
    {.label = "max_page_count = page_count after VACUUM",
     .k = 0,
     .max_pages = 1,
     .expect = "database or disk is full"},
    {.label = "SQLITE_IOERR_WRITE",
     .k = 2,
     .plan = {.write_rc = SQLITE_IOERR_WRITE},
     .expect = "disk I/O error"},
    {.label = "SQLITE_IOERR_FSYNC",
     .k = 1,
     .plan = {.sync_rc = SQLITE_IOERR_FSYNC},
     .expect = "disk I/O error"},
    {.label = "journal open fails with SQLITE_CANTOPEN",
     .k = 1,
     .plan = {.open_rc = SQLITE_CANTOPEN},
     .expect = "unable to open database file",
     .no_wal = "the WAL is opened once, at the connection's first read"},
    {.label = "journal open fails with SQLITE_READONLY",
     .k = 1,
     .plan = {.open_rc = SQLITE_READONLY},
     .expect = "attempt to write a readonly database",
     .no_wal = "the WAL is opened once, at the connection's first read"},
    {.label = "SQLITE_READONLY on every write",
     .k = 1,
     .plan = {.write_rc = SQLITE_READONLY},
     .expect = "attempt to write a readonly database"},
    /* A transient fault in the middle of the save (rollback journal: a
     * statement after the first rows were written; WAL: the commit), so the
     * extension's own rollback must undo the statements that worked, on a
     * disk that works again: SQLite rolls back the whole transaction by
     * itself only after I/O errors and a full disk. */
    {.label = "SQLITE_READONLY once, on the 13th write",
     .k = 1,
     .plan = {.write_rc = SQLITE_READONLY, .skip = 12, .once = 1},
     .expect = "attempt to write a readonly database"},
    {.label = "database opened with mode=ro",
     .k = 0,
     .read_only = 1,
     .expect = "attempt to write a readonly database"},
    /* Neither DELETE nor WAL mode truncates a file while saving; TRUNCATE
     * mode ends every commit by truncating the journal, after the database
     * file was written: the commit fails with a hot journal, which the next
     * connection rolls back. */
    {.label = "SQLITE_IOERR_TRUNCATE",
     .k = 1,
     .plan = {.truncate_rc = SQLITE_IOERR_TRUNCATE},
     .expect = "disk I/O error",
     .truncate = 1,
     .no_wal = "TRUNCATE is a rollback-journal mode"},
};

static faults_str ref[REF_EPOCHS + 1]; /* the reference model's state after e epochs */

/* Arms a plan at the first statement after the k-th commit: the commit hook
 * runs inside the committing statement, before the commit is written, so
 * arming there would fail commit k itself. */
typedef struct arming {
  int k, commits, armed;
  const faults_plan *plan; /* borrowed */
} arming;

static int on_commit(void *p) {
  ((arming *)p)->commits++;
  return 0;
}

static int on_trace(unsigned type, void *p, void *stmt, void *sql) {
  (void)type, (void)stmt, (void)sql;
  arming *a = p;
  if (!a->armed && a->commits >= a->k) {
    faults_vfs_arm(a->plan);
    a->armed = 1;
  }
  return 0;
}

/* Runs one statement whose one row is a text; 0 on success. */
static int run(sqlite3 *db, const char *sql, faults_str *value, char *msg, size_t size) {
  int rc = faults_query(db, sql, value);
  if (rc == SQLITE_ROW) return 0;
  snprintf(msg, size, "%s", faults_str_get(value));
  return rc == SQLITE_DONE ? SQLITE_ERROR : rc;
}

static int train(sqlite3 *db, const char *name, const char *options, faults_str *value) {
  char sql[300], msg[300];
  snprintf(sql, sizeof sql, "SELECT cnn_train('%s', 'train', '%s')", name, options);
  int rc = run(db, sql, value, msg, sizeof msg);
  return CHECKF(rc == 0, "%s: %s", sql, msg) ? 0 : 1;
}

static int create(sqlite3 *db, const char *name) {
  char sql[600];
  faults_str v = {0};
  snprintf(sql, sizeof sql, "SELECT cnn_create('%s', '%s', 1)", name, faults_spec);
  int rc = faults_query(db, sql, &v);
  int ok = CHECKF(rc == SQLITE_ROW, "%s: %s", sql, faults_str_get(&v));
  faults_str_clear(&v);
  return !ok;
}

static int same(const faults_str *a, const faults_str *b) {
  return a->len == b->len && !memcmp(a->s, b->s, a->len);
}

/* The reference states, and the determinism they rely on. */
static int reference(void) {
  char path[1100];
  faults_str v = {0}, two = {0};
  int bad = 0;
  snprintf(path, sizeof path, "%s/reference.db", faults_dir);
  faults_remove_db(path);
  sqlite3 *db = faults_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (!db) return 1;
  bad |= faults_fill_tables(db) | create(db, "m") | faults_model_state(db, "m", &ref[0]);
  for (int e = 1; e <= REF_EPOCHS && !bad; e++)
    bad |= train(db, "m", OPTIONS(1), &v) | faults_model_state(db, "m", &ref[e]);
  bad |= create(db, "d") | train(db, "d", OPTIONS(2), &v) | faults_model_state(db, "d", &two);
  int det = CHECKF(same(&two, &ref[2]),
                   "training is not deterministic: 2 epochs in one call differ from 1 + 1");
  if (det)
    printf(
        "storage: training is deterministic: 2 epochs in one call = 1 + 1 epochs, bit for bit\n");
  faults_close(db);
  faults_remove_db(path);
  faults_str_clear(&v);
  faults_str_clear(&two);
  return bad || !det;
}

/* cnn_models' counters agree with the history rows and the stored tensors. */
static void check_consistent(sqlite3 *db, int epochs, const char *where) {
  faults_str v = {0};
  char want[200];
  faults_rows(db,
              "SELECT epochs, step, "
              "(SELECT group_concat(epoch) FROM "
              "(SELECT epoch FROM cnn_epochs WHERE model = 'm' ORDER BY epoch)), "
              "(SELECT count(*) FROM cnn_weights WHERE model = 'm'), "
              "(SELECT count(*) FROM cnn_optimizer_state WHERE model = 'm') "
              "FROM cnn_models WHERE name = 'm'",
              NULL, &v);
  char hist[64] = "NULL";
  for (int e = 1, k = 0; e <= epochs; e++)
    k += snprintf(hist + k, sizeof hist - (size_t)k, e == 1 ? "%d" : ",%d", e);
  snprintf(want, sizeof want, "%d|%d|%s|4|%d|\n", epochs, epochs * BATCHES_PER_EPOCH, hist,
           epochs ? 8 : 0);
  CHECKF(!strcmp(faults_str_get(&v), want),
         "%s: counters|step|history|tensors|slots are %.*s, expected %.*s", where,
         (int)strcspn(faults_str_get(&v), "\n"), faults_str_get(&v), (int)strcspn(want, "\n"),
         want);
  faults_integrity_ok(db);
  faults_str_clear(&v);
}

static void storage_case(const scase *c, int wal) {
  char path[1100], uri[1200], where[200], msg[300] = "", sql[100];
  faults_str v = {0}, state = {0};
  const char *mode = wal ? "wal" : c->truncate ? "truncate" : "delete";
  snprintf(where, sizeof where, "storage: %s, %s", mode, c->label);
  snprintf(path, sizeof path, "%s/storage.db", faults_dir);
  faults_remove_db(path);

  /* A new model 'm' beside its data, in the journal mode of the case. */
  sqlite3 *db = faults_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, FAULTS_VFS);
  if (!db) return;
  char pragma[60];
  snprintf(pragma, sizeof pragma, "PRAGMA journal_mode = %s", mode);
  faults_exec(db, pragma);
  int bad = faults_fill_tables(db) | create(db, "m");
  faults_close(db);
  if (bad) return;

  int64_t bytes0 = faults_sqlite_bytes(), blocks0 = faults_sqlite_blocks();
  int64_t engine0 = faults_engine_blocks();
  snprintf(uri, sizeof uri, "file:%s?mode=ro", path);
  db = c->read_only ? faults_open(uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, FAULTS_VFS)
                    : faults_open(path, SQLITE_OPEN_READWRITE, FAULTS_VFS);
  if (!db) return;
  /* Only WAL mode is stored in the file; TRUNCATE is the connection's. */
  faults_exec(db, pragma);
  faults_exec(db, "PRAGMA synchronous = FULL");
  if (c->max_pages) {
    faults_exec(db, "VACUUM");
    faults_query(db, "PRAGMA page_count", &v);
    int pages = atoi(faults_str_get(&v));
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", pages);
    faults_query(db, sql, &v);
    CHECKF(pages > 0 && atoi(faults_str_get(&v)) == pages, "%s: max_page_count %s, page_count %d",
           where, faults_str_get(&v), pages);
  }
  arming arm = {c->k, 0, 0, &c->plan};
  int has_plan = c->plan.write_rc || c->plan.sync_rc || c->plan.truncate_rc || c->plan.open_rc;
  if (has_plan) {
    sqlite3_commit_hook(db, on_commit, &arm);
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_trace, &arm);
  }
  int rc = run(db, "SELECT cnn_train('m', 'train', '" OPTIONS(3) "')", &v, msg, sizeof msg);
  faults_vfs_disarm();
  int hits = faults_vfs_hits();
  sqlite3_commit_hook(db, NULL, NULL);
  sqlite3_trace_v2(db, 0, NULL, NULL);
  CHECKF(rc != 0, "%s: cnn_train succeeded: %s", where, faults_str_get(&v));
  CHECKF(!strncmp(msg, "cnn_train: ", 11) && strstr(msg, c->expect),
         "%s: the error should name cnn_train and say \"%s\"; got %d \"%s\"", where, c->expect, rc,
         msg);
  if (has_plan)
    CHECKF(arm.armed && hits > 0, "%s: the fault never hit (armed %d)", where, arm.armed);
  CHECKF(sqlite3_get_autocommit(db), "%s: the connection was left inside a transaction", where);
  faults_close(db);
  db = NULL;

  /* Faults off, a new connection: exactly the epochs committed before. */
  if (!(db = faults_open(path, SQLITE_OPEN_READWRITE, FAULTS_VFS))) return;
  check_consistent(db, c->k, where);
  faults_model_state(db, "m", &state);
  CHECKF(same(&state, &ref[c->k]),
         "%s: the stored model differs from the reference after %d epochs", where, c->k);
  /* And training resumes with the next epoch. */
  char want[40];
  snprintf(want, sizeof want, "\"epochs\":%d,", c->k + 1);
  int resumed =
      !train(db, "m", OPTIONS(1), &v) && CHECKF(strstr(faults_str_get(&v), want) != NULL,
                                                "%s: resumed to %s", where, faults_str_get(&v));
  check_consistent(db, c->k + 1, where);
  faults_model_state(db, "m", &state);
  CHECKF(same(&state, &ref[c->k + 1]),
         "%s: after resuming, the model differs from the reference after %d epochs", where,
         c->k + 1);
  faults_close(db);
  CHECKF(faults_sqlite_bytes() == bytes0 && faults_sqlite_blocks() == blocks0,
         "%s: SQLite holds %lld more bytes in %lld more blocks after close", where,
         (long long)(faults_sqlite_bytes() - bytes0),
         (long long)(faults_sqlite_blocks() - blocks0));
  CHECKF(faults_engine_blocks() == engine0, "%s: the engine holds %lld more blocks after close",
         where, (long long)(faults_engine_blocks() - engine0));

  char when[40] = "from the start";
  if (c->k) snprintf(when, sizeof when, "after epoch %d", c->k);
  printf("storage: %s, %s %s: error '%s', %d epoch%s kept, %s %d\n", mode, c->label, when, msg,
         c->k, c->k == 1 ? "" : "s", resumed ? "resumed to" : "FAILED to resume to", c->k + 1);
  fflush(stdout);
  faults_remove_db(path);
  faults_str_clear(&v);
  faults_str_clear(&state);
}

int faults_storage(void) {
  if (faults_load_data() || reference()) return 1;
  for (int wal = 0; wal < 2; wal++)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      if (wal && cases[i].no_wal) {
        printf("storage: wal, %s: not applicable (%s)\n", cases[i].label, cases[i].no_wal);
        continue;
      }
      storage_case(&cases[i], wal);
    }
  for (int e = 0; e <= REF_EPOCHS; e++) faults_str_clear(&ref[e]);
  return 0;
}
