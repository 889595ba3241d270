/*
 * predict.c - using a stored model from SQL: the scalar functions
 * cnn_predict, cnn_predict_proba and cnn_evaluate, the table-valued functions
 * cnn_predictions, cnn_confusion and cnn_summary, and cnn_grid_png (a picture
 * of a source's images).
 *
 *   SELECT cnn_predict('nb', image) FROM mnist_test;         -- 0..9
 *   SELECT * FROM cnn_predictions('nb', 'mnist_test');         -- batched
 *   SELECT * FROM cnn_confusion('nb', 'mnist_test');
 *   SELECT cnn_evaluate('nb', 'mnist_test');    -- {"loss":..,"accuracy":..,"count":..}
 *   SELECT * FROM cnn_summary('nb');                           -- Keras' summary
 *
 * Models come from the connection's cache (cnn_model_get in ext/store.c),
 * which reloads a model whenever its cnn_models.version changed, so every
 * statement sees the weights committed when it first used the model. A scalar
 * call with a constant name also keeps its model as auxdata for the rest of
 * the statement: 10000 calls cost one version lookup, not 10000, and one
 * statement sees one version of the model even if it retrains it meanwhile.
 *
 * Every use of a network is "fill the input, forward, copy the outputs out"
 * within one call of the engine (cnn_net_predict), so a cached network shared
 * by several cursors and scalar calls of one connection is never observed
 * half-used. The table-valued functions hold their own model reference.
 *
 * Security: cnn_evaluate, cnn_predictions, cnn_confusion and cnn_grid_png run
 * the caller's SQL text as a source (read-only, one statement: ext/source.c),
 * so they are SQLITE_DIRECTONLY / SQLITE_VTAB_DIRECTONLY: the views and
 * triggers of an untrusted database cannot call them. The others only read
 * the model tables; none is deterministic, since training changes answers.
 *
 * Memory: SQLite-facing objects (vtabs, cursors, their buffers) come from
 * sqlite3_malloc; rows read by cnn_source_read are the engine's (cnn_malloc).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ext.h"
#include "image.h"
#include "json.h"

/* Rows per forward pass of the table-valued functions: big enough for the
 * GEMMs to run at speed, small enough (200 KB of MNIST images) to stay in
 * cache and to let the first rows come out quickly. */
#define PRED_BATCH 256

/* Probabilities that fit on the stack in scalar calls (else heap). */
#define PROBS_ON_STACK 64

/* ---------------------------------------------------------------------------
 * Shared helpers.
 */

static void aux_release(void *p) { cnn_model_release(p); }

/* The model of a scalar call: cnn_f([name,] image, ...). With a name, the
 * model is kept as auxdata on that argument; SQLite keeps it for the next
 * rows of the statement when the name is a constant and drops it otherwise.
 * Returns a new reference, or NULL with the error set. */
static cnn_model *call_model(sqlite3_context *ctx, const char *fn, int has_name,
                             sqlite3_value **argv) {
  cnn_conn *conn = sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
  const char *name = NULL;
  cnn_model *m = NULL;
  if (has_name) {
    if (!(name = cnn_arg_name(ctx, fn, argv[0]))) return NULL;
    m = sqlite3_get_auxdata(ctx, 0);
    if (m && !strcmp(m->name, name)) {
      m->refs++;
      return m;
    }
  }
  int rc = cnn_model_get(conn, db, name, &m, err);
  if (rc) {
    cnn_result_status(ctx, fn, rc, err);
    return NULL;
  }
  if (has_name) {
    /* SQLite calls the destructor itself if it cannot keep the pointer. */
    m->refs++;
    sqlite3_set_auxdata(ctx, 0, m, aux_release);
  }
  return m;
}

/* The input bytes of one image argument for model m: for 28x28x1 models any
 * image (raw MNIST blob or encoded file, through cnn_arg_image into buf);
 * for other input shapes a raw blob of exactly h*w*c bytes (returned in
 * place). NULL with err set on failure, *status the engine status. */
static const uint8_t *image_input(const cnn_model *m, sqlite3_value *v, uint8_t buf[784],
                                  int *status, char *err) {
  cnn_shape in = cnn_net_input(m->net);
  char what[48];
  *status = CNN_OK;
  if (in.h == 28 && in.w == 28 && in.c == 1) {
    if ((*status = cnn_arg_image(v, buf, err))) return NULL;
    return buf;
  }
  size_t bytes = (size_t)in.h * in.w * in.c;
  if (sqlite3_value_type(v) != SQLITE_BLOB || (size_t)sqlite3_value_bytes(v) != bytes) {
    *status =
        cnn_error(err, CNN_ERROR, "image must be a %zu-byte blob (%dx%dx%d) for model '%s'; got %s",
                  bytes, in.h, in.w, in.c, m->name, cnn_value_describe(v, what, sizeof what));
    return NULL;
  }
  const uint8_t *p = sqlite3_value_blob(v);
  if (!p) *status = cnn_nomem(err);
  return p;
}

