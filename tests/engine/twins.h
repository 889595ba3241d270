/*
 * twins.h - naive reference twins of the engine's fast kernels, for
 * test_twins.c: straight loops in the order the maths is written, double
 * accumulation, written from the definitions (Keras' layouts and update
 * rules), sharing no code with src/ except the random generator that dropout
 * draws its mask from.
 *
 * Layouts as in the engine: activations NHWC, conv kernels (KH, KW, IC, OC),
 * dense kernels (IN, OUT). Inputs are the engine's float arrays; outputs are
 * double. Backward twins overwrite their outputs (dx, dw, db), as the layers
 * do. Alongside a sum, a twin can give its scale: the same sum of absolute
 * values (sum |a_i b_i|), which is what a float sum of those terms may lose
 * precision against, so a test can ask for |engine - twin| <= rtol * scale
 * even where the terms cancel.
 */
#ifndef CNN_TWINS_H
#define CNN_TWINS_H

#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

/* A window sliding over an image [n, h, w, c]: conv kernel or pool size,
 * strides, padding. twin_geom_init works out the output size and leading
 * padding from Keras' rules (valid: floor((in - k) / s) + 1; same:
 * ceil(in / s), the total padding split with the odd pixel after). */
typedef struct twin_geom {
  int n, h, w, c; /* input */
  int kh, kw, sh, sw;
  int same;              /* 0 valid, 1 same */
  int oh, ow;            /* output rows and columns (set by twin_geom_init) */
  int pad_top, pad_left; /* (set by twin_geom_init) */
} twin_geom;

/* Returns 0 when the window does not fit (valid padding, kernel > image). */
int twin_geom_init(twin_geom *g);

/* ---- conv2d: x [n,h,w,c], w [kh,kw,c,f], b [f] or NULL, y [n,oh,ow,f] ---- */

/* y = conv(x, w) + b, then max(y, 0) with relu; scale (may be NULL) gets
 * sum |x w| + |b| per output. */
void twin_conv2d_forward(double *y, double *scale, const float *x, const float *w, const float *b,
                         int relu, const twin_geom *g, int f);
/* dx [n,h,w,c] (may be NULL), dw [kh,kw,c,f], db [f] (may be NULL), each with
 * its scale array (may be NULL), from dy [n,oh,ow,f]. */
void twin_conv2d_backward(double *dx, double *dx_scale, double *dw, double *dw_scale, double *db,
                          double *db_scale, const float *dy, const float *x, const float *w,
                          const twin_geom *g, int f);

/* ---- pooling: x [n,h,w,c] -> y [n,oh,ow,c] -------------------------------- */

/* Max over the window's cells inside the image (padding never wins); the
 * first maximum in row-major window order wins ties, and a NaN cell takes
 * the place of whatever came before it (so a NaN always comes out). arg (may
 * be NULL) gets, per output, the index of the winning cell in its image's
 * [h, w, c] array. */
void twin_maxpool_forward(double *y, int32_t *arg, const float *x, const twin_geom *g);
/* dx [n,h,w,c]: each dy goes to its output's winning cell. */
void twin_maxpool_backward(double *dx, const float *dy, const float *x, const twin_geom *g);
/* Mean of the window's cells inside the image (padding not counted). */
void twin_avgpool_forward(double *y, const float *x, const twin_geom *g);
void twin_avgpool_backward(double *dx, const float *dy, const twin_geom *g);

/* ---- dense: x [n,in], w [in,out], b [out] or NULL, y [n,out] -------------- */

void twin_dense_forward(double *y, double *scale, const float *x, const float *w, const float *b,
                        int relu, int n, int in, int out);
void twin_dense_backward(double *dx, double *dx_scale, double *dw, double *dw_scale, double *db,
                         double *db_scale, const float *dy, const float *x, const float *w, int n,
                         int in, int out);

/* ---- activations over rows x cols (softmax along each row) ---------------- */

typedef struct twin_act {
  cnn_act_kind kind;
  double alpha;                       /* leaky_relu slope, elu alpha */
  double (*f)(double), (*df)(double); /* CNN_ACT_EXPR: the formula and its derivative */
} twin_act;

void twin_act_forward(double *y, const float *z, const twin_act *a, size_t rows, size_t cols);
/* dz = dy * f'(z); softmax: the Jacobian of softmax(z) times dy. */
void twin_act_backward(double *dz, const float *dy, const float *z, const twin_act *a, size_t rows,
                       size_t cols);

/* ---- dropout --------------------------------------------------------------- */

/* keep [count] = 1 where a value is kept, 0 where dropped, drawing one
 * cnn_rng_float per value in order and dropping it when the draw is below
 * rate: the engine's draw, so a generator seeded alike gives its mask. */
void twin_dropout_mask(uint8_t *keep, uint64_t seed, double rate, size_t count);
/* y = x * keep / (1 - rate) (training); y = x at inference is the caller's. */
void twin_dropout_forward(double *y, const float *x, const uint8_t *keep, double rate,
                          size_t count);

/* ---- batchnorm: x [rows, c] (rows = n*h*w), per channel ------------------- */

/* Training (the batch's mean and biased variance, written to mean and var)
 * or inference (moving_mean and moving_var): y = gamma (x - mean) /
 * sqrt(var + eps) + beta, gamma NULL = 1, beta NULL = 0. scale (may be
 * NULL) gets (|x| + |mean|) |gamma| / sqrt(var + eps) + |beta| per value. */
void twin_batchnorm_forward(double *y, double *scale, double *mean, double *var, const float *x,
                            const float *gamma, const float *beta, const float *moving_mean,
                            const float *moving_var, double eps, int training, size_t rows, int c);
/* Keras 3: moving = moving * momentum + batch * (1 - momentum). */
void twin_batchnorm_moving(double *moving, const float *before, const double *batch,
                           double momentum, int c);
/* The gradient of the training forward by the chain rule through the mean
 * and variance (Ioffe and Szegedy's form, unlike the engine's): dx [rows, c],
 * dgamma [c], dbeta [c]. */
void twin_batchnorm_backward(double *dx, double *dgamma, double *dbeta, const float *dy,
                             const float *x, const float *gamma, double eps, size_t rows, int c);

/* ---- global average pooling: x [n, m, c] (m = h*w) -> y [n, c] ----------- */

void twin_globalavgpool_forward(double *y, const float *x, int n, int m, int c);
void twin_globalavgpool_backward(double *dx, const float *dy, int n, int m, int c);

/* ---- optimizers: Keras 3's update_step, one step over n parameters -------- */

typedef struct twin_optim {
  cnn_optim_config cfg;
  int64_t step; /* updates applied so far */
  size_t n;
  double *m, *v, *u; /* owned state, n each: momentum/first moment, velocity
                        or accumulator, average gradient / infinity norm */
} twin_optim;

int twin_optim_init(twin_optim *o, const cnn_optim_config *cfg, size_t n);
void twin_optim_clear(twin_optim *o);
/* w [n] in double, g [n] the engine's float gradient. */
void twin_optim_step(twin_optim *o, double *w, const float *g);

#endif
