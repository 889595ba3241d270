/*
 * test_twins.c - every fast kernel of the engine against its naive twin
 * (twins.c), through the engine's own interfaces: the layer interface
 * (cnn_conv2d_ops and the others, run as the network runs them: training and
 * inference forward, the ReLU fused into the product's writeback, backward
 * after a training forward), the activation kernels, the optimizer step, and
 * a whole network. Odd shapes (7x5 images, 1, 3 and 10 channels, batch 1 and
 * 5) reach the edge code; larger ones reach the chunked convolution (images
 * in chunks, one per task), the 2x2 max pooling over 8-channel vectors and
 * the threaded products; batchnorm over 1 to 32 channels (its statistics in
 * blocks of 8), batches of 1 to 32. run_all() makes every comparison with the thread
 * pool it is given; main() gives it none, then pools of 1, 2 and 3 threads.
 *
 * Tolerances (float engine against double twin), per value:
 *   sums (conv2d, dense, average pooling, the gradients of all three and of
 *   max pooling): |engine - twin| <= 1e-5 * scale, scale being the same sum
 *   of absolute terms (a float sum of K terms loses about sqrt(K) * 2^-24 of
 *   it; a wrong index or term misses by about the scale itself);
 *   max pooling forward and dropout: exact (the values are copied or scaled
 *   once in float), and dropout's mask is the engine's draw, value for value;
 *   activations: 1e-5 * (|twin| + 0.1 * s), s = 1 forward, |dy| backward
 *   (libm's float functions are good to a few ulp; the floor covers values
 *   that cross zero, like swish' near -1.28);
 *   optimizers over 10 steps: 1e-5 * the path (sum of |step| of the twin)
 *   + 2^-24 * |w| per step (the rounding of w += step in float).
 * The worst ratio of difference to tolerance of each kind is printed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cnn.h"
#include "expr.h"
#include "layer.h"
#include "rng.h"
#include "twins.h"

#define RTOL 1e-5

/* ---- data ------------------------------------------------------------------ */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static int rnd_int(int n) { return (int)(rnd() % (uint64_t)n); }
/* Uniform in [-1, 1). */
static float rnd_float(void) { return (float)((rnd() >> 40) & 0xffffff) / 8388608.0f - 1.0f; }

static void fill(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = rnd_float();
}
static void fill_nan(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = NAN;
}
static float *floats(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }
static double *doubles(size_t n) { return malloc((n ? n : 1) * sizeof(double)); }

/* ---- comparison -------------------------------------------------------------- */

static char where[256];     /* the case being compared, for messages */
static char pool_label[64]; /* the pool run_all was given */

typedef struct tally {
  const char *what;
  double worst; /* largest |engine - twin| / tolerance */
  long values;
} tally;
static tally tallies[64];
static int ntallies;

static tally *tally_of(const char *what) {
  for (int i = 0; i < ntallies; i++)
    if (!strcmp(tallies[i].what, what)) return &tallies[i];
  if (ntallies == 64) return &tallies[63];
  tallies[ntallies].what = what;
  return &tallies[ntallies++];
}

/* Every engine value within rtol * scale + atol of the twin (scale NULL: the
 * twin's magnitude); a NaN matches only a NaN. One check per call. */
static int near_all(const char *what, const float *eng, const double *twin, const double *scale,
                    size_t n, double rtol, double atol) {
  tally *t = tally_of(what);
  long bad = 0;
  for (size_t i = 0; i < n; i++) {
    double e = eng[i], r = twin[i];
    double tol = rtol * (scale ? scale[i] : fabs(r)) + atol, d = fabs(e - r);
    int ok = isnan(e) || isnan(r) ? isnan(e) && isnan(r) : d <= tol;
    if (ok && tol > 0 && d / tol > t->worst) t->worst = d / tol;
    if (!ok && bad++ < 3)
      fprintf(stderr, "%s: %s [%zu]: engine %.9g, twin %.9g, difference %.3g > %.3g\n", where, what,
              i, e, r, d, tol);
  }
  t->values += (long)n;
  if (bad > 3) fprintf(stderr, "%s: %s: %ld of %zu values differ\n", where, what, bad, n);
  return CHECK(bad == 0);
}

/* ---- a layer on its own, with the buffers the network would give it -------- */

typedef struct rig {
  cnn_layer l;
  float *work, *keep;
  unsigned char *aux;
} rig;

static void rig_close(rig *r) {
  free(r->l.w), free(r->l.b), free(r->l.dw), free(r->l.db), free(r->l.state);
  free(r->work), free(r->keep), free(r->aux);
  memset(r, 0, sizeof *r);
}

static int rig_open(rig *r, const cnn_layer_ops *ops, const cnn_layer_spec *s, cnn_shape in,
                    int n) {
  char err[CNN_ERRMAX];
  memset(r, 0, sizeof *r);
  r->l.ops = ops, r->l.spec = s, r->l.in = in;
  if (!CHECK(ops->setup(&r->l, err) == CNN_OK)) {
    fprintf(stderr, "%s: %s\n", where, err);
    return 0;
  }
  cnn_layer *l = &r->l;
  l->w = floats(l->nweights), l->dw = floats(l->nweights);
  l->b = l->nbias ? floats(l->nbias) : NULL, l->db = l->nbias ? floats(l->nbias) : NULL;
  l->state = l->nstate ? floats(l->nstate) : NULL;
  r->work = floats(n * l->work_per_sample + l->work_fixed);
  r->keep = floats(n * l->keep_per_sample + l->keep_fixed);
  r->aux = malloc(n * l->aux_per_sample + 1);
  l->aux = l->aux_per_sample ? r->aux : NULL;
  if (!CHECK(l->w && l->dw && (!l->nbias || (l->b && l->db)) && (!l->nstate || l->state) &&
             r->work && r->keep && r->aux)) {
    rig_close(r);
    return 0;
  }
  fill(l->w, l->nweights);
  if (l->b) fill(l->b, l->nbias);
  return 1;
}

/* Runs forward as the network does: a training forward keeps what backward
 * needs in l->keep, which inference does not have. */
static void rig_forward(rig *r, cnn_threads *pool, float *y, const float *x, int n, int training,
                        int relu) {
  cnn_run run = {pool, r->work, training, 0, NULL, relu, 0, NULL, NULL, NULL};
  r->l.keep = training && (r->l.keep_per_sample || r->l.keep_fixed) ? r->keep : NULL;
  r->l.ops->forward(&r->l, &run, y, x, n);
}

static void rig_backward(rig *r, cnn_threads *pool, float *dx, const float *dy, const float *x,
                         int n) {
  cnn_run run = {pool, r->work, 1, 0, NULL, 0, 0, NULL, NULL, NULL};
  r->l.ops->backward(&r->l, &run, dx, dy, x, n);
}

/* ---- conv2d ------------------------------------------------------------------ */

