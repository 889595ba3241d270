/*
 * batch.c - running a stored model over a source, CNN_BATCH_ROWS rows at a
 * time: the reader behind cnn_predictions and cnn_confusion. The source
 * query is stepped lazily, so the first rows come out before the last are
 * read, and memory stays at one batch whatever the source's size.
 *
 * Every use of a network is "fill the input, forward, copy the outputs out"
 * within one call of the engine (cnn_net_predict), so a cached network shared
 * by several cursors and scalar calls of one connection is never observed
 * half-used. A batch holds its own model reference.
 *
 * Memory: the batch's buffers come from sqlite3_malloc.
 */
#include <string.h>

#include "ext.h"

int cnn_argmax(const float *p, int k) {
  int best = 0;
  for (int j = 1; j < k; j++)
    if (p[j] > p[best]) best = j;
  return best;
}

void cnn_batch_clear(cnn_batch *b) {
  sqlite3_finalize(b->stmt);
  cnn_stored_model_release(b->model);
  sqlite3_free(b->images);
  sqlite3_free(b->probs);
  memset(b, 0, sizeof *b);
}

int cnn_batch_open(cnn_batch *b, sqlite3 *db, cnn_conn *conn, sqlite3_value *name_v,
                   sqlite3_value *source_v, int need_labels, char *err) {
  const char *name, *source;
  int rc;
  if ((rc = cnn_arg_name(name_v, &name, err)) || (rc = cnn_arg_source(source_v, &source, err)) ||
      (rc = cnn_cache_get(conn, db, name, &b->model, err)))
    return rc;
  b->in = cnn_net_input(b->model->net);
  b->in_bytes = (size_t)b->in.h * b->in.w * b->in.c; /* capped by the spec's limits */
  b->classes = cnn_net_classes(b->model->net);
  b->need_labels = need_labels;
  b->images = sqlite3_malloc64((sqlite3_uint64)CNN_BATCH_ROWS * b->in_bytes);
  b->probs = sqlite3_malloc64((sqlite3_uint64)CNN_BATCH_ROWS * b->classes * sizeof(float));
  if (!b->images || !b->probs) return cnn_nomem(err);
  return cnn_source_prepare(db, source, &b->stmt, err);
}

int cnn_batch_next(cnn_batch *b, sqlite3 *db, char *err) {
  b->first += b->n;
  b->n = 0;
  while (!b->done && b->n < CNN_BATCH_ROWS) {
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
