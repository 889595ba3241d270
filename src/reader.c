/*
 * reader.c - a streamed dataset read one batch ahead (reader.h).
 *
 * One thread per batch, joined before the batch is used: starting a thread
 * costs tens of microseconds against the milliseconds a batch computes, and
 * nothing is shared between reader and trainer but the buffer being filled,
 * which the trainer does not touch until the join.
 */
#include <string.h>

#include "reader.h"

int cnn_reader_init(cnn_reader *r, const cnn_dataset *d, size_t isize, int cap, char *err) {
  memset(r, 0, sizeof *r);
  r->d = d, r->isize = isize, r->cap = cap;
  size_t bytes;
  if (cnn_mul_size(&bytes, isize, (size_t)cap)) return cnn_nomem(err);
  for (int i = 0; i < 2; i++) {
    r->images[i] = cnn_malloc(bytes ? bytes : 1);
    r->labels[i] = cnn_malloc((size_t)cap);
    r->idx[i] = cnn_malloc((size_t)cap * sizeof *r->idx[i]);
    if (!r->images[i] || !r->labels[i] || !r->idx[i]) {
      cnn_reader_clear(r);
      return cnn_nomem(err);
    }
  }
  return CNN_OK;
}

static void *read_main(void *p) {
  cnn_reader *r = p;
  int s = r->fill;
  r->err[0] = 0;
  r->rc = r->d->read(r->d->ctx, r->idx[s], r->n, r->images[s], r->labels[s], r->err);
  return NULL;
}

void cnn_reader_start(cnn_reader *r, const uint32_t *idx, int n) {
  memcpy(r->idx[r->fill], idx, (size_t)n * sizeof *idx);
  r->n = n, r->pending = 1, r->threaded = 0;
  if (!r->d->same_thread && pthread_create(&r->thread, NULL, read_main, r) == 0)
    r->threaded = 1;
  else
    read_main(r);
}

int cnn_reader_wait(cnn_reader *r, const uint8_t **images, const uint8_t **labels, char *err) {
  if (!r->pending) return cnn_error(err, CNN_ERROR, "no read was started");
  if (r->threaded) pthread_join(r->thread, NULL);
  r->pending = r->threaded = 0;
  int s = r->fill;
  r->fill ^= 1;
  if (r->rc) {
    memcpy(err, r->err, CNN_ERRMAX);
    return r->rc;
  }
  *images = r->images[s], *labels = r->labels[s];
  return CNN_OK;
}

void cnn_reader_clear(cnn_reader *r) {
  if (r->pending && r->threaded) pthread_join(r->thread, NULL);
  for (int i = 0; i < 2; i++) {
    cnn_free(r->images[i]);
    cnn_free(r->labels[i]);
    cnn_free(r->idx[i]);
  }
  memset(r, 0, sizeof *r);
}
