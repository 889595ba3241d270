/*
 * train.c - cnn_train(name, source [, options]): reads the source into
 * memory or streams it from its table (ext/stream.c), trains with the engine, and commits every
 * completed epoch (weights, optimizer state, counters, history row) in its own savepoint, so an
 * interrupt or a killed process loses at most the epoch in progress.
 *
 * Interrupts are polled (cnn_probe_stop) after the forward pass and after
 * every batch, and between validation batches, so an interrupt is answered
 * within about half a batch.
 *
 * A model that does not exist yet is created from the notebook's spec (or
 * the spec in cnn_create); it is stored with its first completed epoch, so a
 * call that fails before that leaves nothing behind.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ext.h"
#include "json.h"

/* The options of cnn_train that are the SQL side's own: the engine receives
 * everything else in one cnn_train_config (src/options.c) and never sees
 * these. "isa" caps the instruction set of the run's kernels, as $CNN_ISA
 * does for the whole process (for comparisons and tests); "precision":
 * "bf16" runs its matrix products in mixed precision (bf16 operands, fp32
 * sums, fp32 weights and optimizer state, as PyTorch's CPU autocast). */
typedef struct sql_options {
  const char *validation; /* borrowed from the parsed options: a source, or NULL */
  int threads;            /* 0 = all cores */
  int progress;           /* -1 = when stderr is a terminal, 0, 1 */
  int has_isa;
  cnn_isa isa;           /* when has_isa */
  int bf16;              /* "precision": "bf16" */
  cnn_data_mode data;    /* "data": how sources reach the engine (ext/stream.c) */
  size_t shuffle_buffer; /* rows; 0 = not given */
} sql_options;

/* Rows a query's shuffle buffer may hold: 7.8 GB of 28x28 images. */
#define MAX_SHUFFLE_BUFFER 10000000

static const char *const sql_keys[] = {"validation", "threads", "progress",       "isa",
                                       "precision",  "data",    "shuffle_buffer", NULL};

/* Reads the SQL side's options from the parsed document (NULL: none). */
static int sql_options_read(sql_options *o, const cnn_json *root, char *err) {
  char got[64];
  o->validation = NULL, o->threads = 0, o->progress = -1, o->has_isa = 0, o->bf16 = 0;
  o->data = CNN_DATA_AUTO, o->shuffle_buffer = 0;
  for (size_t i = 0; root && i < root->count; i++) {
    const char *k = root->keys[i];
    const cnn_json *x = &root->items[i];
    if (!strcmp(k, "validation")) {
      if (x->type == CNN_JSON_NULL) continue;
      if (x->type != CNN_JSON_STRING || !x->string[0])
        return cnn_error(err, CNN_ERROR,
                         "option validation must be a table name or a query; got %s",
                         cnn_json_describe(x, got, sizeof got));
      o->validation = x->string;
    } else if (!strcmp(k, "threads")) {
      if (x->type != CNN_JSON_NUMBER || x->number != floor(x->number) || x->number < 0 ||
          x->number > CNN_MAX_THREADS)
        return cnn_error(err, CNN_ERROR, "option threads must be an integer 0..%d; got %s",
                         CNN_MAX_THREADS, cnn_json_describe(x, got, sizeof got));
      o->threads = (int)x->number;
    } else if (!strcmp(k, "progress")) {
      if (x->type != CNN_JSON_TRUE && x->type != CNN_JSON_FALSE)
        return cnn_error(err, CNN_ERROR, "option progress must be true or false; got %s",
                         cnn_json_describe(x, got, sizeof got));
      o->progress = x->type == CNN_JSON_TRUE;
    } else if (!strcmp(k, "isa")) {
      char why[CNN_ERRMAX];
      if (x->type != CNN_JSON_STRING)
        return cnn_error(err, CNN_ERROR,
                         "option isa must be one of baseline, avx2, avx512, amx; got %s",
                         cnn_json_describe(x, got, sizeof got));
      if (cnn_isa_parse(x->string, &o->isa, why))
        return cnn_error(err, CNN_ERROR, "option %.200s", why);
      o->has_isa = 1;
    } else if (!strcmp(k, "precision")) {
      if (x->type != CNN_JSON_STRING || (strcmp(x->string, "fp32") && strcmp(x->string, "bf16")))
        return cnn_error(err, CNN_ERROR, "option precision must be \"fp32\" or \"bf16\"; got %s",
                         cnn_json_describe(x, got, sizeof got));
      o->bf16 = !strcmp(x->string, "bf16");
    } else if (!strcmp(k, "shuffle_buffer")) {
      if (x->type != CNN_JSON_NUMBER || x->number != floor(x->number) || x->number < 1 ||
          x->number > MAX_SHUFFLE_BUFFER)
        return cnn_error(err, CNN_ERROR, "option shuffle_buffer must be an integer 1..%d; got %s",
                         MAX_SHUFFLE_BUFFER, cnn_json_describe(x, got, sizeof got));
      o->shuffle_buffer = (size_t)x->number;
    } else if (!strcmp(k, "data")) {
      int rc = cnn_data_mode_parse(x, &o->data, err);
      if (rc) return rc;
    }
  }
  return CNN_OK;
}

