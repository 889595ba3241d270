/*
 * exchange.c - moving a model between databases as one blob:
 *
 *   SELECT writefile('nb.cnnmodel', cnn_export('nb'));
 *   SELECT cnn_import('nb', readfile('nb.cnnmodel'));   -- parameter count
 *
 * cnn_export(name) -> BLOB holds spec, weights, optimizer state and epoch
 * count in the engine's format (cnn_model_save in src/model.c, documented in
 * the README); cnn_import(name, blob) checks everything in it
 * (cnn_model_load) before it writes the new model in one transaction.
 * cnn_import writes tables, so it is SQLITE_DIRECTONLY.
 */
#include "ext.h"

void cnn_fn_export(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
  cnn_stored_model *m = NULL;
  uint8_t *blob = NULL;
  size_t len = 0;
  const char *name;
  int rc = cnn_arg_name(argv[0], &name, err);
  if (rc == CNN_OK) rc = cnn_store_load(db, name, 1, &m, err);
  if (rc == CNN_OK)
    rc = cnn_model_save(&blob, &len, m->net, m->has_optim ? &m->opt : NULL, m->epochs, err);
  if (rc == CNN_OK) {
    /* The blob was made with cnn_malloc: SQLite copies it. */
    sqlite3_result_blob64(ctx, blob, len, SQLITE_TRANSIENT);
  } else {
    cnn_result_status(ctx, rc, err);
  }
  cnn_free(blob);
  cnn_stored_model_release(m);
}

void cnn_fn_import(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "", what[48];
  cnn_net *net = NULL;
  cnn_optim opt = {0};
  cnn_tx tx = {0};
  int epochs = 0;
  const char *name;
  int rc = cnn_arg_name(argv[0], &name, err);
  if (rc == CNN_OK && sqlite3_value_type(argv[1]) != SQLITE_BLOB)
    rc = cnn_error(err, CNN_ERROR, "blob must be a model made by cnn_export; got %s",
                   cnn_value_describe(argv[1], what, sizeof what));
  if (rc == CNN_OK)
    rc = cnn_model_load(&net, &opt, &epochs, sqlite3_value_blob(argv[1]),
                        (size_t)sqlite3_value_bytes(argv[1]), err);
  if (rc != CNN_OK) {
    cnn_result_status(ctx, rc, err);
    goto out;
  }
  if ((rc = cnn_store_init(db, err)) || (rc = cnn_tx_begin(db, &tx, err))) goto done;
  int exists = cnn_store_exists(db, name, err);
  if (exists < 0)
    rc = CNN_ERROR;
  else if (exists)
    rc = cnn_error(err, CNN_ERROR, "a model named '%s' already exists (cnn_drop it first)", name);
  else if ((rc = cnn_store_create(db, name, net, err)) == CNN_OK && opt.n)
    rc = cnn_store_save(db, name, net, &opt, epochs, err);
  if (rc == CNN_OK)
    sqlite3_result_int64(ctx, (sqlite3_int64)(cnn_net_nparams(net) + cnn_net_nstate(net)));
done:
  cnn_tx_finish(ctx, db, &tx, rc, err);
  cnn_cache_forget(cnn_ctx_conn(ctx), name);
out:
  cnn_optim_clear(&opt);
  cnn_net_free(net);
}
