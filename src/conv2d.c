/*
 * conv2d.c - 2-D convolution as im2col + GEMM, with bias. The activation is
 * applied by the network.
 *
 *   x [n, H, W, C]   kernel w [KH, KW, C, F] = a (KH*KW*C) x F matrix
 *   cols [n*OH*OW, KH*KW*C]   row (img, oy, ox) holds the input patch in the
 *                            kernel's (ky, kx, c) order, zeros for padding
 *   y = cols @ w + b          [n*OH*OW, F] = [n, OH, OW, F]
 * A training forward keeps cols for backward (l->keep: 18 MB for the
 * notebook's second convolution at batch 128; recomputing them cost 4% of a
 * training step), then
 *   db = column sums of dy,  dw = cols^T @ dy,  dcols = dy @ w^T -> col2im.
 * im2col and col2im run one image per task: disjoint outputs, compiled for
 * each instruction set (isa.h) and run with the pool's.
 *
 * 3x3 stride-1 convolutions with enough channels and outputs (conv_winograd)
 * take Winograd's F(4x4, 3x3) instead (winograd.h) for the forward and
 * the input gradient, and F(3x3, 4x4) for the weight gradient, where each
 * needs enough fewer multiplications; a weight gradient left to cols^T @ dy
 * after a Winograd forward builds its columns in backward. Products in bf16
 * stay on im2col: the transforms' large coefficients would magnify their
 * rounding.
 */
#include <string.h>

#include "gemm.h"
#include "layer.h"
#include "winograd.h"

/* Whether Winograd beats im2col + GEMM for an output of oh x ow when direct
 * convolution makes `direct` outputs: with at least `per_tile` direct
 * outputs per 4x4 tile (9 * direct multiplications against 36 a tile), at
 * least 32 input channels and filters (with 16 the 36 thin products lose at
 * batch 32), and a transformed kernel of at most 36M floats. */
static int wino_pays(int direct, int oh, int ow, int c, int f, int per_tile) {
  long tiles = (long)((oh + 3) / 4) * ((ow + 3) / 4);
  return c >= 32 && f >= 32 && (long)c * f <= 1L << 20 && (long)direct >= per_tile * tiles;
}

/* The parts of a 3x3 stride-1 convolution that Winograd takes
 * (tests/bench/bench_winograd.c, "rule"). The forward needs 2.5 times fewer
 * multiplications (10 outputs a tile; at 2.25, a 6x6 output in 4 tiles, it
 * breaks even). The input gradient computes an output of the input's size
 * from the same number of direct products, and wins from 1.75 times fewer
 * (7 a tile), as im2col's gradient also pays for col2im: the notebook's
 * second convolution has 3.4 for its forward (11x11 outputs in 9 tiles) and
 * 1.9 for its input gradient (13x13 in 16 tiles; with both, a training
 * step of the layer takes 0.93 of the time with the forward alone at batch
 * 32, 0.85 at 128). The weight gradient sums over the forward's tiles and
 * has the forward's ratio; it takes the same threshold. */
static int conv_winograd(const cnn_layer *l) {
  const cnn_layer_spec *s = l->spec;
  if (s->kh != 3 || s->kw != 3 || s->sh != 1 || s->sw != 1) return 0;
  int direct = l->out.h * l->out.w, parts = 0;
  if (wino_pays(direct, l->out.h, l->out.w, l->in.c, s->filters, 10))
    parts |= CNN_WINO_FORWARD | CNN_WINO_DW;
  if (wino_pays(direct, l->in.h, l->in.w, s->filters, l->in.c, 7)) parts |= CNN_WINO_DX;
  return parts;
}

static cnn_wino_geom wino_forward_geom(const cnn_layer *l) {
  return (cnn_wino_geom){l->in.h,  l->in.w,  l->in.c,    l->out.h,
                         l->out.w, l->out.c, l->pad_top, l->pad_left};
}

/* dx = dy convolved with the turned kernel: dy's pixel (oy, ox) reaches
 * x's (oy + ky - pad_top, ...), so dx's pixel (iy, ix) reads dy from
 * iy - (2 - pad_top). */
static cnn_wino_geom wino_backward_geom(const cnn_layer *l) {
  return (cnn_wino_geom){l->out.h, l->out.w, l->out.c,       l->in.h,
                         l->in.w,  l->in.c,  2 - l->pad_top, 2 - l->pad_left};
}