typedef struct {
  sqlite3 *db;
  const char *name;
  cnn_net *net;
  cnn_optim *opt;
  int stored;            /* the model row exists */
  sqlite3_int64 version; /* its version as this run last saw it */
  sqlite3_stmt *probe;   /* "SELECT 1": steps fail once interrupted */
  cnn_progress progress;
  int total_epochs; /* for "Epoch 3/12" */
  size_t batches;
  int last_epoch;
  int saved; /* epochs this call committed */
  cnn_epoch_stats last;
} train_ctx;

static int stop(void *p) { return cnn_probe_stop(((train_ctx *)p)->probe); }

static int on_batch(void *p, const cnn_batch_progress *b) {
  train_ctx *t = p;
  t->batches = b->batches;
  cnn_progress_batch(&t->progress, b, t->total_epochs);
  return cnn_probe_stop(t->probe);
}

static int history_row(sqlite3 *db, const char *name, const cnn_epoch_stats *s, char *err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db,
                              "INSERT OR REPLACE INTO cnn_epochs(model, epoch, loss, accuracy, "
                              "val_loss, val_accuracy, learning_rate, seconds, samples) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, s->epoch);
    sqlite3_bind_double(st, 3, s->loss);
    sqlite3_bind_double(st, 4, s->accuracy);
    if (!isnan(s->val_loss)) sqlite3_bind_double(st, 5, s->val_loss);
    if (!isnan(s->val_accuracy)) sqlite3_bind_double(st, 6, s->val_accuracy);
    sqlite3_bind_double(st, 7, s->learning_rate);
    sqlite3_bind_double(st, 8, s->seconds);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)s->samples);
    rc = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  if (rc == SQLITE_DONE) return CNN_OK;
  return cnn_error(err,
                   rc == SQLITE_NOMEM       ? CNN_NOMEM
                   : rc == SQLITE_INTERRUPT ? CNN_INTERRUPTED
                                            : CNN_ERROR,
                   "%s", sqlite3_errmsg(db));
}

/* The epoch's layer statistics (training option layer_stats), one row per
 * layer; NULL where a layer has no kernel. */
static int layer_rows(sqlite3 *db, const char *name, const cnn_net *net, const cnn_epoch_stats *s,
                      char *err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db,
                              "INSERT OR REPLACE INTO cnn_layer_epochs(model, epoch, layer, name, "
                              "type, grad_mean_abs, weight_norm, update_ratio, zero_fraction) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                              -1, &st, NULL);
  for (int i = 0; rc == SQLITE_OK && i < cnn_net_layers(net); i++) {
    cnn_layer_info info = cnn_net_layer(net, i);
    const cnn_layer_stat *l = &s->layers[i];
    const double v[4] = {l->grad_mean_abs, l->weight_norm, l->update_ratio, l->zero_fraction};
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, s->epoch);
    sqlite3_bind_int(st, 3, i);
    sqlite3_bind_text(st, 4, info.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, info.type, -1, SQLITE_STATIC);
    for (int k = 0; k < 4; k++)
      if (isfinite(v[k]))
        sqlite3_bind_double(st, 6 + k, v[k]);
      else
        sqlite3_bind_null(st, 6 + k);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) rc = sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  if (rc == SQLITE_OK || rc == SQLITE_DONE) return CNN_OK;
  return cnn_error(err,
                   rc == SQLITE_NOMEM       ? CNN_NOMEM
                   : rc == SQLITE_INTERRUPT ? CNN_INTERRUPTED
                                            : CNN_ERROR,
                   "%s", sqlite3_errmsg(db));
}