/* First index of the largest value: the engine's own rule (cnn_evaluate). */
static int argmax(const float *p, int k) {
  int best = 0;
  for (int j = 1; j < k; j++)
    if (p[j] > p[best]) best = j;
  return best;
}

/* A source argument: a table name or a query, as text, into *out. */
static int source_arg(sqlite3_value *v, const char **out, char *err) {
  char what[48];
  *out = NULL;
  if (sqlite3_value_type(v) != SQLITE_TEXT)
    return cnn_error(err, CNN_ERROR, "source must be a table name or a query; got %s",
                     cnn_value_describe(v, what, sizeof what));
  if (!(*out = (const char *)sqlite3_value_text(v))) return cnn_nomem(err);
  return CNN_OK;
}

/* ---------------------------------------------------------------------------
 * cnn_predict([name,] image) -> INTEGER class
 * cnn_predict_proba([name,] image) -> TEXT, JSON array of probabilities
 */

static void predict(sqlite3_context *ctx, int argc, sqlite3_value **argv, const char *fn,
                    int proba) {
  char err[CNN_ERRMAX] = "";
  uint8_t buf[CNN_MNIST_BYTES];
  float stack[PROBS_ON_STACK], *probs = stack;
  int rc = CNN_OK;
  cnn_model *m = call_model(ctx, fn, argc == 2, argv);
  if (!m) return;
  const uint8_t *image = image_input(m, argv[argc - 1], buf, &rc, err);
  int k = cnn_net_classes(m->net);
  if (rc) goto done;
  if (k > PROBS_ON_STACK && !(probs = sqlite3_malloc64((sqlite3_uint64)k * sizeof *probs))) {
    rc = cnn_nomem(err);
    goto done;
  }
  if ((rc = cnn_net_predict(m->net, probs, image, 1, err))) goto done;
  if (!proba) {
    sqlite3_result_int(ctx, argmax(probs, k));
    goto done;
  }
  cnn_buf b = {0};
  cnn_buf_puts(&b, "[");
  for (int j = 0; j < k; j++) {
    if (j) cnn_buf_puts(&b, ",");
    cnn_buf_json_number(&b, probs[j]);
  }
  cnn_buf_puts(&b, "]");
  char *json = cnn_buf_finish(&b);
  if (!json) {
    rc = cnn_nomem(err);
    goto done;
  }
  sqlite3_result_text(ctx, json, -1, SQLITE_TRANSIENT);
  cnn_free(json);
done:
  if (rc) cnn_result_status(ctx, fn, rc, err);
  if (probs != stack) sqlite3_free(probs);
  cnn_model_release(m);
}

void cnn_fn_predict(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  predict(ctx, argc, argv, "cnn_predict", 0);
}

void cnn_fn_predict_proba(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  predict(ctx, argc, argv, "cnn_predict_proba", 1);
}

/* ---------------------------------------------------------------------------
 * cnn_evaluate(name, source) -> TEXT {"loss":..,"accuracy":..,"count":..}
 * The loss is the model's training loss (cross-entropy), as Keras' evaluate.
 */

void cnn_fn_evaluate(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  cnn_conn *conn = sqlite3_user_data(ctx);
  char err[CNN_ERRMAX] = "";
  cnn_model *m = NULL;
  cnn_rows rows = {0};
  sqlite3_stmt *probe = NULL;
  double loss, accuracy;
  int rc = CNN_OK;
  const char *name = cnn_arg_name(ctx, "cnn_evaluate", argv[0]);
  if (!name) return;
  const char *source;
  if ((rc = source_arg(argv[1], &source, err))) {
    cnn_result_status(ctx, "cnn_evaluate", rc, err);
    return;
  }
  if ((rc = cnn_model_get(conn, db, name, &m, err))) goto done;
  if ((rc = cnn_source_read(db, source, cnn_net_input(m->net), cnn_net_classes(m->net), 1, &rows,
                            err)))
    goto done;
  cnn_dataset data = {rows.images, rows.labels, rows.count};
  if ((rc = cnn_probe_open(db, &probe, err)) ||
      (rc = cnn_evaluate(m->net, &data, cnn_probe_stop, probe, &loss, &accuracy, err)))
    goto done;
  cnn_buf b = {0};
  cnn_buf_puts(&b, "{\"loss\":");
  cnn_buf_json_number(&b, loss);
  cnn_buf_puts(&b, ",\"accuracy\":");
  cnn_buf_json_number(&b, accuracy);
  cnn_buf_printf(&b, ",\"count\":%zu}", rows.count);
  char *json = cnn_buf_finish(&b);
  if (!json) {
    rc = cnn_nomem(err);
    goto done;
  }
  sqlite3_result_text(ctx, json, -1, SQLITE_TRANSIENT);
  cnn_free(json);
done:
  if (rc) cnn_result_status(ctx, "cnn_evaluate", rc, err);
  sqlite3_finalize(probe);
  cnn_rows_clear(&rows);
  cnn_model_release(m);
}

