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
 * Refcounted: the connection's cache holds one reference, callers others.
 * (Not to be confused with the engine's cnn_model_save/load blob format.) */
typedef struct cnn_stored_model {
  int refs;
  char *name; /* owned */
  int64_t version;
  cnn_net *net;  /* owned */
  int has_optim; /* opt was loaded (training); else opt is empty */
  cnn_optim opt; /* owned state */
  int epochs;    /* completed epochs */
} cnn_stored_model;

#define CNN_CACHE_MODELS 4

typedef struct cnn_conn cnn_conn;

/* The user data of one registered function or module: the connection's
 * state and the SQL name it was registered under, which prefixes its error
 * messages ("cnn_train: ..."), so that no message spells a name by hand. */
typedef struct cnn_binding {
  cnn_conn *conn;   /* borrowed: holds one of conn->refs */
  const char *name; /* static: "cnn_train" */
} cnn_binding;

/* Per-connection state, shared by every function and module through their
 * bindings; refcounted by the registrations, freed by the last destructor
 * (ext/cnn.c). It must not hold prepared statements: they would keep
 * sqlite3_close from closing the connection that would free them. */
struct cnn_conn {
  int refs;
  cnn_stored_model *cache[CNN_CACHE_MODELS]; /* owned references, most recent first */
  cnn_threads *pool;                         /* owned, for inference; created on first use */
  size_t nbindings;                          /* one per registration */
  cnn_binding bindings[];                    /* the user data of each registration */
};

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
/* The inference precision set for a model by cnn_precision: *bf16 = 1 for
 * "bf16", 0 for "fp32" (the default, also without a settings table). */
int cnn_store_bf16(sqlite3 *db, const char *name, int *bf16, char *err);
/* Loads a model from the tables (with its optimizer state when with_optim);
 * the caller owns the result (cnn_stored_model_release). Missing model:
 * CNN_ERROR "no model named 'x'". */
int cnn_store_load(sqlite3 *db, const char *name, int with_optim, cnn_stored_model **out,
                   char *err);
void cnn_stored_model_release(cnn_stored_model *m);
/* The connection's cached model of that name, reloaded when its version in
 * the database changed; a new reference (release it). name NULL = the
 * database's default model. */
int cnn_cache_get(cnn_conn *conn, sqlite3 *db, const char *name, cnn_stored_model **out, char *err);
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
/* Ends a writer's call: commits when rc is CNN_OK, else (or when the commit
 * fails) rolls back and reports the status as the call's result. */
void cnn_tx_finish(sqlite3_context *ctx, sqlite3 *db, cnn_tx *tx, int rc, const char *err);

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
/* Whether source is a table name ("t" or "schema.t") rather than a query. */
int cnn_source_is_name(const char *source);
/* SELECT of a table's (image, label) columns, as cnn_source_prepare picks
 * them, followed by `where` (" WHERE rowid = ?1"); schema may be NULL. An
 * SQLite status, or -1 when out of memory before preparing. */
int cnn_source_prepare_table(sqlite3 *db, const char *schema, const char *table, const char *where,
                             sqlite3_stmt **stmt);
int cnn_source_row(sqlite3_stmt *stmt, size_t row, cnn_shape in, int classes, int need_labels,
                   uint8_t *image, int *label, char *err);
int cnn_source_read(sqlite3 *db, const char *source, cnn_shape in, int classes, int need_labels,
                    cnn_rows *out, char *err);
void cnn_rows_clear(cnn_rows *r);

/* ---- streamed sources (ext/stream.c) ------------------------------------ */

/* How a source reaches the engine (the training option "data"): in memory,
 * streamed from its table batch by batch, or (auto) streamed when its images
 * would take more than 1 GiB. */
typedef enum { CNN_DATA_AUTO, CNN_DATA_MEMORY, CNN_DATA_STREAM } cnn_data_mode;
const char *cnn_data_mode_name(cnn_data_mode m);
/* The value of an option "data" (cnn_train's, cnn_evaluate's): "auto",
 * "memory" or "stream", else an error naming the option. */
int cnn_data_mode_parse(const struct cnn_json *x, cnn_data_mode *mode, char *err);
typedef struct cnn_stream cnn_stream;
/* A source set up for streaming, or *out NULL when it is to be read into
 * memory (cnn_source_read): with auto a query, and a table small enough; a
 * view or WITHOUT ROWID table (an error with CNN_DATA_STREAM). A query is
 * streamed only with CNN_DATA_STREAM, through the caller's connection. */
int cnn_stream_open(sqlite3 *db, const char *source, cnn_shape in, int classes, int need_labels,
                    cnn_data_mode mode, size_t shuffle_buffer, cnn_stream **out, char *err);
size_t cnn_stream_count(const cnn_stream *s);
/* The shuffle_buffer of cnn_stream_open: a query source with "stream" is
 * read in order (0: validation, or training without shuffle), through a
 * buffer of that many rows, or refused (CNN_STREAM_NO_BUFFER: shuffled
 * training without the option). */
#define CNN_STREAM_NO_BUFFER ((size_t)-1)
/* The seed and first epoch of a query's shuffle buffer. */
void cnn_stream_seed(cnn_stream *s, uint64_t seed, int first_epoch);
/* What the stream's read errors say the source is ("validation "): a
 * static string put before their message. */
void cnn_stream_role(cnn_stream *s, const char *prefix);
/* A dataset reading through s (which must outlive it). */
void cnn_stream_dataset(cnn_stream *s, cnn_dataset *d);
void cnn_stream_free(cnn_stream *s);

/* Interrupts, for engine work that runs long: a prepared "SELECT 1" fails
 * with SQLITE_INTERRUPT once the connection is interrupted (the flag stays
 * set while the calling statement runs; this works on SQLite versions
 * before sqlite3_is_interrupted). cnn_probe_stop is a cnn_stop_fn on it. */
int cnn_probe_open(sqlite3 *db, sqlite3_stmt **probe, char *err);
int cnn_probe_stop(void *probe);

/* ---- arguments and errors (ext/cnn.c) ------------------------------------
 *
 * One convention for every function and table: a message is written into a
 * caller-owned err[CNN_ERRMAX] with cnn_error() (no function name in it) and
 * reported once, by cnn_result_status for a function or cnn_vtab_status for a
 * table, which prefix the SQL name the call was registered under. */

/* The connection state and SQL name of a call (its cnn_binding). */
cnn_conn *cnn_ctx_conn(sqlite3_context *ctx);
const char *cnn_ctx_name(sqlite3_context *ctx);

/* Reports an engine status as the SQL result: CNN_NOMEM becomes
 * sqlite3_result_error_nomem, CNN_INTERRUPTED SQLITE_INTERRUPT, anything
 * else the error "name: err". */
void cnn_result_status(sqlite3_context *ctx, int status, const char *err);

/* "NULL", "an integer", "a real", "a text", "a 2-byte blob": for messages. */
const char *cnn_value_describe(sqlite3_value *v, char *buf, size_t size);

/* An integer argument: an INTEGER, or a REAL with a whole value (bindings
 * such as better-sqlite3 bind every JavaScript number as a REAL). */
int cnn_value_is_int(sqlite3_value *v, sqlite3_int64 *out);

/* A model name argument: non-empty text of at most 200 bytes ("name must
 * be ..."). */
int cnn_arg_name(sqlite3_value *v, const char **name, char *err);
/* A source argument: a table name or a query, as text ("source must be
 * ..."). */
int cnn_arg_source(sqlite3_value *v, const char **source, char *err);
/* An options argument: JSON text, or NULL (*options NULL: the defaults)
 * ("options must be JSON text or NULL; got ..."). */
int cnn_arg_options(sqlite3_value *v, const char **options, char *err);

/* Reads an image argument (raw 784-byte MNIST blob or an encoded image file)
 * into the MNIST convention. On failure returns a status with a message
 * naming the argument ("image must be 784 raw bytes or an encoded image; got a
 * 2-byte blob"). Defined in ext/image.c. */
int cnn_arg_image(sqlite3_value *v, uint8_t out[784], char *err);

/* ---- table-valued functions (ext/vtab.c) ----------------------------------
 *
 * Every table-valued function is an eponymous virtual table whose arguments
 * are hidden columns after the visible ones (SQLite's series.c pattern). A
 * cnn_table describes one; the functions below are its common skeleton, and
 * the table's own file adds xBestIndex details, xFilter, xNext, xEof and
 * xColumn. */

#define CNN_VTAB_MAX_ARGS 4

/* A cursor: each table's cursor type starts with this. */
typedef struct cnn_cursor {
  sqlite3_vtab_cursor base;
  sqlite3_int64 rowid;
  sqlite3_value *args[CNN_VTAB_MAX_ARGS]; /* owned copies of the arguments; NULL if absent */
} cnn_cursor;

typedef struct cnn_table {
  const char *schema; /* CREATE TABLE x(...), the hidden argument columns last */
  int direct_only;    /* runs the caller's SQL or reads files: not from views, triggers */
  int first_arg;      /* column of the first hidden argument */
  int nargs;          /* hidden argument columns */
  int required;       /* how many of them, from the first, every call needs */
  const char *usage;  /* when one is missing: "name argument is required: cnn_summary(name)" */
  int late_usage;     /* report a missing argument from xFilter, not xBestIndex */
  size_t cursor_size; /* of the table's cursor type */
  void (*reset)(cnn_cursor *cur); /* frees what a scan holds (NULL: nothing) */
} cnn_table;

typedef struct cnn_vtab {
  sqlite3_vtab base;
  sqlite3 *db;                /* borrowed: the connection */
  const cnn_binding *binding; /* borrowed: the module's user data */
  const cnn_table *table;     /* static */
} cnn_vtab;

/* xConnect: declares the schema and the direct-only rule. */
int cnn_vtab_connect(sqlite3 *db, void *aux, const cnn_table *table, sqlite3_vtab **out);
int cnn_vtab_disconnect(sqlite3_vtab *vtab);
int cnn_vtab_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out);
int cnn_vtab_close(sqlite3_vtab_cursor *cur);
int cnn_vtab_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid);