static int conv_setup(cnn_layer *l, char *err) {
  const cnn_layer_spec *s = l->spec;
  int oh = cnn_window(l->in.h, s->kh, s->sh, s->padding, &l->pad_top);
  int ow = cnn_window(l->in.w, s->kw, s->sw, s->padding, &l->pad_left);
  if (oh < 1 || ow < 1)
    return cnn_error(err, CNN_ERROR,
                     "kernel %dx%d does not fit the %dx%d input with 'valid' padding", s->kh, s->kw,
                     l->in.h, l->in.w);
  l->out = (cnn_shape){oh, ow, s->filters};
  l->nweights = (size_t)s->kh * s->kw * l->in.c * s->filters;
  l->nbias = s->use_bias ? (size_t)s->filters : 0;
  /* 1x1 stride-1 kernels use the input itself as cols. */
  int direct = s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1;
  l->work_per_sample = direct ? 0 : (size_t)oh * ow * s->kh * s->kw * l->in.c;
  l->aux_per_sample = 0;
  l->keep_per_sample = l->work_per_sample;
  l->winograd = conv_winograd(l);
  l->work_fixed = 0;
  if (l->winograd) {
    /* The transformed kernel, then the tiles; room for im2col too (bf16). */
    cnn_wino_geom f = wino_forward_geom(l), b = wino_backward_geom(l);
    size_t wf = cnn_wino_work_floats(&f), wb = cnn_wino_work_floats(&b);
    if ((l->winograd & (CNN_WINO_FORWARD | CNN_WINO_DW)) && wf > l->work_per_sample)
      l->work_per_sample = wf;
    if ((l->winograd & CNN_WINO_DX) && wb > l->work_per_sample) l->work_per_sample = wb;
    l->work_fixed = cnn_wino_kernel_floats(l->in.c, s->filters);
  }
  return CNN_OK;
}

/* Floats of one sample's columns (keep_per_sample; none for direct). */
static size_t conv_cols(const cnn_layer *l) { return l->keep_per_sample; }

static int conv_direct(const cnn_layer *l) { return conv_cols(l) == 0; }

/* part: CNN_WINO_FORWARD, CNN_WINO_DX or CNN_WINO_DW */
static int conv_use_winograd(const cnn_layer *l, const cnn_run *run, int part) {
  return (l->winograd & part) && !cnn_threads_bf16(run->pool);
}

typedef struct {
  const cnn_layer *l;
  float *cols;
  float *dx;
  const float *x;
  int parts;   /* im2col: tasks per image, each a band of output rows */
  cnn_isa isa; /* of the run's pool */
} conv_task;

/* One kernel row of the patches of `count` consecutive outputs: len floats
 * to each of their cols rows (K apart), the source moving `step` floats per
 * output. Inlined with a literal len for the 3-float rows of a 3x3 kernel on
 * one channel, where the set-up of a loop of runtime length cost more than
 * the copying. */
static inline __attribute__((always_inline)) void im2col_span(float *restrict dst, size_t K,
                                                              const float *restrict src,
                                                              size_t step, int count, size_t len) {
  for (int i = 0; i < count; i++, dst += K, src += step) {
    if (len <= 16)
      for (size_t j = 0; j < len; j++) dst[j] = src[j];
    else
      memcpy(dst, src, len * sizeof *dst);
  }
}

/* cols [OH*OW, K] of one image x [H, W, C], the rows of outputs oy0..oy1-1 */
static inline __attribute__((always_inline)) void im2col_body(const cnn_layer *l,
                                                              float *restrict cols,
                                                              const float *restrict x, int oy0,
                                                              int oy1) {
  const cnn_layer_spec *s = l->spec;
  int H = l->in.h, W = l->in.w, C = l->in.c, OW = l->out.w;
  size_t rowlen = (size_t)C * s->kw; /* one kernel row of a patch */
  size_t K = (size_t)s->kh * rowlen, step = (size_t)s->sw * C;
  /* Outputs [lo, hi) have every kernel column inside the image. */
  int lo = (l->pad_left + s->sw - 1) / s->sw, room = W - s->kw + l->pad_left;
  int hi = room < 0 ? 0 : room / s->sw + 1;
  if (hi > OW) hi = OW;
  if (lo > hi) lo = hi;
  for (int oy = oy0; oy < oy1; oy++) {
    for (int ky = 0; ky < s->kh; ky++) {
      float *row = cols + (size_t)oy * OW * K + (size_t)ky * rowlen;
      int iy = oy * s->sh + ky - l->pad_top;
      if (iy < 0 || iy >= H) {
        for (int ox = 0; ox < OW; ox++) memset(row + (size_t)ox * K, 0, rowlen * sizeof *row);
        continue;
      }
      const float *src = x + (size_t)iy * W * C;
      if (hi > lo) {
        const float *from = src + ((size_t)lo * s->sw - l->pad_left) * C;
        if (rowlen == 3)
          im2col_span(row + (size_t)lo * K, K, from, step, hi - lo, 3);
        else
          im2col_span(row + (size_t)lo * K, K, from, step, hi - lo, rowlen);
      }
      for (int ox = 0; ox < OW; ox++) { /* the edges, cell by cell */
        if (ox == lo) ox = hi;
        if (ox >= OW) break;
        int x0 = ox * s->sw - l->pad_left;
        for (int kx = 0; kx < s->kw; kx++) {
          int ix = x0 + kx;
          float *dst = row + (size_t)ox * K + (size_t)kx * C;
          if (ix < 0 || ix >= W)
            memset(dst, 0, C * sizeof *dst);
          else
            memcpy(dst, src + (size_t)ix * C, C * sizeof *dst);
        }
      }
    }
  }
}

