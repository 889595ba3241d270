/*
 * bench_winograd.c - Winograd convolution against im2col + cnn_gemm (the
 * conv2d layer with its Winograd parts cleared) on the 3x3 stride-1
 * convolutions of the notebook's model and a few other shapes: the evidence
 * for the engine's Winograd path (src/winograd.c) and for the rule in
 * src/conv2d.c that says where it is used.
 *
 * Winograd F(m x m, 3x3) computes each m x m block of outputs from an
 * (m+2) x (m+2) tile of inputs (tiles overlap by 2, zeros past the image):
 *   V = B^T d B (input transform, per tile and channel)
 *   U = G g G^T (kernel transform, per input and output channel)
 *   M[xi] = V[xi] @ U[xi]   one [tiles, C] x [C, F] product per tile point xi
 *   Y = A^T M A (output transform, per tile and filter), plus the bias
 * F(2x2): 4x4 tiles, 16 products, 2.25x fewer multiplications than direct on
 * whole tiles; F(4x4): 6x6 tiles, 36 products, 4x fewer. Partial tiles at
 * the edges (11 outputs = 5.5 tiles of 2) waste some of that.
 *
 * F(2x2) is this file's own, the alternative the engine does not have: each
 * task takes a chunk of tiles, transforms them into per-thread buffers, runs
 * the products on the calling thread (cnn_gemm_bias_serial, the pool's
 * kernels) and writes its outputs, as src/winograd.c does for F(4x4).
 * "F(4x4,3x3)" is the conv2d layer with its Winograd forward forced on,
 * "engine" the layer as its rule sets it up (winograd or im2col). The kernel
 * transforms are timed too (in training the weights change every step).
 *
 * First table, the forward: for each shape, batch and thread count (1, 2)
 * on the pool's instruction set (the CPU's best, capped by $CNN_ISA), the
 * forwards run in turn within each repeat (so a shared machine's load falls
 * on all of them) and the medians are printed: ms, effective GFLOP/s (the
 * direct product's 2*M*N*K over the time), direct time / this time, and the
 * largest difference from direct (absolute, and relative to the largest
 * |y|). Then the verdict: Winograd is worth having where its forward is at
 * least 10% faster on the second convolution at batch 32 and 128.
 * Second table, a training step of the layer (forward, then backward with
 * dw, db and dx): im2col, Winograd for the forward (the weight gradient's
 * columns then built in backward), for the forward and dx, and for all
 * three (dw by F(3x3, 4x4)), whatever the rule says, with the parts the
 * rule takes.
 *
 * Usage: bench_winograd [seconds per measurement, default 1.0 [tiles per
 * chunk of this file's F(2x2)]]
 * A benchmark, not a test: it prints figures and exits 0 unless memory runs
 * out or a Winograd result is far from direct's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "bench.h"
#include "gemm.h"
#include "isa.h"
#include "layer.h"
#include "threads.h"
#include "winograd.h"

#define CB 64 /* channels per pass of a transform (stack buffers) */

/* ---- F(2x2, 3x3) --------------------------------------------------------- */

/* V[xi][c] (xi = 4*i + j, rows vstride apart) of the 4x4 tile at (iy0, ix0)
 * of one image x [H, W, C], zeros outside it. */
CNN_INLINE void wino_in2_body(float *restrict v, size_t vstride, const float *restrict x, int H,
                              int W, int C, int iy0, int ix0) {
  for (int c0 = 0; c0 < C; c0 += CB) {
    int cb = C - c0 < CB ? C - c0 : CB;
    float d[4][4][CB], t[4][4][CB];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) {
        int iy = iy0 + i, ix = ix0 + j;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
          for (int c = 0; c < cb; c++) d[i][j][c] = 0;
        else
          for (int c = 0; c < cb; c++) d[i][j][c] = x[((size_t)iy * W + ix) * C + c0 + c];
      }
    for (int j = 0; j < 4; j++)
      for (int c = 0; c < cb; c++) {
        t[0][j][c] = d[0][j][c] - d[2][j][c];
        t[1][j][c] = d[1][j][c] + d[2][j][c];
        t[2][j][c] = d[2][j][c] - d[1][j][c];
        t[3][j][c] = d[1][j][c] - d[3][j][c];
      }
    for (int i = 0; i < 4; i++) {
      float *o = v + (size_t)4 * i * vstride + c0;
      for (int c = 0; c < cb; c++) {
        o[c] = t[i][0][c] - t[i][2][c];
        o[vstride + c] = t[i][1][c] + t[i][2][c];
        o[2 * vstride + c] = t[i][2][c] - t[i][1][c];
        o[3 * vstride + c] = t[i][1][c] - t[i][3][c];
      }
    }
  }
}
CNN_ISA_CLONES(wino_in2,
               (float *restrict v, size_t vstride, const float *restrict x, int H, int W, int C,
                int iy0, int ix0),
               (v, vstride, x, H, W, C, iy0, ix0))

