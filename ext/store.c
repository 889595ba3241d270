/*
 * store.c - models in tables (sql/schema.sql): create, save, load, the
 * default model, the per-connection cache, and the savepoint discipline every
 * writer uses.
 *
 * Loading trusts nothing in the tables: the spec is parsed and validated
 * again, every tensor row must have the name, shape and byte length the spec
 * implies, and every float must be finite. Blobs are float32 little-endian
 * whatever the host (converted on big-endian machines).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ext.h"
#include "json.h"

static const char schema_sql[] =
#include "schema.inc"
    ;

/* Runs one statement with text/int64/blob bindings given as a format string:
 * 't' text, 'i' int64, 'd' double, 'b' blob (pointer, length), 'n' null. */
static int run(sqlite3 *db, char *err, const char *sql, const char *fmt, ...) {
  sqlite3_stmt *st = NULL;
  va_list ap;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cnn_error(err, rc == SQLITE_NOMEM ? CNN_NOMEM : CNN_ERROR, "%s", sqlite3_errmsg(db));
  va_start(ap, fmt);
  for (int i = 1; fmt && *fmt && rc == SQLITE_OK; fmt++, i++) {
    switch (*fmt) {
    case 't':
      rc = sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_STATIC);
      break;
    case 'i':
      rc = sqlite3_bind_int64(st, i, va_arg(ap, sqlite3_int64));
      break;
    case 'd':
      rc = sqlite3_bind_double(st, i, va_arg(ap, double));
      break;
    case 'n':
      rc = sqlite3_bind_null(st, i);
      break;
    case 'b': {
      const void *p = va_arg(ap, const void *);
      size_t n = va_arg(ap, size_t);
      rc = sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
      break;
    }
    }
  }
  va_end(ap);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) rc = SQLITE_OK;
  int status = CNN_OK;
  if (rc != SQLITE_OK)
    status = cnn_error(err,
                       rc == SQLITE_NOMEM       ? CNN_NOMEM
                       : rc == SQLITE_INTERRUPT ? CNN_INTERRUPTED
                                                : CNN_ERROR,
                       "%s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return status;
}

static int sql_status(sqlite3 *db, int rc, char *err) {
  if (rc == SQLITE_NOMEM) return cnn_nomem(err);
  if (rc == SQLITE_INTERRUPT) return cnn_error(err, CNN_INTERRUPTED, "interrupted");
  return cnn_error(err, CNN_ERROR, "%s", sqlite3_errmsg(db));
}

int cnn_store_init(sqlite3 *db, char *err) {
  /* Cheap when the tables exist: one lookup in sqlite_schema for the last
   * trigger and the newest table (a database from an earlier version gets
   * what it lacks: every statement says IF NOT EXISTS). */
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db,
                              "SELECT count(*) FROM sqlite_schema WHERE name IN "
                              "('cnn_weights_delete', 'cnn_layer_epochs')",
                              -1, &st, NULL);
  int have = 0;
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) have = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return sql_status(db, rc, err);
  if (have == 2) return CNN_OK;
  char *msg = NULL;
  rc = sqlite3_exec(db, schema_sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    int status = rc == SQLITE_NOMEM ? CNN_NOMEM : CNN_ERROR;
    cnn_error(err, status, "cannot create the model tables: %s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return status;
  }
  return CNN_OK;
}

int cnn_tx_begin(sqlite3 *db, cnn_tx *tx, char *err) {
  tx->opened = CNN_TX_NONE;
  tx->abort = NULL;
  /* A running writer (INSERT ... SELECT cnn_train(...)) cannot be committed
   * under: join its transaction instead. */
  for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s))
    if (sqlite3_stmt_busy(s) && !sqlite3_stmt_readonly(s)) return CNN_OK;
  /* In autocommit mode take the write lock first: a deferred transaction
   * that read before writing cannot wait for another writer (SQLite returns
   * "database is locked" at once rather than risk a deadlock), while BEGIN
   * IMMEDIATE waits for it through the busy timeout. */
  int immediate = sqlite3_get_autocommit(db);
  /* The way out if an interrupt stops the commit: see cnn_tx_rollback. */
  if (immediate &&
      sqlite3_prepare_v2(db, "DELETE FROM cnn_settings WHERE 0", -1, &tx->abort, NULL) != SQLITE_OK)
    return sql_status(db, sqlite3_errcode(db), err);
  int rc = run(db, err, immediate ? "BEGIN IMMEDIATE" : "SAVEPOINT cnn_write", NULL);
  if (rc == CNN_OK)
    tx->opened = immediate ? CNN_TX_BEGIN : CNN_TX_SAVEPOINT;
  else if (immediate && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* it failed after opening (out of memory) */
  if (rc != CNN_OK) sqlite3_finalize(tx->abort), tx->abort = NULL;
  return rc;
}