CNN_ISA_CLONES(im2col,
               (const cnn_layer *l, float *restrict cols, const float *restrict x, int oy0,
                int oy1),
               (l, cols, x, oy0, oy1))

/* dx [H, W, C] = sum of the patches in dcols [OH*OW, K] where they came from */
static inline __attribute__((always_inline)) void col2im_body(const cnn_layer *l,
                                                              float *restrict dx,
                                                              const float *restrict dcols) {
  const cnn_layer_spec *s = l->spec;
  int H = l->in.h, W = l->in.w, C = l->in.c, OH = l->out.h, OW = l->out.w;
  memset(dx, 0, (size_t)H * W * C * sizeof *dx);
  for (int oy = 0; oy < OH; oy++) {
    for (int ox = 0; ox < OW; ox++) {
      const float *row = dcols + ((size_t)oy * OW + ox) * s->kh * s->kw * C;
      for (int ky = 0; ky < s->kh; ky++) {
        int iy = oy * s->sh + ky - l->pad_top;
        for (int kx = 0; kx < s->kw; kx++, row += C) {
          int ix = ox * s->sw + kx - l->pad_left;
          if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
          float *dst = dx + ((size_t)iy * W + ix) * C;
          for (int c = 0; c < C; c++) dst[c] += row[c];
        }
      }
    }
  }
}

CNN_ISA_CLONES(col2im, (const cnn_layer *l, float *restrict dx, const float *restrict dcols),
               (l, dx, dcols))

static void im2col_task(void *ctx, int i, int thread) {
  (void)thread;
  const conv_task *t = ctx;
  const cnn_layer *l = t->l;
  size_t in = (size_t)l->in.h * l->in.w * l->in.c;
  int img = i / t->parts, part = i % t->parts, OH = l->out.h;
  im2col_isa(t->isa, l, t->cols + (size_t)img * conv_cols(l), t->x + (size_t)img * in,
             OH * part / t->parts, OH * (part + 1) / t->parts);
}

static void col2im_task(void *ctx, int i, int thread) {
  (void)thread;
  const conv_task *t = ctx;
  const cnn_layer *l = t->l;
  size_t in = (size_t)l->in.h * l->in.w * l->in.c;
  col2im_isa(t->isa, l, t->dx + (size_t)i * in, t->cols + (size_t)i * conv_cols(l));
}

/* Forward in chunks of images, one chunk per task: each thread builds the
 * columns of its chunk and multiplies them while they are still in its L2
 * (built all at once, the 18 MB of a batch went out to L3 and came back).
 * Every element of y gets the same arithmetic as from one big product. */
#define CONV_CHUNK_BYTES (384 * 1024)

typedef struct {
  const cnn_layer *l;
  const cnn_run *run;
  float *cols, *y;
  const float *x;
  int n, per_chunk;
  cnn_isa isa; /* of the run's pool */
} conv_chunks;

static void conv_chunk_task(void *ctx, int task, int thread) {
  (void)thread;
  const conv_chunks *t = ctx;
  const cnn_layer *l = t->l;
  int i0 = task * t->per_chunk, m = t->n - i0 < t->per_chunk ? t->n - i0 : t->per_chunk;
  size_t in = (size_t)l->in.h * l->in.w * l->in.c, rows = (size_t)l->out.h * l->out.w;
  int N = l->out.c, K = l->spec->kh * l->spec->kw * l->in.c;
  float *cols = t->cols + (size_t)i0 * conv_cols(l);
  for (int i = 0; i < m; i++)
    im2col_isa(t->isa, l, cols + (size_t)i * conv_cols(l), t->x + (size_t)(i0 + i) * in, 0,
               l->out.h);
  cnn_gemm_bias_serial(t->run->pool, 0, 0, (int)(m * rows), N, K, 1.0f, cols, K, l->w, N,
                       l->nbias ? l->b : NULL, t->run->relu, t->y + (size_t)i0 * rows * N, N);
}

