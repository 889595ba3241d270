/*
 * dense.c - fully connected layer with bias; the activation is applied by the
 * network.
 *
 *   x [n, IN]  w [IN, OUT]  y = x @ w + b  [n, OUT]
 *   db = column sums of dy,  dw = x^T @ dy,  dx = dy @ w^T
 * The input is whatever the previous layer produced, read as n vectors (so a
 * dense layer after conv2d works on the flattened NHWC image, like Keras).
 */
#include "gemm.h"
#include "layer.h"

static int dense_setup(cnn_layer *l, char *err) {
  (void)err;
  size_t in = (size_t)l->in.h * l->in.w * l->in.c;
  l->out = (cnn_shape){1, 1, l->spec->units};
  l->nweights = in * (size_t)l->spec->units;
  l->nbias = l->spec->use_bias ? (size_t)l->spec->units : 0;
  l->work_per_sample = l->aux_per_sample = 0;
  return CNN_OK;
}

static void dense_forward(cnn_layer *l, const cnn_run *run, float *restrict y,
                          const float *restrict x, int n) {
  int in = l->in.h * l->in.w * l->in.c, out = l->out.c;
  /* A few rows read every weight per row: the bf16 copy halves that. More
   * rows amortise converting them on the fly (cnn_gemm_bias_bf16's tiles). */
  if (run->bf16 && l->wbf16 && n < 16)
    cnn_gemm_bias_bf16_packed(run->pool, n, out, in, x, in, l->wbf16, l->nbias ? l->b : NULL,
                              run->relu, y, out);
  else if (!run->training && l->wpack &&
           l->wpack_isa == cnn_gemm_pack_isa(cnn_threads_isa(run->pool)))
    cnn_gemm_bias_prepacked(run->pool, n, out, in, x, in, l->w, out, l->wpack,
                            l->nbias ? l->b : NULL, run->relu, y, out);
  else
    cnn_gemm_bias(run->pool, 0, 0, n, out, in, 1.0f, x, in, l->w, out, l->nbias ? l->b : NULL,
                  run->relu, y, out);
}

static void dense_backward(cnn_layer *l, const cnn_run *run, float *restrict dx,
                           const float *restrict dy, const float *restrict x, int n) {
  int in = l->in.h * l->in.w * l->in.c, out = l->out.c;
  if (l->nbias) cnn_bias_grad(run->pool, l->db, dy, (size_t)n, (size_t)out);
  /* The kernel's gradient last: an optimizer applied right after this
   * backward (cnn_net_backward_each) finds it still in cache. */
  if (dx) cnn_gemm(run->pool, 0, 1, n, in, out, 1.0f, dy, out, l->w, out, 0.0f, dx, in);
  cnn_gemm(run->pool, 1, 0, in, out, n, 1.0f, x, in, dy, out, 0.0f, l->dw, out);
}

const cnn_layer_ops cnn_dense_ops = {"Dense",       "dense",        dense_setup,
                                     dense_forward, dense_backward, 1};
