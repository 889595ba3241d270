/*
 * winograd.c - F(4x4, 3x3) convolution (see winograd.h for the maths).
 *
 *   B^T = | 4  0 -5  0  1  0 |   G = | 1/4     0     0 |   A^T = | 1  1  1  1  1  0 |
 *         | 0 -4 -4  1  1  0 |       | -1/6 -1/6  -1/6 |         | 0  1 -1  2 -2  0 |
 *         | 0  4 -4 -1  1  0 |       | -1/6  1/6  -1/6 |         | 0  1  1  4  4  0 |
 *         | 0 -2 -1  2  1  0 |       | 1/24 1/12   1/6 |         | 0  1 -1  8 -8  1 |
 *         | 0  2 -1 -2  1  0 |       | 1/24 -1/12  1/6 |
 *         | 0  4  0 -5  0  1 |       | 0       0     1 |
 *
 * Tiles are numbered over the batch (image, tile row, tile column) and cut
 * into chunks of a count fixed by the shape (so results do not depend on the
 * pool). Each worker takes every workers-th chunk into its own part of work:
 * the chunk's transformed inputs V [tiles, 36, C], then its products
 * M [tiles, 36, F]. It transforms the tiles, runs the 36 products on its own
 * thread and writes the outputs while V and M are still in its L2 (about
 * 256 KB a chunk).
 *
 * The weight gradient is F(3x3, 4x4) on the same tiles: the correlation of a
 * tile's 6x6 inputs d with its 4x4 output gradients e gives its share of the
 * 3x3 kernel's gradient,
 *   dw = A'^T [(G' e G'^T) . (B^T d B)] A'
 * with the forward's B^T (the data transform depends only on the points 0,
 * +-1, +-2 and infinity, which both use), and
 *
 *   G' = | 1/4     0    0     0 |   A'^T = | 1  1  1  1  1  0 |
 *        | -1/6 -1/6 -1/6  -1/6 |          | 0  1 -1  2 -2  0 |
 *        | -1/6  1/6 -1/6   1/6 |          | 0  1  1  4  4  1 |
 *        | 1/24 1/12  1/6   1/3 |
 *        | 1/24 -1/12 1/6  -1/3 |
 *        | 0       0    0     1 |
 *
 * Summed over the batch's tiles before A' (it is linear), that is 36 products
 * [C, tiles] x [tiles, F], one per point, against 9 x 16 multiplications a
 * tile for cols^T @ dy. The loops run along channels, compiled for each
 * instruction set (CNN_ISA_CLONES); without contraction into FMAs (ISO C
 * rounds every operation) they round alike at every vector width.
 */
#include "winograd.h"

#include <stdint.h>
#include <string.h>

#include "gemm.h"

#define CB 64                    /* channels per pass of the kernel transform (its stack buffers) */
#define PT 36                    /* points of a 6x6 tile */
#define CHUNK_FLOATS (64 * 1024) /* V and M of one task: 256 KB */

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

size_t cnn_wino_kernel_floats(int C, int F) { return round16((size_t)PT * C * F); }

static int tiles_of(int out) { return (out + 3) / 4; }

size_t cnn_wino_work_floats(const cnn_wino_geom *g) {
  return (size_t)tiles_of(g->OH) * tiles_of(g->OW) * PT * (g->C + g->F);
}

/* Tiles per task: about CHUNK_FLOATS, a multiple of the GEMM's 12-row tile. */
static int chunk_tiles(const cnn_wino_geom *g) {
  size_t per_tile = (size_t)PT * (g->C + g->F);
  size_t t = (CHUNK_FLOATS / per_tile + 11) / 12 * 12;
  return t < 12 ? 12 : t > 1200 ? 1200 : (int)t;
}

/* ---- the kernel transform ---------------------------------------------------- */