/* ---------------------------------------------------------------------------
 * The batch reader of cnn_predictions and cnn_confusion: steps the source
 * query PRED_BATCH rows at a time and runs the model over each batch.
 */

typedef struct batch {
  sqlite3_stmt *stmt; /* owned: the source query */
  cnn_model *model;   /* owned reference */
  cnn_shape in;
  size_t in_bytes; /* h*w*c */
  int classes;
  int need_labels;
  uint8_t *images;        /* owned, PRED_BATCH x in_bytes */
  float *probs;           /* owned, PRED_BATCH x classes */
  int labels[PRED_BATCH]; /* -1: none */
  int n;                  /* rows in the batch */
  sqlite3_int64 first;    /* source row number (0-based) of the batch's first row */
  int done;               /* the source has no more rows */
} batch;

static void batch_clear(batch *b) {
  sqlite3_finalize(b->stmt);
  cnn_model_release(b->model);
  sqlite3_free(b->images);
  sqlite3_free(b->probs);
  memset(b, 0, sizeof *b);
}

/* Reports a failure through the vtab; returns the SQLite code. */
static int vtab_fail(sqlite3_vtab *vtab, const char *fn, int status, const char *err) {
  if (status == CNN_NOMEM) return SQLITE_NOMEM;
  if (status == CNN_INTERRUPTED) return SQLITE_INTERRUPT;
  cnn_vtab_errorf(vtab, "%s: %s", fn, err);
  return SQLITE_ERROR;
}

/* A name argument of a table-valued function (the rule of cnn_arg_name). */
static const char *vtab_name_arg(sqlite3_value *v, char *err, int *status) {
  char what[48];
  *status = CNN_OK;
  if (sqlite3_value_type(v) != SQLITE_TEXT || sqlite3_value_bytes(v) == 0 ||
      sqlite3_value_bytes(v) > 200) {
    *status =
        cnn_error(err, CNN_ERROR, "name must be a non-empty text of at most 200 bytes; got %s",
                  sqlite3_value_type(v) == SQLITE_TEXT && sqlite3_value_bytes(v) == 0
                      ? "an empty text"
                      : cnn_value_describe(v, what, sizeof what));
    return NULL;
  }
  const char *s = (const char *)sqlite3_value_text(v);
  if (!s) *status = cnn_nomem(err);
  return s;
}

/* Loads the model and prepares the source. */
static int batch_open(batch *b, sqlite3 *db, cnn_conn *conn, sqlite3_value *name_v,
                      sqlite3_value *source_v, int need_labels, char *err) {
  int rc;
  const char *name = vtab_name_arg(name_v, err, &rc);
  if (!name) return rc;
  const char *source;
  if ((rc = source_arg(source_v, &source, err))) return rc;
  if ((rc = cnn_model_get(conn, db, name, &b->model, err))) return rc;
  b->in = cnn_net_input(b->model->net);
  b->in_bytes = (size_t)b->in.h * b->in.w * b->in.c; /* capped by the spec's limits */
  b->classes = cnn_net_classes(b->model->net);
  b->need_labels = need_labels;
  b->images = sqlite3_malloc64((sqlite3_uint64)PRED_BATCH * b->in_bytes);
  b->probs = sqlite3_malloc64((sqlite3_uint64)PRED_BATCH * b->classes * sizeof(float));
  if (!b->images || !b->probs) return cnn_nomem(err);
  return cnn_source_prepare(db, source, &b->stmt, err);
}