static void conv_case(cnn_threads *pool, int n, int h, int w, int c, int f, int kh, int kw, int sh,
                      int sw, int same, int bias) {
  twin_geom g = {n, h, w, c, kh, kw, sh, sw, same, 0, 0, 0, 0};
  if (!twin_geom_init(&g)) return; /* the kernel does not fit: setup's error, tested elsewhere */
  snprintf(where, sizeof where,
           "conv2d x[%d,%d,%d,%d] kernel %dx%d strides %d,%d %s filters %d%s, %s", n, h, w, c, kh,
           kw, sh, sw, same ? "same" : "valid", f, bias ? "" : " no bias", pool_label);
  cnn_layer_spec s = {0};
  s.type = CNN_LAYER_CONV2D, s.filters = f, s.kh = kh, s.kw = kw, s.sh = sh, s.sw = sw;
  s.padding = same ? CNN_PAD_SAME : CNN_PAD_VALID, s.use_bias = bias;
  rig r;
  if (!rig_open(&r, &cnn_conv2d_ops, &s, (cnn_shape){h, w, c}, n)) return;
  cnn_layer *l = &r.l;
  CHECK(l->out.h == g.oh && l->out.w == g.ow && l->out.c == f);
  CHECK(l->pad_top == g.pad_top && l->pad_left == g.pad_left);
  size_t nx = (size_t)n * h * w * c, ny = (size_t)n * g.oh * g.ow * f, nw = l->nweights;
  float *x = floats(nx), *y = floats(ny), *dy = floats(ny), *dx = floats(nx);
  double *ry = doubles(ny), *rys = doubles(ny), *rdx = doubles(nx), *rdxs = doubles(nx);
  double *rdw = doubles(nw), *rdws = doubles(nw), *rdb = doubles(f), *rdbs = doubles(f);
  if (!CHECK(x && y && dy && dx && ry && rys && rdx && rdxs && rdw && rdws && rdb && rdbs))
    goto done;
  fill(x, nx);
  /* Inference then training forward, plain and with the fused ReLU; the last
   * one (training) leaves the columns backward reads. */
  for (int training = 0; training < 2; training++)
    for (int relu = 0; relu < 2; relu++) {
      fill_nan(y, ny);
      rig_forward(&r, pool, y, x, n, training, relu);
      twin_conv2d_forward(ry, rys, x, l->w, l->b, relu, &g, f);
      near_all(relu ? "conv2d forward + relu" : "conv2d forward", y, ry, rys, ny, RTOL, 0);
    }
  fill(dy, ny);
  fill_nan(dx, nx), fill_nan(l->dw, nw);
  if (l->db) fill_nan(l->db, f);
  rig_backward(&r, pool, dx, dy, x, n);
  twin_conv2d_backward(rdx, rdxs, rdw, rdws, l->db ? rdb : NULL, rdbs, dy, x, l->w, &g, f);
  near_all("conv2d dx", dx, rdx, rdxs, nx, RTOL, 0);
  near_all("conv2d dw", l->dw, rdw, rdws, nw, RTOL, 0);
  if (l->db) near_all("conv2d db", l->db, rdb, rdbs, f, RTOL, 0);
  /* Without an input gradient (the first layer), the same dw. */
  fill_nan(l->dw, nw);
  rig_backward(&r, pool, NULL, dy, x, n);
  near_all("conv2d dw", l->dw, rdw, rdws, nw, RTOL, 0);
done:
  free(x), free(y), free(dy), free(dx);
  free(ry), free(rys), free(rdx), free(rdxs), free(rdw), free(rdws), free(rdb), free(rdbs);
  rig_close(&r);
}

static void test_conv2d(cnn_threads *pool) {
  static const int kernels[][2] = {{1, 1}, {3, 3}, {2, 3}, {5, 4}, {3, 1}, {1, 3}};
  static const int strides[][2] = {{1, 1}, {2, 2}, {3, 3}, {2, 1}};
  for (int k = 0; k < 6; k++)
    for (int s = 0; s < 4; s++)
      for (int same = 0; same < 2; same++) {
        int kh = kernels[k][0], kw = kernels[k][1], sh = strides[s][0], sw = strides[s][1];
        conv_case(pool, 5, 7, 5, 3, 10, kh, kw, sh, sw, same, 1);
        conv_case(pool, 1, 5, 7, 10, 3, kh, kw, sh, sw, same, (k + s) % 2);
        conv_case(pool, 5, 6, 6, 1, 4, kh, kw, sh, sw, same, 1); /* 3-float rows of im2col */
      }
  /* The chunked forward: images in chunks of 1 (a 33x31x10 image's columns
   * fill the chunk) and of 2 with one image left over, at every pool size. */
  conv_case(pool, 13, 33, 31, 10, 7, 3, 3, 1, 1, 1, 1);
  conv_case(pool, 25, 21, 21, 10, 5, 3, 3, 1, 1, 1, 0);
  /* The notebook's convolutions at batch 1: one product shared by the pool,
   * the columns built by bands of rows. */
  conv_case(pool, 1, 28, 28, 1, 32, 3, 3, 1, 1, 0, 1);
  conv_case(pool, 1, 13, 13, 32, 64, 3, 3, 1, 1, 0, 1);
  /* 1x1 stride 1 reads the input as its columns; a big one is threaded. */
  conv_case(pool, 9, 12, 11, 10, 33, 1, 1, 1, 1, 0, 1);
}

/* ---- pooling ----------------------------------------------------------------- */

/* kind: 0 random values, 1 few distinct values (ties), 2 random with NaNs */
static void pool_case(cnn_threads *pool, int max, int n, int h, int w, int c, int kh, int kw,
                      int sh, int sw, int same, int kind) {
  twin_geom g = {n, h, w, c, kh, kw, sh, sw, same, 0, 0, 0, 0};
  if (!twin_geom_init(&g)) return;
  snprintf(where, sizeof where, "%s x[%d,%d,%d,%d] size %dx%d strides %d,%d %s%s, %s",
           max ? "maxpool" : "avgpool", n, h, w, c, kh, kw, sh, sw, same ? "same" : "valid",
           kind == 1   ? " ties"
           : kind == 2 ? " NaN"
                       : "",
           pool_label);
  cnn_layer_spec s = {0};
  s.type = max ? CNN_LAYER_MAXPOOL : CNN_LAYER_AVGPOOL;
  s.kh = kh, s.kw = kw, s.sh = sh, s.sw = sw, s.padding = same ? CNN_PAD_SAME : CNN_PAD_VALID;
  rig r;
  if (!rig_open(&r, max ? &cnn_maxpool_ops : &cnn_avgpool_ops, &s, (cnn_shape){h, w, c}, n)) return;
  CHECK(r.l.out.h == g.oh && r.l.out.w == g.ow && r.l.out.c == c);
  size_t nx = (size_t)n * h * w * c, ny = (size_t)n * g.oh * g.ow * c;
  float *x = floats(nx), *ax = floats(nx), *y = floats(ny), *dy = floats(ny), *ady = floats(ny);
  float *dx = floats(nx);
  double *ry = doubles(ny), *rys = doubles(ny), *rdx = doubles(nx), *rdxs = doubles(nx);
  if (!CHECK(x && ax && y && dy && ady && dx && ry && rys && rdx && rdxs)) goto done;
  for (size_t i = 0; i < nx; i++) {
    x[i] = kind == 1 ? (float)(rnd_int(5) - 2) * 0.25f : rnd_float();
    if (kind == 2 && rnd_int(40) == 0) x[i] = NAN;
    ax[i] = fabsf(x[i]);
  }
  if (max) {
    twin_maxpool_forward(ry, NULL, x, &g);
  } else {
    twin_avgpool_forward(ry, x, &g);
    twin_avgpool_forward(rys, ax, &g);
  }
  for (int training = 0; training < 2; training++) {
    fill_nan(y, ny);
    rig_forward(&r, pool, y, x, n, training, 0);
    if (max)
      near_all("maxpool forward", y, ry, NULL, ny, 0, 0); /* exact */
    else
      near_all("avgpool forward", y, ry, rys, ny, RTOL, 0);
  }
  fill(dy, ny);
  for (size_t i = 0; i < ny; i++) ady[i] = fabsf(dy[i]);
  fill_nan(dx, nx);
  rig_backward(&r, pool, dx, dy, x, n);
  if (max) {
    twin_maxpool_backward(rdx, dy, x, &g);
    twin_maxpool_backward(rdxs, ady, x, &g);
  } else {
    twin_avgpool_backward(rdx, dy, &g);
    twin_avgpool_backward(rdxs, ady, &g);
  }
  near_all(max ? "maxpool dx" : "avgpool dx", dx, rdx, rdxs, nx, RTOL, 0);
done:
  free(x), free(ax), free(y), free(dy), free(ady), free(dx);
  free(ry), free(rys), free(rdx), free(rdxs);
  rig_close(&r);
}

