/*
 * ext.h - shared declarations of the SQLite face (ext/). Only ext/ includes
 * sqlite3ext.h; everything here turns SQL values into engine calls and engine
 * statuses into SQL errors.
 *
 * Error messages name the function, the argument, what was expected and what
 * came: "cnn_predict: image must be 784 raw bytes or an encoded image; got a
 * 2-byte blob".
 */
#ifndef CNN_EXT_H
#define CNN_EXT_H

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "base.h"

#include "cnn.h"
#include "model.h"

/* A model loaded from the tables: network, optimizer and counters, as of
 * `version` (cnn_models.version, bumped on every write of its weights).
 * Refcounted: the connection's cache holds one reference, callers others. */
typedef struct cnn_model {
  int refs;
  char *name; /* owned */
  int64_t version;
  cnn_net *net;  /* owned */
  int has_optim; /* opt was loaded (training); else opt is empty */
  cnn_optim opt; /* owned state */
  int epochs;    /* completed epochs */
} cnn_model;

#define CNN_CACHE_MODELS 4

/* Per-connection state, the user data of every function and module;
 * refcounted by the registrations, freed by the last destructor (ext/cnn.c).
 * It must not hold prepared statements: they would keep sqlite3_close from
 * closing the connection that would free them. */
typedef struct cnn_conn {
  int refs;
  cnn_model *cache[CNN_CACHE_MODELS]; /* owned references, most recent first */
  cnn_threads *pool;                  /* owned, for inference; created on first use */
} cnn_conn;

/* ---- model storage (ext/store.c) --------------------------------------- */

/* Creates the storage tables and triggers if they are missing. */
int cnn_store_init(sqlite3 *db, char *err);
/* Is there a model of that name? (0/1, or -1 with err) */
int cnn_store_exists(sqlite3 *db, const char *name, char *err);
/* Writes a new model row and its weights (and optimizer state when opt). */
int cnn_store_create(sqlite3 *db, const char *name, const cnn_net *net, char *err);
/* Writes weights, optimizer state and counters of an existing model; bumps
 * its version. */
int cnn_store_save(sqlite3 *db, const char *name, const cnn_net *net, const cnn_optim *opt,
                   int epochs, char *err);
/* The version of a stored model (error "no model named 'x'" if missing). */
int cnn_store_version(sqlite3 *db, const char *name, sqlite3_int64 *version, char *err);
/* Loads a model from the tables (with its optimizer state when with_optim);
 * the caller owns the result (cnn_model_release). Missing model: CNN_ERROR
 * "no model named 'x'". */
int cnn_store_load(sqlite3 *db, const char *name, int with_optim, cnn_model **out, char *err);
void cnn_model_release(cnn_model *m);
/* The connection's cached model of that name, reloaded when its version in
 * the database changed; a new reference (release it). name NULL = the
 * database's default model. */
int cnn_model_get(cnn_conn *conn, sqlite3 *db, const char *name, cnn_model **out, char *err);
/* Drops cached copies of a model (after cnn_drop / cnn_import). */
void cnn_cache_forget(cnn_conn *conn, const char *name);
/* The connection's inference thread pool (all cores), created on first use. */
cnn_threads *cnn_conn_pool(cnn_conn *conn);
/* Default model: the most recently trained, or set by cnn_default. */
int cnn_store_set_default(sqlite3 *db, const char *name, char *err);
/* *name = an sqlite3_malloc'd name; an error when there is no model. */
int cnn_store_get_default(sqlite3 *db, char **name, char *err);

/* Transactions for writers. From autocommit mode, BEGIN IMMEDIATE ... COMMIT
 * (a function may commit while only read statements run; the write lock is
 * taken first so that the busy timeout applies); inside the caller's
 * transaction, a SAVEPOINT that nests in it; while a writing statement runs
 * (INSERT ... SELECT cnn_train(...)) nothing is opened and the writes join
 * that statement's transaction. */
enum { CNN_TX_NONE, CNN_TX_BEGIN, CNN_TX_SAVEPOINT };
typedef struct cnn_tx {
  int opened;          /* CNN_TX_... */
  sqlite3_stmt *abort; /* owned: with CNN_TX_BEGIN, a write that ends it (see store.c) */
} cnn_tx;
int cnn_tx_begin(sqlite3 *db, cnn_tx *tx, char *err);
int cnn_tx_commit(sqlite3 *db, cnn_tx *tx, char *err);
void cnn_tx_rollback(sqlite3 *db, cnn_tx *tx);

/* ---- sources (ext/source.c) -------------------------------------------- */