int cnn_tx_commit(sqlite3 *db, cnn_tx *tx, char *err) {
  if (tx->opened == CNN_TX_NONE) return CNN_OK;
  int rc = run(db, err, tx->opened == CNN_TX_BEGIN ? "COMMIT" : "RELEASE cnn_write", NULL);
  if (rc != CNN_OK) {
    cnn_tx_rollback(db, tx);
    return rc;
  }
  tx->opened = CNN_TX_NONE;
  sqlite3_finalize(tx->abort);
  tx->abort = NULL;
  return CNN_OK;
}

void cnn_tx_rollback(sqlite3 *db, cnn_tx *tx) {
  if (tx->opened == CNN_TX_NONE) return;
  /* Even if interrupted: the rollback must happen, so run it regardless.
   * SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR); then
   * ROLLBACK only reports that no transaction is active. */
  if (tx->opened == CNN_TX_BEGIN) {
    /* Interrupted, the flag stays set while the calling statement runs and
     * no statement can even be prepared, ROLLBACK included. A writing
     * statement prepared beforehand fails at once, and SQLite then rolls
     * back the transaction itself. */
    if (!sqlite3_get_autocommit(db) &&
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && !sqlite3_get_autocommit(db))
      sqlite3_step(tx->abort);
  } else {
    sqlite3_exec(db, "ROLLBACK TO cnn_write; RELEASE cnn_write", NULL, NULL, NULL);
  }
  sqlite3_finalize(tx->abort);
  tx->abort = NULL;
  tx->opened = CNN_TX_NONE;
}

void cnn_tx_finish(sqlite3_context *ctx, sqlite3 *db, cnn_tx *tx, int rc, const char *err) {
  char cerr[CNN_ERRMAX];
  if (rc == CNN_OK && (rc = cnn_tx_commit(db, tx, cerr)) != CNN_OK) err = cerr;
  if (rc != CNN_OK) {
    cnn_tx_rollback(db, tx);
    cnn_result_status(ctx, rc, err);
  }
}

int cnn_store_exists(sqlite3 *db, const char *name, char *err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM cnn_models WHERE name = ?1", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st);
    /* No tables yet: no models. */
    if (sqlite3_errcode(db) == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table"))
      return 0;
    sql_status(db, rc, err);
    return -1;
  }
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  int found = rc == SQLITE_ROW;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    sql_status(db, rc, err);
    found = -1;
  }
  sqlite3_finalize(st);
  return found;
}

/* Float32 little-endian blobs. On little-endian hosts the arena is the blob. */
static int host_is_little(void) {
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

/* A blob of n floats in little-endian order: the floats themselves or a
 * converted copy in *tmp (caller frees). */
static const void *le_floats(const float *x, size_t n, void **tmp) {
  *tmp = NULL;
  if (host_is_little()) return x;
  uint8_t *b = cnn_malloc(n * 4);
  if (!b) return NULL;
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    for (int k = 0; k < 4; k++) b[4 * i + k] = (uint8_t)(u >> (8 * k));
  }
  *tmp = b;
  return b;
}

static void floats_from_le(float *x, const uint8_t *b, size_t n) {
  if (host_is_little()) {
    memcpy(x, b, n * 4);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                 (uint32_t)b[4 * i + 3] << 24;
    memcpy(&x[i], &u, 4);
  }
}

static void shape_json(char *out, size_t size, const cnn_tensor_info *t) {
  size_t k = (size_t)snprintf(out, size, "[");
  for (int d = 0; d < t->rank && k < size; d++)
    k += (size_t)snprintf(out + k, size - k, "%s%d", d ? "," : "", t->dims[d]);
  if (k < size) snprintf(out + k, size - k, "]");
}