static void test_pooling(cnn_threads *pool) {
  static const int shapes[][2] = {{7, 5}, {5, 7}, {6, 6}, {8, 8}};
  static const int channels[] = {3, 8, 10, 16}; /* scalar, vector, vector + tail, two vectors */
  static const int sizes[][2] = {{1, 1}, {2, 2}, {3, 3}, {2, 3}};
  static const int strides[][2] = {{1, 1}, {2, 2}, {3, 3}, {1, 2}};
  int turn = 0;
  for (int max = 0; max < 2; max++)
    for (int sh = 0; sh < 4; sh++)
      for (int ci = 0; ci < 4; ci++)
        for (int k = 0; k < 4; k++)
          for (int s = 0; s < 4; s++)
            for (int same = 0; same < 2; same++, turn++)
              pool_case(pool, max, turn % 2 ? 1 : 5, shapes[sh][0], shapes[sh][1], channels[ci],
                        sizes[k][0], sizes[k][1], strides[s][0], strides[s][1], same, turn % 3);
  /* The notebook's pooling (2x2 path, 32 and 64 channels) at batch 5 and 1. */
  for (int kind = 0; kind < 3; kind++) {
    pool_case(pool, 1, 5, 26, 26, 32, 2, 2, 2, 2, 0, kind);
    pool_case(pool, 1, 1, 11, 11, 64, 2, 2, 2, 2, 0, kind);
  }
}

/* ---- dense ------------------------------------------------------------------- */

static void dense_case(cnn_threads *pool, int n, cnn_shape in, int out, int bias) {
  int k = in.h * in.w * in.c;
  snprintf(where, sizeof where, "dense x[%d,%d,%d,%d] units %d%s, %s", n, in.h, in.w, in.c, out,
           bias ? "" : " no bias", pool_label);
  cnn_layer_spec s = {0};
  s.type = CNN_LAYER_DENSE, s.units = out, s.use_bias = bias;
  rig r;
  if (!rig_open(&r, &cnn_dense_ops, &s, in, n)) return;
  cnn_layer *l = &r.l;
  CHECK(l->out.h == 1 && l->out.w == 1 && l->out.c == out);
  size_t nx = (size_t)n * k, ny = (size_t)n * out, nw = (size_t)k * out;
  float *x = floats(nx), *y = floats(ny), *dy = floats(ny), *dx = floats(nx);
  double *ry = doubles(ny), *rys = doubles(ny), *rdx = doubles(nx), *rdxs = doubles(nx);
  double *rdw = doubles(nw), *rdws = doubles(nw), *rdb = doubles(out), *rdbs = doubles(out);
  if (!CHECK(x && y && dy && dx && ry && rys && rdx && rdxs && rdw && rdws && rdb && rdbs))
    goto done;
  fill(x, nx);
  for (int training = 0; training < 2; training++)
    for (int relu = 0; relu < 2; relu++) {
      fill_nan(y, ny);
      rig_forward(&r, pool, y, x, n, training, relu);
      twin_dense_forward(ry, rys, x, l->w, l->b, relu, n, k, out);
      near_all(relu ? "dense forward + relu" : "dense forward", y, ry, rys, ny, RTOL, 0);
    }
  fill(dy, ny);
  fill_nan(dx, nx), fill_nan(l->dw, nw);
  if (l->db) fill_nan(l->db, out);
  rig_backward(&r, pool, dx, dy, x, n);
  twin_dense_backward(rdx, rdxs, rdw, rdws, rdb, rdbs, dy, x, l->w, n, k, out);
  near_all("dense dx", dx, rdx, rdxs, nx, RTOL, 0);
  near_all("dense dw", l->dw, rdw, rdws, nw, RTOL, 0);
  if (l->db) near_all("dense db", l->db, rdb, rdbs, out, RTOL, 0);
done:
  free(x), free(y), free(dy), free(dx);
  free(ry), free(rys), free(rdx), free(rdxs), free(rdw), free(rdws), free(rdb), free(rdbs);
  rig_close(&r);
}

static void test_dense(cnn_threads *pool) {
  static const cnn_shape ins[] = {{7, 5, 3}, {1, 1, 10}, {3, 3, 1}, {1, 1, 1}};
  static const int outs[] = {1, 3, 10, 17};
  for (int i = 0; i < 4; i++)
    for (int o = 0; o < 4; o++) {
      dense_case(pool, 5, ins[i], outs[o], 1);
      dense_case(pool, 1, ins[i], outs[o], (i + o) % 2);
    }
  /* Big enough for the threaded product, batch 1 (a row at a time) and 37. */
  dense_case(pool, 37, (cnn_shape){3, 3, 64}, 300, 1);
  dense_case(pool, 1, (cnn_shape){1, 1, 576}, 500, 1);
  dense_case(pool, 3, (cnn_shape){1, 1, 500}, 10, 0);
}

/* ---- activations --------------------------------------------------------------- */

static double ex_swish(double x) { return x / (1 + exp(-x)); }
static double ex_swish_d(double x) {
  double s = 1 / (1 + exp(-x));
  return s + x * s * (1 - s);
}
static double ex_leaky(double x) { return x >= 0.1 * x ? x : 0.1 * x; }
static double ex_leaky_d(double x) { return x >= 0.1 * x ? 1 : 0.1; }
static double ex_softsign(double x) { return x / (1 + fabs(x)); }
static double ex_softsign_d(double x) { return 1 / ((1 + fabs(x)) * (1 + fabs(x))); }
static double ex_bump(double x) { return tanh(x) * tanh(x) + exp(-x * x); }
static double ex_bump_d(double x) {
  double t = tanh(x);
  return 2 * t * (1 - t * t) - 2 * x * exp(-x * x);
}
static double ex_mix(double x) { return log(1 + x * x) - fmin(x, 1) + sqrt(fabs(x) + 1) / 3; }
static double ex_mix_d(double x) {
  return 2 * x / (1 + x * x) - (x <= 1 ? 1 : 0) +
         (x > 0   ? 1
          : x < 0 ? -1
                  : 0) /
             (6 * sqrt(fabs(x) + 1));
}

typedef struct act_def {
  const char *name; /* built-in name or formula */
  cnn_act_kind kind;
  double alpha;
  double (*f)(double), (*df)(double);
} act_def;