/* One transaction: the model (first time), its weights and optimizer state,
 * its counters, the history row (and layer statistics), and the default
 * model. */
static int commit_epoch(train_ctx *t, const cnn_epoch_stats *s, int with_history, char *err) {
  cnn_tx tx;
  int rc = cnn_tx_begin(t->db, &tx, err);
  if (rc) return rc;
  /* Two trainings of one model must not interleave: whoever saves second
   * finds the version changed under it and stops. */
  sqlite3_int64 now = 0;
  if (t->stored && (rc = cnn_store_version(t->db, t->name, &now, err)) == CNN_OK &&
      now != t->version)
    rc = cnn_error(err, CNN_ERROR,
                   "model '%s' was changed by another connection during training; epoch %d "
                   "was not saved",
                   t->name, s->epoch);
  if (rc == CNN_OK && !t->stored) rc = cnn_store_create(t->db, t->name, t->net, err);
  if (rc == CNN_OK) rc = cnn_store_save(t->db, t->name, t->net, t->opt, s->epoch, err);
  if (rc == CNN_OK && with_history) rc = history_row(t->db, t->name, s, err);
  if (rc == CNN_OK && with_history && s->layers) rc = layer_rows(t->db, t->name, t->net, s, err);
  if (rc == CNN_OK) rc = cnn_store_set_default(t->db, t->name, err);
  if (rc == CNN_OK) rc = cnn_store_version(t->db, t->name, &t->version, err);
  if (rc == CNN_OK) rc = cnn_tx_commit(t->db, &tx, err);
  if (rc) {
    cnn_tx_rollback(t->db, &tx);
    return rc;
  }
  t->stored = 1;
  return CNN_OK;
}

static int on_epoch(void *p, const cnn_epoch_stats *s, char *err) {
  train_ctx *t = p;
  cnn_progress_epoch(&t->progress, s, t->batches);
  int rc = commit_epoch(t, s, 1, err);
  if (rc == CNN_OK)
    t->last_epoch = s->epoch, t->last = *s, t->last.layers = NULL, t->saved++;
  else if (rc != CNN_NOMEM && rc != CNN_INTERRUPTED) {
    char tmp[CNN_ERRMAX];
    snprintf(tmp, sizeof tmp, "cannot save epoch %d: %.200s", s->epoch, err);
    memcpy(err, tmp, CNN_ERRMAX);
  }
  return rc;
}

static void json_stat(cnn_buf *b, const char *key, double v) {
  cnn_buf_printf(b, ",\"%s\":", key);
  cnn_buf_json_number(b, v);
}