/* The argument part of xBestIndex: usable equality constraints on the
 * argument columns become xFilter's first arguments, in column order, and
 * bit k of info->idxNum says argument k came; *argc counts them, for tables
 * that pass more. An argument constrained only unusably in this join order
 * gives SQLITE_CONSTRAINT (SQLite tries another order). A required argument
 * missing altogether is an error with the table's usage; with late_usage,
 * a plan at a prohibitive cost instead, whose xFilter reports the usage
 * (failing at once also fails queries with an OR, which SQLite plans term
 * by term before it picks the plan that has the arguments). */
int cnn_vtab_plan_args(sqlite3_vtab *vtab, sqlite3_index_info *info, int *argc);
/* The argument part of xFilter: resets the cursor, reports a missing
 * required argument, keeps copies of the arguments for their columns.
 * *used = how many of argv they took. */
int cnn_vtab_filter_args(cnn_cursor *cur, int idxNum, int argc, sqlite3_value **argv, int *used);
/* xColumn of an argument column. */
int cnn_vtab_arg_column(const cnn_cursor *cur, sqlite3_context *ctx, int col);
/* Reports a status through the table (zErrMsg "name: err"); returns the
 * SQLite code. */
int cnn_vtab_status(sqlite3_vtab *vtab, int status, const char *err);

