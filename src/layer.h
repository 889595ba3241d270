/*
 * layer.h - the one interface every layer implements (src/<layer>.c), and the
 * activation kernels the network applies after conv2d and dense.
 *
 * A layer validates its shapes once (setup), then runs forward and backward
 * over a batch of n samples in buffers the network owns:
 *   x  [n, in.h, in.w, in.c]    y  [n, out.h, out.w, out.c]
 *   dy like y (for conv2d/dense: already multiplied by the activation's
 *   derivative), dx like x or NULL when the caller needs no input gradient.
 * Parameters are borrowed views into the network's arenas (w, b, dw, db);
 * backward overwrites dw and db (each parameter gets its whole gradient from
 * one call, so the 12 MB gradient arena of the notebook's model is never
 * cleared separately). Nothing is allocated in forward or
 * backward: scratch comes from run->work, per-sample state (pool argmax,
 * dropout masks) from l->aux. Non-trainable weights (batchnorm's moving
 * statistics) are l->state, a view into the tail of the parameter arena that
 * a training forward updates and no optimizer sees.
 */
#ifndef CNN_LAYER_H
#define CNN_LAYER_H

#include "cnn.h"
#include "rng.h"

typedef struct cnn_layer cnn_layer;

/* What one forward/backward call may use besides the layer itself. */
typedef struct cnn_run {
  cnn_threads *pool; /* borrowed, may be NULL */
  float *work;       /* borrowed scratch, n * work_per_sample floats */
  int training;
  int freeze;   /* dropout: reuse the last masks */
  cnn_rng *rng; /* borrowed */
  int relu;     /* forward ends with y = max(y, 0) (a fused activation) */
  int bf16;     /* inference in mixed precision: use wbf16 where a layer has it */
  /* Training with the optimizer inside backward (cnn_net_backward_each):
   * band(band_ctx, lo, hi) updates parameters [lo, hi), indices from
   * params, on the calling thread; NULL otherwise. */
  cnn_grads_ready_fn band;
  void *band_ctx;
  const float *params;
} cnn_run;

typedef struct cnn_layer_ops {
  const char *keras_type; /* "Conv2D": summary's type column */
  const char *keras_name; /* "conv2d": base of the layer's name */
  /* From l->spec and l->in: checks sizes, sets out, nweights, nbias,
   * nstate, work_per_sample and work_fixed (floats), aux_per_sample
   * (bytes), keep_per_sample and keep_fixed (floats; fields it leaves alone
   * are 0). */
  int (*setup)(cnn_layer *l, char *err);
  void (*forward)(cnn_layer *l, const cnn_run *run, float *restrict y, const float *restrict x,
                  int n);
  void (*backward)(cnn_layer *l, const cnn_run *run, float *restrict dx, const float *restrict dy,
                   const float *restrict x, int n);
  int fuses_relu; /* forward honours run->relu (in its output writes) */
} cnn_layer_ops;

struct cnn_layer {
  const cnn_layer_ops *ops;
  const cnn_layer_spec *spec; /* borrowed from the network's spec */
  char name[32];
  cnn_shape in, out;
  int pad_top, pad_left;  /* conv/pool 'same' padding before the image */
  size_t nweights, nbias; /* trainable: kernel (batchnorm: gamma), bias (beta) */
  size_t handed;          /* of them, handed to run->band by the last backward */
  size_t nstate;          /* non-trainable floats (batchnorm: moving mean, variance) */
  size_t work_per_sample; /* floats */
  size_t work_fixed;      /* more floats of run->work, whatever the batch */
  size_t aux_per_sample;  /* bytes, 64-byte multiple */
  size_t keep_per_sample; /* floats a training forward keeps for backward */
  size_t keep_fixed;      /* more such floats, whatever the batch (batch statistics) */
  float *w, *b, *dw, *db; /* borrowed: parameter and gradient arenas */
  unsigned char *aux;     /* borrowed: cap * aux_per_sample bytes */
  float *state;           /* borrowed: nstate floats of the parameter arena */
  float *keep;            /* borrowed: cap * keep_per_sample + keep_fixed
                             floats when reserved for training, else NULL */
  const uint16_t *wbf16;  /* borrowed: w packed in bf16 for inference
                             (cnn_bf16_pack), or NULL */
  const float *wpack;     /* borrowed: w packed for inference by
                             cnn_gemm_pack for wpack_isa, or NULL */
  cnn_isa wpack_isa;
  const float *wino_u; /* borrowed: conv2d's Winograd kernel transform
                          for inference (cnn_wino_kernel on wino_isa),
                          or NULL */
  cnn_isa wino_isa;
  int winograd; /* conv2d: CNN_WINO_FORWARD, CNN_WINO_DX and
                   CNN_WINO_DW, the parts done by Winograd
                   (winograd.h); setup sets them where that pays,
                   clearing them gives im2col + GEMM */
};

#define CNN_WINO_FORWARD 1
#define CNN_WINO_DX 2
#define CNN_WINO_DW 4

extern const cnn_layer_ops cnn_conv2d_ops, cnn_maxpool_ops, cnn_avgpool_ops, cnn_flatten_ops,
    cnn_dense_ops, cnn_dropout_ops, cnn_batchnorm_ops, cnn_globalavgpool_ops, cnn_activation_ops;

/* Output size and leading padding of a window sliding over `in` (Keras'
 * rules: valid = floor((in - k) / s) + 1, same = ceil(in / s) with the extra
 * padding split, the odd pixel after). Returns 0 when the window does not fit. */
int cnn_window(int in, int k, int s, cnn_padding pad, int *pad_before);

/* db [cols] = column sums of dy [rows, cols], each over the rows in order;
 * wide enough ones split by columns over the pool (NULL: the calling
 * thread), with the same result. */
void cnn_bias_grad(cnn_threads *pool, float *db, const float *dy, size_t rows, size_t cols);

/* Activations over rows x cols values (softmax works along each row), with
 * the loops compiled for the pool's instruction set; large ones are split by
 * rows over the pool (NULL: the calling thread), with the same result for
 * any split. y and z may alias (inference applies the activation in place). */
void cnn_act_forward(cnn_threads *pool, const cnn_act *a, float *y, const float *z, size_t rows,
                     size_t cols);
/* dz = dy * f'(z) (softmax: the Jacobian-vector product using y = f(z)).
 * dz may alias dy. ReLU reads y only (z may be NULL). */
void cnn_act_backward(cnn_threads *pool, const cnn_act *a, float *dz, const float *dy,
                      const float *z, const float *y, size_t rows, size_t cols);

#endif