/* Writes every tensor of the net (upsert) and, when opt, the optimizer state. */
static int write_tensors(sqlite3 *db, const char *name, const cnn_net *net, const cnn_optim *opt,
                         char *err) {
  int rc = CNN_OK;
  const float *params = cnn_net_params((cnn_net *)net);
  for (int i = 0; i < cnn_net_tensors(net) && rc == CNN_OK; i++) {
    cnn_tensor_info t = cnn_net_tensor(net, i);
    char shape[96];
    void *tmp;
    shape_json(shape, sizeof shape, &t);
    const void *blob = le_floats(params + t.offset, t.count, &tmp);
    if (!blob) return cnn_nomem(err);
    rc = run(db, err,
             "INSERT INTO cnn_weights(model, idx, name, shape, data) VALUES (?1, ?2, ?3, ?4, ?5) "
             "ON CONFLICT(model, idx) DO UPDATE SET name = excluded.name, shape = excluded.shape, "
             "data = excluded.data",
             "tittb", name, (sqlite3_int64)i, t.name, shape, blob, t.count * 4);
    cnn_free(tmp);
  }
  if (rc || !opt) return rc;
  rc = run(db, err, "DELETE FROM cnn_optimizer_state WHERE model = ?1", "t", name);
  for (int s = 0; s < opt->nslots && rc == CNN_OK; s++) {
    for (int i = 0; i < cnn_net_tensors(net) && rc == CNN_OK; i++) {
      cnn_tensor_info t = cnn_net_tensor(net, i);
      void *tmp;
      if (!t.trainable) continue; /* moving statistics: no optimizer state */
      const void *blob = le_floats(opt->state + (size_t)s * opt->n + t.offset, t.count, &tmp);
      if (!blob) return cnn_nomem(err);
      rc = run(db, err,
               "INSERT INTO cnn_optimizer_state(model, slot, name, idx, data) "
               "VALUES (?1, ?2, ?3, ?4, ?5)",
               "titib", name, (sqlite3_int64)s, cnn_optim_slot_name(&opt->cfg, s), (sqlite3_int64)i,
               blob, t.count * 4);
      cnn_free(tmp);
    }
  }
  return rc;
}

int cnn_store_create(sqlite3 *db, const char *name, const cnn_net *net, char *err) {
  char *spec = cnn_spec_to_json(cnn_net_spec(net));
  if (!spec) return cnn_nomem(err);
  /* A random first version: a model dropped and created again under the
   * same name would otherwise count from 1 again, and another connection's
   * cached copy of the old one could match its version and stay in use. */
  int rc = run(db, err,
               "INSERT INTO cnn_models(name, spec, params, version) "
               "VALUES (?1, ?2, ?3, abs(random() % 1000000000000000))",
               "tti", name, spec, (sqlite3_int64)(cnn_net_nparams(net) + cnn_net_nstate(net)));
  cnn_free(spec);
  return rc ? rc : write_tensors(db, name, net, NULL, err);
}

int cnn_store_save(sqlite3 *db, const char *name, const cnn_net *net, const cnn_optim *opt,
                   int epochs, char *err) {
  char *ojs = cnn_optim_to_json(&opt->cfg);
  if (!ojs) return cnn_nomem(err);
  int rc = write_tensors(db, name, net, opt, err);
  if (rc == CNN_OK)
    rc = run(db, err,
             "UPDATE cnn_models SET optimizer = ?2, step = ?3, epochs = ?4, version = version + 1, "
             "updated = CURRENT_TIMESTAMP WHERE name = ?1",
             "ttii", name, ojs, (sqlite3_int64)opt->step, (sqlite3_int64)epochs);
  cnn_free(ojs);
  return rc;
}

void cnn_stored_model_release(cnn_stored_model *m) {
  if (!m || --m->refs > 0) return;
  cnn_free(m->name);
  cnn_net_free(m->net);
  cnn_optim_clear(&m->opt);
  cnn_free(m);
}

/* The tensor after `from` that has rows of this kind (optimizer state rows
 * skip the non-trainable tensors but keep their tensor's idx), or the count. */
static int next_tensor(const cnn_net *net, int from, int slot) {
  int i = from;
  while (slot >= 0 && i < cnn_net_tensors(net) && !cnn_net_tensor(net, i).trainable) i++;
  return i;
}