/* ---- running a model over a source (ext/batch.c) -------------------------- */

/* Rows per forward pass of the table-valued functions: big enough for the
 * GEMMs to run at speed, small enough (200 KB of MNIST images) to stay in
 * cache and to let the first rows come out quickly. */
#define CNN_BATCH_ROWS 256

/* A source read CNN_BATCH_ROWS rows at a time, each batch predicted. */
typedef struct cnn_batch {
  sqlite3_stmt *stmt;      /* owned: the source query */
  cnn_stored_model *model; /* owned reference */
  cnn_shape in;
  size_t in_bytes; /* h*w*c */
  int classes;
  int need_labels;
  uint8_t *images;            /* owned, CNN_BATCH_ROWS x in_bytes */
  float *probs;               /* owned, CNN_BATCH_ROWS x classes */
  int labels[CNN_BATCH_ROWS]; /* -1: none */
  int n;                      /* rows in the batch */
  sqlite3_int64 first;        /* source row number (0-based) of the batch's first row */
  int done;                   /* the source has no more rows */
} cnn_batch;

/* Loads the model and prepares the source (name and source arguments). */
int cnn_batch_open(cnn_batch *b, sqlite3 *db, cnn_conn *conn, sqlite3_value *name,
                   sqlite3_value *source, int need_labels, char *err);