static const float G[6][3] = {{1.0f / 4, 0, 0},
                              {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                              {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                              {1.0f / 24, 1.0f / 12, 1.0f / 6},
                              {1.0f / 24, -1.0f / 12, 1.0f / 6},
                              {0, 0, 1}};

/* u [36, R, S]: element (i, j) of kernel position (k, l) is read at
 * w[pos(k, l) * R * S + i * si + j * sj]. */
CNN_INLINE void kernel_body(float *restrict u, const float *restrict w, int R, int S, size_t si,
                            size_t sj, int flip, int i0, int i1) {
  size_t rs = (size_t)R * S;
  for (int i = i0; i < i1; i++)
    for (int j0 = 0; j0 < S; j0 += CB) {
      int jb = S - j0 < CB ? S - j0 : CB;
      float g[3][3][CB], t[6][3][CB];
      for (int k = 0; k < 3; k++)
        for (int l = 0; l < 3; l++) {
          int pos = flip ? (2 - k) * 3 + (2 - l) : k * 3 + l;
          const float *src = w + pos * rs + i * si + j0 * sj;
          for (int q = 0; q < jb; q++) g[k][l][q] = src[q * sj];
        }
      for (int r = 0; r < 6; r++)
        for (int l = 0; l < 3; l++)
          for (int q = 0; q < jb; q++)
            t[r][l][q] = G[r][0] * g[0][l][q] + G[r][1] * g[1][l][q] + G[r][2] * g[2][l][q];
      for (int r = 0; r < 6; r++)
        for (int s = 0; s < 6; s++) {
          float *dst = u + (r * 6 + s) * rs + (size_t)i * S + j0;
          for (int q = 0; q < jb; q++)
            dst[q] = t[r][0][q] * G[s][0] + t[r][1][q] * G[s][1] + t[r][2][q] * G[s][2];
        }
    }
}

CNN_ISA_CLONES(kernel,
               (float *restrict u, const float *restrict w, int R, int S, size_t si, size_t sj,
                int flip, int i0, int i1),
               (u, w, R, S, si, sj, flip, i0, i1))

/* Rows i of u per task when a pool shares the transform (each value is
 * computed alike whoever computes it). The training step transforms the
 * notebook's second convolution twice (forward and input gradient): on one
 * thread that was about 1% of the step, the other thread waiting. */
#define KERNEL_TASK_VALUES 512 /* R * S values a task at least */

typedef struct kernel_job {
  float *u;
  const float *w;
  int R, S, flip;
  size_t si, sj;
  cnn_isa isa;
} kernel_job;

static void kernel_rows(void *ctx, size_t i0, size_t i1, int thread) {
  (void)thread;
  const kernel_job *k = ctx;
  kernel_isa(k->isa, k->u, k->w, k->R, k->S, k->si, k->sj, k->flip, (int)i0, (int)i1);
}

void cnn_wino_kernel(cnn_threads *pool, float *u, const float *w, int C, int F, int flip) {
  /* No flip: (i, j) = (c, f) at c * F + f. Flip: (i, j) = (f, c), same place. */
  kernel_job k = {u,
                  w,
                  flip ? F : C,
                  flip ? C : F,
                  flip,
                  flip ? 1 : (size_t)F,
                  flip ? (size_t)F : 1,
                  cnn_threads_isa(pool)};
  cnn_threads_for(pool, (size_t)k.R, (size_t)(KERNEL_TASK_VALUES / k.S), kernel_rows, &k);
}

/* ---- the tile transforms ------------------------------------------------------ */

/* Sixteen channels as one vector (GCC/Clang vector extensions: one zmm,
 * two ymm or four xmm as the clone's target allows). Each lane does what
 * scalar code would: the same operations in the same order, and no
 * contraction into FMAs (-std=c11), so every instruction set rounds alike. */
typedef float wino_v __attribute__((vector_size(64)));
typedef int32_t wino_vi __attribute__((vector_size(64)));
#define WV 16

/* *v = n floats from p (n >= WV: a whole vector), zeros after them.
 * Vectors pass by address: the baseline clone has no 64-byte registers. */
CNN_INLINE void wino_load(wino_v *v, const float *p, int n) {
  if (n >= WV) {
    memcpy(v, p, sizeof *v);
  } else {
    *v = (wino_v){0};
    memcpy(v, p, (size_t)n * sizeof(float));
  }
}

CNN_INLINE void wino_store(float *p, const wino_v *v, int n) {
  if (n >= WV)
    memcpy(p, v, sizeof *v);
  else
    memcpy(p, v, (size_t)n * sizeof(float));
}

/* B^T on six vectors d, is apart, into six, os apart. */
CNN_INLINE void bt6(wino_v *out, size_t os, const wino_v *d, size_t is) {
  wino_v d0 = d[0], d1 = d[is], d2 = d[2 * is], d3 = d[3 * is], d4 = d[4 * is], d5 = d[5 * is];
  out[0] = 4.0f * d0 - 5.0f * d2 + d4;
  out[os] = -4.0f * (d1 + d2) + d3 + d4;
  out[2 * os] = 4.0f * (d1 - d2) - d3 + d4;
  out[3 * os] = 2.0f * (d3 - d1) - d2 + d4;
  out[4 * os] = 2.0f * (d1 - d3) - d2 + d4;
  out[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* A^T on six vectors m, is apart, giving four, os apart, plus b. */
CNN_INLINE void at6(wino_v *out, size_t os, const wino_v *m, size_t is, const wino_v *bias) {
  wino_v b = *bias, m0 = m[0], m1 = m[is], m2 = m[2 * is], m3 = m[3 * is], m4 = m[4 * is],
         m5 = m[5 * is];
  wino_v s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
  out[0] = m0 + s12 + s34 + b;
  out[os] = d12 + 2.0f * d34 + b;
  out[2 * os] = s12 + 4.0f * s34 + b;
  out[3 * os] = d12 + 8.0f * d34 + m5 + b;
}

/* d[i * n + j] = channels c0.. of pixel (y0 + i, x0 + j) of one image
 * x [H, W, C], for i, j < n; zeros outside the image. */
CNN_INLINE void tile_gather(wino_v *d, int n, const float *x, int H, int W, int C, int y0, int x0,
                            int c0) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      int y = y0 + i, xx = x0 + j;
      if (y < 0 || y >= H || xx < 0 || xx >= W)
        d[i * n + j] = (wino_v){0};
      else
        wino_load(&d[i * n + j], x + ((size_t)y * W + xx) * C + c0, C - c0);
    }
}

/* v [36, C] of the 6x6 tile at (iy0, ix0) of one image x [H, W, C]. */
CNN_INLINE void tile_in_body(float *restrict v, const float *restrict x, int H, int W, int C,
                             int iy0, int ix0) {
  for (int c0 = 0; c0 < C; c0 += WV) {
    int cb = C - c0;
    wino_v d[6][6], t[6][6];
    tile_gather(&d[0][0], 6, x, H, W, C, iy0, ix0, c0);
    for (int j = 0; j < 6; j++) bt6(&t[0][j], 6, &d[0][j], 6);
    for (int i = 0; i < 6; i++) {
      wino_v o[6];
      bt6(o, 1, t[i], 1);
      for (int s = 0; s < 6; s++) wino_store(v + (size_t)(6 * i + s) * C + c0, &o[s], cb);
    }
  }
}

CNN_ISA_CLONES(tile_in,
               (float *restrict v, const float *restrict x, int H, int W, int C, int iy0, int ix0),
               (v, x, H, W, C, iy0, ix0))

/* The outputs of the tile whose first is (oy0, ox0) in y [OH, OW, F] from
 * its products m [36, F]. */
CNN_INLINE void tile_out_body(float *restrict y, int OH, int OW, int F, int oy0, int ox0,
                              const float *restrict m, const float *restrict bias, int relu) {
  for (int f0 = 0; f0 < F; f0 += WV) {
    int fb = F - f0;
    wino_v p[6][6], t[4][6], zero = {0}, b = zero;
    if (bias) wino_load(&b, bias + f0, fb);
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 6; j++) wino_load(&p[i][j], m + (size_t)(6 * i + j) * F + f0, fb);
    for (int j = 0; j < 6; j++) at6(&t[0][j], 6, &p[0][j], 6, &zero);
    for (int i = 0; i < 4 && oy0 + i < OH; i++) {
      wino_v o[4];
      at6(o, 1, t[i], 1, &b);
      for (int j = 0; j < 4 && ox0 + j < OW; j++) {
        /* max(o, 0) with NaN giving 0: keep the lanes where o > 0 holds. */
        if (relu) o[j] = (wino_v)((wino_vi)o[j] & (o[j] > zero));
        wino_store(y + ((size_t)(oy0 + i) * OW + ox0 + j) * F + f0, &o[j], fb);
      }
    }
  }
}

CNN_ISA_CLONES(tile_out,
               (float *restrict y, int OH, int OW, int F, int oy0, int ox0, const float *restrict m,
                const float *restrict bias, int relu),
               (y, OH, OW, F, oy0, ox0, m, bias, relu))

/* ---- the convolution ---------------------------------------------------------- */

typedef struct wino_job {
  const cnn_wino_geom *g;
  const float *x, *u, *bias;
  float *y, *work;
  int relu, n, th, tw, chunk; /* chunk: tiles per chunk */
  int nchunks, workers;
  const cnn_threads *pool;
  cnn_isa isa;
} wino_job;

/* Chunk `chunk` of the tiles, in the scratch of worker `slot`. */
static void wino_chunk(const wino_job *j, int chunk, int slot) {
  const cnn_wino_geom *g = j->g;
  int per_img = j->th * j->tw, total = j->n * per_img;
  int t0 = chunk * j->chunk, t1 = total - t0 < j->chunk ? total : t0 + j->chunk, nt = t1 - t0;
  size_t per_tile = (size_t)PT * (g->C + g->F);
  float *v = j->work + (size_t)slot * j->chunk * per_tile, *m = v + (size_t)nt * PT * g->C;
  size_t in = (size_t)g->H * g->W * g->C, out = (size_t)g->OH * g->OW * g->F;
  for (int t = t0; t < t1; t++) {
    int img = t / per_img, r = t % per_img;
    tile_in_isa(j->isa, v + (size_t)(t - t0) * PT * g->C, j->x + img * in, g->H, g->W, g->C,
                r / j->tw * 4 - g->pad_top, r % j->tw * 4 - g->pad_left);
  }
  for (int xi = 0; xi < PT; xi++)
    cnn_gemm_bias_serial(j->pool, 0, 0, nt, g->F, g->C, 1.0f, v + (size_t)xi * g->C, PT * g->C,
                         j->u + (size_t)xi * g->C * g->F, g->F, NULL, 0, m + (size_t)xi * g->F,
                         PT * g->F);
  for (int t = t0; t < t1; t++) {
    int img = t / per_img, r = t % per_img;
    tile_out_isa(j->isa, j->y + img * out, g->OH, g->OW, g->F, r / j->tw * 4, r % j->tw * 4,
                 m + (size_t)(t - t0) * PT * g->F, j->bias, j->relu);
  }
}

/* Worker `task` of `workers` takes chunks task, task + workers, ... in the
 * same scratch: it stays in cache from one chunk to the next (a scratch per
 * chunk, walked through once, cost a third of the gain at batch 128). Chunk
 * i ends within i + 1 chunks of tiles, so `workers` scratches fit in the
 * room of the batch's tiles. */
static void wino_task(void *ctx, int task, int thread) {
  (void)thread;
  const wino_job *j = ctx;
  for (int c = task; c < j->nchunks; c += j->workers) wino_chunk(j, c, task);
}

void cnn_wino_conv(cnn_threads *pool, const cnn_wino_geom *g, const float *x, const float *u,
                   const float *bias, int relu, float *y, float *work, int n) {
  wino_job j = {g,
                x,
                u,
                bias,
                y,
                work,
                relu,
                n,
                tiles_of(g->OH),
                tiles_of(g->OW),
                chunk_tiles(g),
                0,
                0,
                pool,
                cnn_threads_isa(pool)};
  int total = n * j.th * j.tw;
  j.nchunks = (total + j.chunk - 1) / j.chunk;
  j.workers = cnn_threads_size(pool) < j.nchunks ? cnn_threads_size(pool) : j.nchunks;
  cnn_threads_run(pool, wino_task, &j, j.workers);
}

/* ---- the weight gradient ------------------------------------------------------ */

/* G' on four vectors e, is apart, into six, os apart. */
CNN_INLINE void gp6(wino_v *out, size_t os, const wino_v *e, size_t is) {
  wino_v e0 = e[0], e1 = e[is], e2 = e[2 * is], e3 = e[3 * is];
  wino_v s02 = e0 + e2, s13 = e1 + e3;
  wino_v t0 = (1.0f / 24) * e0 + (1.0f / 6) * e2, t1 = (1.0f / 12) * e1 + (1.0f / 3) * e3;
  out[0] = 0.25f * e0;
  out[os] = (-1.0f / 6) * (s02 + s13);
  out[2 * os] = (-1.0f / 6) * (s02 - s13);
  out[3 * os] = t0 + t1;
  out[4 * os] = t0 - t1;
  out[5 * os] = e3;
}

/* A'^T on six vectors m, is apart, giving three, os apart. */
CNN_INLINE void ap3(wino_v *out, size_t os, const wino_v *m, size_t is) {
  wino_v m0 = m[0], m1 = m[is], m2 = m[2 * is], m3 = m[3 * is], m4 = m[4 * is], m5 = m[5 * is];
  wino_v s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
  out[0] = m0 + s12 + s34;
  out[os] = d12 + 2.0f * d34;
  out[2 * os] = s12 + 4.0f * s34 + m5;
}

/* e [36, F] = G' e G'^T of the 4x4 output gradients at (oy0, ox0) of one
 * image dy [OH, OW, F], zeros past its edge. */
CNN_INLINE void tile_dy_body(float *restrict e, const float *restrict dy, int OH, int OW, int F,
                             int oy0, int ox0) {
  for (int f0 = 0; f0 < F; f0 += WV) {
    int fb = F - f0;
    wino_v d[4][4], t[6][4];
    tile_gather(&d[0][0], 4, dy, OH, OW, F, oy0, ox0, f0);
    for (int j = 0; j < 4; j++) gp6(&t[0][j], 4, &d[0][j], 4);
    for (int i = 0; i < 6; i++) {
      wino_v o[6];
      gp6(o, 1, t[i], 1);
      for (int s = 0; s < 6; s++) wino_store(e + (size_t)(6 * i + s) * F + f0, &o[s], fb);
    }
  }
}

CNN_ISA_CLONES(tile_dy,
               (float *restrict e, const float *restrict dy, int OH, int OW, int F, int oy0,
                int ox0),
               (e, dy, OH, OW, F, oy0, ox0))

/* Row c of dw [3, 3, C, F] from the summed products m [36, C, F]. */
CNN_INLINE void dw_out_body(float *restrict dw, const float *restrict m, int C, int F, int c) {
  size_t cf = (size_t)C * F;
  for (int f0 = 0; f0 < F; f0 += WV) {
    int fb = F - f0;
    wino_v p[6][6], t[3][6];
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 6; j++)
        wino_load(&p[i][j], m + (6 * i + j) * cf + (size_t)c * F + f0, fb);
    for (int j = 0; j < 6; j++) ap3(&t[0][j], 6, &p[0][j], 6);
    for (int i = 0; i < 3; i++) {
      wino_v o[3];
      ap3(o, 1, t[i], 1);
      for (int j = 0; j < 3; j++) wino_store(dw + (3 * i + j) * cf + (size_t)c * F + f0, &o[j], fb);
    }
  }
}