/* Reads the rows of one kind of tensor blob into the arena. */
static int read_blob_rows(sqlite3 *db, const char *name, const cnn_net *net, float *arena, int slot,
                          char *err) {
  sqlite3_stmt *st = NULL;
  int rc = CNN_OK, seen = 0, want = next_tensor(net, 0, slot), expected = 0;
  for (int i = 0; i < cnn_net_tensors(net); i++)
    expected += slot < 0 || cnn_net_tensor(net, i).trainable;
  const char *sql =
      slot < 0 ? "SELECT idx, name, shape, data FROM cnn_weights WHERE model = ?1 ORDER BY idx"
               : "SELECT idx, name, '', data FROM cnn_optimizer_state "
                 "WHERE model = ?1 AND slot = ?2 ORDER BY idx";
  int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (src != SQLITE_OK) return sql_status(db, src, err);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (slot >= 0) sqlite3_bind_int(st, 2, slot);
  const char *what = slot < 0 ? "weights" : "optimizer state";
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    sqlite3_int64 idx = sqlite3_column_int64(st, 0);
    if (idx >= cnn_net_tensors(net)) {
      rc = cnn_error(err, CNN_ERROR,
                     "model '%s': %s row idx %lld is extra: the model has %d tensors", name, what,
                     (long long)idx, cnn_net_tensors(net));
      break;
    }
    if (idx != want) {
      rc = cnn_error(err, CNN_ERROR, "model '%s': %s row idx %lld is %s", name, what,
                     (long long)(idx > want ? want : idx),
                     idx > want ? "missing" : "extra: that tensor is not trainable");
      break;
    }
    cnn_tensor_info t = cnn_net_tensor(net, (int)idx);
    const char *tname = (const char *)sqlite3_column_text(st, 1);
    const char *tshape = (const char *)sqlite3_column_text(st, 2);
    char shape[96];
    shape_json(shape, sizeof shape, &t);
    if (slot < 0 && (!tname || strcmp(tname, t.name) || !tshape || strcmp(tshape, shape))) {
      rc = cnn_error(err, CNN_ERROR, "model '%s': tensor %lld should be %s %s", name,
                     (long long)idx, t.name, shape);
      break;
    }
    const void *data = sqlite3_column_blob(st, 3);
    size_t bytes = (size_t)sqlite3_column_bytes(st, 3);
    if (bytes != t.count * 4 || (!data && bytes)) {
      rc = cnn_error(err, CNN_ERROR, "model '%s': %s of %s must be %zu bytes, found %zu", name,
                     what, t.name, t.count * 4, bytes);
      break;
    }
    floats_from_le(arena + t.offset, data, t.count);
    long bad = cnn_first_nonfinite(arena + t.offset, t.count);
    if (bad >= 0) {
      rc = cnn_error(err, CNN_ERROR, "model '%s': %s of %s has a non-finite value at %ld", name,
                     what, t.name, bad);
      break;
    }
    seen++;
    want = next_tensor(net, want + 1, slot);
  }
  if (rc == CNN_OK && src != SQLITE_DONE) rc = sql_status(db, src, err);
  if (rc == CNN_OK && seen != expected)
    rc = cnn_error(err, CNN_ERROR, "model '%s': %s has %d of %d tensors", name, what, seen,
                   expected);
  sqlite3_finalize(st);
  return rc;
}

int cnn_store_load(sqlite3 *db, const char *name, int with_optim, cnn_stored_model **out,
                   char *err) {
  sqlite3_stmt *st = NULL;
  cnn_stored_model *m = NULL;
  cnn_json *oj = NULL;
  char sub[CNN_ERRMAX];
  int rc = CNN_OK;
  *out = NULL;
  int src = sqlite3_prepare_v2(
      db, "SELECT spec, optimizer, step, epochs, version FROM cnn_models WHERE name = ?1", -1, &st,
      NULL);
  if (src != SQLITE_OK) {
    sqlite3_finalize(st);
    if (strstr(sqlite3_errmsg(db), "no such table"))
      return cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    return sql_status(db, src, err);
  }
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  src = sqlite3_step(st);
  if (src == SQLITE_DONE) {
    rc = cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    goto done;
  }
  if (src != SQLITE_ROW) {
    rc = sql_status(db, src, err);
    goto done;
  }
  m = cnn_calloc(1, sizeof *m);
  size_t nlen = strlen(name) + 1;
  if (!m || !(m->name = cnn_malloc(nlen))) {
    rc = cnn_nomem(err);
    goto done;
  }
  memcpy(m->name, name, nlen);
  m->refs = 1;
  m->version = sqlite3_column_int64(st, 4);
  m->epochs = sqlite3_column_int(st, 3);
  cnn_spec spec;
  const char *spec_text = (const char *)sqlite3_column_text(st, 0);
  if ((rc = cnn_spec_parse(&spec, spec_text ? spec_text : "", sub)) ||
      (rc = cnn_net_new(&m->net, &spec, sub))) {
    if (rc != CNN_NOMEM)
      cnn_error(err, rc, "model '%s': stored spec: %s", name, sub);
    else
      cnn_nomem(err);
    goto done;
  }
  if ((rc = read_blob_rows(db, name, m->net, cnn_net_params(m->net), -1, err))) goto done;
  if ((rc = cnn_net_check_weights(m->net, sub))) {
    cnn_error(err, rc, "model '%s': %s", name, sub);
    goto done;
  }
  const char *opt_text = (const char *)sqlite3_column_text(st, 1);
  if (with_optim && opt_text) {
    cnn_optim_config cfg;
    if ((rc = cnn_json_parse(&oj, opt_text, strlen(opt_text), sub)) ||
        (rc = cnn_optim_parse(&cfg, oj, sub))) {
      if (rc != CNN_NOMEM)
        cnn_error(err, rc, "model '%s': stored optimizer: %s", name, sub);
      else
        cnn_nomem(err);
      goto done;
    }
    if ((rc = cnn_optim_init(&m->opt, &cfg, cnn_net_nparams(m->net), err))) goto done;
    m->opt.step = sqlite3_column_int64(st, 2);
    m->has_optim = 1;
    for (int s = 0; s < m->opt.nslots; s++)
      if ((rc = read_blob_rows(db, name, m->net, m->opt.state + (size_t)s * m->opt.n, s, err)))
        goto done;
  }
done:
  sqlite3_finalize(st);
  cnn_json_free(oj);
  if (rc) {
    cnn_stored_model_release(m);
    return rc;
  }
  *out = m;
  return CNN_OK;
}