static const act_def acts[] = {
    {"linear", CNN_ACT_LINEAR, 0, NULL, NULL},
    {"relu", CNN_ACT_RELU, 0, NULL, NULL},
    {"sigmoid", CNN_ACT_SIGMOID, 0, NULL, NULL},
    {"tanh", CNN_ACT_TANH, 0, NULL, NULL},
    {"softmax", CNN_ACT_SOFTMAX, 0, NULL, NULL},
    {"leaky_relu", CNN_ACT_LEAKY_RELU, 0.2, NULL, NULL},
    {"leaky_relu 0.1", CNN_ACT_LEAKY_RELU, 0.1, NULL, NULL},
    {"elu", CNN_ACT_ELU, 1.0, NULL, NULL},
    {"elu 0.5", CNN_ACT_ELU, 0.5, NULL, NULL},
    {"selu", CNN_ACT_SELU, 0, NULL, NULL},
    {"gelu", CNN_ACT_GELU, 0, NULL, NULL},
    {"swish", CNN_ACT_SWISH, 0, NULL, NULL},
    {"softplus", CNN_ACT_SOFTPLUS, 0, NULL, NULL},
    {"softsign", CNN_ACT_SOFTSIGN, 0, NULL, NULL},
    {"hard_sigmoid", CNN_ACT_HARD_SIGMOID, 0, NULL, NULL},
    {"exponential", CNN_ACT_EXPONENTIAL, 0, NULL, NULL},
    {"x*sigmoid(x)", CNN_ACT_EXPR, 0, ex_swish, ex_swish_d},
    {"max(x, 0.1*x)", CNN_ACT_EXPR, 0, ex_leaky, ex_leaky_d},
    {"x/(1+abs(x))", CNN_ACT_EXPR, 0, ex_softsign, ex_softsign_d},
    {"tanh(x)^2 + exp(-x^2)", CNN_ACT_EXPR, 0, ex_bump, ex_bump_d},
    {"log(1 + x^2) - min(x, 1) + sqrt(abs(x) + 1)/3", CNN_ACT_EXPR, 0, ex_mix, ex_mix_d},
};

static void act_case(cnn_threads *pool, const act_def *d, size_t rows, size_t cols) {
  char err[CNN_ERRMAX];
  size_t n = rows * cols;
  snprintf(where, sizeof where, "activation %s over %zux%zu", d->name, rows, cols);
  cnn_act a = {d->kind, (float)d->alpha, NULL};
  twin_act t = {d->kind, (float)d->alpha, d->f, d->df};
  if (d->kind == CNN_ACT_EXPR && !CHECK(cnn_expr_compile(&a.expr, d->name, err) == CNN_OK)) {
    fprintf(stderr, "%s: %s\n", where, err);
    return;
  }
  float *z = floats(n), *y = floats(n), *y2 = floats(n), *dy = floats(n), *dz = floats(n);
  double *ry = doubles(n), *rs = doubles(n);
  if (!CHECK(z && y && y2 && dy && dz && ry && rs)) goto done;
  for (size_t i = 0; i < n; i++) z[i] = 4 * rnd_float();
  z[0] = 0, z[n - 1] = -z[n / 2]; /* a zero, and a pair around it */
  cnn_act_forward(pool, &a, y, z, rows, cols);
  twin_act_forward(ry, z, &t, rows, cols);
  for (size_t i = 0; i < n; i++) rs[i] = fabs(ry[i]) + 0.1;
  near_all("activation forward", y, ry, rs, n, RTOL, 0);
  memcpy(y2, z, n * sizeof *y2); /* in place, as inference runs it */
  cnn_act_forward(pool, &a, y2, y2, rows, cols);
  CHECK(memcmp(y, y2, n * sizeof *y) == 0);
  fill(dy, n);
  cnn_act_backward(pool, &a, dz, dy, z, y, rows, cols);
  twin_act_backward(ry, dy, z, &t, rows, cols);
  for (size_t i = 0; i < n; i++) rs[i] = fabs(ry[i]) + 0.1 * fabs(dy[i]);
  near_all("activation backward", dz, ry, rs, n, RTOL, 0);
  cnn_act_backward(pool, &a, dy, dy, z, y, rows, cols); /* dz over dy, as the network runs it */
  CHECK(memcmp(dy, dz, n * sizeof *dy) == 0);
done:
  free(z), free(y), free(y2), free(dy), free(dz), free(ry), free(rs);
  cnn_expr_free(a.expr);
}

static void test_activations(cnn_threads *pool) {
  for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
    act_case(pool, &acts[i], 5, 10);
    act_case(pool, &acts[i], 7, 3);
    act_case(pool, &acts[i], 1, 1);
    act_case(pool, &acts[i], 3, 257);
    act_case(pool, &acts[i], 1001, 67); /* split over the pool: 3 tasks */
  }
}

/* ---- dropout ------------------------------------------------------------------- */

static void dropout_case(cnn_threads *pool, int n, cnn_shape in, float rate, uint64_t seed) {
  snprintf(where, sizeof where, "dropout %g x[%d,%d,%d,%d] seed %llu", rate, n, in.h, in.w, in.c,
           (unsigned long long)seed);
  cnn_layer_spec s = {0};
  s.type = CNN_LAYER_DROPOUT, s.rate = rate;
  rig r;
  if (!rig_open(&r, &cnn_dropout_ops, &s, in, n)) return;
  size_t m = (size_t)n * in.h * in.w * in.c;
  float *x = floats(m), *y = floats(m), *dy = floats(m), *dx = floats(m);
  uint8_t *keep = malloc(m);
  double *ry = doubles(m);
  if (!CHECK(x && y && dy && dx && keep && ry)) goto done;
  fill(x, m);
  for (size_t i = 0; i < m; i++) x[i] = x[i] != 0 ? x[i] : 0.5f; /* a dropped 0 is visible */
  cnn_rng rng;
  cnn_rng_seed(&rng, seed);
  cnn_run run = {pool, r.work, 1, 0, &rng, 0, 0, NULL, NULL, NULL};
  r.l.ops->forward(&r.l, &run, y, x, n);
  twin_dropout_mask(keep, seed, rate, m);
  twin_dropout_forward(ry, x, keep, rate, m);
  /* Kept values are x / (1 - rate) rounded once, dropped ones exactly 0, in
   * the engine's draw. */
  float scale = 1.0f / (1.0f - rate);
  long wrong = 0, kept = 0;
  for (size_t i = 0; i < m; i++) {
    wrong += keep[i] ? y[i] != x[i] * scale : y[i] != 0.0f;
    kept += keep[i];
  }
  CHECK_EQ_INT(wrong, 0);
  near_all("dropout forward", y, ry, NULL, m, 1e-6, 0);
  /* About 1 - rate of the values are kept: within 5 standard deviations. */
  double mean = m * (1.0 - rate), sd = sqrt(m * rate * (1.0 - rate));
  if (!CHECK(fabs(kept - mean) <= 5 * sd + 1))
    fprintf(stderr, "%s: kept %ld of %zu\n", where, kept, m);
  /* Backward multiplies by the same mask. */
  fill(dy, m);
  r.l.ops->backward(&r.l, &run, dx, dy, x, n);
  wrong = 0;
  for (size_t i = 0; i < m; i++) wrong += dx[i] != (keep[i] ? dy[i] * scale : 0.0f);
  CHECK_EQ_INT(wrong, 0);
  /* Frozen: the same mask again, whatever the input. */
  for (size_t i = 0; i < m; i++) x[i] = -x[i];
  run.freeze = 1;
  r.l.ops->forward(&r.l, &run, y, x, n);
  wrong = 0;
  for (size_t i = 0; i < m; i++) wrong += y[i] != (keep[i] ? x[i] * scale : 0.0f);
  CHECK_EQ_INT(wrong, 0);
  /* Inference: the identity, bit for bit, drawing nothing. */
  cnn_rng before = rng;
  run.training = 0, run.freeze = 0;
  r.l.ops->forward(&r.l, &run, y, x, n);
  CHECK(memcmp(y, x, m * sizeof *y) == 0);
  CHECK(memcmp(&before, &rng, sizeof rng) == 0);
  r.l.ops->backward(&r.l, &run, dx, dy, x, n);
  CHECK(memcmp(dx, dy, m * sizeof *dx) == 0);
done:
  free(x), free(y), free(dy), free(dx), free(keep), free(ry);
  rig_close(&r);
}