/* Reads and predicts the next batch; b->n == 0 at the end. */
static int batch_next(batch *b, sqlite3 *db, char *err) {
  b->first += b->n;
  b->n = 0;
  while (!b->done && b->n < PRED_BATCH) {
    int src = sqlite3_step(b->stmt);
    if (src == SQLITE_DONE) {
      b->done = 1;
      break;
    }
    if (src != SQLITE_ROW) {
      return src == SQLITE_INTERRUPT ? cnn_error(err, CNN_INTERRUPTED, "interrupted")
             : src == SQLITE_NOMEM   ? cnn_nomem(err)
                                     : cnn_error(err, CNN_ERROR, "source: %s", sqlite3_errmsg(db));
    }
    /* Row numbers in messages are 1-based, as in cnn_train's. */
    int rc =
        cnn_source_row(b->stmt, (size_t)(b->first + b->n + 1), b->in, b->classes, b->need_labels,
                       b->images + (size_t)b->n * b->in_bytes, &b->labels[b->n], err);
    if (rc) return rc;
    b->n++;
  }
  if (b->n == 0) return CNN_OK;
  return cnn_net_predict(b->model->net, b->probs, b->images, (size_t)b->n, err);
}

/* xBestIndex of the functions taking (name, source) as hidden columns
 * col_name and col_name + 1: both need usable equality constraints. When one
 * is constrained but unusable in this join order, SQLITE_CONSTRAINT makes
 * SQLite try another; when one is missing, no order can work. */
static int best_index_name_source(sqlite3_vtab *vtab, sqlite3_index_info *info, int col_name,
                                  const char *usage) {
  int arg[2] = {-1, -1}, unusable[2] = {0, 0};
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    int k = c->iColumn - col_name;
    if (k < 0 || k > 1 || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c->usable)
      arg[k] = i;
    else
      unusable[k] = 1;
  }
  if ((arg[0] < 0 && !unusable[0]) || (arg[1] < 0 && !unusable[1])) {
    cnn_vtab_errorf(vtab, "%s", usage);
    return SQLITE_ERROR;
  }
  if (arg[0] < 0 || arg[1] < 0) return SQLITE_CONSTRAINT;
  for (int k = 0; k < 2; k++) {
    info->aConstraintUsage[arg[k]].argvIndex = k + 1;
    info->aConstraintUsage[arg[k]].omit = 1;
  }
  info->idxNum = 1;
  /* Running a model is expensive: keep it in the outer loop of joins. */
  info->estimatedCost = 1e6;
  info->estimatedRows = 10000;
  return SQLITE_OK;
}

typedef struct model_vtab {
  sqlite3_vtab base;
  sqlite3 *db;    /* borrowed: the connection */
  cnn_conn *conn; /* borrowed: the module's user data */
} model_vtab;

/* xConnect of every module here: declares the schema, and refuses to run
 * from views and triggers when the function runs a caller's SQL source. */
static int model_vtab_connect(sqlite3 *db, void *aux, const char *schema, int direct_only,
                              sqlite3_vtab **out) {
  int rc = sqlite3_declare_vtab(db, schema);
  if (rc == SQLITE_OK && direct_only) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if (rc != SQLITE_OK) return rc;
  model_vtab *v = sqlite3_malloc(sizeof *v);
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof *v);
  v->db = db;
  v->conn = aux;
  *out = &v->base;
  return SQLITE_OK;
}

static int model_vtab_disconnect(sqlite3_vtab *vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

/* Copies an argument into a hidden column's value holder. */
static int keep_value(sqlite3_value **slot, sqlite3_value *v) {
  sqlite3_value_free(*slot);
  *slot = sqlite3_value_dup(v);
  return *slot ? SQLITE_OK : SQLITE_NOMEM;
}

/* ---------------------------------------------------------------------------
 * cnn_predictions(name, source): one row per source row, in order:
 * idx (0-based, also the rowid), label (NULL when the source has none),
 * predicted, probability (of the predicted class).
 */

enum { PRED_IDX, PRED_LABEL, PRED_PREDICTED, PRED_PROBABILITY, PRED_NAME, PRED_SOURCE };

static const char pred_usage[] =
    "cnn_predictions: name and source arguments are required: cnn_predictions(name, source)";

typedef struct pred_cursor {
  sqlite3_vtab_cursor base;
  batch b;
  int pos;                /* row within the batch */
  sqlite3_value *args[2]; /* owned copies of name and source */
} pred_cursor;

static int pred_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return model_vtab_connect(db, aux,
                            "CREATE TABLE x(idx INTEGER, label INTEGER, predicted INTEGER, "
                            "probability REAL, name HIDDEN, source HIDDEN)",
                            1, out);
}