void cnn_fn_train(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  cnn_conn *conn = cnn_ctx_conn(ctx);
  char err[CNN_ERRMAX] = "";
  cnn_train_config cfg;
  sql_options o;
  cnn_json *root = NULL;
  cnn_stored_model *m = NULL;
  cnn_net *fresh = NULL;
  cnn_optim fresh_opt = {0};
  cnn_rows rows = {0}, vrows = {0};
  cnn_stream *stream = NULL, *vstream = NULL;
  cnn_threads *pool = NULL;
  train_ctx t = {0};
  int rc;

  const char *name, *source, *options = NULL;
  if ((rc = cnn_arg_name(argv[0], &name, err))) {
    cnn_result_status(ctx, rc, err);
    return;
  }
  if ((rc = cnn_arg_source(argv[1], &source, err)) ||
      (argc > 2 && (rc = cnn_arg_options(argv[2], &options, err))))
    goto done;
  if ((rc = cnn_train_config_parse(&cfg, options, sql_keys, &root, err)) ||
      (rc = sql_options_read(&o, root, err)))
    goto done;
  if ((rc = cnn_store_init(db, err))) goto done;

  /* The model as stored (with its optimizer state), or a new one. */
  int exists = cnn_store_exists(db, name, err);
  if (exists < 0) {
    rc = CNN_ERROR;
    goto done;
  }
  if (exists) {
    if ((rc = cnn_store_load(db, name, 1, &m, err))) goto done;
    t.net = m->net, t.opt = &m->opt, t.stored = 1, t.version = m->version;
  } else {
    cnn_spec spec;
    if ((rc = cnn_spec_parse(&spec, NULL, err)) || (rc = cnn_net_new(&fresh, &spec, err)))
      goto done;
    uint64_t seed;
    if (cfg.has_seed)
      seed = cfg.seed;
    else
      sqlite3_randomness(sizeof seed, &seed);
    cnn_net_init(fresh, seed);
    t.net = fresh, t.opt = &fresh_opt;
  }
  int epochs_done = m ? m->epochs : 0;

  cnn_shape in = cnn_net_input(t.net);
  int classes = cnn_net_classes(t.net);
  /* A table may be streamed (the option data); everything else is read
   * into memory. */
  if (o.shuffle_buffer && (o.data != CNN_DATA_STREAM || cnn_source_is_name(source))) {
    rc = cnn_error(err, CNN_ERROR,
                   "option shuffle_buffer is for a query source with data \"stream\"; a table "
                   "is shuffled whole");
    goto done;
  }
  size_t buffer = o.shuffle_buffer ? o.shuffle_buffer : cfg.shuffle ? CNN_STREAM_NO_BUFFER : 0;
  if ((rc = cnn_stream_open(db, source, in, classes, 1, o.data, buffer, &stream, err)) ||
      (!stream && (rc = cnn_source_read(db, source, in, classes, 1, &rows, err))))
    goto done;
  if (o.validation &&
      ((rc = cnn_stream_open(db, o.validation, in, classes, 1, o.data, 0, &vstream, err)) ||
       (!vstream && (rc = cnn_source_read(db, o.validation, in, classes, 1, &vrows, err))))) {
    char tmp[CNN_ERRMAX];
    snprintf(tmp, sizeof tmp, "validation %.200s", err);
    memcpy(err, tmp, sizeof tmp);
    goto done;
  }
  if ((rc = cnn_threads_new(&pool, o.threads, err))) goto done;
  /* Like $CNN_ISA, the option only lowers the level. */
  if (o.has_isa && o.isa < cnn_threads_isa(pool)) cnn_threads_set_isa(pool, o.isa);
  if (o.bf16) {
    cnn_isa isa = cnn_threads_isa(pool);
    if (cnn_isa_bf16(isa) == CNN_BF16_NONE) {
      if (cnn_isa_bf16(cnn_isa_cpu()) == CNN_BF16_NONE)
        rc = cnn_error(err, CNN_ERROR,
                       "option precision \"bf16\" needs amx_bf16 or avx512_bf16, which this CPU "
                       "lacks");
      else
        rc = cnn_error(err, CNN_ERROR,
                       "option precision \"bf16\" needs isa \"%s\" or above on this CPU; the "
                       "run's isa is \"%s\"",
                       cnn_isa_name(cnn_isa_bf16(CNN_ISA_AVX512) ? CNN_ISA_AVX512 : CNN_ISA_AMX),
                       cnn_isa_name(isa));
      goto done;
    }
    cnn_threads_set_bf16(pool, 1);
  }
  cnn_net_set_pool(t.net, pool);
  if ((rc = cnn_probe_open(db, &t.probe, err))) goto done;

  t.db = db, t.name = name;
  t.progress.enabled = o.progress < 0 ? isatty(2) : o.progress;
  t.total_epochs = epochs_done + cfg.epochs;
  if (!cfg.has_seed) sqlite3_randomness(sizeof cfg.seed, &cfg.seed);
  cnn_dataset train = {rows.images, rows.labels, rows.count, NULL, NULL, NULL, 0};
  cnn_dataset val = {vrows.images, vrows.labels, vrows.count, NULL, NULL, NULL, 0};
  if (stream) {
    cnn_stream_dataset(stream, &train);
    cnn_stream_seed(stream, cfg.seed, epochs_done + 1);
  }
  if (vstream) {
    cnn_stream_role(vstream, "validation ");
    cnn_stream_dataset(vstream, &val);
  }
  cfg.first_epoch = epochs_done + 1;
  cfg.on_batch = on_batch, cfg.on_epoch = on_epoch, cfg.stop = stop, cfg.ctx = &t;
  cnn_train_result res;
  rc = cnn_train(t.net, t.opt, &train, o.validation ? &val : NULL, &cfg, &res, err);
  if (t.progress.epoch_open) fprintf(stderr, "\n");
  if (rc == CNN_INTERRUPTED) {
    cnn_error(err, CNN_INTERRUPTED, "interrupted; %d completed epoch%s saved", t.saved,
              t.saved == 1 ? "" : "s");
    goto done;
  }
  if (rc) goto done;
  /* Early stopping restored an earlier epoch's weights: store them. */
  if (res.best_epoch && (rc = commit_epoch(&t, &t.last, 0, err))) goto done;
  if (cfg.epochs == 0 && !t.stored) {
    cnn_epoch_stats none = {0};
    none.epoch = epochs_done;
    if ((rc = commit_epoch(&t, &none, 0, err))) goto done;
  }

  cnn_buf b = {0};
  cnn_buf_puts(&b, "{\"model\":");
  cnn_buf_json_string(&b, name);
  cnn_buf_printf(&b, ",\"epochs_run\":%d,\"epochs\":%d,\"samples\":%zu", res.epochs_run,
                 epochs_done + res.epochs_run, train.count);
  if (res.epochs_run) {
    json_stat(&b, "loss", t.last.loss);
    json_stat(&b, "accuracy", t.last.accuracy);
    if (o.validation) {
      json_stat(&b, "val_loss", t.last.val_loss);
      json_stat(&b, "val_accuracy", t.last.val_accuracy);
    }
  }
  json_stat(&b, "seconds", res.seconds);
  cnn_buf_printf(&b, ",\"stopped\":\"%s\"",
                 res.stopped_early ? "early_stopping"
                 : res.out_of_time ? "max_seconds"
                                   : "completed");
  if (res.best_epoch) cnn_buf_printf(&b, ",\"restored_epoch\":%d", res.best_epoch);
  cnn_buf_printf(&b, ",\"isa\":\"%s\",\"precision\":\"%s\",\"data\":\"%s\"",
                 cnn_isa_name(cnn_threads_isa(pool)), cnn_threads_bf16(pool) ? "bf16" : "fp32",
                 stream ? "stream" : "memory");
  cnn_buf_puts(&b, ",\"optimizer\":");
  char *ojs = cnn_optim_to_json(&t.opt->cfg);
  if (ojs) cnn_buf_puts(&b, ojs);
  cnn_free(ojs);
  cnn_buf_puts(&b, "}");
  char *json = cnn_buf_finish(&b);
  if (!json || !ojs) {
    cnn_free(json);
    rc = cnn_nomem(err);
    goto done;
  }
  sqlite3_result_text(ctx, json, -1, SQLITE_TRANSIENT);
  cnn_free(json);
done:
  if (rc) {
    if (rc == CNN_INTERRUPTED) {
      /* The message says how many epochs were kept; the code says why. */
      cnn_result_status(ctx, CNN_ERROR, err);
      sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
    } else {
      cnn_result_status(ctx, rc, err);
    }
  }
  sqlite3_finalize(t.probe);
  if (t.net) cnn_net_set_pool(t.net, NULL);
  cnn_threads_free(pool);
  cnn_rows_clear(&rows);
  cnn_rows_clear(&vrows);
  cnn_stream_free(stream);
  cnn_stream_free(vstream);
  cnn_json_free(root);
  cnn_optim_clear(&fresh_opt);
  cnn_net_free(fresh);
  cnn_stored_model_release(m);
  cnn_cache_forget(conn, name);
}