static void test_dropout(cnn_threads *pool) {
  dropout_case(pool, 5, (cnn_shape){7, 5, 3}, 0.3f, 1);
  dropout_case(pool, 1, (cnn_shape){1, 1, 10}, 0.5f, 2);
  dropout_case(pool, 5, (cnn_shape){1, 1, 5000}, 0.5f, 3);
  dropout_case(pool, 2, (cnn_shape){7, 5, 10}, 0.8f, 4);
  dropout_case(pool, 3, (cnn_shape){4, 4, 3}, 0.05f, 5);
}

/* ---- batchnorm and global average pooling ------------------------------------- */

/* Inference forward (the moving statistics), training forward (the batch's,
 * and the moving ones updated), backward with and without dx. Inputs sit
 * around `offset` so the subtraction of the mean matters. Tolerances: RTOL of
 * the scale of each value: (|x| + |mean|) |gamma| inv + |beta| forward;
 * |before| momentum + |batch| (1 - momentum) for the moving statistics;
 * sum |dy| and sum |dy xh| for dbeta and dgamma; |gamma| inv (|dy| +
 * mean |dy| + (|x| + |mean|) inv mean |dy xh|) for dx. */
static void bn_case(cnn_threads *pool, int n, cnn_shape in, int center, int scale, float momentum,
                    float eps, float offset) {
  snprintf(where, sizeof where, "batchnorm %dx%dx%dx%d center %d scale %d momentum %g, %s", n, in.h,
           in.w, in.c, center, scale, momentum, pool_label);
  cnn_layer_spec s = {.type = CNN_LAYER_BATCHNORM,
                      .momentum = momentum,
                      .epsilon = eps,
                      .center = center,
                      .scale = scale};
  rig r;
  if (!rig_open(&r, &cnn_batchnorm_ops, &s, in, n)) return;
  cnn_layer *l = &r.l;
  int C = in.c;
  size_t rows = (size_t)n * in.h * in.w, nx = rows * C;
  float *x = floats(nx), *y = floats(nx), *dy = floats(nx), *dx = floats(nx),
        *before = floats(2 * C);
  double *ry = doubles(nx), *rys = doubles(nx), *mean = doubles(C), *var = doubles(C);
  double *moving = doubles(2 * C), *ms = doubles(2 * C), *rdx = doubles(nx), *rdxs = doubles(nx);
  double *rdg = doubles(C), *rdb = doubles(C), *gs = doubles(C), *bs = doubles(C);
  if (!CHECK(x && y && dy && dx && before && ry && rys && mean && var && moving && ms && rdx &&
             rdxs && rdg && rdb && gs && bs))
    goto done;
  for (size_t i = 0; i < nx; i++) x[i] = offset + rnd_float() * (1 + (float)(i % C));
  for (int c = 0; c < C; c++) {
    l->state[c] = rnd_float();
    l->state[C + c] = 0.25f + fabsf(rnd_float()) * 4;
  }
  const float *gamma = scale ? l->w : NULL, *beta = center ? l->b : NULL;
  memcpy(before, l->state, 2 * C * sizeof *before);

  fill_nan(y, nx);
  rig_forward(&r, pool, y, x, n, 0, 0);
  twin_batchnorm_forward(ry, rys, NULL, NULL, x, gamma, beta, before, before + C, eps, 0, rows, C);
  near_all("batchnorm forward (inference)", y, ry, rys, nx, RTOL, 0);
  CHECK(memcmp(before, l->state, 2 * C * sizeof *before) == 0); /* inference keeps them */

  fill_nan(y, nx);
  rig_forward(&r, pool, y, x, n, 1, 0);
  twin_batchnorm_forward(ry, rys, mean, var, x, gamma, beta, NULL, NULL, eps, 1, rows, C);
  near_all("batchnorm forward (training)", y, ry, rys, nx, RTOL, 0);
  twin_batchnorm_moving(moving, before, mean, momentum, C);
  twin_batchnorm_moving(moving + C, before + C, var, momentum, C);
  for (int c = 0; c < C; c++) {
    ms[c] = fabs(before[c]) * momentum + fabs(mean[c]) * (1 - momentum);
    ms[C + c] = fabs(before[C + c]) * momentum + var[c] * (1 - momentum);
  }
  near_all("batchnorm moving statistics", l->state, moving, ms, 2 * (size_t)C, RTOL, 0);
  /* Without a pool: the same output and moving statistics, bit for bit. */
  if (pool) {
    float *y1 = floats(nx), *after = floats(2 * C);
    if (CHECK(y1 && after)) {
      memcpy(after, l->state, 2 * C * sizeof *after);
      memcpy(l->state, before, 2 * C * sizeof *before);
      rig_forward(&r, NULL, y1, x, n, 1, 0);
      CHECK(memcmp(y1, y, nx * sizeof *y) == 0);
      CHECK(memcmp(after, l->state, 2 * C * sizeof *after) == 0);
    }
    free(y1), free(after);
  }

  fill(dy, nx);
  fill_nan(dx, nx), fill_nan(l->dw, l->nweights);
  if (l->db) fill_nan(l->db, l->nbias);
  rig_backward(&r, pool, dx, dy, x, n);
  twin_batchnorm_backward(rdx, rdg, rdb, dy, x, gamma, eps, rows, C);
  for (int c = 0; c < C; c++) {
    double inv = 1 / sqrt(var[c] + eps), g = gamma ? fabs(gamma[c]) : 1, ady = 0, adyxh = 0;
    for (size_t q = 0; q < rows; q++) {
      ady += fabs(dy[q * C + c]);
      adyxh += fabs(dy[q * C + c] * (x[q * C + c] - mean[c]) * inv);
    }
    gs[c] = adyxh, bs[c] = ady;
    for (size_t q = 0; q < rows; q++)
      rdxs[q * C + c] = g * inv *
                        (fabs(dy[q * C + c]) + ady / rows +
                         (fabs(x[q * C + c]) + fabs(mean[c])) * inv * adyxh / rows);
  }
  near_all("batchnorm dx", dx, rdx, rdxs, nx, RTOL, 0);
  if (scale) near_all("batchnorm dgamma", l->dw, rdg, gs, C, RTOL, 0);
  if (center) near_all("batchnorm dbeta", l->db, rdb, bs, C, RTOL, 0);
  /* The first layer's backward: no dx, the same parameter gradients. */
  fill_nan(l->dw, l->nweights);
  rig_backward(&r, pool, NULL, dy, x, n);
  if (scale) near_all("batchnorm dgamma", l->dw, rdg, gs, C, RTOL, 0);
done:
  free(x), free(y), free(dy), free(dx), free(before);
  free(ry), free(rys), free(mean), free(var), free(moving), free(ms), free(rdx), free(rdxs);
  free(rdg), free(rdb), free(gs), free(bs);
  rig_close(&r);
}

