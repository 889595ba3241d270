/*
 * onnx.c - cnn_export_onnx(name) -> BLOB: the model's network with its trained
 * weights as an ONNX model, for other runtimes:
 *
 *   SELECT writefile('model.onnx', cnn_export_onnx('nb'));
 *
 * The graph takes the raw uint8 image bytes [N, H, W, C] and scales them as
 * the engine does; it gives "probabilities" (cnn_predict_proba's) and
 * "logits" (src/io/onnx.h has the conventions). The model comes from the
 * connection's cache (ext/store.c) and is only read, so views may use the
 * function; not deterministic, since training replaces the weights.
 */
#include "onnx.h"
#include "ext.h"

void cnn_fn_export_onnx(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  char err[CNN_ERRMAX] = "";
  cnn_stored_model *m = NULL;
  uint8_t *blob = NULL;
  size_t len = 0;
  const char *name;
  int rc = cnn_arg_name(argv[0], &name, err);
  if (rc == CNN_OK)
    rc = cnn_cache_get(cnn_ctx_conn(ctx), sqlite3_context_db_handle(ctx), name, &m, err);
  if (rc == CNN_OK) rc = cnn_onnx_export(&blob, &len, m->net, m->name, CNN_VERSION, err);
  if (rc == CNN_OK) {
    /* The blob was made with cnn_malloc: SQLite copies it. */
    sqlite3_result_blob64(ctx, blob, len, SQLITE_TRANSIENT);
  } else {
    cnn_result_status(ctx, rc, err);
  }
  cnn_free(blob);
  cnn_stored_model_release(m);
}
