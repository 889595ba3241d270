/*
 * test_winograd.c - the Winograd F(4x4, 3x3) convolution and F(3x3, 4x4)
 * weight gradient (winograd.h) and the conv2d layer's use of them, against
 * direct convolution:
 *   - cnn_wino_kernel + cnn_wino_conv and cnn_wino_dw on odd shapes (1 to 70
 *     channels, so whole and partial 16-channel vectors in the tile
 *     transforms and one and two 64-channel passes in the kernel's, 1x1 to
 *     13x11 images, both paddings, with and without bias and ReLU) against
 *     the naive twin (twins.c): forward, the input gradient (the turned
 *     kernel) and the weight gradient;
 *   - the layer with the parts its rule chose against the same layer with
 *     them cleared (im2col + GEMM): y, dx and dw within the tolerance, db
 *     (and any part left to im2col) bit for bit;
 *   - results bit for bit the same with no pool and pools of 1, 2 and 3
 *     threads (many chunks of tiles, a partial last one), and between the
 *     avx2 and avx512 kernels; each instruction set this CPU runs within the
 *     tolerance (baseline rounds its products differently);
 *   - the rule: which of the notebook's convolutions take which part;
 *   - a pool in bf16 keeps im2col.
 * Tolerance: |winograd - twin| <= 5e-5 * scale per value, scale being the
 * sum of |x w| (and |b|) of that output, or of |x dy| for the weight
 * gradient (twins.h). The transforms' larger
 * coefficients (up to 5 in B, 8 in A) magnify float rounding about tenfold
 * beside direct convolution's 1e-5 (test_twins.c); a wrong tile, index or
 * coefficient misses by about the scale itself. The worst ratio of
 * difference to tolerance is printed.
 */
#include <stdlib.h>

#include "check.h"
#include "cnn.h"
#include "gemm.h"
#include "layer.h"
#include "twins.h"
#include "winograd.h"

#define WTOL 5e-5

static double worst[3]; /* forward, dx, dw: largest |difference| / tolerance */