static void gap_case(cnn_threads *pool, int n, cnn_shape in) {
  snprintf(where, sizeof where, "globalavgpool %dx%dx%dx%d, %s", n, in.h, in.w, in.c, pool_label);
  cnn_layer_spec s = {.type = CNN_LAYER_GLOBALAVGPOOL};
  rig r;
  if (!rig_open(&r, &cnn_globalavgpool_ops, &s, in, n)) return;
  int m = in.h * in.w, C = in.c;
  size_t nx = (size_t)n * m * C, ny = (size_t)n * C;
  float *x = floats(nx), *y = floats(ny), *dy = floats(ny), *dx = floats(nx);
  double *ry = doubles(ny), *rys = doubles(ny), *rdx = doubles(nx);
  if (!CHECK(x && y && dy && dx && ry && rys && rdx)) goto done;
  CHECK(r.l.out.h == 1 && r.l.out.w == 1 && r.l.out.c == C);
  fill(x, nx);
  fill_nan(y, ny);
  rig_forward(&r, pool, y, x, n, 1, 0);
  twin_globalavgpool_forward(ry, x, n, m, C);
  for (int i = 0; i < n; i++) /* scale: sum |x| / m */
    for (int c = 0; c < C; c++) {
      double a = 0;
      for (int q = 0; q < m; q++) a += fabs(x[((size_t)i * m + q) * C + c]);
      rys[(size_t)i * C + c] = a / m;
    }
  near_all("globalavgpool forward", y, ry, rys, ny, RTOL, 0);
  fill(dy, ny);
  fill_nan(dx, nx);
  rig_backward(&r, pool, dx, dy, x, n);
  twin_globalavgpool_backward(rdx, dy, n, m, C);
  near_all("globalavgpool dx", dx, rdx, NULL, nx, RTOL, 0);
done:
  free(x), free(y), free(dy), free(dx), free(ry), free(rys), free(rdx);
  rig_close(&r);
}

static void test_batchnorm(cnn_threads *pool) {
  bn_case(pool, 5, (cnn_shape){7, 5, 3}, 1, 1, 0.99f, 0.001f, 0.0f);
  bn_case(pool, 1, (cnn_shape){4, 4, 10}, 1, 1, 0.9f, 0.001f, 3.0f);  /* 8 + 2 channels */
  bn_case(pool, 32, (cnn_shape){1, 1, 17}, 1, 0, 0.5f, 1e-5f, -2.0f); /* after dense */
  bn_case(pool, 2, (cnn_shape){1, 1, 5}, 0, 1, 0.0f, 0.01f, 0.5f);    /* batch of 2 */
  bn_case(pool, 9, (cnn_shape){6, 6, 32}, 0, 0, 0.99f, 0.001f, 1.0f);
  bn_case(pool, 1, (cnn_shape){1, 1, 4}, 1, 1, 0.99f, 0.001f, 1.0f); /* one value: var 0 */
  gap_case(pool, 5, (cnn_shape){7, 5, 3});
  gap_case(pool, 1, (cnn_shape){1, 1, 10});
  gap_case(pool, 9, (cnn_shape){11, 11, 64});
}

/* ---- optimizers ---------------------------------------------------------------- */

static void optim_case(cnn_threads *pool, const char *name, cnn_optim_config cfg) {
  char err[CNN_ERRMAX];
  const size_t n = 2 * 65536 + 7; /* three of the engine's chunks */
  const int steps = 10;
  snprintf(where, sizeof where, "optimizer %s, %s", name, pool_label);
  cnn_optim opt = {0};
  twin_optim tw = {0};
  float *w = floats(n), *g = floats(n);
  double *rw = doubles(n), *prev = doubles(n), *scale = doubles(n);
  if (!CHECK(w && g && rw && prev && scale)) goto done;
  if (!CHECK(cnn_optim_init(&opt, &cfg, n, err) == CNN_OK) || !CHECK(twin_optim_init(&tw, &cfg, n)))
    goto done;
  fill(w, n);
  for (size_t i = 0; i < n; i++) rw[i] = w[i], scale[i] = 0;
  for (int t = 0; t < steps; t++) {
    /* Gradients of every size from 1 down to 1e-6 (the small ones are where
     * epsilon matters), a few exactly zero. */
    for (size_t i = 0; i < n; i++)
      g[i] = rnd_int(50) == 0 ? 0.0f : rnd_float() * (float)pow(10.0, -rnd_int(7));
    cnn_optim_step(&opt, w, g, pool);
    memcpy(prev, rw, n * sizeof *rw);
    twin_optim_step(&tw, rw, g);
    /* The step (float rounding of its terms is relative to it) and the
     * rounding of w += step, at most 2^-24 |w| (in units of RTOL); weight
     * decay stores the decayed w first (as Keras does), one rounding more. */
    for (size_t i = 0; i < n; i++)
      scale[i] += fabs(rw[i] - prev[i]) + (cfg.weight_decay > 0 ? 2 : 1) * ldexp(1.0, -24) / RTOL *
                                              fmax(fabs(rw[i]), fabs(prev[i]));
  }
  CHECK_EQ_INT(opt.step, steps);
  near_all(name, w, rw, scale, n, RTOL, 0);
done:
  cnn_optim_clear(&opt);
  twin_optim_clear(&tw);
  free(w), free(g), free(rw), free(prev), free(scale);
}

static void test_optimizers(cnn_threads *pool) {
  char err[CNN_ERRMAX];
  static const char *const names[] = {"sgd",    "momentum", "adam",   "adamw",
                                      "adamax", "adagrad",  "rmsprop"};
  cnn_optim_config c;
  for (int i = 0; i < 7; i++)
    if (CHECK(cnn_optim_defaults(&c, names[i], err) == CNN_OK)) optim_case(pool, names[i], c);
  cnn_optim_defaults(&c, "momentum", err);
  c.nesterov = 1;
  optim_case(pool, "nesterov", c);
  cnn_optim_defaults(&c, "sgd", err);
  c.learning_rate = 0.5, c.momentum = 0.3;
  optim_case(pool, "sgd lr 0.5 momentum 0.3", c);
  cnn_optim_defaults(&c, "adam", err);
  c.learning_rate = 0.01, c.beta_1 = 0.5, c.beta_2 = 0.9, c.epsilon = 1e-4;
  optim_case(pool, "adam lr 0.01 betas 0.5 0.9 epsilon 1e-4", c);
  cnn_optim_defaults(&c, "adamax", err);
  c.beta_2 = 0.8, c.epsilon = 1e-3;
  optim_case(pool, "adamax beta_2 0.8 epsilon 1e-3", c);
  cnn_optim_defaults(&c, "adagrad", err);
  c.initial_accumulator_value = 0;
  optim_case(pool, "adagrad accumulator 0", c);
  cnn_optim_defaults(&c, "rmsprop", err);
  c.momentum = 0.5;
  optim_case(pool, "rmsprop momentum 0.5", c);
  c.centered = 1;
  optim_case(pool, "rmsprop momentum 0.5 centered", c);
  c.momentum = 0, c.rho = 0.5;
  optim_case(pool, "rmsprop rho 0.5 centered", c);
  cnn_optim_defaults(&c, "adamw", err);
  c.learning_rate = 0.01, c.weight_decay = 0.1;
  optim_case(pool, "adamw lr 0.01 weight_decay 0.1", c);
  cnn_optim_defaults(&c, "sgd", err);
  c.weight_decay = 0.5;
  optim_case(pool, "sgd weight_decay 0.5", c);
  cnn_optim_defaults(&c, "momentum", err);
  c.nesterov = 1, c.weight_decay = 0.01;
  optim_case(pool, "nesterov weight_decay 0.01", c);
  cnn_optim_defaults(&c, "rmsprop", err);
  c.momentum = 0.5, c.weight_decay = 0.2;
  optim_case(pool, "rmsprop momentum 0.5 weight_decay 0.2", c);
}

