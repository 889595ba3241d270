/*
 * globalavgpool.c - global average pooling, Keras' GlobalAveragePooling2D:
 * the mean of each channel over the whole image.
 *
 *   x [n, H, W, C] -> y [n, C] (shape (1, 1, C): a vector, like Keras'
 *   (None, C))
 *   y[c] = sum_hw x[hw, c] / (H*W);  dx[hw, c] = dy[c] / (H*W)
 * One image per task (disjoint outputs), compiled for each instruction set
 * (isa.h). The sum runs in float in row order, as average pooling's does.
 */
#include <string.h>

#include "layer.h"

static int gap_setup(cnn_layer *l, char *err) {
  (void)err;
  l->out = (cnn_shape){1, 1, l->in.c};
  l->nweights = l->nbias = l->work_per_sample = l->aux_per_sample = 0;
  return CNN_OK;
}

typedef struct {
  const cnn_layer *l;
  float *out;
  const float *in;
  cnn_isa isa; /* of the run's pool */
} gap_task;

CNN_INLINE void gap_forward_body(const gap_task *t, int i) {
  size_t C = (size_t)t->l->in.c, m = (size_t)t->l->in.h * t->l->in.w;
  const float *restrict x = t->in + (size_t)i * m * C;
  float *restrict y = t->out + (size_t)i * C;
  memset(y, 0, C * sizeof *y);
  for (size_t r = 0; r < m; r++)
    for (size_t c = 0; c < C; c++) y[c] += x[r * C + c];
  float inv = 1.0f / (float)m;
  for (size_t c = 0; c < C; c++) y[c] *= inv;
}

CNN_INLINE void gap_backward_body(const gap_task *t, int i) {
  size_t C = (size_t)t->l->in.c, m = (size_t)t->l->in.h * t->l->in.w;
  const float *restrict dy = t->in + (size_t)i * C;
  float *restrict dx = t->out + (size_t)i * m * C;
  float inv = 1.0f / (float)m;
  for (size_t r = 0; r < m; r++)
    for (size_t c = 0; c < C; c++) dx[r * C + c] = dy[c] * inv;
}

CNN_ISA_CLONES(gap_forward, (const gap_task *t, int i), (t, i))
CNN_ISA_CLONES(gap_backward, (const gap_task *t, int i), (t, i))

static void forward_task(void *ctx, int i, int thread) {
  (void)thread;
  const gap_task *t = ctx;
  gap_forward_isa(t->isa, t, i);
}

static void backward_task(void *ctx, int i, int thread) {
  (void)thread;
  const gap_task *t = ctx;
  gap_backward_isa(t->isa, t, i);
}

static void gap_forward(cnn_layer *l, const cnn_run *run, float *restrict y,
                        const float *restrict x, int n) {
  gap_task t = {l, y, x, cnn_threads_isa(run->pool)};
  cnn_threads_run(run->pool, forward_task, &t, n);
}

static void gap_backward(cnn_layer *l, const cnn_run *run, float *restrict dx,
                         const float *restrict dy, const float *restrict x, int n) {
  (void)x;
  if (!dx) return;
  gap_task t = {l, dx, dy, cnn_threads_isa(run->pool)};
  cnn_threads_run(run->pool, backward_task, &t, n);
}

const cnn_layer_ops cnn_globalavgpool_ops = {
    "GlobalAveragePooling2D", "global_average_pooling2d", gap_setup, gap_forward, gap_backward, 0};