static int pred_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  int rc = best_index_name_source(vtab, info, PRED_NAME, pred_usage);
  /* Rows come in source order. */
  if (rc == SQLITE_OK && info->nOrderBy == 1 && info->aOrderBy[0].iColumn == PRED_IDX &&
      !info->aOrderBy[0].desc)
    info->orderByConsumed = 1;
  return rc;
}

static int pred_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
  (void)vtab;
  pred_cursor *cur = sqlite3_malloc(sizeof *cur);
  if (!cur) return SQLITE_NOMEM;
  memset(cur, 0, sizeof *cur);
  *out = &cur->base;
  return SQLITE_OK;
}

static void pred_reset(pred_cursor *cur) {
  batch_clear(&cur->b);
  cur->pos = 0;
  for (int i = 0; i < 2; i++) {
    sqlite3_value_free(cur->args[i]);
    cur->args[i] = NULL;
  }
}

static int pred_close(sqlite3_vtab_cursor *base) {
  pred_reset((pred_cursor *)base);
  sqlite3_free(base);
  return SQLITE_OK;
}

static int pred_filter(sqlite3_vtab_cursor *base, int idxNum, const char *idxStr, int argc,
                       sqlite3_value **argv) {
  (void)idxStr;
  pred_cursor *cur = (pred_cursor *)base;
  model_vtab *vtab = (model_vtab *)base->pVtab;
  char err[CNN_ERRMAX] = "";
  pred_reset(cur);
  if (idxNum != 1 || argc != 2) return SQLITE_ERROR; /* not our plan */
  int rc = keep_value(&cur->args[0], argv[0]);
  if (rc == SQLITE_OK) rc = keep_value(&cur->args[1], argv[1]);
  if (rc != SQLITE_OK) return rc;
  int st = batch_open(&cur->b, vtab->db, vtab->conn, argv[0], argv[1], 0, err);
  if (st == CNN_OK) st = batch_next(&cur->b, vtab->db, err);
  if (st != CNN_OK) {
    batch_clear(&cur->b);
    return vtab_fail(&vtab->base, "cnn_predictions", st, err);
  }
  return SQLITE_OK;
}

static int pred_next(sqlite3_vtab_cursor *base) {
  pred_cursor *cur = (pred_cursor *)base;
  char err[CNN_ERRMAX] = "";
  if (++cur->pos < cur->b.n) return SQLITE_OK;
  cur->pos = 0;
  int st = batch_next(&cur->b, ((model_vtab *)base->pVtab)->db, err);
  if (st != CNN_OK) {
    cur->b.n = 0; /* eof */
    return vtab_fail(base->pVtab, "cnn_predictions", st, err);
  }
  return SQLITE_OK;
}

static int pred_eof(sqlite3_vtab_cursor *base) {
  const pred_cursor *cur = (const pred_cursor *)base;
  return cur->pos >= cur->b.n;
}

static int pred_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col) {
  const pred_cursor *cur = (const pred_cursor *)base;
  const batch *b = &cur->b;
  const float *p = b->probs + (size_t)cur->pos * b->classes;
  switch (col) {
  case PRED_IDX:
    sqlite3_result_int64(ctx, b->first + cur->pos);
    break;
  case PRED_LABEL:
    if (b->labels[cur->pos] >= 0)
      sqlite3_result_int(ctx, b->labels[cur->pos]);
    else
      sqlite3_result_null(ctx);
    break;
  case PRED_PREDICTED:
    sqlite3_result_int(ctx, argmax(p, b->classes));
    break;
  case PRED_PROBABILITY:
    sqlite3_result_double(ctx, p[argmax(p, b->classes)]);
    break;
  case PRED_NAME:
  case PRED_SOURCE:
    sqlite3_result_value(ctx, cur->args[col - PRED_NAME]);
    break;
  default:
    break;
  }
  return SQLITE_OK;
}

static int pred_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
  const pred_cursor *cur = (const pred_cursor *)base;
  *rowid = cur->b.first + cur->pos;
  return SQLITE_OK;
}

/* xCreate NULL: eponymous-only. */
const sqlite3_module cnn_predictions_module = {
    .iVersion = 0,
    .xConnect = pred_connect,
    .xBestIndex = pred_best_index,
    .xDisconnect = model_vtab_disconnect,
    .xOpen = pred_open,
    .xClose = pred_close,
    .xFilter = pred_filter,
    .xNext = pred_next,
    .xEof = pred_eof,
    .xColumn = pred_column,
    .xRowid = pred_rowid,
};

/* ---------------------------------------------------------------------------
 * cnn_confusion(name, source): the confusion matrix as rows (label,
 * predicted, count) for every pair that occurs, ordered by label, predicted.
 * The source is read and predicted completely in xFilter; the pairs are
 * sorted rather than counted in a classes x classes matrix, so a model with
 * 65536 classes costs 8 bytes per source row, not 32 GB.
 */

