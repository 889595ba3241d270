/*
 * faults.h - the fault-injection harness of the SQL face: the extension is
 * compiled into this program (SQLITE_CORE) and linked with the system SQLite,
 * so the program controls every allocation and every file operation.
 *
 *   test_faults sql_oom    out of memory at every SQLite and every engine
 *                          allocation of each SQL function (sql_oom.c)
 *   test_faults storage    disk full, I/O errors and read-only files while
 *                          cnn_train checkpoints its epochs (storage.c)
 *
 * Memory is counted in three separate pools, so that each check sees only
 * what it is about:
 *  - SQLite's allocations go through a counting allocator installed with
 *    SQLITE_CONFIG_MALLOC (harness.c): it can fail the n-th one and knows the
 *    bytes outstanding, so a leak shows up after sqlite3_close.
 *  - The engine's allocations (cnn_malloc, which calls malloc) are counted by
 *    wrapping malloc/calloc/realloc/free at link time (-Wl,--wrap=...); only
 *    src/base.c calls malloc in the engine and the extension. Failing them is
 *    cnn_alloc_fail_at's job.
 *  - The harness's own buffers use the __real_ functions and count nowhere.
 */
#ifndef CNN_FAULTS_H
#define CNN_FAULTS_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* ---- checks --------------------------------------------------------------- */

/* Counts a check; prints "file:line: message" when it failed. Returns ok. */
int faults_check(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define CHECK(cond) faults_check((cond) != 0, __FILE__, __LINE__, "CHECK(%s) failed", #cond)
#define CHECKF(cond, ...) faults_check((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)
/* 0 when every check passed (and at least one ran). */
int faults_summary(void);
/* Prints only the next n failures (a systematic fault fails thousands of
 * runs alike); the count stays exact. 40 at the start. */
void faults_print_budget(int n);

/* ---- memory ------------------------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

/* Installs the counting allocator, initialises SQLite, registers the
 * extension for every new connection and the fault VFS. Call first. */
int faults_init(void);

/* SQLite's allocations: from the next one on, count, and fail the n-th (0:
 * none); returns how many were made since the previous call. */
uint64_t faults_sqlite_fail_at(uint64_t n);
/* Bytes and blocks SQLite holds now. */
int64_t faults_sqlite_bytes(void);
int64_t faults_sqlite_blocks(void);
/* Engine blocks alive now (cnn_malloc minus cnn_free). */
int64_t faults_engine_blocks(void);

/* A growable string in the harness's own memory. */
typedef struct faults_str {
  char *s; /* owned (__real_malloc), NUL-terminated when len > 0 */
  size_t len, cap;
} faults_str;
void faults_str_add(faults_str *b, const char *p, size_t n);
void faults_str_printf(faults_str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *faults_str_get(const faults_str *b); /* "" when empty */
void faults_str_clear(faults_str *b);

/* ---- databases -------------------------------------------------------------- */

/* Opens a connection (the extension registers itself); NULL after a failed
 * check. vfs NULL = the default. */
sqlite3 *faults_open(const char *path, int flags, const char *vfs);
/* Closes; a statement left unfinalized or a failing close is a failed check
 * (the statements are named and finalized before the close). Returns 1 when
 * the close was clean. */
int faults_close(sqlite3 *db);
/* Runs SQL that must succeed. */
int faults_exec(sqlite3 *db, const char *sql);
/* The first column of the first row of sql as text into out ("" for none);
 * SQLITE_ROW/DONE on success, else the error code (message in out). */
int faults_query(sqlite3 *db, const char *sql, faults_str *out);
/* Appends every row of sql: columns separated by '|', rows by '\n', blobs as
 * hex, reals with 17 digits. Columns named in `skip` (space-separated, each
 * surrounded by spaces: " seconds finished ") are left out. */
int faults_rows(sqlite3 *db, const char *sql, const char *skip, faults_str *out);
/* Every row of the model tables and the schema. normalized leaves out what
 * differs between two equal runs: timestamps, epoch durations, and versions
 * (a new model's version starts at a random number). */
int faults_snapshot(sqlite3 *db, int normalized, faults_str *out);
/* A model's trained state: counters, optimizer, history without durations,
 * weights and optimizer state, bit for bit (no name, so models compare). */
int faults_model_state(sqlite3 *db, const char *name, faults_str *out);
/* PRAGMA integrity_check says "ok". */
int faults_integrity_ok(sqlite3 *db);

/* The test data: 64 training and 16 validation MNIST images from $CNN_DATA,
 * read with the engine's IDX reader. */
#define FAULTS_NTRAIN 64
#define FAULTS_NVAL 16
int faults_load_data(void);
/* Creates tables train and val(image BLOB, label INTEGER) with that data. */
int faults_fill_tables(sqlite3 *db);
/* The raw 784-byte image of validation row i. */
const uint8_t *faults_val_image(int i);

/* The small model of both tests: 3410 parameters. */
extern const char faults_spec[];

/* Removes path and its -journal, -wal and -shm files. */
void faults_remove_db(const char *path);
/* The directory for database files (made by main). */
extern char faults_dir[];

/* ---- the fault VFS (faultvfs.c) ---------------------------------------------- */

#define FAULTS_VFS "faultvfs"

/* What fails while armed; 0 = works. Faults hit the files a transaction
 * writes: the main database, its rollback journal and its WAL. */
typedef struct faults_plan {
  int write_rc;    /* xWrite */
  int sync_rc;     /* xSync */
  int truncate_rc; /* xTruncate */
  int open_rc;     /* xOpen of a rollback journal or WAL file */
  int skip;        /* operations that would fail but still work first */
  int once;        /* disarm after the first failure (a transient fault) */
} faults_plan;

int faults_vfs_register(void);
void faults_vfs_arm(const faults_plan *plan);
void faults_vfs_disarm(void);
/* Operations refused since the last arm. */
int faults_vfs_hits(void);

/* ---- the two tests ------------------------------------------------------------ */

int faults_sql_oom(void);
int faults_storage(void);

#endif