/* ---- a whole network ------------------------------------------------------------ */

/* Rounds a twin's output to the float the next layer reads. */
static float *to_floats(const double *d, size_t n) {
  float *f = floats(n);
  for (size_t i = 0; f && i < n; i++) f[i] = (float)d[i];
  return f;
}

/* The network below as twins, layer after layer, each reading the float
 * rounding of the one before (as the engine's layers read each other). */
static const char net_spec[] =
    "{\"input\":[7,5,3],\"layers\":["
    "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"padding\":\"same\",\"activation\":\"relu\"},"
    "{\"type\":\"maxpool\",\"size\":2,\"padding\":\"same\"},"
    "{\"type\":\"conv2d\",\"filters\":10,\"kernel\":2,\"activation\":\"gelu\"},"
    "{\"type\":\"avgpool\",\"size\":2,\"strides\":1},"
    "{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":12,\"activation\":\"relu\"},"
    "{\"type\":\"dropout\",\"rate\":0.5},"
    "{\"type\":\"dense\",\"units\":5}]}";

typedef struct chain {
  int n;
  twin_geom g1, g2, g3, g4; /* conv, maxpool, conv, avgpool */
  const float *w1, *b1, *w2, *b2, *w3, *b3, *w4, *b4;
  uint8_t *keep; /* dropout mask, or NULL at inference */
  /* float activations: inputs of each layer, and the pre-activations */
  float *x, *a1, *a2, *z3, *a3, *a4, *a5, *a6;
  double *out, *out_scale; /* [n, 5] */
} chain;

/* Frees what chain_forward made (and the mask), for another run. */
static void chain_clear(chain *c) {
  free(c->a1), free(c->a2), free(c->z3), free(c->a3), free(c->a4), free(c->a5), free(c->a6);
  free(c->out), free(c->out_scale), free(c->keep);
  c->a1 = c->a2 = c->z3 = c->a3 = c->a4 = c->a5 = c->a6 = NULL;
  c->out = c->out_scale = NULL, c->keep = NULL;
}

static int chain_forward(chain *c) {
  int n = c->n;
  twin_act gelu = {CNN_ACT_GELU, 0, NULL, NULL};
  size_t n1 = (size_t)n * 7 * 5 * 4, n2 = (size_t)n * 4 * 3 * 4, n3 = (size_t)n * 3 * 2 * 10;
  size_t n4 = (size_t)n * 2 * 1 * 10, n5 = (size_t)n * 12;
  double *t1 = doubles(n1), *t2 = doubles(n2), *t3 = doubles(n3), *t4 = doubles(n4);
  double *t5 = doubles(n5), *t6 = doubles(n5);
  c->out = doubles((size_t)n * 5), c->out_scale = doubles((size_t)n * 5);
  int ok = t1 && t2 && t3 && t4 && t5 && t6 && c->out && c->out_scale;
  if (ok) twin_conv2d_forward(t1, NULL, c->x, c->w1, c->b1, 1, &c->g1, 4);
  if (ok && (ok = (c->a1 = to_floats(t1, n1)) != NULL))
    twin_maxpool_forward(t2, NULL, c->a1, &c->g2);
  if (ok && (ok = (c->a2 = to_floats(t2, n2)) != NULL))
    twin_conv2d_forward(t3, NULL, c->a2, c->w2, c->b2, 0, &c->g3, 10);
  if (ok && (ok = (c->z3 = to_floats(t3, n3)) != NULL)) twin_act_forward(t3, c->z3, &gelu, n3, 1);
  if (ok && (ok = (c->a3 = to_floats(t3, n3)) != NULL)) twin_avgpool_forward(t4, c->a3, &c->g4);
  if (ok && (ok = (c->a4 = to_floats(t4, n4)) != NULL))
    twin_dense_forward(t5, NULL, c->a4, c->w3, c->b3, 1, n, 20, 12);
  if (ok && (ok = (c->a5 = to_floats(t5, n5)) != NULL)) {
    if (c->keep)
      twin_dropout_forward(t6, c->a5, c->keep, 0.5, n5);
    else
      for (size_t i = 0; i < n5; i++) t6[i] = c->a5[i];
  }
  if (ok && (ok = (c->a6 = to_floats(t6, n5)) != NULL))
    twin_dense_forward(c->out, c->out_scale, c->a6, c->w4, c->b4, 0, n, 12, 5);
  free(t1), free(t2), free(t3), free(t4), free(t5), free(t6);
  return ok;
}

/* The loss gradient (softmax(out) - one_hot(label)) / n, then every layer's
 * backward; grads and dx get the engine's layout (its tensors, in order). */
static int chain_backward(chain *c, const uint8_t *labels, double *grads, double *dx,
                          double *dx_scale, const cnn_tensor_info *ti) {
  int n = c->n;
  size_t n1 = (size_t)n * 7 * 5 * 4, n2 = (size_t)n * 4 * 3 * 4, n3 = (size_t)n * 3 * 2 * 10;
  size_t n4 = (size_t)n * 2 * 1 * 10, n5 = (size_t)n * 12, nx = (size_t)n * 7 * 5 * 3;
  twin_act gelu = {CNN_ACT_GELU, 0, NULL, NULL}, relu = {CNN_ACT_RELU, 0, NULL, NULL};
  double *d = doubles(n1 > nx ? n1 : nx), *e = doubles(n1 > nx ? n1 : nx);
  float *g = NULL, *z = NULL;
  int ok = d && e;
  for (int i = 0; ok && i < n; i++) {
    double m = c->out[i * 5], sum = 0;
    for (int j = 1; j < 5; j++) m = fmax(m, c->out[i * 5 + j]);
    for (int j = 0; j < 5; j++) sum += exp(c->out[i * 5 + j] - m);
    for (int j = 0; j < 5; j++)
      d[i * 5 + j] = (exp(c->out[i * 5 + j] - m) / sum - (j == labels[i])) / n;
  }
#define STEP(count) (free(g), g = NULL, ok = ok && (g = to_floats(d, count)) != NULL)
  if (STEP((size_t)n * 5))
    twin_dense_backward(d, NULL, grads + ti[6].offset, NULL, grads + ti[7].offset, NULL, g, c->a6,
                        c->w4, n, 12, 5);
  if (STEP(n5)) {
    for (size_t i = 0; i < n5; i++) d[i] = c->keep[i] ? g[i] / 0.5 : 0.0;
  }
  if (STEP(n5)) { /* relu' from the dense output, then the dense layer */
    double *pre = doubles(n5);
    ok = pre != NULL;
    if (ok) twin_dense_forward(pre, NULL, c->a4, c->w3, c->b3, 0, n, 20, 12);
    if (ok && (ok = (z = to_floats(pre, n5)) != NULL)) twin_act_backward(d, g, z, &relu, n5, 1);
    free(pre), free(z), z = NULL;
  }
  if (STEP(n5))
    twin_dense_backward(d, NULL, grads + ti[4].offset, NULL, grads + ti[5].offset, NULL, g, c->a4,
                        c->w3, n, 20, 12);
  if (STEP(n4)) twin_avgpool_backward(d, g, &c->g4);
  if (STEP(n3)) twin_act_backward(d, g, c->z3, &gelu, n3, 1);
  if (STEP(n3))
    twin_conv2d_backward(d, NULL, grads + ti[2].offset, NULL, grads + ti[3].offset, NULL, g, c->a2,
                         c->w2, &c->g3, 10);
  if (STEP(n2)) twin_maxpool_backward(d, g, c->a1, &c->g2);
  if (STEP(n1)) {
    double *pre = doubles(n1);
    ok = pre != NULL;
    if (ok) twin_conv2d_forward(pre, NULL, c->x, c->w1, c->b1, 0, &c->g1, 4);
    if (ok && (ok = (z = to_floats(pre, n1)) != NULL)) twin_act_backward(d, g, z, &relu, n1, 1);
    free(pre), free(z), z = NULL;
  }
  if (STEP(n1))
    twin_conv2d_backward(dx, dx_scale, grads + ti[0].offset, NULL, grads + ti[1].offset, NULL, g,
                         c->x, c->w1, &c->g1, 4);
#undef STEP
  free(g), free(d), free(e);
  return ok;
}