static float *floats(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static double *doubles(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static int near_twin(const char *what, const char *where, int kind, const float *e, const double *r,
                     const double *scale, size_t n) {
  long bad = 0;
  for (size_t i = 0; i < n; i++) {
    double tol = WTOL * scale[i] + 1e-30, d = fabs(e[i] - r[i]);
    if (!(d <= tol)) {
      if (bad++ < 3)
        fprintf(stderr, "%s: %s [%zu]: %.9g, twin %.9g (tolerance %.3g)\n", where, what, i, e[i],
                r[i], tol);
    } else if (d / tol > worst[kind]) {
      worst[kind] = d / tol;
    }
  }
  return CHECK(bad == 0);
}

/* ---- the functions on their own --------------------------------------------- */

typedef struct fcase {
  int n, h, w, c, f, same, bias, relu;
} fcase;

/* y, dx and dw of one case on `pool` (caller frees them), checked against
 * the twin. */
static void func_case(cnn_threads *pool, const fcase *k, float **y_out, float **dx_out,
                      float **dw_out) {
  twin_geom g = {k->n, k->h, k->w, k->c, 3, 3, 1, 1, k->same, 0, 0, 0, 0};
  *y_out = *dx_out = *dw_out = NULL;
  if (!CHECK(twin_geom_init(&g))) return;
  char where[160];
  snprintf(where, sizeof where, "x[%d,%d,%d,%d] %s filters %d%s%s, %d threads, %s", k->n, k->h,
           k->w, k->c, k->same ? "same" : "valid", k->f, k->bias ? "" : " no bias",
           k->relu ? " relu" : "", cnn_threads_size(pool), cnn_isa_name(cnn_threads_isa(pool)));
  size_t nx = (size_t)k->n * k->h * k->w * k->c, ny = (size_t)k->n * g.oh * g.ow * k->f;
  size_t nw = (size_t)9 * k->c * k->f;
  cnn_wino_geom gf = {k->h, k->w, k->c, g.oh, g.ow, k->f, g.pad_top, g.pad_left};
  cnn_wino_geom gb = {g.oh, g.ow, k->f, k->h, k->w, k->c, 2 - g.pad_top, 2 - g.pad_left};
  float *x = floats(nx), *w = floats(nw), *b = floats((size_t)k->f), *dy = floats(ny);
  float *u = floats(cnn_wino_kernel_floats(k->c, k->f));
  size_t per = cnn_wino_work_floats(&gf);
  if (cnn_wino_work_floats(&gb) > per) per = cnn_wino_work_floats(&gb);
  float *work = floats(cnn_wino_kernel_floats(k->c, k->f) + k->n * per);
  float *y = floats(ny), *dx = floats(nx), *dw = floats(nw);
  double *ry = doubles(ny), *rys = doubles(ny), *rdx = doubles(nx), *rdxs = doubles(nx);
  double *rdw = doubles(nw), *rdws = doubles(nw);
  check_fill(x, nx), check_fill(w, nw), check_fill(b, (size_t)k->f), check_fill(dy, ny);
  for (size_t i = 0; i < ny; i++) y[i] = NAN; /* every value must be written */
  for (size_t i = 0; i < nx; i++) dx[i] = NAN;
  for (size_t i = 0; i < nw; i++) dw[i] = NAN;
  cnn_wino_kernel(pool, u, w, k->c, k->f, 0);
  cnn_wino_conv(pool, &gf, x, u, k->bias ? b : NULL, k->relu, y, work, k->n);
  twin_conv2d_forward(ry, rys, x, w, k->bias ? b : NULL, k->relu, &g, k->f);
  near_twin("forward", where, 0, y, ry, rys, ny);
  cnn_wino_kernel(pool, u, w, k->c, k->f, 1);
  cnn_wino_conv(pool, &gb, dy, u, NULL, 0, dx, work, k->n);
  twin_conv2d_backward(rdx, rdxs, rdw, rdws, NULL, NULL, dy, x, w, &g, k->f);
  near_twin("dx", where, 1, dx, rdx, rdxs, nx);
  size_t nwork = cnn_wino_kernel_floats(k->c, k->f) + k->n * per;
  for (size_t i = 0; i < nwork; i++) work[i] = NAN; /* written before read */
  cnn_wino_dw(pool, &gf, x, dy, dw, work, k->n);
  near_twin("dw", where, 2, dw, rdw, rdws, nw);
  *y_out = y, *dx_out = dx, *dw_out = dw;
  free(x), free(w), free(b), free(dy), free(u), free(work);
  free(ry), free(rys), free(rdx), free(rdxs), free(rdw), free(rdws);
}

static const fcase fcases[] = {
    {2, 7, 5, 3, 5, 0, 1, 0},     {2, 7, 5, 3, 5, 1, 0, 1},    {1, 1, 1, 2, 3, 1, 1, 0},
    {3, 4, 6, 1, 1, 0, 1, 1},     {1, 13, 11, 70, 9, 1, 1, 0}, {2, 9, 10, 17, 66, 0, 0, 0},
    {5, 13, 13, 32, 64, 0, 1, 1}, {40, 8, 9, 4, 6, 1, 1, 0}, /* 40 images: many chunks */
};
#define NFCASES (int)(sizeof fcases / sizeof fcases[0])

/* ---- the layer ----------------------------------------------------------------- */

typedef struct lres {
  float *y, *dx, *dw, *db;
} lres;

static void lres_free(lres *r) { free(r->y), free(r->dx), free(r->dw), free(r->db); }

/* A 3x3 stride-1 conv2d layer with bias, set up by the engine (its rule
 * sets l->winograd); s must outlive l. */
static int conv_setup(cnn_layer *l, cnn_layer_spec *s, int h, int w, int c, int f, int same) {
  memset(s, 0, sizeof *s);
  s->type = CNN_LAYER_CONV2D, s->filters = f, s->kh = s->kw = 3, s->sh = s->sw = 1;
  s->padding = same ? CNN_PAD_SAME : CNN_PAD_VALID, s->use_bias = 1;
  memset(l, 0, sizeof *l);
  l->ops = &cnn_conv2d_ops, l->spec = s, l->in = (cnn_shape){h, w, c};
  char err[CNN_ERRMAX];
  return cnn_conv2d_ops.setup(l, err);
}

/* Training forward then backward of a 3x3 stride-1 layer on `pool` with the
 * parts its rule chose, or with none (direct). */
static lres layer_run(cnn_threads *pool, int n, int h, int w, int c, int f, int same, int direct,
                      int *parts) {
  lres r = {NULL, NULL, NULL, NULL};
  cnn_layer_spec s;
  cnn_layer l;
  if (!CHECK(conv_setup(&l, &s, h, w, c, f, same) == CNN_OK)) return r;
  *parts = l.winograd;
  if (direct) l.winograd = 0;
  size_t nx = (size_t)n * h * w * c, ny = (size_t)n * l.out.h * l.out.w * f;
  check_seed(7); /* the same operands for every run of this shape */
  float *x = floats(nx), *dy = floats(ny), *work = floats(n * l.work_per_sample + l.work_fixed);
  float *keep = floats(n * l.keep_per_sample);
  l.w = floats(l.nweights), l.b = floats((size_t)f);
  check_fill(x, nx), check_fill(dy, ny), check_fill(l.w, l.nweights), check_fill(l.b, (size_t)f);
  r.y = floats(ny), r.dx = floats(nx), r.dw = floats(l.nweights), r.db = floats((size_t)f);
  l.dw = r.dw, l.db = r.db, l.keep = keep;
  cnn_run run = {pool, work, 1, 0, NULL, 1, 0, NULL, NULL, NULL};
  cnn_conv2d_ops.forward(&l, &run, r.y, x, n);
  cnn_conv2d_ops.backward(&l, &run, r.dx, dy, x, n);
  free(x), free(dy), free(work), free(keep), free(l.w), free(l.b);
  return r;
}

static int same_bits(const float *a, const float *b, size_t n) {
  return a && b && memcmp(a, b, n * sizeof *a) == 0;
}

#define WINO_ALL (CNN_WINO_FORWARD | CNN_WINO_DX | CNN_WINO_DW)

typedef struct lcase {
  int n, h, w, c, f, same;
  int parts; /* what the rule must choose */
} lcase;

static const lcase lcases[] = {
    {9, 13, 13, 32, 64, 0, WINO_ALL}, /* the notebook's second */
    {3, 17, 19, 32, 33, 1, WINO_ALL}, /* all three, odd sizes */
    {2, 30, 30, 32, 32, 0, WINO_ALL},
    {5, 6, 6, 40, 32, 0, CNN_WINO_FORWARD | CNN_WINO_DW}, /* dx: 16 outputs in 4 tiles, too few */
    {4, 8, 8, 32, 48, 0, CNN_WINO_DX}, /* forward and dw: 6x6 outputs in 4 tiles */
};
#define NLCASES (int)(sizeof lcases / sizeof lcases[0])

/* The layer with its Winograd parts against itself without them (both
 * within the tolerance of the twin's scale), on `pool`; returns the results
 * for comparisons between pools. */
static lres layer_case(cnn_threads *pool, const lcase *k) {
  int parts = 0, ignored;
  lres wino = layer_run(pool, k->n, k->h, k->w, k->c, k->f, k->same, 0, &parts);
  lres dir = layer_run(pool, k->n, k->h, k->w, k->c, k->f, k->same, 1, &ignored);
  CHECK_EQ_INT(parts, k->parts);
  twin_geom g = {k->n, k->h, k->w, k->c, 3, 3, 1, 1, k->same, 0, 0, 0, 0};
  twin_geom_init(&g);
  size_t nx = (size_t)k->n * k->h * k->w * k->c, ny = (size_t)k->n * g.oh * g.ow * k->f;
  size_t nw = (size_t)9 * k->c * k->f;
  char where[160];
  snprintf(where, sizeof where, "layer x[%d,%d,%d,%d] %s filters %d, %d threads, %s", k->n, k->h,
           k->w, k->c, k->same ? "same" : "valid", k->f, cnn_threads_size(pool),
           cnn_isa_name(cnn_threads_isa(pool)));
  if (CHECK(wino.y && dir.y)) {
    /* The twin's scales of these operands (layer_run's seed). */
    check_seed(7);
    float *x = floats(nx), *dy = floats(ny), *w = floats(nw), *b = floats((size_t)k->f);
    check_fill(x, nx), check_fill(dy, ny), check_fill(w, nw), check_fill(b, (size_t)k->f);
    double *ry = doubles(ny), *rys = doubles(ny), *rdx = doubles(nx), *rdxs = doubles(nx);
    double *rdw = doubles(nw), *rdws = doubles(nw);
    twin_conv2d_forward(ry, rys, x, w, b, 1, &g, k->f);
    twin_conv2d_backward(rdx, rdxs, rdw, rdws, NULL, NULL, dy, x, w, &g, k->f);
    /* Against the direct path's results, within the tolerance of the scale. */
    double *dy_ = doubles(ny), *dx_ = doubles(nx), *dw_ = doubles(nw);
    for (size_t i = 0; i < ny; i++) dy_[i] = dir.y[i];
    for (size_t i = 0; i < nx; i++) dx_[i] = dir.dx[i];
    for (size_t i = 0; i < nw; i++) dw_[i] = dir.dw[i];
    near_twin("layer forward vs im2col", where, 0, wino.y, dy_, rys, ny);
    near_twin("layer dx vs im2col", where, 1, wino.dx, dx_, rdxs, nx);
    near_twin("layer dw vs im2col", where, 2, wino.dw, dw_, rdws, nw);
    near_twin("layer forward vs twin", where, 0, wino.y, ry, rys, ny);
    near_twin("layer dx vs twin", where, 1, wino.dx, rdx, rdxs, nx);
    near_twin("layer dw vs twin", where, 2, wino.dw, rdw, rdws, nw);
    if (!(parts & CNN_WINO_FORWARD)) CHECK(same_bits(wino.y, dir.y, ny));
    if (!(parts & CNN_WINO_DX)) CHECK(same_bits(wino.dx, dir.dx, nx));
    if (!(parts & CNN_WINO_DW)) CHECK(same_bits(wino.dw, dir.dw, nw));
    CHECK(same_bits(wino.db, dir.db, (size_t)k->f));
    free(x), free(dy), free(w), free(b), free(ry), free(rys), free(rdx), free(rdxs), free(rdw);
    free(rdws), free(dy_), free(dx_), free(dw_);
  }
  lres_free(&dir);
  return wino;
}

/* ---- the rule, bf16 ------------------------------------------------------------ */

static int rule_of(int h, int w, int c, int f, int same) {
  cnn_layer_spec s;
  cnn_layer l;
  return conv_setup(&l, &s, h, w, c, f, same) == CNN_OK ? l.winograd : -1;
}

static void test_rule(void) {
  CHECK_EQ_INT(rule_of(28, 28, 1, 32, 0), 0);          /* the notebook's first */
  CHECK_EQ_INT(rule_of(13, 13, 32, 64, 0), WINO_ALL);  /* second */
  CHECK_EQ_INT(rule_of(5, 5, 64, 64, 0), 0);           /* third: a 3x3 output */
  CHECK_EQ_INT(rule_of(13, 13, 16, 64, 0), 0);         /* too few channels */
  CHECK_EQ_INT(rule_of(8, 8, 32, 64, 0), CNN_WINO_DX); /* 6x6 in 4 tiles; dx: 8x8 in 4 */
  CHECK_EQ_INT(rule_of(28, 28, 32, 32, 1), WINO_ALL);
}

/* A pool in bf16 (inference in mixed precision) keeps im2col: the same bits
 * as the layer with Winograd cleared. */
static void test_bf16(void) {
  cnn_threads *pool = check_pool(2, cnn_threads_isa(NULL));
  if (!pool) return;
  cnn_threads_set_bf16(pool, 1);
  int parts;
  lres a = layer_run(pool, 4, 13, 13, 32, 64, 0, 0, &parts);
  lres b = layer_run(pool, 4, 13, 13, 32, 64, 0, 1, &parts);
  CHECK(same_bits(a.y, b.y, (size_t)4 * 11 * 11 * 64));
  lres_free(&a), lres_free(&b);
  cnn_threads_free(pool);
}

/* ---- every pool and instruction set ------------------------------------------- */

typedef struct ref {
  float *y[NFCASES], *dx[NFCASES], *dw[NFCASES];
  lres l[NLCASES];
} ref;

static void ref_free(ref *r) {
  for (int i = 0; i < NFCASES; i++) free(r->y[i]), free(r->dx[i]), free(r->dw[i]);
  for (int i = 0; i < NLCASES; i++) lres_free(&r->l[i]);
}

static void run_all(cnn_threads *pool, ref *out) {
  for (int i = 0; i < NFCASES; i++) {
    check_seed(100 + i);
    func_case(pool, &fcases[i], &out->y[i], &out->dx[i], &out->dw[i]);
  }
  for (int i = 0; i < NLCASES; i++) out->l[i] = layer_case(pool, &lcases[i]);
}

/* Whether two runs gave the same bits everywhere. */
static int ref_same(const ref *a, const ref *b) {
  int ok = 1;
  for (int i = 0; i < NFCASES; i++) {
    const fcase *k = &fcases[i];
    twin_geom g = {k->n, k->h, k->w, k->c, 3, 3, 1, 1, k->same, 0, 0, 0, 0};
    twin_geom_init(&g);
    ok &= same_bits(a->y[i], b->y[i], (size_t)k->n * g.oh * g.ow * k->f);
    ok &= same_bits(a->dx[i], b->dx[i], (size_t)k->n * k->h * k->w * k->c);
    ok &= same_bits(a->dw[i], b->dw[i], (size_t)9 * k->c * k->f);
  }
  for (int i = 0; i < NLCASES; i++) {
    const lcase *k = &lcases[i];
    twin_geom g = {k->n, k->h, k->w, k->c, 3, 3, 1, 1, k->same, 0, 0, 0, 0};
    twin_geom_init(&g);
    ok &= same_bits(a->l[i].y, b->l[i].y, (size_t)k->n * g.oh * g.ow * k->f);
    ok &= same_bits(a->l[i].dx, b->l[i].dx, (size_t)k->n * k->h * k->w * k->c);
    ok &= same_bits(a->l[i].dw, b->l[i].dw, (size_t)9 * k->c * k->f);
  }
  return ok;
}

int main(void) {
  test_rule();
  test_bf16();
  cnn_isa dflt = cnn_threads_isa(NULL);
  ref first;
  run_all(NULL, &first);
  for (int threads = 1; threads <= 3; threads++) {
    cnn_threads *pool = check_pool(threads, dflt);
    if (!pool) continue;
    ref r;
    run_all(pool, &r);
    if (!CHECK(ref_same(&first, &r))) fprintf(stderr, "%d threads: results differ\n", threads);
    ref_free(&r);
    cnn_threads_free(pool);
  }
  /* Each other level: avx2 and avx512 (amx runs avx512's) give the same bits. */
  for (int i = 0; i < CNN_ISA_COUNT; i++) {
    cnn_isa isa = (cnn_isa)i;
    if (isa == dflt || isa == CNN_ISA_AMX || !check_isa(isa)) continue;
    cnn_threads *pool = check_pool(2, isa);
    if (!pool) continue;
    printf("isa %s: testing\n", cnn_isa_name(isa));
    ref r;
    run_all(pool, &r);
    if (isa != CNN_ISA_BASELINE && dflt != CNN_ISA_BASELINE)
      if (!CHECK(ref_same(&first, &r)))
        fprintf(stderr, "isa %s: results differ from %s's\n", cnn_isa_name(isa),
                cnn_isa_name(dflt));
    ref_free(&r);
    cnn_threads_free(pool);
  }
  ref_free(&first);
  printf("forward: worst %.3f of the tolerance; dx: worst %.3f; dw: worst %.3f\n", worst[0],
         worst[1], worst[2]);
  return check_done();
}