CNN_ISA_CLONES(dw_out, (float *restrict dw, const float *restrict m, int C, int F, int c),
               (dw, m, C, F, c))

#define DW_CHUNK 16 /* tiles per task of the transforms */

typedef struct wino_dw_job {
  const cnn_wino_geom *g;
  const float *x, *dy;
  float *dw;
  float *m, *v, *e; /* m [36, C, F]; v [tiles, 36, C], e [tiles, 36, F] */
  int th, tw, tiles;
  const cnn_threads *pool;
  cnn_isa isa;
} wino_dw_job;

/* The transforms of tiles DW_CHUNK * task onwards. */
static void dw_tiles_task(void *ctx, int task, int thread) {
  (void)thread;
  const wino_dw_job *j = ctx;
  const cnn_wino_geom *g = j->g;
  int per_img = j->th * j->tw, t0 = task * DW_CHUNK;
  int t1 = j->tiles - t0 < DW_CHUNK ? j->tiles : t0 + DW_CHUNK;
  size_t in = (size_t)g->H * g->W * g->C, out = (size_t)g->OH * g->OW * g->F;
  for (int t = t0; t < t1; t++) {
    int img = t / per_img, r = t % per_img, oy0 = r / j->tw * 4, ox0 = r % j->tw * 4;
    tile_in_isa(j->isa, j->v + (size_t)t * PT * g->C, j->x + img * in, g->H, g->W, g->C,
                oy0 - g->pad_top, ox0 - g->pad_left);
    tile_dy_isa(j->isa, j->e + (size_t)t * PT * g->F, j->dy + img * out, g->OH, g->OW, g->F, oy0,
                ox0);
  }
}