enum { CONF_LABEL, CONF_PREDICTED, CONF_COUNT, CONF_NAME, CONF_SOURCE };

static const char conf_usage[] =
    "cnn_confusion: name and source arguments are required: cnn_confusion(name, source)";

typedef struct conf_cursor {
  sqlite3_vtab_cursor base;
  uint64_t *pairs; /* owned: label << 32 | predicted, sorted */
  size_t npairs, cap;
  size_t pos, run; /* current pair and the length of its run */
  sqlite3_int64 rowid;
  sqlite3_value *args[2]; /* owned copies of name and source */
} conf_cursor;

static int conf_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return model_vtab_connect(db, aux,
                            "CREATE TABLE x(label INTEGER, predicted INTEGER, count INTEGER, "
                            "name HIDDEN, source HIDDEN)",
                            1, out);
}

static int conf_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  int rc = best_index_name_source(vtab, info, CONF_NAME, conf_usage);
  if (rc == SQLITE_OK && info->nOrderBy >= 1 && info->nOrderBy <= 2) {
    int ok = 1;
    for (int i = 0; i < info->nOrderBy; i++)
      ok &= info->aOrderBy[i].iColumn == i && !info->aOrderBy[i].desc;
    info->orderByConsumed = ok;
  }
  return rc;
}

static int conf_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
  (void)vtab;
  conf_cursor *cur = sqlite3_malloc(sizeof *cur);
  if (!cur) return SQLITE_NOMEM;
  memset(cur, 0, sizeof *cur);
  *out = &cur->base;
  return SQLITE_OK;
}

static void conf_reset(conf_cursor *cur) {
  sqlite3_free(cur->pairs);
  cur->pairs = NULL;
  cur->npairs = cur->cap = cur->pos = cur->run = 0;
  cur->rowid = 0;
  for (int i = 0; i < 2; i++) {
    sqlite3_value_free(cur->args[i]);
    cur->args[i] = NULL;
  }
}

static int conf_close(sqlite3_vtab_cursor *base) {
  conf_reset((conf_cursor *)base);
  sqlite3_free(base);
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
  model_vtab *vtab = (model_vtab *)base->pVtab;
  char err[CNN_ERRMAX] = "";
  batch b = {0};
  conf_reset(cur);
  if (idxNum != 1 || argc != 2) return SQLITE_ERROR; /* not our plan */
  int rc = keep_value(&cur->args[0], argv[0]);
  if (rc == SQLITE_OK) rc = keep_value(&cur->args[1], argv[1]);
  if (rc != SQLITE_OK) return rc;
  int st = batch_open(&b, vtab->db, vtab->conn, argv[0], argv[1], 1, err);
  while (st == CNN_OK && (st = batch_next(&b, vtab->db, err)) == CNN_OK && b.n > 0) {
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
                                  (uint32_t)argmax(b.probs + (size_t)i * b.classes, b.classes);
  }
  batch_clear(&b);
  if (st != CNN_OK) {
    conf_reset(cur);
    return vtab_fail(&vtab->base, "cnn_confusion", st, err);
  }
  if (cur->npairs) qsort(cur->pairs, cur->npairs, sizeof *cur->pairs, cmp_u64);
  cur->run = conf_run(cur);
  return SQLITE_OK;
}

static int conf_next(sqlite3_vtab_cursor *base) {
  conf_cursor *cur = (conf_cursor *)base;
  cur->pos += cur->run;
  cur->run = conf_run(cur);
  cur->rowid++;
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
  case CONF_NAME:
  case CONF_SOURCE:
    sqlite3_result_value(ctx, cur->args[col - CONF_NAME]);
    break;
  default:
    break;
  }
  return SQLITE_OK;
}

static int conf_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
  *rowid = ((const conf_cursor *)base)->rowid;
  return SQLITE_OK;
}

const sqlite3_module cnn_confusion_module = {
    .iVersion = 0,
    .xConnect = conf_connect,
    .xBestIndex = conf_best_index,
    .xDisconnect = model_vtab_disconnect,
    .xOpen = conf_open,
    .xClose = conf_close,
    .xFilter = conf_filter,
    .xNext = conf_next,
    .xEof = conf_eof,
    .xColumn = conf_column,
    .xRowid = conf_rowid,
};

