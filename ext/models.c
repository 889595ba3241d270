/*
 * models.c - the life of a stored model: cnn_create, cnn_drop, cnn_default,
 * cnn_export and cnn_import. Each writer runs in one savepoint, so a failed
 * call leaves the tables as they were.
 */
#include <stdio.h>
#include <string.h>

#include "ext.h"

/* Ends a writer: commit, or roll back and report. */
static void finish(sqlite3_context *ctx, sqlite3 *db, cnn_tx *tx, const char *fn, int rc,
                   const char *err) {
  char cerr[CNN_ERRMAX];
  if (rc == CNN_OK && (rc = cnn_tx_commit(db, tx, cerr)) != CNN_OK) err = cerr;
  if (rc != CNN_OK) {
    cnn_tx_rollback(db, tx);
    cnn_result_status(ctx, fn, rc, err);
  }
}

void cnn_fn_create(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX], what[48];
  cnn_spec spec;
  cnn_net *net = NULL;
  cnn_tx tx = {0};
  const char *name = cnn_arg_name(ctx, "cnn_create", argv[0]);
  if (!name) return;
  const char *json = NULL;
  if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    if (sqlite3_value_type(argv[1]) != SQLITE_TEXT) {
      cnn_result_errorf(ctx, "cnn_create: spec must be JSON text or NULL; got %s",
                        cnn_value_describe(argv[1], what, sizeof what));
      return;
    }
    json = (const char *)sqlite3_value_text(argv[1]);
  }
  uint64_t seed;
  if (argc > 2 && sqlite3_value_type(argv[2]) != SQLITE_NULL) {
    sqlite3_int64 s = 0;
    int is_int = cnn_value_is_int(argv[2], &s);
    if (!is_int || s < 0) {
      if (is_int) snprintf(what, sizeof what, "%lld", (long long)s);
      cnn_result_errorf(ctx, "cnn_create: seed must be a non-negative integer; got %s",
                        is_int ? what : cnn_value_describe(argv[2], what, sizeof what));
      return;
    }
    seed = (uint64_t)s;
  } else {
    sqlite3_randomness(sizeof seed, &seed);
  }
  int rc = cnn_spec_parse(&spec, json, err);
  if (rc == CNN_OK) rc = cnn_net_new(&net, &spec, err);
  if (rc != CNN_OK) {
    cnn_result_status(ctx, "cnn_create", rc, err);
    return;
  }
  cnn_net_init(net, seed);
  if ((rc = cnn_store_init(db, err)) || (rc = cnn_tx_begin(db, &tx, err))) goto done;
  int exists = cnn_store_exists(db, name, err);
  if (exists < 0)
    rc = CNN_ERROR;
  else if (exists)
    rc = cnn_error(err, CNN_ERROR, "a model named '%s' already exists (cnn_drop it first)", name);
  else
    rc = cnn_store_create(db, name, net, err);
  if (rc == CNN_OK) sqlite3_result_int64(ctx, (sqlite3_int64)cnn_net_nparams(net));
done:
  finish(ctx, db, &tx, "cnn_create", rc, err);
  cnn_net_free(net);
}

void cnn_fn_drop(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  cnn_conn *conn = sqlite3_user_data(ctx);
  char err[CNN_ERRMAX];
  cnn_tx tx = {0};
  const char *name = cnn_arg_name(ctx, "cnn_drop", argv[0]);
  if (!name) return;
  int exists = cnn_store_exists(db, name, err), rc = CNN_OK;
  if (exists <= 0) {
    if (exists == 0) cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    cnn_result_status(ctx, "cnn_drop", CNN_ERROR, err);
    return;
  }
  static const char *const sql[] = {
      "DELETE FROM cnn_optimizer_state WHERE model = ?1",
      "DELETE FROM cnn_weights WHERE model = ?1", "DELETE FROM cnn_epochs WHERE model = ?1",
      "DELETE FROM cnn_models WHERE name = ?1",
      "DELETE FROM cnn_settings WHERE key = 'default_model' AND value = ?1"};
  if ((rc = cnn_tx_begin(db, &tx, err))) goto done;
  for (size_t i = 0; i < sizeof sql / sizeof sql[0] && rc == CNN_OK; i++) {
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db, sql[i], -1, &st, NULL);
    if (src == SQLITE_OK) {
      sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
      src = sqlite3_step(st);
    }
    if (src != SQLITE_OK && src != SQLITE_DONE)
      rc = cnn_error(err, src == SQLITE_NOMEM ? CNN_NOMEM : CNN_ERROR, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
  }
  if (rc == CNN_OK) sqlite3_result_int(ctx, 1);
done:
  finish(ctx, db, &tx, "cnn_drop", rc, err);
  cnn_cache_forget(conn, name);
}

