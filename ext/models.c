/*
 * models.c - the life of a stored model: cnn_create, cnn_drop, cnn_default
 * and cnn_precision. Each writer runs in one transaction (cnn_tx, ext/store.c), so
 * a failed call leaves the tables as they were. Moving a model between
 * databases, cnn_export and cnn_import, is ext/exchange.c.
 */
#include <stdio.h>
#include <string.h>

#include "ext.h"

void cnn_fn_create(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "", what[48];
  cnn_spec spec;
  cnn_net *net = NULL;
  cnn_tx tx = {0};
  const char *name, *json = NULL;
  uint64_t seed;
  int rc = cnn_arg_name(argv[0], &name, err);
  if (rc) goto done;
  if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    if (sqlite3_value_type(argv[1]) != SQLITE_TEXT) {
      rc = cnn_error(err, CNN_ERROR, "spec must be JSON text or NULL; got %s",
                     cnn_value_describe(argv[1], what, sizeof what));
      goto done;
    }
    json = (const char *)sqlite3_value_text(argv[1]);
  }
  if (argc > 2 && sqlite3_value_type(argv[2]) != SQLITE_NULL) {
    sqlite3_int64 s = 0;
    int is_int = cnn_value_is_int(argv[2], &s);
    if (!is_int || s < 0) {
      if (is_int) snprintf(what, sizeof what, "%lld", (long long)s);
      rc = cnn_error(err, CNN_ERROR, "seed must be a non-negative integer; got %s",
                     is_int ? what : cnn_value_describe(argv[2], what, sizeof what));
      goto done;
    }
    seed = (uint64_t)s;
  } else {
    sqlite3_randomness(sizeof seed, &seed);
  }
  if ((rc = cnn_spec_parse(&spec, json, err)) || (rc = cnn_net_new(&net, &spec, err))) goto done;
  cnn_net_init(net, seed);
  if ((rc = cnn_store_init(db, err)) || (rc = cnn_tx_begin(db, &tx, err))) goto done;
  int exists = cnn_store_exists(db, name, err);
  if (exists < 0)
    rc = CNN_ERROR;
  else if (exists)
    rc = cnn_error(err, CNN_ERROR, "a model named '%s' already exists (cnn_drop it first)", name);
  else
    rc = cnn_store_create(db, name, net, err);
  if (rc == CNN_OK)
    sqlite3_result_int64(ctx, (sqlite3_int64)(cnn_net_nparams(net) + cnn_net_nstate(net)));
done:
  cnn_tx_finish(ctx, db, &tx, rc, err);
  cnn_net_free(net);
}

void cnn_fn_drop(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
  cnn_tx tx = {0};
  const char *name;
  int rc = cnn_arg_name(argv[0], &name, err);
  if (rc) {
    cnn_result_status(ctx, rc, err);
    return;
  }
  int exists = cnn_store_exists(db, name, err);
  if (exists <= 0) {
    if (exists == 0) cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    cnn_result_status(ctx, CNN_ERROR, err);
    return;
  }
  static const char *const sql[] = {
      "DELETE FROM cnn_optimizer_state WHERE model = ?1",
      "DELETE FROM cnn_weights WHERE model = ?1",
      "DELETE FROM cnn_epochs WHERE model = ?1",
      "DELETE FROM cnn_layer_epochs WHERE model = ?1",
      "DELETE FROM cnn_models WHERE name = ?1",
      "DELETE FROM cnn_settings WHERE key = 'default_model' AND value = ?1",
      "DELETE FROM cnn_settings WHERE key = 'precision:' || ?1"};
  /* A database from before cnn_layer_epochs gets it first. */
  if ((rc = cnn_store_init(db, err)) || (rc = cnn_tx_begin(db, &tx, err))) goto done;
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
  cnn_tx_finish(ctx, db, &tx, rc, err);
  cnn_cache_forget(cnn_ctx_conn(ctx), name);
}

void cnn_fn_default(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
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
  const char *name;
  int rc = cnn_arg_name(argv[0], &name, err);
  if (rc) {
    cnn_result_status(ctx, rc, err);
    return;
  }
  int exists = cnn_store_exists(db, name, err);
  if (exists <= 0) {
    if (exists == 0) cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    cnn_result_status(ctx, CNN_ERROR, err);
    return;
  }
  if ((rc = cnn_tx_begin(db, &tx, err)) == CNN_OK &&
      (rc = cnn_store_set_default(db, name, err)) == CNN_OK)
    sqlite3_result_text(ctx, name, -1, SQLITE_TRANSIENT);
  cnn_tx_finish(ctx, db, &tx, rc, err);
}

/* cnn_precision(name) reads a model's inference precision, "fp32" (the
 * default) or "bf16"; cnn_precision(name, precision) sets it, for every
 * connection (a row of cnn_settings, key 'precision:' || name). Setting
 * "bf16" first prepares this connection's copy of the model, so a CPU
 * without bf16 kernels refuses it before anything is stored; "fp32" always
 * works, even where a stored "bf16" cannot run. */
void cnn_fn_precision(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "", what[48];
  cnn_stored_model *m = NULL;
  cnn_tx tx = {0};
  const char *name, *want = NULL;
  int rc = cnn_arg_name(argv[0], &name, err), bf16 = 0;
  if (rc) goto done;
  if (argc > 1) {
    want = (const char *)sqlite3_value_text(argv[1]);
    if (sqlite3_value_type(argv[1]) != SQLITE_TEXT ||
        (strcmp(want, "fp32") && strcmp(want, "bf16"))) {
      if (sqlite3_value_type(argv[1]) == SQLITE_TEXT)
        rc = cnn_error(err, CNN_ERROR, "precision must be 'fp32' or 'bf16'; got '%.40s'", want);
      else
        rc = cnn_error(err, CNN_ERROR, "precision must be 'fp32' or 'bf16'; got %s",
                       cnn_value_describe(argv[1], what, sizeof what));
      goto done;
    }
  }
  int exists = cnn_store_exists(db, name, err);
  if (exists <= 0) {
    rc = exists == 0 ? cnn_error(err, CNN_ERROR, "no model named '%s'", name) : CNN_ERROR;
    goto done;
  }
  if (!want) {
    if ((rc = cnn_store_bf16(db, name, &bf16, err)) == CNN_OK)
      sqlite3_result_text(ctx, bf16 ? "bf16" : "fp32", -1, SQLITE_STATIC);
    goto done;
  }
  bf16 = !strcmp(want, "bf16");
  if (bf16 && ((rc = cnn_cache_get(cnn_ctx_conn(ctx), db, name, &m, err)) ||
               (rc = cnn_net_set_bf16_inference(m->net, 1, err))))
    goto done;
  if ((rc = cnn_store_init(db, err)) || (rc = cnn_tx_begin(db, &tx, err))) goto done;
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(
      db,
      bf16 ? "INSERT INTO cnn_settings(key, value) VALUES ('precision:' || ?1, 'bf16') "
             "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
           : "DELETE FROM cnn_settings WHERE key = 'precision:' || ?1",
      -1, &st, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
  }
  if (src != SQLITE_OK && src != SQLITE_DONE)
    rc = cnn_error(err, src == SQLITE_NOMEM ? CNN_NOMEM : CNN_ERROR, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  if (rc == CNN_OK) sqlite3_result_text(ctx, want, -1, SQLITE_TRANSIENT);
done:
  if (want)
    cnn_tx_finish(ctx, db, &tx, rc, err);
  else if (rc)
    cnn_result_status(ctx, rc, err);
  cnn_stored_model_release(m);
}