/* ---------------------------------------------------------------------------
 * cnn_summary(name): Keras' model.summary() as rows: layer ("conv2d_1"),
 * type ("Conv2D"), output_shape ("(None, 26, 26, 32)", "(None, 576)" once
 * the data is a vector: after Flatten or Dense), params. Only reads the model
 * tables, so views may use it.
 */

enum { SUM_LAYER, SUM_TYPE, SUM_SHAPE, SUM_PARAMS, SUM_NAME };

typedef struct sum_cursor {
  sqlite3_vtab_cursor base;
  cnn_model *model;    /* owned reference; NULL before xFilter */
  int layer;           /* current row */
  int vector;          /* the current layer's output is a vector */
  sqlite3_value *name; /* owned copy of the argument */
} sum_cursor;

static int sum_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                       sqlite3_vtab **out, char **pzErr) {
  (void)argc, (void)argv, (void)pzErr;
  return model_vtab_connect(db, aux,
                            "CREATE TABLE x(layer TEXT, type TEXT, output_shape TEXT, "
                            "params INTEGER, name HIDDEN)",
                            0, out);
}

static int sum_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  int arg = -1, unusable = 0;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->iColumn != SUM_NAME || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c->usable)
      arg = i;
    else
      unusable = 1;
  }
  if (arg < 0 && !unusable) {
    cnn_vtab_errorf(vtab, "cnn_summary: name argument is required: cnn_summary(name)");
    return SQLITE_ERROR;
  }
  if (arg < 0) return SQLITE_CONSTRAINT;
  info->aConstraintUsage[arg].argvIndex = 1;
  info->aConstraintUsage[arg].omit = 1;
  info->idxNum = 1;
  info->estimatedCost = 1000;
  info->estimatedRows = 10;
  return SQLITE_OK;
}

static int sum_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
  (void)vtab;
  sum_cursor *cur = sqlite3_malloc(sizeof *cur);
  if (!cur) return SQLITE_NOMEM;
  memset(cur, 0, sizeof *cur);
  *out = &cur->base;
  return SQLITE_OK;
}

static void sum_reset(sum_cursor *cur) {
  cnn_model_release(cur->model);
  sqlite3_value_free(cur->name);
  cur->model = NULL;
  cur->name = NULL;
  cur->layer = cur->vector = 0;
}

static int sum_close(sqlite3_vtab_cursor *base) {
  sum_reset((sum_cursor *)base);
  sqlite3_free(base);
  return SQLITE_OK;
}

static int is_vector_layer(const char *type) {
  return !strcmp(type, "Flatten") || !strcmp(type, "Dense");
}

static int sum_filter(sqlite3_vtab_cursor *base, int idxNum, const char *idxStr, int argc,
                      sqlite3_value **argv) {
  (void)idxStr;
  sum_cursor *cur = (sum_cursor *)base;
  model_vtab *vtab = (model_vtab *)base->pVtab;
  char err[CNN_ERRMAX] = "";
  int st;
  sum_reset(cur);
  if (idxNum != 1 || argc != 1) return SQLITE_ERROR; /* not our plan */
  if (keep_value(&cur->name, argv[0]) != SQLITE_OK) return SQLITE_NOMEM;
  const char *name = vtab_name_arg(argv[0], err, &st);
  if (name) st = cnn_model_get(vtab->conn, vtab->db, name, &cur->model, err);
  if (st != CNN_OK) {
    sum_reset(cur);
    return vtab_fail(&vtab->base, "cnn_summary", st, err);
  }
  if (cnn_net_layers(cur->model->net) > 0)
    cur->vector = is_vector_layer(cnn_net_layer(cur->model->net, 0).type);
  return SQLITE_OK;
}

static int sum_next(sqlite3_vtab_cursor *base) {
  sum_cursor *cur = (sum_cursor *)base;
  if (++cur->layer < cnn_net_layers(cur->model->net))
    cur->vector |= is_vector_layer(cnn_net_layer(cur->model->net, cur->layer).type);
  return SQLITE_OK;
}

static int sum_eof(sqlite3_vtab_cursor *base) {
  const sum_cursor *cur = (const sum_cursor *)base;
  return !cur->model || cur->layer >= cnn_net_layers(cur->model->net);
}