/* Rows of (image, label) read into memory as uint8. */
typedef struct cnn_rows {
  uint8_t *images; /* owned (cnn_malloc), count x image_bytes */
  uint8_t *labels; /* owned, count; 255 where the label was NULL (labels optional) */
  size_t count, cap;
  size_t image_bytes;
} cnn_rows;

/* Source: a table or view name, or a read-only query whose first two columns
 * are (image, label). Images: raw blobs of exactly h*w*c bytes, or (for
 * 28x28x1 models) encoded images preprocessed like cnn_preprocess. Labels
 * must be integers 0..classes-1 when need_labels. Errors name the row:
 * "source row 7: label must be an integer 0..9; got a text". */
int cnn_source_prepare(sqlite3 *db, const char *source, sqlite3_stmt **stmt, char *err);
int cnn_source_row(sqlite3_stmt *stmt, size_t row, cnn_shape in, int classes, int need_labels,
                   uint8_t *image, int *label, char *err);
int cnn_source_read(sqlite3 *db, const char *source, cnn_shape in, int classes, int need_labels,
                    cnn_rows *out, char *err);
void cnn_rows_clear(cnn_rows *r);

/* Interrupts, for engine work that runs long: a prepared "SELECT 1" fails
 * with SQLITE_INTERRUPT once the connection is interrupted (the flag stays
 * set while the calling statement runs; this works on SQLite versions
 * before sqlite3_is_interrupted). cnn_probe_stop is a cnn_stop_fn on it. */
int cnn_probe_open(sqlite3 *db, sqlite3_stmt **probe, char *err);
int cnn_probe_stop(void *probe);

/* Reports an engine status as the SQL result: CNN_NOMEM becomes
 * sqlite3_result_error_nomem, anything else the error "fn: err". */
void cnn_result_status(sqlite3_context *ctx, const char *fn, int status, const char *err);
/* sqlite3_result_error with a printf-style message. */
void cnn_result_errorf(sqlite3_context *ctx, const char *fmt, ...);
/* Sets a virtual table's error message (zErrMsg) from printf-style text. */
void cnn_vtab_errorf(sqlite3_vtab *vtab, const char *fmt, ...);
/* "NULL", "an integer", "a real", "a text", "a 2-byte blob": for messages. */
const char *cnn_value_describe(sqlite3_value *v, char *buf, size_t size);

/* An integer argument: an INTEGER, or a REAL with a whole value (bindings
 * such as better-sqlite3 bind every JavaScript number as a REAL). */
int cnn_value_is_int(sqlite3_value *v, sqlite3_int64 *out);

/* A model name argument: non-empty text of at most 200 bytes. Returns NULL
 * after setting the error "fn: name must be ...". */
const char *cnn_arg_name(sqlite3_context *ctx, const char *fn, sqlite3_value *v);

/* Reads an image argument (raw 784-byte MNIST blob or an encoded image file)
 * into the MNIST convention. On failure returns a status with a message
 * naming the argument ("image must be 784 raw bytes or an encoded image; got a
 * 2-byte blob"). Defined in ext/image.c. */
int cnn_arg_image(sqlite3_value *v, uint8_t out[784], char *err);
/* cnn_preprocess(image), cnn_image_png(image [, scale]): ext/image.c. */
void cnn_fn_preprocess(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_image_png(sqlite3_context *ctx, int argc, sqlite3_value **argv);

/* Scalar functions, registered from the table in ext/cnn.c. */
void cnn_fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_debug(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_import_mnist(sqlite3_context *ctx, int argc, sqlite3_value **argv);

void cnn_fn_create(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_drop(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_default(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_export(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_import(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_train(sqlite3_context *ctx, int argc, sqlite3_value **argv);

/* Using a model (ext/predict.c) and its history (ext/history.c). */
void cnn_fn_predict(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_predict_proba(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_evaluate(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_grid_png(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_history_svg(sqlite3_context *ctx, int argc, sqlite3_value **argv);

/* Keras-style progress on stderr (ext/progress.c): the one place that prints. */
typedef struct cnn_progress {
  int enabled;
  double last;    /* when the line was last drawn */
  int epoch_open; /* a bar line is being drawn */
} cnn_progress;
void cnn_progress_batch(cnn_progress *p, const cnn_batch_progress *b, int total_epochs);
void cnn_progress_epoch(cnn_progress *p, const cnn_epoch_stats *s, size_t batches);

/* Eponymous table-valued functions. */
extern const sqlite3_module cnn_mnist_module;
extern const sqlite3_module cnn_predictions_module;
extern const sqlite3_module cnn_confusion_module;
extern const sqlite3_module cnn_summary_module;
extern const sqlite3_module cnn_history_module;

#endif