/* Reads and predicts the next batch; b->n == 0 at the end. */
int cnn_batch_next(cnn_batch *b, sqlite3 *db, char *err);
void cnn_batch_clear(cnn_batch *b);
/* First index of the largest value: the engine's own rule (cnn_evaluate). */
int cnn_argmax(const float *p, int k);

/* ---- SQL functions, registered from the table in ext/cnn.c ---------------- */

void cnn_fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_debug(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_preprocess(sqlite3_context *ctx, int argc, sqlite3_value **argv);   /* image.c */
void cnn_fn_import_mnist(sqlite3_context *ctx, int argc, sqlite3_value **argv); /* mnist.c */
void cnn_fn_create(sqlite3_context *ctx, int argc, sqlite3_value **argv);       /* models.c */
void cnn_fn_drop(sqlite3_context *ctx, int argc, sqlite3_value **argv);         /* models.c */
void cnn_fn_default(sqlite3_context *ctx, int argc, sqlite3_value **argv);      /* models.c */
void cnn_fn_precision(sqlite3_context *ctx, int argc, sqlite3_value **argv);    /* models.c */
void cnn_fn_export(sqlite3_context *ctx, int argc, sqlite3_value **argv);       /* exchange.c */
void cnn_fn_import(sqlite3_context *ctx, int argc, sqlite3_value **argv);       /* exchange.c */
void cnn_fn_export_onnx(sqlite3_context *ctx, int argc, sqlite3_value **argv);  /* onnx.c */
void cnn_fn_train(sqlite3_context *ctx, int argc, sqlite3_value **argv);        /* train.c */
void cnn_fn_predict(sqlite3_context *ctx, int argc, sqlite3_value **argv);      /* predict.c */
void cnn_fn_predict_proba(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_evaluate(sqlite3_context *ctx, int argc, sqlite3_value **argv);        /* evaluate.c */
void cnn_fn_image_png(sqlite3_context *ctx, int argc, sqlite3_value **argv);       /* pictures.c */
void cnn_fn_grid_png(sqlite3_context *ctx, int argc, sqlite3_value **argv);        /* pictures.c */
void cnn_fn_history_svg(sqlite3_context *ctx, int argc, sqlite3_value **argv);     /* pictures.c */
void cnn_fn_layer_stats_svg(sqlite3_context *ctx, int argc, sqlite3_value **argv); /* pictures.c */
void cnn_fn_augment(sqlite3_context *ctx, int argc, sqlite3_value **argv);         /* augment.c */

/* Table-valued functions, each in the file of its name. */
extern const sqlite3_module cnn_mnist_module;
extern const sqlite3_module cnn_predictions_module;
extern const sqlite3_module cnn_confusion_module;
extern const sqlite3_module cnn_summary_module;
extern const sqlite3_module cnn_history_module;
extern const sqlite3_module cnn_layer_stats_module; /* history.c */

/* Keras-style progress on stderr (ext/progress.c): the one place that prints. */
typedef struct cnn_progress {
  int enabled;
  double last;    /* when the line was last drawn */
  int epoch_open; /* a bar line is being drawn */
} cnn_progress;
void cnn_progress_batch(cnn_progress *p, const cnn_batch_progress *b, int total_epochs);
void cnn_progress_epoch(cnn_progress *p, const cnn_epoch_stats *s, size_t batches);

#endif