/* The network's forward (inference and training) and backward against the
 * twins chained: what the network adds to its layers (the ReLU fused into
 * conv2d and dense, the other activations applied after them, in place at
 * inference, dropout drawing from the network's generator, the loss
 * gradient, the ping-pong of gradient buffers). Tolerance: 1e-5 of the
 * output's scale (the last layer's sum of |terms|), and 1e-5 of the largest
 * gradient of each tensor (what eight layers of float rounding compound to
 * stays near 1e-6 of it). */
static void net_case(cnn_threads *pool, int n) {
  char err[CNN_ERRMAX];
  snprintf(where, sizeof where, "network of 8 layers, batch %d, %s", n, pool_label);
  cnn_spec spec;
  cnn_net *net = NULL;
  chain c = {0};
  if (!CHECK(cnn_spec_parse(&spec, net_spec, err) == CNN_OK)) return;
  if (!CHECK(cnn_net_new(&net, &spec, err) == CNN_OK)) return;
  cnn_net_init(net, 11);
  cnn_net_set_pool(net, pool);
  cnn_net_set_input_grad(net, 1);
  size_t np = cnn_net_nparams(net), nx = (size_t)n * 7 * 5 * 3;
  float *p = cnn_net_params(net);
  cnn_tensor_info ti[8];
  float *xcopy = NULL;
  double *grads = doubles(np), *dx = doubles(nx), *dxs = doubles(nx);
  uint8_t labels[8];
  if (!CHECK(cnn_net_tensors(net) == 8 && cnn_net_reserve(net, n, 1, err) == CNN_OK && grads &&
             dx && dxs))
    goto done;
  for (int t = 0; t < 8; t++) ti[t] = cnn_net_tensor(net, t);
  for (int t = 1; t < 8; t += 2) fill(p + ti[t].offset, ti[t].count); /* biases of both signs */
  for (int i = 0; i < n; i++) labels[i] = (uint8_t)rnd_int(5);
  c.n = n;
  c.g1 = (twin_geom){n, 7, 5, 3, 3, 3, 1, 1, 1, 0, 0, 0, 0};
  c.g2 = (twin_geom){n, 7, 5, 4, 2, 2, 2, 2, 1, 0, 0, 0, 0};
  c.g3 = (twin_geom){n, 4, 3, 4, 2, 2, 1, 1, 0, 0, 0, 0, 0};
  c.g4 = (twin_geom){n, 3, 2, 10, 2, 2, 1, 1, 0, 0, 0, 0, 0};
  twin_geom_init(&c.g1), twin_geom_init(&c.g2), twin_geom_init(&c.g3), twin_geom_init(&c.g4);
  c.w1 = p + ti[0].offset, c.b1 = p + ti[1].offset, c.w2 = p + ti[2].offset;
  c.b2 = p + ti[3].offset, c.w3 = p + ti[4].offset, c.b3 = p + ti[5].offset;
  c.w4 = p + ti[6].offset, c.b4 = p + ti[7].offset;
  float *x = cnn_net_input_buffer(net);
  fill(x, nx);
  xcopy = floats(nx);
  if (!CHECK(xcopy != NULL)) goto done;
  memcpy(xcopy, x, nx * sizeof *x);
  c.x = xcopy;
  /* Inference: dropout is the identity. */
  const float *out = cnn_net_forward(net, n, 0);
  if (!CHECK(chain_forward(&c))) goto done;
  near_all("network forward", out, c.out, c.out_scale, (size_t)n * 5, RTOL, 0);
  chain_clear(&c);
  /* Training: the mask is the generator's first n * 12 draws. */
  cnn_net_seed(net, 99);
  memcpy(x, xcopy, nx * sizeof *x);
  out = cnn_net_forward(net, n, 1);
  c.keep = malloc((size_t)n * 12);
  if (!CHECK(c.keep != NULL)) goto done;
  twin_dropout_mask(c.keep, 99, 0.5, (size_t)n * 12);
  if (!CHECK(chain_forward(&c))) goto done;
  near_all("network forward", out, c.out, c.out_scale, (size_t)n * 5, RTOL, 0);
  cnn_net_loss(net, labels, n, 0, NULL);
  cnn_net_backward(net, n);
  if (!CHECK(chain_backward(&c, labels, grads, dx, dxs, ti))) goto done;
  for (int t = 0; t < 8; t++) {
    double big = 0;
    for (size_t j = 0; j < ti[t].count; j++) big = fmax(big, fabs(grads[ti[t].offset + j]));
    near_all("network gradients", cnn_net_grads(net) + ti[t].offset, grads + ti[t].offset, NULL,
             ti[t].count, 0, RTOL * big);
  }
  double big = 0;
  for (size_t j = 0; j < nx; j++) big = fmax(big, fabs(dx[j]));
  const float *ig = cnn_net_input_grad(net);
  if (CHECK(ig != NULL)) near_all("network input gradient", ig, dx, NULL, nx, 0, RTOL * big);
done:
  chain_clear(&c);
  free(xcopy), free(grads), free(dx), free(dxs);
  cnn_net_free(net);
}

/* ---- everything, with one pool ----------------------------------------------- */

static void run_all(cnn_threads *pool) {
  const char *isa = cnn_isa_name(cnn_threads_isa(pool));
  if (pool)
    snprintf(pool_label, sizeof pool_label, "pool of %d, %s", cnn_threads_size(pool), isa);
  else
    snprintf(pool_label, sizeof pool_label, "no pool, %s", isa);
  test_conv2d(pool);
  test_pooling(pool);
  test_dense(pool);
  test_activations(pool);
  test_dropout(pool);
  test_batchnorm(pool);
  test_optimizers(pool);
  net_case(pool, 5);
  net_case(pool, 1);
}

int main(void) {
  /* The default instruction set with every pool size, then each other set
   * this CPU runs with two threads (amx runs the avx512 kernels). */
  cnn_isa dflt = cnn_threads_isa(NULL);
  run_all(NULL);
  for (int threads = 1; threads <= 3; threads++) {
    cnn_threads *pool = check_pool(threads, dflt);
    if (!pool) continue;
    run_all(pool);
    cnn_threads_free(pool);
  }
  for (int i = 0; i < CNN_ISA_COUNT; i++) {
    cnn_isa isa = (cnn_isa)i;
    if (isa == dflt || isa == CNN_ISA_AMX || !check_isa(isa)) continue;
    cnn_threads *pool = check_pool(2, isa);
    if (!pool) continue;
    printf("isa %s: testing\n", cnn_isa_name(isa));
    run_all(pool);
    cnn_threads_free(pool);
  }
  for (int i = 0; i < ntallies; i++)
    printf("%-40s %9ld values, worst %.3f of the tolerance\n", tallies[i].what, tallies[i].values,
           tallies[i].worst);
  return check_done();
}