static int sum_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col) {
  const sum_cursor *cur = (const sum_cursor *)base;
  cnn_layer_info l = cnn_net_layer(cur->model->net, cur->layer);
  switch (col) {
  case SUM_LAYER:
    sqlite3_result_text(ctx, l.name, -1, SQLITE_TRANSIENT);
    break;
  case SUM_TYPE:
    sqlite3_result_text(ctx, l.type, -1, SQLITE_TRANSIENT);
    break;
  case SUM_SHAPE: {
    char *s = cur->vector ? sqlite3_mprintf("(None, %d)", l.out.h * l.out.w * l.out.c)
                          : sqlite3_mprintf("(None, %d, %d, %d)", l.out.h, l.out.w, l.out.c);
    if (!s) return SQLITE_NOMEM;
    sqlite3_result_text(ctx, s, -1, sqlite3_free);
    break;
  }
  case SUM_PARAMS:
    sqlite3_result_int64(ctx, (sqlite3_int64)l.params);
    break;
  case SUM_NAME:
    sqlite3_result_value(ctx, cur->name);
    break;
  default:
    break;
  }
  return SQLITE_OK;
}

static int sum_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
  *rowid = ((const sum_cursor *)base)->layer;
  return SQLITE_OK;
}

const sqlite3_module cnn_summary_module = {
    .iVersion = 0,
    .xConnect = sum_connect,
    .xBestIndex = sum_best_index,
    .xDisconnect = model_vtab_disconnect,
    .xOpen = sum_open,
    .xClose = sum_close,
    .xFilter = sum_filter,
    .xNext = sum_next,
    .xEof = sum_eof,
    .xColumn = sum_column,
    .xRowid = sum_rowid,
};

/* ---------------------------------------------------------------------------
 * cnn_grid_png(source [, columns]) -> BLOB: the notebook's figure of digits
 * with their labels (label optional: a one-column source, or NULL labels,
 * draw no label). Images in any form cnn_predict accepts; labels 0..9.
 */

#define GRID_DEFAULT_COLUMNS 10
#define GRID_MAX_COLUMNS 100

void cnn_fn_grid_png(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "", what[48];
  sqlite3_stmt *st = NULL;
  uint8_t *images = NULL, *png = NULL;
  int *labels = NULL;
  size_t n = 0, cap = 0, len = 0;
  int columns = GRID_DEFAULT_COLUMNS, rc = CNN_OK, src;
  const cnn_shape in = {CNN_MNIST_SIDE, CNN_MNIST_SIDE, 1};
  const char *source;
  if ((rc = source_arg(argv[0], &source, err))) {
    cnn_result_status(ctx, "cnn_grid_png", rc, err);
    return;
  }
  if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    sqlite3_int64 c = 0;
    int is_int = cnn_value_is_int(argv[1], &c);
    if (!is_int || c < 1 || c > GRID_MAX_COLUMNS) {
      if (is_int) snprintf(what, sizeof what, "%lld", (long long)c);
      cnn_result_errorf(ctx, "cnn_grid_png: columns must be an integer 1..%d; got %s",
                        GRID_MAX_COLUMNS,
                        is_int ? what : cnn_value_describe(argv[1], what, sizeof what));
      return;
    }
    columns = (int)c;
  }
  if ((rc = cnn_source_prepare(db, source, &st, err))) goto done;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == CNN_GRID_MAX_IMAGES) {
      rc = cnn_error(err, CNN_ERROR, "source has more than %u rows; add a LIMIT",
                     CNN_GRID_MAX_IMAGES);
      goto done;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      if (cap > CNN_GRID_MAX_IMAGES) cap = CNN_GRID_MAX_IMAGES;
      uint8_t *im = sqlite3_realloc64(images, (sqlite3_uint64)cap * CNN_MNIST_BYTES);
      if (im) images = im;
      int *lb = im ? sqlite3_realloc64(labels, (sqlite3_uint64)cap * sizeof *labels) : NULL;
      if (lb) labels = lb;
      if (!im || !lb) {
        rc = cnn_nomem(err);
        goto done;
      }
    }
    if ((rc = cnn_source_row(st, n + 1, in, 10, 0, images + n * CNN_MNIST_BYTES, &labels[n], err)))
      goto done;
    n++;
  }
  if (src != SQLITE_DONE) {
    rc = src == SQLITE_INTERRUPT ? cnn_error(err, CNN_INTERRUPTED, "interrupted")
         : src == SQLITE_NOMEM   ? cnn_nomem(err)
                                 : cnn_error(err, CNN_ERROR, "source: %s", sqlite3_errmsg(db));
    goto done;
  }
  if (n == 0) {
    rc = cnn_error(err, CNN_ERROR, "source has no rows");
    goto done;
  }
  if ((rc = cnn_png_grid(&png, &len, images, labels, n, columns, err))) goto done;
  sqlite3_result_blob64(ctx, png, len, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, "cnn_grid_png", rc, err);
  sqlite3_finalize(st);
  sqlite3_free(images);
  sqlite3_free(labels);
  cnn_free(png);
}