/* y [OH, OW, F] at (oy0, ox0) from M[xi][f] (rows mstride apart), + bias. */
CNN_INLINE void wino_out2_body(float *restrict y, int OH, int OW, int F, int oy0, int ox0,
                               const float *restrict m, size_t mstride, const float *restrict b) {
  for (int f0 = 0; f0 < F; f0 += CB) {
    int fb = F - f0 < CB ? F - f0 : CB;
    float t[2][4][CB], o[2][2][CB];
    for (int j = 0; j < 4; j++) {
      const float *r = m + (size_t)j * mstride + f0;
      size_t s = 4 * mstride;
      for (int f = 0; f < fb; f++) {
        t[0][j][f] = r[f] + r[s + f] + r[2 * s + f];
        t[1][j][f] = r[s + f] - r[2 * s + f] - r[3 * s + f];
      }
    }
    for (int i = 0; i < 2; i++)
      for (int f = 0; f < fb; f++) {
        float bias = b ? b[f0 + f] : 0.0f;
        o[i][0][f] = t[i][0][f] + t[i][1][f] + t[i][2][f] + bias;
        o[i][1][f] = t[i][1][f] - t[i][2][f] - t[i][3][f] + bias;
      }
    for (int i = 0; i < 2 && oy0 + i < OH; i++)
      for (int j = 0; j < 2 && ox0 + j < OW; j++)
        memcpy(y + ((size_t)(oy0 + i) * OW + ox0 + j) * F + f0, o[i][j], fb * sizeof(float));
  }
}
CNN_ISA_CLONES(wino_out2,
               (float *restrict y, int OH, int OW, int F, int oy0, int ox0, const float *restrict m,
                size_t mstride, const float *restrict b),
               (y, OH, OW, F, oy0, ox0, m, mstride, b))

/* ---- the kernel transform and the forward -------------------------------- */