int cnn_store_set_default(sqlite3 *db, const char *name, char *err) {
  return run(db, err,
             "INSERT INTO cnn_settings(key, value) VALUES ('default_model', ?1) "
             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
             "t", name);
}

/* The model used when none is named: the one set as default if it still
 * exists, else the most recently trained (then created). */
#define LATEST_MODEL \
  "SELECT name FROM cnn_models ORDER BY epochs > 0 DESC, updated DESC, rowid DESC LIMIT 1"
#define DEFAULT_MODEL                                                                     \
  "SELECT name FROM cnn_models WHERE name = (SELECT value FROM cnn_settings WHERE key = " \
  "'default_model') UNION ALL SELECT * FROM (" LATEST_MODEL ") LIMIT 1"

int cnn_store_get_default(sqlite3 *db, char **out, char *err) {
  sqlite3_stmt *st = NULL;
  char *name = NULL;
  int status = CNN_OK;
  int rc = sqlite3_prepare_v2(db, DEFAULT_MODEL, -1, &st, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st);
    if (strstr(sqlite3_errmsg(db), "no such table"))
      return cnn_error(err, CNN_ERROR,
                       "no model in this database (create one with cnn_create or cnn_train)");
    return sql_status(db, rc, err);
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    name = sqlite3_mprintf("%s", sqlite3_column_text(st, 0));
    if (!name) status = cnn_nomem(err);
  } else if (rc == SQLITE_DONE) {
    status = cnn_error(err, CNN_ERROR,
                       "no model in this database (create one with cnn_create or cnn_train)");
  } else {
    status = sql_status(db, rc, err);
  }
  sqlite3_finalize(st);
  *out = name;
  return status;
}

int cnn_store_version(sqlite3 *db, const char *name, sqlite3_int64 *version, char *err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT version FROM cnn_models WHERE name = ?1", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st);
    if (strstr(sqlite3_errmsg(db), "no such table"))
      return cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    return sql_status(db, rc, err);
  }
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  int status = CNN_OK;
  if (rc == SQLITE_ROW)
    *version = sqlite3_column_int64(st, 0);
  else if (rc == SQLITE_DONE)
    status = cnn_error(err, CNN_ERROR, "no model named '%s'", name);
  else
    status = sql_status(db, rc, err);
  sqlite3_finalize(st);
  return status;
}

void cnn_cache_forget(cnn_conn *conn, const char *name) {
  for (int i = 0; i < CNN_CACHE_MODELS; i++) {
    if (conn->cache[i] && (!name || !strcmp(conn->cache[i]->name, name))) {
      cnn_stored_model_release(conn->cache[i]);
      conn->cache[i] = NULL;
    }
  }
}

cnn_threads *cnn_conn_pool(cnn_conn *conn) {
  if (!conn->pool) {
    char err[CNN_ERRMAX];
    if (cnn_threads_new(&conn->pool, 0, err)) conn->pool = NULL; /* run single-threaded */
  }
  return conn->pool;
}