static void conv_forward(cnn_layer *l, const cnn_run *run, float *restrict y,
                         const float *restrict x, int n) {
  int M = n * l->out.h * l->out.w, N = l->out.c;
  int K = l->spec->kh * l->spec->kw * l->in.c;
  if (conv_use_winograd(l, run, CNN_WINO_FORWARD)) {
    cnn_wino_geom g = wino_forward_geom(l);
    float *u = run->work;
    const float *uk = u;
    cnn_isa isa = cnn_threads_isa(run->pool);
    if (!run->training && l->wino_u && l->wino_isa == isa)
      uk = l->wino_u; /* transformed once for inference (net.c) */
    else
      cnn_wino_kernel(run->pool, u, l->w, l->in.c, N, 0);
    cnn_wino_conv(run->pool, &g, x, uk, l->nbias ? l->b : NULL, run->relu, y, u + l->work_fixed, n);
    return;
  }
  const float *cols = x;
  int per_chunk = (int)(CONV_CHUNK_BYTES / sizeof(float) / (conv_cols(l) + 1));
  if (per_chunk < 1) per_chunk = 1;
  /* Enough chunks to keep every thread busy; otherwise (batch-1 inference)
   * the threads share each product instead. */
  if (!conv_direct(l) && n >= 4 * per_chunk * cnn_threads_size(run->pool)) {
    conv_chunks t = {l,
                     run,
                     run->training && l->keep ? l->keep : run->work,
                     y,
                     x,
                     n,
                     per_chunk,
                     cnn_threads_isa(run->pool)};
    cnn_threads_run(run->pool, conv_chunk_task, &t, (n + per_chunk - 1) / per_chunk);
    return;
  }
  if (!conv_direct(l)) {
    /* Fewer images than threads (batch-1 inference): split them by rows. */
    int threads = cnn_threads_size(run->pool), parts = n < threads ? (threads + n - 1) / n : 1;
    conv_task t = {l,     run->training && l->keep ? l->keep : run->work,
                   NULL,  x,
                   parts, cnn_threads_isa(run->pool)};
    cnn_threads_run(run->pool, im2col_task, &t, n * parts);
    cols = t.cols;
  }
  cnn_gemm_bias(run->pool, 0, 0, M, N, K, 1.0f, cols, K, l->w, N, l->nbias ? l->b : NULL, run->relu,
                y, N);
}

static void conv_backward(cnn_layer *l, const cnn_run *run, float *restrict dx,
                          const float *restrict dy, const float *restrict x, int n) {
  int M = n * l->out.h * l->out.w, N = l->out.c;
  int K = l->spec->kh * l->spec->kw * l->in.c;
  if (l->nbias) cnn_bias_grad(run->pool, l->db, dy, (size_t)M, (size_t)N);
  conv_task t = {l, run->work, dx, x, 1, cnn_threads_isa(run->pool)};
  if (conv_use_winograd(l, run, CNN_WINO_DW)) {
    cnn_wino_geom g = wino_forward_geom(l);
    cnn_wino_dw(run->pool, &g, x, dy, l->dw, run->work, n);
  } else {
    if (conv_use_winograd(l, run, CNN_WINO_FORWARD)) { /* the forward built no columns */
      conv_task c = {l, l->keep, NULL, x, 1, t.isa};
      cnn_threads_run(run->pool, im2col_task, &c, n);
    }
    const float *cols = conv_direct(l) ? x : l->keep; /* from the training forward */
    cnn_gemm(run->pool, 1, 0, K, N, M, 1.0f, cols, K, dy, N, 0.0f, l->dw, N);
  }
  if (!dx) return;
  if (conv_use_winograd(l, run, CNN_WINO_DX)) {
    cnn_wino_geom g = wino_backward_geom(l);
    float *u = run->work;
    cnn_wino_kernel(run->pool, u, l->w, l->in.c, N, 1);
    cnn_wino_conv(run->pool, &g, dy, u, NULL, 0, dx, u + l->work_fixed, n);
    return;
  }
  if (conv_direct(l)) {
    cnn_gemm(run->pool, 0, 1, M, K, N, 1.0f, dy, N, l->w, N, 0.0f, dx, K);
    return;
  }
  cnn_gemm(run->pool, 0, 1, M, K, N, 1.0f, dy, N, l->w, N, 0.0f, run->work, K);
  cnn_threads_run(run->pool, col2im_task, &t, n);
}

const cnn_layer_ops cnn_conv2d_ops = {"Conv2D",     "conv2d",      conv_setup,
                                      conv_forward, conv_backward, 1};