static const float G2[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
/* U [a*a, C, F] = G g G^T for w [3, 3, C, F], a = m + 2. */
CNN_INLINE void wino_kernel_body(float *restrict u, const float *restrict w, int C, int F, int a,
                                 const float *restrict g) {
  size_t cf = (size_t)C * F;
  for (size_t e = 0; e < cf; e += CB) {
    int eb = cf - e < CB ? (int)(cf - e) : CB;
    float t[4][3][CB]; /* G g */
    for (int i = 0; i < a; i++)
      for (int l = 0; l < 3; l++)
        for (int q = 0; q < eb; q++)
          t[i][l][q] = g[3 * i] * w[(0 * 3 + l) * cf + e + q] +
                       g[3 * i + 1] * w[(1 * 3 + l) * cf + e + q] +
                       g[3 * i + 2] * w[(2 * 3 + l) * cf + e + q];
    for (int i = 0; i < a; i++)
      for (int j = 0; j < a; j++)
        for (int q = 0; q < eb; q++)
          u[(size_t)(i * a + j) * cf + e + q] =
              t[i][0][q] * g[3 * j] + t[i][1][q] * g[3 * j + 1] + t[i][2][q] * g[3 * j + 2];
  }
}
CNN_ISA_CLONES(wino_kernel,
               (float *restrict u, const float *restrict w, int C, int F, int a,
                const float *restrict g),
               (u, w, C, F, a, g))

/* This file's F(2x2, 3x3) forward. */
typedef struct wino {
  int m, a;       /* output block m x m = 2 x 2, tile a x a = 4 x 4 */
  int H, W, C, F; /* input and filters */
  int OH, OW;     /* outputs ('valid' here: H-2, W-2) */
  int pad_top, pad_left;
  int th, tw;          /* tiles per image */
  int chunk;           /* tiles per task */
  float *u;            /* [a*a, C, F] */
  float *v[2], *mm[2]; /* per thread: [chunk, a*a, C], [chunk, a*a, F] */
  const float *x, *w, *b;
  float *y;
  int n;
  const cnn_threads *pool;
  cnn_isa isa;
} wino;

static void wino_task(void *ctx, int task, int thread) {
  const wino *p = ctx;
  int per_img = p->th * p->tw, total = p->n * per_img, a2 = p->a * p->a;
  int t0 = task * p->chunk, t1 = t0 + p->chunk < total ? t0 + p->chunk : total, nt = t1 - t0;
  float *v = p->v[thread], *mm = p->mm[thread];
  size_t in = (size_t)p->H * p->W * p->C, out = (size_t)p->OH * p->OW * p->F;
  for (int t = t0; t < t1; t++) {
    int img = t / per_img, r = t % per_img, ty = r / p->tw, tx = r % p->tw;
    wino_in2_isa(p->isa, v + (size_t)(t - t0) * a2 * p->C, (size_t)p->C, p->x + img * in, p->H,
                 p->W, p->C, ty * 2 - p->pad_top, tx * 2 - p->pad_left);
  }
  for (int xi = 0; xi < a2; xi++)
    cnn_gemm_bias_serial(p->pool, 0, 0, nt, p->F, p->C, 1.0f, v + (size_t)xi * p->C, a2 * p->C,
                         p->u + (size_t)xi * p->C * p->F, p->F, NULL, 0, mm + (size_t)xi * p->F,
                         a2 * p->F);
  for (int t = t0; t < t1; t++) {
    int img = t / per_img, r = t % per_img, ty = r / p->tw, tx = r % p->tw;
    wino_out2_isa(p->isa, p->y + img * out, p->OH, p->OW, p->F, ty * 2, tx * 2,
                  mm + (size_t)(t - t0) * a2 * p->F, (size_t)p->F, p->b);
  }
}

static void wino_forward(wino *p, cnn_threads *pool, float *y, const float *x, int n) {
  p->pool = pool;
  p->isa = cnn_threads_isa(pool);
  p->x = x;
  p->y = y;
  p->n = n;
  wino_kernel_isa(p->isa, p->u, p->w, p->C, p->F, p->a, &G2[0][0]);
  int total = n * p->th * p->tw;
  cnn_threads_run(pool, wino_task, p, (total + p->chunk - 1) / p->chunk);
}

/* ---- the benchmark ------------------------------------------------------- */

typedef struct conv_shape {
  const char *name;
  int H, W, C, F;
} conv_shape;

static const conv_shape shapes[] = {
    {"conv2", 13, 13, 32, 64}, /* after the first pooling */
    {"conv3", 5, 5, 64, 64},   /* after the second */
    /* Not the notebook's: where the engine's rule draws its lines. */
    {"c16", 13, 13, 16, 64},
    {"f32", 10, 10, 32, 32},
    {"c64", 10, 10, 64, 64},
    {"o6", 8, 8, 32, 64},
    {"s28", 30, 30, 32, 32},
};

#define NIMPL 4 /* direct, F(2x2), the engine's F(4x4), the engine's layer by its rule */
static const char *impl_names[NIMPL] = {"direct", "F(2x2,3x3)", "F(4x4,3x3)", "engine"};

static void *xalloc(size_t floats);

/* The conv2d layer of a shape ('valid', with bias) as the engine sets it up,
 * its rule included (l->winograd), with room for Winograd's kernel
 * transform whatever the rule says (l->work_fixed); returns the floats of
 * scratch per image that im2col and Winograd (forward and dx) may use. */
static size_t conv_layer(cnn_layer *l, cnn_layer_spec *spec, const conv_shape *s) {
  memset(spec, 0, sizeof *spec);
  spec->type = CNN_LAYER_CONV2D;
  spec->filters = s->F;
  spec->kh = spec->kw = 3;
  spec->sh = spec->sw = 1;
  spec->padding = CNN_PAD_VALID;
  spec->use_bias = 1;
  memset(l, 0, sizeof *l);
  l->ops = &cnn_conv2d_ops;
  l->spec = spec;
  l->in = (cnn_shape){s->H, s->W, s->C};
  char err[CNN_ERRMAX];
  if (cnn_conv2d_ops.setup(l, err) != CNN_OK) {
    fprintf(stderr, "bench_winograd: %s\n", err);
    exit(1);
  }
  l->work_fixed = cnn_wino_kernel_floats(s->C, s->F);
  cnn_wino_geom gf = {s->H, s->W, s->C, s->H - 2, s->W - 2, s->F, 0, 0};
  cnn_wino_geom gb = {s->H - 2, s->W - 2, s->F, s->H, s->W, s->C, 2, 2};
  size_t per = l->work_per_sample;
  if (cnn_wino_work_floats(&gf) > per) per = cnn_wino_work_floats(&gf);
  if (cnn_wino_work_floats(&gb) > per) per = cnn_wino_work_floats(&gb);
  return per;
}

/* Whether the engine's rule takes Winograd for this shape. */
static int shape_rule(const conv_shape *s) {
  cnn_layer_spec spec;
  cnn_layer l;
  conv_layer(&l, &spec, s);
  return l.winograd;
}

static void *xalloc(size_t floats) {
  void *p = calloc(floats ? floats : 1, sizeof(float));
  if (!p) {
    fprintf(stderr, "bench_winograd: out of memory\n");
    exit(1);
  }
  return p;
}

static int wino_chunk_tiles = 0; /* 0: chosen per tile size below */

static void wino_init(wino *p, const conv_shape *s, const float *w, const float *b, int threads) {
  const int m = 2;
  memset(p, 0, sizeof *p);
  p->m = m;
  p->a = m + 2;
  p->H = s->H;
  p->W = s->W;
  p->C = s->C;
  p->F = s->F;
  p->OH = s->H - 2;
  p->OW = s->W - 2;
  p->th = (p->OH + m - 1) / m;
  p->tw = (p->OW + m - 1) / m;
  /* About 256 KB of V and M per task, a multiple of the 12-row tile. */
  int per_tile = p->a * p->a * (p->C + p->F) * (int)sizeof(float);
  p->chunk = wino_chunk_tiles > 0 ? wino_chunk_tiles : (256 * 1024 / per_tile + 11) / 12 * 12;
  p->u = xalloc((size_t)p->a * p->a * p->C * p->F);
  for (int t = 0; t < threads; t++) {
    p->v[t] = xalloc((size_t)p->chunk * p->a * p->a * p->C);
    p->mm[t] = xalloc((size_t)p->chunk * p->a * p->a * p->F);
  }
  p->w = w;
  p->b = b;
}

static void wino_free(wino *p) {
  free(p->u);
  for (int t = 0; t < 2; t++) {
    free(p->v[t]);
    free(p->mm[t]);
  }
}

typedef struct result {
  int engine_wino; /* the engine's rule chose Winograd */
  double ms[NIMPL];
  double diff[NIMPL], rel[NIMPL];
} result;

/* Runs every implementation `reps` times (at least) within `budget` seconds,
 * alternating, and returns their medians and differences from direct. */
static result bench_case(const conv_shape *s, int batch, cnn_threads *pool, double budget) {
  int threads = cnn_threads_size(pool);
  size_t nx = (size_t)batch * s->H * s->W * s->C, nw = (size_t)9 * s->C * s->F;
  size_t ny = (size_t)batch * (s->H - 2) * (s->W - 2) * s->F;
  float *x = xalloc(nx), *w = xalloc(nw), *b = xalloc((size_t)s->F);
  float *y[NIMPL];
  for (int i = 0; i < NIMPL; i++) y[i] = xalloc(ny);
  /* Inputs as after a ReLU, weights like Glorot's at this size. */
  for (size_t i = 0; i < nx; i++) x[i] = bench_rand() + 0.5f;
  float scale = sqrtf(6.0f / (9.0f * (s->C + s->F))) * 2;
  for (size_t i = 0; i < nw; i++) w[i] = bench_rand() * scale;
  for (int i = 0; i < s->F; i++) b[i] = bench_rand() * 0.1f;

  cnn_layer_spec spec;
  cnn_layer l;
  size_t per = conv_layer(&l, &spec, s);
  l.w = w;
  l.b = b;
  int engine_wino = l.winograd; /* the engine's rule */
  float *work = xalloc((size_t)batch * per + l.work_fixed);
  cnn_run run;
  memset(&run, 0, sizeof run);
  run.pool = pool;
  run.work = work;

  wino w2;
  wino_init(&w2, s, w, b, threads);

  enum { MAXREP = 401 };
  static double times[NIMPL][MAXREP];
  int reps = 0;
  double start = 0;
  for (int warm = 1; warm >= 0; warm--) {
    if (!warm) start = bench_now();
    while (reps < MAXREP && (warm || reps < 15 || bench_now() - start < budget)) {
      for (int i = 0; i < NIMPL; i++) {
        double t = bench_now();
        if (i == 1) {
          wino_forward(&w2, pool, y[i], x, batch);
        } else {
          l.winograd = i == 2 ? CNN_WINO_FORWARD : i == 3 ? engine_wino : 0;
          cnn_conv2d_ops.forward(&l, &run, y[i], x, batch);
        }
        if (!warm) times[i][reps] = bench_now() - t;
      }
      if (warm) break;
      reps++;
    }
  }
  result r;
  r.engine_wino = engine_wino;
  double ymax = 0;
  for (size_t k = 0; k < ny; k++)
    if (fabsf(y[0][k]) > ymax) ymax = fabsf(y[0][k]);
  for (int i = 0; i < NIMPL; i++) {
    qsort(times[i], (size_t)reps, sizeof times[i][0], bench_cmp);
    r.ms[i] = times[i][reps / 2] * 1e3;
    double worst = 0;
    for (size_t k = 0; k < ny; k++) {
      double d = fabs((double)y[i][k] - y[0][k]);
      if (!(d <= worst)) worst = d;
    }
    r.diff[i] = worst;
    r.rel[i] = ymax > 0 ? worst / ymax : worst;
  }
  wino_free(&w2);
  free(work);
  for (int i = 0; i < NIMPL; i++) free(y[i]);
  free(x);
  free(w);
  free(b);
  return r;
}

/* One training step of the layer (training forward keeping what backward
 * needs, then backward with dw, db and dx), im2col + GEMM against Winograd
 * (forced on, whatever the engine's rule): medians in ms of alternating
 * repeats, and the largest difference of dx relative to max |dx|. */
#define NTRAIN 4 /* im2col, Winograd forward, forward and dx, all three */
typedef struct train_result {
  double ms[NTRAIN], rel_dx[NTRAIN], rel_dw[NTRAIN];
} train_result;

static train_result bench_train(const conv_shape *s, int batch, cnn_threads *pool, double budget) {
  size_t nx = (size_t)batch * s->H * s->W * s->C, nw = (size_t)9 * s->C * s->F;
  size_t ny = (size_t)batch * (s->H - 2) * (s->W - 2) * s->F;
  float *x = xalloc(nx), *w = xalloc(nw), *b = xalloc((size_t)s->F), *y = xalloc(ny);
  float *dy = xalloc(ny), *db = xalloc((size_t)s->F);
  float *dx[NTRAIN] = {xalloc(nx), xalloc(nx), xalloc(nx), xalloc(nx)};
  float *dw[NTRAIN] = {xalloc(nw), xalloc(nw), xalloc(nw), xalloc(nw)};
  for (size_t i = 0; i < nx; i++) x[i] = bench_rand() + 0.5f;
  float scale = sqrtf(6.0f / (9.0f * (s->C + s->F))) * 2;
  for (size_t i = 0; i < nw; i++) w[i] = bench_rand() * scale;
  for (size_t i = 0; i < ny; i++) dy[i] = bench_rand() * 1e-2f;
  cnn_layer_spec spec;
  cnn_layer l;
  size_t per = conv_layer(&l, &spec, s);
  float *work = xalloc((size_t)batch * per + l.work_fixed);
  float *keep = xalloc((size_t)batch * l.keep_per_sample);
  l.w = w, l.b = b, l.db = db, l.keep = keep;
  cnn_run run;
  memset(&run, 0, sizeof run);
  run.pool = pool;
  run.work = work;
  run.training = 1;
  enum { MAXREP = 401 };
  static double times[NTRAIN][MAXREP];
  static const int parts[NTRAIN] = {0, CNN_WINO_FORWARD, CNN_WINO_FORWARD | CNN_WINO_DX,
                                    CNN_WINO_FORWARD | CNN_WINO_DX | CNN_WINO_DW};
  int reps = 0;
  double start = 0;
  for (int warm = 1; warm >= 0; warm--) {
    if (!warm) start = bench_now();
    while (reps < MAXREP && (warm || reps < 15 || bench_now() - start < budget)) {
      for (int i = 0; i < NTRAIN; i++) {
        l.winograd = parts[i];
        l.dw = dw[i];
        double t = bench_now();
        cnn_conv2d_ops.forward(&l, &run, y, x, batch);
        cnn_conv2d_ops.backward(&l, &run, dx[i], dy, x, batch);
        if (!warm) times[i][reps] = bench_now() - t;
      }
      if (warm) break;
      reps++;
    }
  }
  train_result r;
  double big = 0, bigw = 0;
  for (size_t k = 0; k < nx; k++)
    if (fabsf(dx[0][k]) > big) big = fabsf(dx[0][k]);
  for (size_t k = 0; k < nw; k++)
    if (fabsf(dw[0][k]) > bigw) bigw = fabsf(dw[0][k]);
  for (int i = 0; i < NTRAIN; i++) {
    qsort(times[i], (size_t)reps, sizeof times[i][0], bench_cmp);
    r.ms[i] = times[i][reps / 2] * 1e3;
    double worst = 0;
    for (size_t k = 0; k < nx; k++) {
      double d = fabs((double)dx[i][k] - dx[0][k]);
      if (!(d <= worst)) worst = d;
    }
    r.rel_dx[i] = big > 0 ? worst / big : worst;
    worst = 0;
    for (size_t k = 0; k < nw; k++) {
      double d = fabs((double)dw[i][k] - dw[0][k]);
      if (!(d <= worst)) worst = d;
    }
    r.rel_dw[i] = bigw > 0 ? worst / bigw : worst;
  }
  free(x), free(w), free(b), free(y), free(dy), free(db);
  for (int i = 0; i < NTRAIN; i++) free(dx[i]), free(dw[i]);
  free(work), free(keep);
  return r;
}

int main(int argc, char **argv) {
  double budget = argc > 1 ? atof(argv[1]) : 1.0;
  if (!(budget > 0)) budget = 1.0;
  if (argc > 2) wino_chunk_tiles = atoi(argv[2]);
  cnn_threads *pools[2];
  char err[CNN_ERRMAX];
  for (int t = 0; t < 2; t++)
    if (cnn_threads_new(&pools[t], t + 1, err) != CNN_OK) {
      fprintf(stderr, "bench_winograd: %s\n", err);
      return 1;
    }
  cnn_isa isa = cnn_threads_isa(pools[0]);
  printf("cpu: %s\nisa: %s (gemm %s, loops %s)\n", cnn_isa_cpu_name(), cnn_isa_name(isa),
         cnn_isa_gemm_kernel(isa), cnn_isa_loops(isa));
  printf(
      "3x3 'valid' convolution forward, median ms of alternating repeats; GF/s = direct's\n"
      "2*M*N*K / time; x = direct time / this time; diff = max |y - y_direct| (abs, and\n"
      "relative to max |y_direct|)\n");
  printf("%-6s %5s %3s", "conv", "batch", "thr");
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    printf("%s%s %dx%dx%d -> %d filters", si ? ", " : "shapes: ", shapes[si].name, shapes[si].H,
           shapes[si].W, shapes[si].C, shapes[si].F);
  printf("\n%-6s %5s %3s", "conv", "batch", "thr");
  for (int i = 0; i < NIMPL; i++)
    printf(" | %-10s ms  GF/s%s", impl_names[i], i ? "     x  diff abs/rel   " : "");
  printf("\n");

  const int batches[] = {32, 128};
  double gain[2][2][NIMPL - 1] = {{{0}}}; /* conv2 only: [batch][threads][impl-1] */
  int status = 0;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int bi = 0; bi < 2; bi++)
      for (int t = 0; t < 2; t++) {
        const conv_shape *s = &shapes[si];
        int batch = batches[bi];
        result r = bench_case(s, batch, pools[t], budget);
        double gflop = 2.0 * batch * (s->H - 2) * (s->W - 2) * s->F * 9.0 * s->C * 1e-9;
        printf("%-6s %5d %3d", s->name, batch, t + 1);
        for (int i = 0; i < NIMPL; i++) {
          printf(" | %13.3f %5.1f", r.ms[i], gflop / (r.ms[i] * 1e-3));
          if (i) printf(" %5.2f  %.1e/%.1e", r.ms[0] / r.ms[i], r.diff[i], r.rel[i]);
          if (i == 3) printf(" %s", r.engine_wino ? "winograd" : "im2col");
          if (i && !(r.rel[i] < 1e-3)) status = 1;
          if (i && si == 0) gain[bi][t][i - 1] = r.ms[0] / r.ms[i];
        }
        printf("\n");
        fflush(stdout);
      }

  printf(
      "verdict (Winograd pays where it is >= 10%% faster than direct on conv2 at batch 32 "
      "and 128):\n");
  for (int i = 1; i < NIMPL; i++) {
    int wins = 1;
    double lo = 1e9;
    for (int bi = 0; bi < 2; bi++)
      for (int t = 0; t < 2; t++) {
        if (gain[bi][t][i - 1] < 1.10) wins = 0;
        if (gain[bi][t][i - 1] < lo) lo = gain[bi][t][i - 1];
      }
    printf("  %s: %s (slowest case: direct / winograd = %.2f)\n", impl_names[i],
           wins ? "faster by a clear margin" : "no clear gain: keep direct", lo);
  }
  printf(
      "\none training step of the layer (training forward, backward with dw, db, dx), median\n"
      "ms; Winograd forced on for the forward, then for the forward and dx, then for all three;\n"
      "x = im2col's time / this one; rel = max |d - d_im2col| / max |d_im2col| (dx, dw)\n"
      "%-6s %5s %3s | %9s | %9s %5s | %9s %5s | %9s %5s %8s %8s | rule\n",
      "conv", "batch", "thr", "im2col", "wino fwd", "x", "fwd+dx", "x", "all", "x", "dx rel",
      "dw rel");
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int bi = 0; bi < 2; bi++)
      for (int t = 0; t < 2; t++) {
        train_result r = bench_train(&shapes[si], batches[bi], pools[t], budget);
        int rule = shape_rule(&shapes[si]);
        printf(
            "%-6s %5d %3d | %9.3f | %9.3f %5.2f | %9.3f %5.2f | %9.3f %5.2f %8.1e %8.1e | %s%s%s\n",
            shapes[si].name, batches[bi], t + 1, r.ms[0], r.ms[1], r.ms[0] / r.ms[1], r.ms[2],
            r.ms[0] / r.ms[2], r.ms[3], r.ms[0] / r.ms[3], r.rel_dx[3], r.rel_dw[3],
            rule & CNN_WINO_FORWARD ? "fwd " : "", rule & CNN_WINO_DX ? "dx " : "",
            rule & CNN_WINO_DW ? "dw" : "");
        fflush(stdout);
      }
  if (status) fprintf(stderr, "bench_winograd: a Winograd result is far from direct's\n");
  cnn_threads_free(pools[0]);
  cnn_threads_free(pools[1]);
  return status;
}