void cnn_fn_default(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX];
  cnn_tx tx = {0};
  if (argc == 0) {
    char *name = NULL;
    int rc = cnn_store_get_default(db, &name, err);
    if (rc == CNN_NOMEM)
      sqlite3_result_error_nomem(ctx);
    else if (rc == CNN_OK)
      sqlite3_result_text(ctx, name, -1, sqlite3_free);
    else
      sqlite3_result_null(ctx);
    return;
  }
  const char *name = cnn_arg_name(ctx, "cnn_default", argv[0]);
  if (!name) return;
  int exists = cnn_store_exists(db, name, err), rc;
  if (exists <= 0) {
    if (exists == 0) cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    cnn_result_status(ctx, "cnn_default", CNN_ERROR, err);
    return;
  }
  if ((rc = cnn_tx_begin(db, &tx, err)) == CNN_OK &&
      (rc = cnn_store_set_default(db, name, err)) == CNN_OK)
    sqlite3_result_text(ctx, name, -1, SQLITE_TRANSIENT);
  finish(ctx, db, &tx, "cnn_default", rc, err);
}

void cnn_fn_export(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX];
  cnn_model *m = NULL;
  uint8_t *blob = NULL;
  size_t len = 0;
  const char *name = cnn_arg_name(ctx, "cnn_export", argv[0]);
  if (!name) return;
  int rc = cnn_store_load(db, name, 1, &m, err);
  if (rc == CNN_OK)
    rc = cnn_model_save(&blob, &len, m->net, m->has_optim ? &m->opt : NULL, m->epochs, err);
  if (rc == CNN_OK) {
    /* The blob was made with cnn_malloc: SQLite copies it. */
    sqlite3_result_blob64(ctx, blob, len, SQLITE_TRANSIENT);
  } else {
    cnn_result_status(ctx, "cnn_export", rc, err);
  }
  cnn_free(blob);
  cnn_model_release(m);
}

void cnn_fn_import(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  cnn_conn *conn = sqlite3_user_data(ctx);
  char err[CNN_ERRMAX], what[48];
  cnn_net *net = NULL;
  cnn_optim opt = {0};
  cnn_tx tx = {0};
  int epochs = 0;
  const char *name = cnn_arg_name(ctx, "cnn_import", argv[0]);
  if (!name) return;
  if (sqlite3_value_type(argv[1]) != SQLITE_BLOB) {
    cnn_result_errorf(ctx, "cnn_import: blob must be a model made by cnn_export; got %s",
                      cnn_value_describe(argv[1], what, sizeof what));
    return;
  }
  int rc = cnn_model_load(&net, &opt, &epochs, sqlite3_value_blob(argv[1]),
                          (size_t)sqlite3_value_bytes(argv[1]), err);
  if (rc != CNN_OK) {
    cnn_result_status(ctx, "cnn_import", rc, err);
    return;
  }
  if ((rc = cnn_store_init(db, err)) || (rc = cnn_tx_begin(db, &tx, err))) goto done;
  int exists = cnn_store_exists(db, name, err);
  if (exists < 0)
    rc = CNN_ERROR;
  else if (exists)
    rc = cnn_error(err, CNN_ERROR, "a model named '%s' already exists (cnn_drop it first)", name);
  else if ((rc = cnn_store_create(db, name, net, err)) == CNN_OK && opt.n)
    rc = cnn_store_save(db, name, net, &opt, epochs, err);
  if (rc == CNN_OK) sqlite3_result_int64(ctx, (sqlite3_int64)cnn_net_nparams(net));
done:
  finish(ctx, db, &tx, "cnn_import", rc, err);
  cnn_cache_forget(conn, name);
  cnn_optim_clear(&opt);
  cnn_net_free(net);
}