/* Point xi's product over every tile of the batch, on the task's thread:
 * m[xi] [C, F] = v[:, xi]^T @ e[:, xi]. */
static void dw_product_task(void *ctx, int xi, int thread) {
  (void)thread;
  const wino_dw_job *j = ctx;
  const cnn_wino_geom *g = j->g;
  cnn_gemm_bias_serial(j->pool, 1, 0, g->C, g->F, j->tiles, 1.0f, j->v + (size_t)xi * g->C,
                       PT * g->C, j->e + (size_t)xi * g->F, PT * g->F, NULL, 0,
                       j->m + (size_t)xi * g->C * g->F, g->F);
}

static void dw_out_task(void *ctx, int c, int thread) {
  (void)thread;
  const wino_dw_job *j = ctx;
  dw_out_isa(j->isa, j->dw, j->m, j->g->C, j->g->F, c);
}

void cnn_wino_dw(cnn_threads *pool, const cnn_wino_geom *g, const float *x, const float *dy,
                 float *dw, float *work, int n) {
  wino_dw_job j = {g,
                   x,
                   dy,
                   dw,
                   work,
                   NULL,
                   NULL,
                   tiles_of(g->OH),
                   tiles_of(g->OW),
                   0,
                   pool,
                   cnn_threads_isa(pool)};
  j.tiles = n * j.th * j.tw;
  j.v = work + cnn_wino_kernel_floats(g->C, g->F);
  j.e = j.v + (size_t)j.tiles * PT * g->C;
  /* Each phase writes what the next reads, in parts fixed by the shape, and
   * every product runs on one thread: the same bits for any pool. */
  cnn_threads_run(pool, dw_tiles_task, &j, (j.tiles + DW_CHUNK - 1) / DW_CHUNK);
  cnn_threads_run(pool, dw_product_task, &j, PT);
  cnn_threads_run(pool, dw_out_task, &j, g->C);
}
