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

/* A kernel of at least this many weights (1 MB) goes to the optimizer band
 * by band inside backward, when training offers it (dense_backward_bands),
 * if the scratch that takes is at most DENSE_BAND_MAX_SCRATCH floats a
 * sample (the notebook's layer: 16184); wider layers keep the whole
 * products rather than reserve (and count against the model's limits) twice
 * their input per sample. */
#define DENSE_BAND_MIN_WEIGHTS (256 * 1024)
#define DENSE_BAND_MAX_SCRATCH (1024 * 1024)
/* Kernel rows (inputs) per band: the notebook's first dense layer, 48 x 5000
 * weights, 960 KB, which stay in L2 from the band's products to its update
 * (in a driver, bands of 12, 24 and 48 rows took 3.96, 3.76 and 3.76 ms for
 * the layer's backward and Adam on two threads, against 4.06 unbanded). */
#define DENSE_BAND_ROWS 48

static int dense_setup(cnn_layer *l, char *err) {
  (void)err;
  size_t in = (size_t)l->in.h * l->in.w * l->in.c;
  l->out = (cnn_shape){1, 1, l->spec->units};
  l->nweights = in * (size_t)l->spec->units;
  l->nbias = l->spec->use_bias ? (size_t)l->spec->units : 0;
  l->work_per_sample = l->aux_per_sample = 0;
  l->work_fixed = 0;
  /* The banded backward's scratch (dense_backward_bands), each part's
   * start rounded to 16 floats, a packed copy up to 31 columns wider. */
  size_t out = (size_t)l->spec->units, scratch = 3 * out + 2 * in + 32;
  if (l->nweights >= DENSE_BAND_MIN_WEIGHTS && scratch <= DENSE_BAND_MAX_SCRATCH) {
    l->work_per_sample = scratch;
    l->work_fixed = 32 * out + 96;
  }
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

/* The banded backward: each task takes a band of kernel rows (inputs) and
 * computes their gradient (x^T @ dy), their share of dx^T = w @ dy^T (the
 * rows read for the last time) and hands them to the optimizer, so that the
 * kernel streams from memory once a step instead of twice (for dx, then
 * for the update) and the gradient is read back from L2. Every value is
 * the same product's arithmetic as in the whole products (gemm.h): bit for
 * bit the unbanded backward followed by the update. */
typedef struct dense_bands {
  const cnn_layer *l;
  const cnn_run *run;
  const float *xt, *dy, *dyp; /* x^T [in, n]; dy [n, out] and packed */
  const float *dyt, *dytp;    /* dy^T [out, n] and packed, when dx is wanted */
  float *dxt;                 /* dx^T [in, n], or NULL */
  int n, in, out;
} dense_bands;

static void dense_band_task(void *ctx, int task, int thread) {
  (void)thread;
  const dense_bands *d = ctx;
  const cnn_layer *l = d->l;
  const cnn_threads *like = d->run->pool;
  int r0 = task * DENSE_BAND_ROWS, r1 = d->in - r0 < DENSE_BAND_ROWS ? d->in : r0 + DENSE_BAND_ROWS;
  size_t out = (size_t)d->out, first = (size_t)(l->w - d->run->params);
  cnn_gemm_bias_prepacked_serial(like, r1 - r0, d->out, d->n, d->xt + (size_t)r0 * d->n, d->n,
                                 d->dy, d->out, d->dyp, NULL, 0, l->dw + (size_t)r0 * out, d->out);
  if (d->dxt)
    cnn_gemm_bias_prepacked_serial(like, r1 - r0, d->n, d->out, l->w + (size_t)r0 * out, d->out,
                                   d->dyt, d->n, d->dytp, NULL, 0, d->dxt + (size_t)r0 * d->n,
                                   d->n);
  d->run->band(d->run->band_ctx, first + (size_t)r0 * out, first + (size_t)r1 * out);
}

typedef struct transpose_job {
  float *dst;
  const float *src;
  size_t rows, cols; /* of src */
} transpose_job;

/* dst[j][i] = src[i][j] for src columns j in [j0, j1). */
static void transpose_cols(void *ctx, size_t j0, size_t j1, int thread) {
  (void)thread;
  const transpose_job *t = ctx;
  for (size_t j = j0; j < j1; j++)
    for (size_t i = 0; i < t->rows; i++) t->dst[j * t->rows + i] = t->src[i * t->cols + j];
}

static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

/* The two packed copies, side by side. */
typedef struct pack_job {
  cnn_isa isa;
  const dense_bands *d;
  float *dyp, *dytp;
} pack_job;

static void pack_task(void *ctx, int task, int thread) {
  (void)thread;
  const pack_job *p = ctx;
  const dense_bands *d = p->d;
  if (task == 0)
    cnn_gemm_pack(p->isa, p->dyp, d->dy, d->out, d->n, d->out);
  else
    cnn_gemm_pack(p->isa, p->dytp, d->dyt, d->n, d->out, d->n);
}

static void dense_backward_bands(cnn_layer *l, const cnn_run *run, float *restrict dx,
                                 const float *restrict dy, const float *restrict x, int n) {
  int in = l->in.h * l->in.w * l->in.c, out = l->out.c;
  size_t N = (size_t)n, IN = (size_t)in, OUT = (size_t)out;
  cnn_isa isa = cnn_gemm_pack_isa(cnn_threads_isa(run->pool));
  /* The products of the bands read A row-major and B packed once here:
   * x^T and dy (for the gradient), the kernel and dy^T (for dx^T). */
  float *xt = run->work, *dyp = xt + align16(IN * N);
  float *dyt = dyp + align16(cnn_gemm_packed_size(isa, n, out));
  float *dytp = dyt + align16(OUT * N);
  float *dxt = dytp + align16(cnn_gemm_packed_size(isa, out, n));
  dense_bands d = {l, run, xt, dy, dyp, NULL, NULL, NULL, n, in, out};
  transpose_job tx = {xt, x, N, IN};
  cnn_threads_for(run->pool, IN, 64, transpose_cols, &tx);
  if (dx) {
    transpose_job ty = {dyt, dy, N, OUT};
    cnn_threads_for(run->pool, OUT, 512, transpose_cols, &ty);
    d.dyt = dyt, d.dytp = dytp, d.dxt = dxt;
  }
  pack_job p = {isa, &d, dyp, dytp};
  cnn_threads_run(run->pool, pack_task, &p, dx ? 2 : 1);
  cnn_threads_run(run->pool, dense_band_task, &d, (in + DENSE_BAND_ROWS - 1) / DENSE_BAND_ROWS);
  if (dx) {
    transpose_job t = {dx, dxt, IN, N};
    cnn_threads_for(run->pool, N, 1, transpose_cols, &t);
  }
  l->handed = l->nweights;
}

static void dense_backward(cnn_layer *l, const cnn_run *run, float *restrict dx,
                           const float *restrict dy, const float *restrict x, int n) {
  int in = l->in.h * l->in.w * l->in.c, out = l->out.c;
  if (l->nbias) cnn_bias_grad(run->pool, l->db, dy, (size_t)n, (size_t)out);
  if (run->band && l->work_per_sample && !cnn_threads_bf16(run->pool)) { /* scratch reserved */
    dense_backward_bands(l, run, dx, dy, x, n);
    return;
  }
  /* The kernel's gradient last: an optimizer applied right after this
   * backward (cnn_net_backward_each) finds it still in cache. */
  if (dx) cnn_gemm(run->pool, 0, 1, n, in, out, 1.0f, dy, out, l->w, out, 0.0f, dx, in);
  cnn_gemm(run->pool, 1, 0, in, out, n, 1.0f, x, in, dy, out, 0.0f, l->dw, out);
}

const cnn_layer_ops cnn_dense_ops = {"Dense",       "dense",        dense_setup,
                                     dense_forward, dense_backward, 1};
