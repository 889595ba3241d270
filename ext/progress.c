/*
 * progress.c - Keras' progress bar on stderr while cnn_train runs:
 *
 *   Epoch 1/10
 *    640/1875 [=========>....................] - ETA: 21s - loss: 0.2519 - accuracy: 0.9231
 *   1875/1875 [==============================] - 31s 16ms/step - loss: 0.1379 - accuracy: 0.9581 -
 * val_loss: 0.0412 - val_accuracy: 0.9866
 *
 * This file is the extension's one exception to "never print": the bar is a
 * feature users ask for (option progress, default: when stderr is a terminal).
 * It redraws at most ten times a second.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "ext.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bar(char *out, size_t done, size_t total) {
  int width = 30, fill = total ? (int)(width * done / total) : width;
  for (int i = 0; i < width; i++) out[i] = i < fill ? '=' : '.';
  if (fill > 0 && fill < width) out[fill - 1] = '>';
  out[width] = 0;
}

void cnn_progress_batch(cnn_progress *p, const cnn_batch_progress *b, int total_epochs) {
  if (!p->enabled) return;
  if (!p->epoch_open) {
    fprintf(stderr, "Epoch %d/%d\n", b->epoch, total_epochs);
    p->epoch_open = 1;
    p->last = 0;
  }
  double t = now();
  if (b->batch != b->batches && t - p->last < 0.1) return;
  p->last = t;
  char line[40];
  bar(line, b->batch, b->batches);
  double eta = b->batch ? b->seconds / b->batch * (b->batches - b->batch) : 0;
  int w = snprintf(NULL, 0, "%zu", b->batches);
  fprintf(stderr, "\r%*zu/%zu [%s] - ETA: %.0fs - loss: %.4f - accuracy: %.4f", w, b->batch,
          b->batches, line, eta, b->loss, b->accuracy);
  fflush(stderr);
}

void cnn_progress_epoch(cnn_progress *p, const cnn_epoch_stats *s, size_t batches) {
  if (!p->enabled) return;
  char line[40];
  bar(line, batches, batches);
  fprintf(stderr, "\r%zu/%zu [%s] - %.0fs %.0fms/step - loss: %.4f - accuracy: %.4f", batches,
          batches, line, s->seconds, batches ? s->seconds * 1000 / batches : 0, s->loss,
          s->accuracy);
  if (!isnan(s->val_loss))
    fprintf(stderr, " - val_loss: %.4f - val_accuracy: %.4f", s->val_loss, s->val_accuracy);
  fprintf(stderr, "\n");
  fflush(stderr);
  p->epoch_open = 0;
}
