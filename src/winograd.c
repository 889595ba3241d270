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
 * 256 KB a chunk). The loops run along channels, compiled for each
 * instruction set (CNN_ISA_CLONES); without contraction into FMAs (ISO C
 * rounds every operation) they round alike at every vector width.
 */
#include "winograd.h"

#include <string.h>

#include "gemm.h"

#define CB 64                    /* channels per pass of a transform (its stack buffers) */
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
                            size_t sj, int flip) {
  size_t rs = (size_t)R * S;
  for (int i = 0; i < R; i++)
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
                int flip),
               (u, w, R, S, si, sj, flip))

void cnn_wino_kernel(cnn_isa isa, float *u, const float *w, int C, int F, int flip) {
  /* No flip: (i, j) = (c, f) at c * F + f. Flip: (i, j) = (f, c), same place. */
  if (flip)
    kernel_isa(isa, u, w, F, C, 1, (size_t)F, 1);
  else
    kernel_isa(isa, u, w, C, F, (size_t)F, 1, 0);
}

/* ---- the tile transforms ------------------------------------------------------ */

/* B^T on 6 rows of cb values, `is` apart in `in` and `os` apart in out. */
CNN_INLINE void bt6(float *restrict out, size_t os, const float *restrict in, size_t is, int cb) {
  for (int c = 0; c < cb; c++) {
    float d0 = in[c], d1 = in[is + c], d2 = in[2 * is + c], d3 = in[3 * is + c],
          d4 = in[4 * is + c], d5 = in[5 * is + c];
    out[c] = 4 * d0 - 5 * d2 + d4;
    out[os + c] = -4 * (d1 + d2) + d3 + d4;
    out[2 * os + c] = 4 * (d1 - d2) - d3 + d4;
    out[3 * os + c] = 2 * (d3 - d1) - d2 + d4;
    out[4 * os + c] = 2 * (d1 - d3) - d2 + d4;
    out[5 * os + c] = 4 * d1 - 5 * d3 + d5;
  }
}

/* A^T on 6 rows giving 4, plus bias (NULL: none). */
CNN_INLINE void at6(float *restrict out, size_t os, const float *restrict in, size_t is, int cb,
                    const float *restrict bias) {
  for (int c = 0; c < cb; c++) {
    float m0 = in[c], m1 = in[is + c], m2 = in[2 * is + c], m3 = in[3 * is + c],
          m4 = in[4 * is + c], m5 = in[5 * is + c], b = bias ? bias[c] : 0.0f;
    float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
    out[c] = m0 + s12 + s34 + b;
    out[os + c] = d12 + 2 * d34 + b;
    out[2 * os + c] = s12 + 4 * s34 + b;
    out[3 * os + c] = d12 + 8 * d34 + m5 + b;
  }
}

/* v [36, C] of the 6x6 tile at (iy0, ix0) of one image x [H, W, C]. */
CNN_INLINE void tile_in_body(float *restrict v, const float *restrict x, int H, int W, int C,
                             int iy0, int ix0) {
  for (int c0 = 0; c0 < C; c0 += CB) {
    int cb = C - c0 < CB ? C - c0 : CB;
    float d[6][6][CB], t[6][6][CB];
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 6; j++) {
        int iy = iy0 + i, ix = ix0 + j;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
          for (int c = 0; c < cb; c++) d[i][j][c] = 0;
        else
          for (int c = 0; c < cb; c++) d[i][j][c] = x[((size_t)iy * W + ix) * C + c0 + c];
      }
    for (int j = 0; j < 6; j++) bt6(&t[0][j][0], 6 * CB, &d[0][j][0], 6 * CB, cb);
    for (int i = 0; i < 6; i++) bt6(v + (size_t)6 * i * C + c0, (size_t)C, &t[i][0][0], CB, cb);
  }
}

CNN_ISA_CLONES(tile_in,
               (float *restrict v, const float *restrict x, int H, int W, int C, int iy0, int ix0),
               (v, x, H, W, C, iy0, ix0))

/* The outputs of the tile whose first is (oy0, ox0) in y [OH, OW, F] from
 * its products m [36, F]. */
CNN_INLINE void tile_out_body(float *restrict y, int OH, int OW, int F, int oy0, int ox0,
                              const float *restrict m, const float *restrict bias, int relu) {
  for (int f0 = 0; f0 < F; f0 += CB) {
    int fb = F - f0 < CB ? F - f0 : CB;
    float t[4][6][CB], o[4][4][CB];
    for (int j = 0; j < 6; j++)
      at6(&t[0][j][0], 6 * CB, m + (size_t)j * F + f0, 6 * (size_t)F, fb, NULL);
    for (int i = 0; i < 4; i++) at6(&o[i][0][0], CB, &t[i][0][0], CB, fb, bias ? bias + f0 : NULL);
    for (int i = 0; i < 4 && oy0 + i < OH; i++)
      for (int j = 0; j < 4 && ox0 + j < OW; j++) {
        float *dst = y + ((size_t)(oy0 + i) * OW + ox0 + j) * F + f0;
        if (relu)
          for (int f = 0; f < fb; f++) dst[f] = o[i][j][f] > 0 ? o[i][j][f] : 0.0f;
        else
          memcpy(dst, o[i][j], fb * sizeof *dst);
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