int cnn_store_bf16(sqlite3 *db, const char *name, int *bf16, char *err) {
  sqlite3_stmt *st = NULL;
  *bf16 = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT value FROM cnn_settings WHERE key = 'precision:' || ?1",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      const unsigned char *v = sqlite3_column_text(st, 0);
      *bf16 = v && !strcmp((const char *)v, "bf16");
      rc = SQLITE_DONE;
    }
  } else if (strstr(sqlite3_errmsg(db), "no such table")) {
    rc = SQLITE_DONE; /* a database from before settings: all fp32 */
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? CNN_OK : sql_status(db, rc, err);
}

/* What a lookup of the cache needs from the tables, in one statement (each
 * row's prediction through SQL may pay it): the model's name (the default's
 * when name is NULL), version and inference precision. A database from
 * before the settings table has no default set and every model in fp32. */
static int store_lookup(sqlite3 *db, const char *name, char **found, sqlite3_int64 *version,
                        int *bf16, char *err) {
  static const char *const sql[2] = {
      "SELECT m.name, m.version, (SELECT value FROM cnn_settings WHERE key = 'precision:' || "
      "m.name) FROM cnn_models m WHERE m.name = coalesce(?1, (" DEFAULT_MODEL "))",
      "SELECT name, version, NULL FROM cnn_models WHERE name = coalesce(?1, (" LATEST_MODEL "))"};
  sqlite3_stmt *st = NULL;
  int rc = SQLITE_ERROR;
  for (int i = 0; i < 2 && rc != SQLITE_OK; i++) {
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(db, sql[i], -1, &st, NULL);
    if (rc != SQLITE_OK && !strstr(sqlite3_errmsg(db), "no such table")) break;
  }
  int status = CNN_OK;
  *found = NULL;
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
  } else if (strstr(sqlite3_errmsg(db), "no such table")) {
    rc = SQLITE_DONE; /* no cnn_models: no model at all */
  }
  if (rc == SQLITE_ROW) {
    const unsigned char *v = sqlite3_column_text(st, 2);
    *version = sqlite3_column_int64(st, 1);
    *bf16 = v && !strcmp((const char *)v, "bf16");
    if (!(*found = sqlite3_mprintf("%s", sqlite3_column_text(st, 0)))) status = cnn_nomem(err);
  } else if (rc == SQLITE_DONE) {
    status = name
                 ? cnn_error(err, CNN_ERROR, "no model named '%s'", name)
                 : cnn_error(err, CNN_ERROR,
                             "no model in this database (create one with cnn_create or cnn_train)");
  } else {
    status = sql_status(db, rc, err);
  }
  sqlite3_finalize(st);
  return status;
}

int cnn_cache_get(cnn_conn *conn, sqlite3 *db, const char *name, cnn_stored_model **out,
                  char *err) {
  char *found = NULL;
  sqlite3_int64 version = 0;
  int rc, bf16 = 0;
  *out = NULL;
  if ((rc = store_lookup(db, name, &found, &version, &bf16, err))) return rc;
  name = found;
  int slot = -1;
  for (int i = 0; i < CNN_CACHE_MODELS; i++)
    if (conn->cache[i] && !strcmp(conn->cache[i]->name, name)) slot = i;
  cnn_stored_model *m = slot >= 0 ? conn->cache[slot] : NULL;
  if (!m || m->version != version) {
    cnn_stored_model *fresh = NULL;
    if ((rc = cnn_store_load(db, name, 0, &fresh, err))) goto done;
    cnn_net_set_pool(fresh->net, cnn_conn_pool(conn));
    if (slot < 0) slot = CNN_CACHE_MODELS - 1; /* evict the least recent */
    cnn_stored_model_release(conn->cache[slot]);
    conn->cache[slot] = m = fresh;
  }
  if (cnn_net_bf16_inference(m->net) != bf16 &&
      (rc = cnn_net_set_bf16_inference(m->net, bf16, err))) {
    char why[CNN_ERRMAX];
    memcpy(why, err, sizeof why);
    cnn_error(err, rc, "model '%s' is set to precision \"bf16\" (cnn_precision): %s", name, why);
    goto done;
  }
  /* Most recent first. */
  for (int i = slot; i > 0; i--) conn->cache[i] = conn->cache[i - 1];
  conn->cache[0] = m;
  m->refs++;
  *out = m;
done:
  sqlite3_free(found);
  return rc;
}
