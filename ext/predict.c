/*
 * predict.c - the scalar prediction functions:
 *
 *   SELECT cnn_predict('nb', image) FROM mnist_test;        -- 0..9
 *   SELECT cnn_predict(readfile('8.jpg'));                   -- default model
 *   SELECT cnn_predict_proba('nb', image) FROM mnist_test;  -- [p0, ..., p9]
 *
 * Models come from the connection's cache (cnn_cache_get in ext/store.c),
 * which reloads a model whenever its cnn_models.version changed, so every
 * statement sees the weights committed when it first used the model. A call
 * with a constant name also keeps its model as auxdata for the rest of the
 * statement: 10000 calls cost one version lookup, not 10000, and one
 * statement sees one version of the model even if it retrains it meanwhile.
 *
 * Both only read the model tables; neither is deterministic, since training
 * changes answers. Batches of rows: ext/predictions.c.
 */
#include <string.h>

#include "ext.h"
#include "image.h"
#include "json.h"

/* Probabilities that fit on the stack (else heap). */
#define PROBS_ON_STACK 64

static void aux_release(void *p) { cnn_stored_model_release(p); }

/* The model of a call cnn_f([name,] image). With a name, the model is kept
 * as auxdata on that argument; SQLite keeps it for the next rows of the
 * statement when the name is a constant and drops it otherwise. */
static int call_model(sqlite3_context *ctx, int has_name, sqlite3_value **argv,
                      cnn_stored_model **out, char *err) {
  const char *name = NULL;
  cnn_stored_model *m = NULL;
  int rc;
  *out = NULL;
  if (has_name) {
    if ((rc = cnn_arg_name(argv[0], &name, err))) return rc;
    m = sqlite3_get_auxdata(ctx, 0);
    if (m && !strcmp(m->name, name)) {
      m->refs++;
      *out = m;
      return CNN_OK;
    }
  }
  if ((rc = cnn_cache_get(cnn_ctx_conn(ctx), sqlite3_context_db_handle(ctx), name, &m, err)))
    return rc;
  if (has_name) {
    /* SQLite calls the destructor itself if it cannot keep the pointer. */
    m->refs++;
    sqlite3_set_auxdata(ctx, 0, m, aux_release);
  }
  *out = m;
  return CNN_OK;
}

/* The input bytes of one image argument for model m: for 28x28x1 models any
 * image (raw MNIST blob or encoded file, through cnn_arg_image into buf);
 * for other input shapes a raw blob of exactly h*w*c bytes (returned in
 * place). */
static int image_input(const cnn_stored_model *m, sqlite3_value *v, uint8_t buf[784],
                       const uint8_t **out, char *err) {
  cnn_shape in = cnn_net_input(m->net);
  char what[48];
  *out = NULL;
  if (in.h == 28 && in.w == 28 && in.c == 1) {
    int rc = cnn_arg_image(v, buf, err);
    if (rc == CNN_OK) *out = buf;
    return rc;
  }
  size_t bytes = (size_t)in.h * in.w * in.c;
  if (sqlite3_value_type(v) != SQLITE_BLOB || (size_t)sqlite3_value_bytes(v) != bytes)
    return cnn_error(err, CNN_ERROR,
                     "image must be a %zu-byte blob (%dx%dx%d) for model '%s'; got %s", bytes, in.h,
                     in.w, in.c, m->name, cnn_value_describe(v, what, sizeof what));
  if (!(*out = sqlite3_value_blob(v))) return cnn_nomem(err);
  return CNN_OK;
}

static void predict(sqlite3_context *ctx, int argc, sqlite3_value **argv, int proba) {
  char err[CNN_ERRMAX] = "";
  uint8_t buf[CNN_MNIST_BYTES];
  float stack[PROBS_ON_STACK], *probs = stack;
  cnn_stored_model *m = NULL;
  const uint8_t *image;
  char *json = NULL;
  int rc, k;
  if ((rc = call_model(ctx, argc == 2, argv, &m, err)) ||
      (rc = image_input(m, argv[argc - 1], buf, &image, err)))
    goto done;
  k = cnn_net_classes(m->net);
  if (k > PROBS_ON_STACK && !(probs = sqlite3_malloc64((sqlite3_uint64)k * sizeof *probs))) {
    rc = cnn_nomem(err);
    goto done;
  }
  if ((rc = cnn_net_predict(m->net, probs, image, 1, err))) goto done;
  if (!proba) {
    sqlite3_result_int(ctx, cnn_argmax(probs, k));
    goto done;
  }
  cnn_buf b = {0};
  cnn_buf_puts(&b, "[");
  for (int j = 0; j < k; j++) {
    if (j) cnn_buf_puts(&b, ",");
    cnn_buf_json_number(&b, probs[j]);
  }
  cnn_buf_puts(&b, "]");
  if (!(json = cnn_buf_finish(&b))) {
    rc = cnn_nomem(err);
    goto done;
  }
  sqlite3_result_text(ctx, json, -1, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, rc, err);
  cnn_free(json);
  if (probs != stack) sqlite3_free(probs);
  cnn_stored_model_release(m);
}

void cnn_fn_predict(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  predict(ctx, argc, argv, 0);
}

void cnn_fn_predict_proba(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  predict(ctx, argc, argv, 1);
}
